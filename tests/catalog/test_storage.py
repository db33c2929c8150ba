from catalog.services import move_into_place


def test_a_leftover_folder_at_a_new_rows_path_is_replaced(tmp_path):
    """A reset or restored database can hand out an id whose folder still exists on disk; the new
    row's files replace it instead of failing the import ('Directory not empty')."""
    staged = tmp_path / "tmp" / "import-1"
    staged.mkdir(parents=True)
    (staged / "model.gguf").write_bytes(b"new")
    target = tmp_path / "variants" / "1"
    target.mkdir(parents=True)
    (target / "old.gguf").write_bytes(b"stale")
    move_into_place(staged, target)
    assert sorted(p.name for p in target.iterdir()) == ["model.gguf"]
    assert (target / "model.gguf").read_bytes() == b"new"
    assert not staged.exists()
