"""A job method's run() executes in a child process that never sets Django up (jobs/child.py): the
child must start fast and must not open the database. So importing a method module, and what it
imports at module level, must leave Django out. The one exception is a module whose methods all
run inside the worker process itself (in_worker = True: the catalog imports, which register rows).

Each check runs in a fresh interpreter without DJANGO_SETTINGS_MODULE, as the child does."""

import os
import subprocess
import sys
from pathlib import Path

from jobs.methods import _MODULES, get_method

ROOT = Path(__file__).resolve().parents[3]
# Modules whose methods run in the worker, not in the Django-free child.
IN_WORKER = {"jobs.methods.imports"}

# Imports the modules one by one and names the first that brought Django in (or failed).
CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        print(f"{name}: import failed: {type(exc).__name__}: {exc}")
        break
    if "django" in sys.modules:
        print(f"{name}: imports django")
        break
"""


def first_importing_django(modules: list[str], *, path: Path = ROOT) -> str:
    """'' when no module of `modules` (imported in this order, in a fresh interpreter run from
    `path`) pulls Django in; else '<module>: imports django' for the first that does."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(path)
    done = subprocess.run([sys.executable, "-c", CHECK, *modules], cwd=path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def method_modules(root: Path = ROOT) -> list[str]:
    folder = root / "jobs" / "methods"
    return [f"jobs.methods.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]


def test_method_modules_import_no_django():
    modules = [m for m in method_modules() if m not in IN_WORKER]
    assert len(modules) >= 8, modules  # the glob found the method modules
    assert first_importing_django(["jobs.methods", *modules]) == ""


def test_only_in_worker_methods_are_exempt():
    in_worker = {module for name, module in _MODULES.items() if get_method(name).in_worker}
    assert in_worker == IN_WORKER


def test_the_check_names_the_module_that_pulls_django_in(tmp_path):
    package = tmp_path / "fake_methods"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "clean.py").write_text("import json\n")
    (package / "helper.py").write_text("from django.conf import settings\n")
    (package / "dirty.py").write_text("import json\n\nfrom fake_methods import helper\n")
    modules = ["fake_methods.clean", "fake_methods.dirty"]
    assert first_importing_django(modules[:1], path=tmp_path) == ""
    assert first_importing_django(modules, path=tmp_path) == "fake_methods.dirty: imports django"
    (package / "broken.py").write_text("import no_such_module_here\n")
    assert first_importing_django(["fake_methods.broken"], path=tmp_path).startswith(
        "fake_methods.broken: import failed: ModuleNotFoundError")
