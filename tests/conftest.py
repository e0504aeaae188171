"""Shared pytest setup: plugin modules that start real servers live in tests/fixtures/."""

pytest_plugins: list[str] = [
    "tests.fixtures.bot",
    "tests.fixtures.synapse",
    "tests.fixtures.redfish",
    "tests.fixtures.slack",
    "tests.fixtures.vcsim",
    "tests.fixtures.postgres",
    "tests.fixtures.feed_site",
]
