"""One file hash: formats.digest.file_sha256 (hashlib.file_digest), with progress reports."""

import hashlib

from formats.digest import file_sha256


def test_hash_and_progress_cover_every_byte(tmp_path):
    data = bytes(range(256)) * 5000  # 1.28 MB: several of file_digest's 256 KiB reads
    path = tmp_path / "blob"
    path.write_bytes(data)
    seen = []
    assert file_sha256(path, seen.append) == file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert sum(seen) == len(data) and len(seen) > 1
