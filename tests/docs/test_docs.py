"""The documentation site builds, and stays in step with the code.

- `mkdocs build --strict` succeeds (a broken link or a page missing from the nav fails it);
- every environment variable the code reads is described in docs/settings.md;
- README.md stays short and starts with the two set-up commands;
- every page under docs/ is in mkdocs.yml's nav.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# Folders that are not first-party code: third-party installs, caches, the tests themselves (they
# set variables for the processes they start; they don't configure quantdash).
SKIPPED_DIRS = {".venv", "tests", ".cache", ".git", "node_modules", "var", "site", "__pycache__"}
# quantdash/env.py's typed helpers: each takes the variable's name as its first argument.
ENV_HELPERS = {"env_str", "env_bool", "env_int", "env_list"}


def _is_os_environ(node: ast.AST) -> bool:
    """`os.environ`, or `environ` imported from os."""
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def env_names_read(source: str) -> set[str]:
    """Names of the environment variables a module reads: os.environ.get("X"), os.environ["X"],
    os.getenv("X"), "X" in os.environ, and quantdash.env's env_str/env_bool/env_int/env_list("X").
    Only literal names count: a name computed at run time can't be checked against the docs."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args:
            func, first = node.func, _literal(node.args[0])
            if first is None:
                continue
            if isinstance(func, ast.Attribute) and func.attr == "get" and _is_os_environ(func.value):
                names.add(first)
            elif isinstance(func, ast.Attribute) and func.attr == "getenv" and \
                    isinstance(func.value, ast.Name) and func.value.id == "os":
                names.add(first)
            elif isinstance(func, ast.Name) and func.id in ENV_HELPERS | {"getenv"}:
                names.add(first)
            elif isinstance(func, ast.Attribute) and func.attr in ENV_HELPERS:
                names.add(first)  # called as quantdash.env.env_int("X")
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and _is_os_environ(node.value):
            if (name := _literal(node.slice)) is not None:
                names.add(name)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 \
                and isinstance(node.ops[0], (ast.In, ast.NotIn)) and _is_os_environ(node.comparators[0]):
            if (name := _literal(node.left)) is not None:
                names.add(name)
    return names


def first_party_sources() -> list[Path]:
    return sorted(path for path in ROOT.rglob("*.py")
                  if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts[:-1]))


def env_names_in_code() -> dict[str, list[str]]:
    """{variable: [files that read it]} over every first-party module."""
    found: dict[str, list[str]] = {}
    for path in first_party_sources():
        for name in env_names_read(path.read_text(encoding="utf-8")):
            found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def documented_env_names() -> set[str]:
    """Variables docs/settings.md describes: each is a table row whose first cell is `NAME`."""
    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`", text, flags=re.MULTILINE))


def nav_pages(nav) -> set[str]:
    pages: set[str] = set()
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages |= nav_pages(value)
        elif isinstance(value, str) and not value.startswith(("http://", "https://")):
            pages.add(value)
    return pages


def test_mkdocs_build_strict_succeeds(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "settings" / "index.html").is_file()


def test_every_environment_variable_the_code_reads_is_documented():
    in_code = env_names_in_code()
    assert "DATABASE_URL" in in_code and "WORKER_METHODS" in in_code  # the scan sees settings and jobs
    missing = {name: files for name, files in sorted(in_code.items()) if name not in documented_env_names()}
    assert not missing, "docs/settings.md does not describe: " + "; ".join(
        f"{name} (read in {', '.join(files)})" for name, files in missing.items())


def test_the_scanner_finds_every_way_of_reading_a_variable():
    source = '''
import os
from os import environ
from quantdash.env import env_int
import quantdash.env
a = os.environ.get("VIA_GET", "x")
b = os.environ["VIA_SUBSCRIPT"]
c = os.getenv("VIA_GETENV")
d = "VIA_IN" in os.environ
e = env_int("VIA_HELPER", 3)
f = quantdash.env.env_bool("VIA_MODULE_HELPER", True)
g = environ.get("VIA_BARE_ENVIRON")
os.environ["ONLY_WRITTEN"] = "1"
h = os.environ.get(computed_name)
'''
    assert env_names_read(source) == {"VIA_GET", "VIA_SUBSCRIPT", "VIA_GETENV", "VIA_IN", "VIA_HELPER",
                                      "VIA_MODULE_HELPER", "VIA_BARE_ENVIRON"}
    assert "VIA_GET" not in documented_env_names()  # so an undocumented variable would be reported


def test_readme_is_short_and_starts_with_make_run_and_make_test():
    readme = ROOT / "README.md"
    assert readme.stat().st_size < 10_240, f"README.md is {readme.stat().st_size} bytes; move detail to docs/"
    block = re.search(r"```[a-z]*\n(.*?)```", readme.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert block, "README.md has no code block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands[:2] == ["make run", "make test"], commands


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    in_nav = nav_pages(config["nav"])
    pages = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert pages - in_nav == set(), f"docs pages missing from mkdocs.yml nav: {sorted(pages - in_nav)}"
    assert in_nav - pages == set(), f"mkdocs.yml nav names pages that don't exist: {sorted(in_nav - pages)}"
