"""Appliance tests that need a real central take the running one from central's tests."""
from tests.central.conftest import central  # noqa: F401  (a pytest fixture: imported so tests here can use it)
