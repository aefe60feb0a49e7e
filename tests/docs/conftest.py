"""The documentation's example scripts run against a real central, the one central's tests start."""
from tests.central.conftest import central  # noqa: F401  (a pytest fixture: imported so tests here can use it)
