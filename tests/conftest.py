"""Shared pytest setup: plugin modules that start real servers live in tests/fixtures/."""

import logging
from collections.abc import Iterator

import pytest

pytest_plugins: list[str] = [
    "tests.fixtures.bot",
    "tests.fixtures.synapse",
    "tests.fixtures.redfish",
    "tests.fixtures.slack",
    "tests.fixtures.vcsim",
    "tests.fixtures.postgres",
    "tests.fixtures.feed_site",
]


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """``esxbot`` run in-process (``cli.main``) installs a root handler on the test's captured stderr;
    once that capture is closed, every later log line would fail ("--- Logging error ---")."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
