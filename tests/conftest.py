"""Shared fixtures live in tests/fixtures/ (one module per real part), registered here."""

pytest_plugins = [
    "tests.fixtures.producer",
    "tests.fixtures.s3",
]
