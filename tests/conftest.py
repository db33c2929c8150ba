"""Shared fixtures live in tests/support/fixtures.py; the session environment in testenv.py."""

pytest_plugins = ["tests.support.fixtures"]
