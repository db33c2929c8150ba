"""Layers point one way: formats <- catalog <- engines <- jobs and runtime <- views/APIs. A lower
layer that imports a higher one can't be used, tested or reasoned about without it, and import
cycles follow.

Every import statement is read from the source with ast, at any depth (an import inside a
function counts: it is the sign of a boundary in the wrong place), so a lazy import can't hide."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> top-level packages it must never import.
FORBIDDEN = {
    "catalog": {"jobs", "runtime"},
    "formats": {"django", "catalog", "jobs", "runtime", "planner"},
    # The engines load and run a variant for both the runtime server and the evaluation jobs, so
    # what is measured is what is served: they know nothing of either, nor of the database.
    "engines": {"django", "catalog", "jobs", "runtime", "planner", "accounts", "quantdash"},
}


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def imported_modules(tree: ast.AST, module_path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in `tree`: `import a.b`, `from a import b`
    (as a.b, relative imports resolved against `module_path`), and import_module("a.b") or
    __import__("a.b") with a literal name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts: tuple[str, ...] = ()
            if node.level:  # from . import x, from ..jobs import y
                parts = module_path.relative_to(root).with_suffix("").parts[:-node.level]
            base = ".".join(parts + ((node.module,) if node.module else ()))
            found += [(node.lineno, f"{base}.{alias.name}" if base else alias.name)
                      for alias in node.names]
        elif (isinstance(node, ast.Call) and _call_name(node) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return sorted(found)


def forbidden_imports(package: str, root: Path = ROOT) -> list[str]:
    """'file:line imports name' for each import of a forbidden package under root/package/."""
    bad = []
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, name in imported_modules(tree, path, root):
            if name.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(root)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_import_nothing_above_them(package):
    assert list((ROOT / package).rglob("*.py")), f"no Python files under {package}/"
    assert forbidden_imports(package) == []


def test_the_check_sees_imports_at_any_depth_and_relative_ones():
    source = (
        "import os\n"
        "from catalog.models import Variant\n"
        "def view():\n"
        "    from jobs.services import job_submit\n"
        "    if True:\n"
        "        import engines\n"
        "class A:\n"
        "    def m(self):\n"
        "        from .. import jobs\n"
        "        from ..engines import base\n"
        "        from . import models\n"
        "        importlib.import_module('jobs.methods')\n"
    )
    names = imported_modules(ast.parse(source), ROOT / "catalog" / "imports" / "hub.py")
    assert names == [(1, "os"), (2, "catalog.models.Variant"), (4, "jobs.services.job_submit"),
                     (6, "engines"), (9, "catalog.jobs"), (10, "catalog.engines.base"),
                     (11, "catalog.imports.models"), (12, "jobs.methods")]


def test_a_lazy_import_of_jobs_in_the_catalog_is_reported_with_file_and_line(tmp_path):
    (tmp_path / "catalog" / "sub").mkdir(parents=True)
    (tmp_path / "catalog" / "fine.py").write_text("from catalog.models import Variant\n")
    (tmp_path / "catalog" / "sub" / "bad.py").write_text(
        "import json\n\ndef submit():\n    from jobs.services import job_submit\n")
    (tmp_path / "formats").mkdir()
    (tmp_path / "formats" / "reader.py").write_text("from django.conf import settings\n")
    assert forbidden_imports("catalog", tmp_path) == [
        str(Path("catalog/sub/bad.py")) + ":4 imports jobs.services.job_submit"]
    assert forbidden_imports("formats", tmp_path) == [
        str(Path("formats/reader.py")) + ":1 imports django.conf.settings"]


def test_no_catalog_model_points_at_jobs_or_runtime():
    """A relation named by string ("jobs.Job") is no import, but it ties the catalog's tables to
    the layer above just the same; jobs owns every link between the two (Job.outputs,
    Job.evaluations)."""
    from django.apps import apps

    pointing_up = [f"{model.__name__}.{field.name} -> {field.related_model._meta.label}"
                   for model in apps.get_app_config("catalog").get_models()
                   for field in model._meta.get_fields()
                   if field.concrete and field.is_relation and field.related_model is not None
                   and field.related_model._meta.app_label in FORBIDDEN["catalog"]]
    assert pointing_up == []
