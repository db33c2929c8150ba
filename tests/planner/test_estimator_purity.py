"""The estimator (planner/estimator/) imports only the Python standard library and itself: the web
process, the CLI, the benches and the job estimates all call it, so its numbers must not depend on
Django, the database or whatever else happens to be installed, and it must import in a bare
interpreter.

Every import statement is read with ast at any depth (an import inside a function counts too),
relative ones resolved, with the same reader as the layer test."""

import ast
import sys
from pathlib import Path

from tests.catalog.test_layers import imported_modules

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "planner.estimator"


def foreign_imports(root: Path = ROOT) -> list[str]:
    """'file:line imports name' for each import under root/planner/estimator/ of something that is
    neither the standard library nor the estimator itself."""
    bad = []
    for path in sorted((root / "planner" / "estimator").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, name in imported_modules(tree, path, root):
            own = name == PACKAGE or name.startswith(PACKAGE + ".")
            if not own and name.split(".")[0] not in sys.stdlib_module_names:
                bad.append(f"{path.relative_to(root)}:{line} imports {name}")
    return bad


def test_the_estimator_imports_only_the_standard_library_and_itself():
    assert len(list((ROOT / "planner" / "estimator").rglob("*.py"))) > 10
    assert foreign_imports() == []


def test_the_check_reports_third_party_django_and_the_rest_of_planner(tmp_path):
    folder = tmp_path / "planner" / "estimator" / "sub"
    folder.mkdir(parents=True)
    (tmp_path / "planner" / "estimator" / "__init__.py").write_text(
        "from __future__ import annotations\nimport math, json\nfrom .fields import LIMITS\n"
        "from planner.estimator.memory import kv_cache_bytes\n")
    (folder / "bad.py").write_text(
        "import os\n"
        "import numpy as np\n"
        "from .. import fields\n"
        "from ... import models\n"
        "def f():\n"
        "    from django.conf import settings\n")
    assert foreign_imports(tmp_path) == [
        str(Path("planner/estimator/sub/bad.py")) + ":2 imports numpy",
        str(Path("planner/estimator/sub/bad.py")) + ":4 imports planner.models",
        str(Path("planner/estimator/sub/bad.py")) + ":6 imports django.conf.settings",
    ]
