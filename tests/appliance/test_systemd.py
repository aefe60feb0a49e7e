"""sd_notify reaches a real notify socket, and is a no-op without one."""
import socket
from pathlib import Path

import pytest

from appliance.service import systemd


def test_notify_without_systemd_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "systemd", None)  # as on a laptop without systemd-python
    assert systemd.notify("READY=1") is False


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """The socket systemd would listen on (NOTIFY_SOCKET), without systemd-python: what arrives there."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setitem(__import__("sys").modules, "systemd", None)
        yield server


def test_notify_sends_the_datagram(notify_socket):
    assert systemd.notify("READY=1") is True
    assert notify_socket.recv(100) == b"READY=1"


def test_watchdog_interval_is_half_of_watchdogsec(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_interval_s() == 10.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert systemd.watchdog_interval_s() is None


def test_each_step_of_the_start_gives_the_next_one_the_units_start_timeout(notify_socket):
    assert systemd.starting("aiortc loaded") is True
    assert notify_socket.recv(200).decode().split("\n") == [
        f"EXTEND_TIMEOUT_USEC={systemd.START_STEP_S * 1_000_000}", "STATUS=starting: aiortc loaded"]
    unit = (Path(__file__).resolve().parents[2] / "systemd/amtsklingel-appliance.service").read_text()
    assert f"TimeoutStartSec={systemd.START_STEP_S // 60}min\n" in unit
