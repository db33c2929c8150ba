"""Shared fixtures live in tests/support/fixtures.py; the session environment in testenv.py.

The PostgreSQL pass (`make test-postgres`: scripts/test-postgres.sh -m postgres) runs the tests
listed here: what can differ between SQLite and PostgreSQL — transactions and on_commit, row locks
and conditional updates, the reaper, routing, JSON fields, migrations, the JSON APIs, team scoping
and the authorization matrix, async views' ORM calls, and real workers sharing one database.
Pure-Python estimator tests and page-layout browser tests run once, on SQLite. An entry is a test
file or one test in it (`path::name`)."""

from pathlib import Path

import pytest

pytest_plugins = ["tests.support.fixtures", "tests.support.artifacts"]

POSTGRES = [
    "tests/quantdash/test_migrations.py",        # migrations apply; models match them
    "tests/quantdash/test_healthz.py",           # the database check
    "tests/deploy/test_child_env.py",            # DATABASE_URL for the processes tests start
    "tests/jobs/test_lifecycle.py",              # conditional updates, one winner
    "tests/jobs/test_submit.py",                 # on_commit, idempotent submit, routing
    "tests/jobs/test_enqueue.py",                # saved while Redis is down, sent later
    "tests/jobs/test_reap.py",                   # the reaper
    "tests/jobs/test_sweeps.py",                 # sweep lease (conditional updates), JSON params
    "tests/jobs/test_api.py",
    "tests/catalog/test_deletion.py",            # refusals and deletes in one transaction
    "tests/catalog/test_import_sources.py",      # an import failing part-way leaves nothing
    "tests/catalog/test_catalog_pages.py",       # filters and sorting, JSON API shapes
    "tests/catalog/test_permissions.py",         # team scoping
    "tests/planner/test_api.py",
    "tests/planner/test_hardware_profiles.py",   # team-scoped rows with JSON fields
    "tests/runtime/test_openai_api.py",          # async views: tokens, conversations
    "tests/runtime/test_chat_stream.py",         # async views save the conversation
    "tests/reliability/test_authorization.py",   # the authorization matrix
    "tests/reliability/test_hostile_input.py::test_7_a_double_click_makes_one_job",
    "tests/reliability/test_job_faults.py",      # kill and cancel races on a real worker
    "tests/reliability/test_worker_kill.py",     # reaper + requeue across a worker restart
    "tests/reliability/test_visibility_timeout.py",  # duplicate deliveries, no-op claims
    "tests/deploy/test_two_workers.py",          # several workers sharing the database
]


def pytest_ignore_collect(collection_path, config):
    """With `-m postgres` alone, only the files listed above are imported: the rest would be
    deselected anyway, and importing every test module costs ~10 s of each PostgreSQL pass."""
    if (config.getoption("markexpr") == "postgres" and collection_path.is_file()
            and collection_path.name.startswith("test_") and collection_path.suffix == ".py"):
        relative = collection_path.relative_to(config.rootpath).as_posix()
        if not any(entry.split("::")[0] == relative for entry in POSTGRES):
            return True
    return None


def pytest_collection_modifyitems(config, items) -> None:
    root = Path(config.rootpath)
    missing = [entry for entry in POSTGRES if not (root / entry.split("::")[0]).is_file()]
    if missing:  # a renamed or deleted file would silently drop out of the PostgreSQL pass
        raise pytest.UsageError(f"tests/conftest.py POSTGRES names missing files: {missing}")
    for item in items:
        path, _, name = item.nodeid.partition("::")
        test = f"{path}::{name.split('[')[0]}"
        if path in POSTGRES or test in POSTGRES:
            item.add_marker(pytest.mark.postgres)
