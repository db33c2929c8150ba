"""Comments and docstrings say why in plain words. A pointer to a style guide's rule number or to
an issue number tells a reader of the code nothing (the guide and the tracker are not beside the
code, and their numbering changes), so first-party code cites neither.

Checked: every source, template, script and build file of the project (not the docs or the README,
which may talk about the guide, nor hidden folders such as the virtualenv)."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".py", ".html", ".js", ".css", ".sh", ".yml", ".yaml", ".toml", ".cfg", ".ini"}
NAMES = {"Makefile"}
SKIPPED_DIRS = {"docs", "node_modules", "__pycache__", "logs"}
# "STYLE.md", "issue 19", "Issue 13's", "issues 14/17", "issue #7"
CITATION = re.compile(r"STYLE\.md|\b[Ii]ssues? #?\d+")


def first_party_files(root: Path = ROOT) -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS]
        files += [Path(folder) / name for name in names
                  if Path(name).suffix in SUFFIXES or name in NAMES or name.startswith("Dockerfile")]
    return sorted(files)


def citations(root: Path = ROOT) -> list[str]:
    """'file:line: text' for each line citing the style guide or an issue number (this file,
    which must spell them out to test the check, left out)."""
    found = []
    for path in first_party_files(root):
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if CITATION.search(line):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_first_party_code_cites_no_style_rule_or_issue_number():
    assert len(first_party_files()) > 100
    assert citations() == []


def test_the_check_finds_citations_in_code_templates_and_build_files(tmp_path):
    guide = "STYLE" + ".md"
    (tmp_path / "app" / "templates").mkdir(parents=True)
    (tmp_path / "docker").mkdir()
    (tmp_path / ".venv").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "app" / "views.py").write_text(
        f"# thin views ({guide} practice 3)\nx = 1  # the tissue 12 cells: not a citation\n")
    (tmp_path / "app" / "templates" / "page.html").write_text("<!-- fixed in Issue 13 -->\n")
    (tmp_path / "docker" / "Dockerfile.gpu").write_text("# issues 14/17\nFROM python\n")
    (tmp_path / "Makefile").write_text("all:  # see issue #7\n")
    (tmp_path / ".venv" / "lib.py").write_text("# issue 1\n")
    (tmp_path / "docs" / "index.md").write_text(f"{guide}\n")
    (tmp_path / "docs" / "conf.py").write_text("# issue 2\n")
    assert citations(tmp_path) == [
        "Makefile:1: all:  # see issue #7",
        "app/templates/page.html:1: <!-- fixed in Issue 13 -->",
        f"app/views.py:1: # thin views ({guide} practice 3)",
        "docker/Dockerfile.gpu:1: # issues 14/17",
    ]
