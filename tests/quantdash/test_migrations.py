"""The migrations build the schema the models describe (on SQLite and on PostgreSQL)."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_have_no_changes_missing_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # SystemExit(1) if any


@pytest.mark.django_db
def test_every_migration_is_applied_to_the_test_database():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
