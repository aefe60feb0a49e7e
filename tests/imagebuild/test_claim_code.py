"""image/build/claim-code.py, the boot test's admin, against a real central and a unit on /ws/enrol.

The unit is this test on central's enrolment socket; the "console" is a file the test writes the
self-test's code line into, as QEMU's serial port would.
"""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest_asyncio

from central.config import Config
from tests.central.conftest import Peer, running_central

CLAIM = Path(__file__).resolve().parents[2] / "image/build/claim-code.py"


@pytest_asyncio.fixture
async def demo_central(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    async with running_central(config) as c:
        (tmp_path / "demo.json").write_text(json.dumps(c.credentials))
        yield c


async def _unit(central) -> tuple[Peer, str]:
    """A unit without a token on /ws/enrol; returns it and the code central gave it."""
    unit = Peer(await central.session.ws_connect(central.url.replace("http", "ws") + "/ws/enrol"))
    await unit.send(type="enrol.hello", serial="10000000b00c0de1", model="QEMU virt", version="0.1.0")
    return unit, (await unit.recv("enrol.code"))["code"]


async def _claim(central, tmp_path, *extra: str, timeout: float = 60) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(CLAIM), "--console", str(tmp_path / "console.log"), "--central", central.url,
        "--credentials", str(tmp_path / "demo.json"), "--location", "Rathaus Musterdorf, Foyer", "--timeout",
        str(timeout), *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_the_code_on_the_console_is_claimed_and_the_unit_gets_its_token(demo_central, tmp_path):
    unit, code = await _unit(demo_central)
    # The console before the code appears: boot messages; the script waits for the line.
    (tmp_path / "console.log").write_bytes(b"[   12.3] systemd[1]: Started amtsklingel-appliance.service\r\n")
    claim = await _claim(demo_central, tmp_path, "--departments", "standesamt,buergerbuero")
    await asyncio.sleep(1.5)
    with (tmp_path / "console.log").open("ab") as console:
        console.write(f"AMTSKLINGEL-SELFTEST PASS enrol-screen: serial 10000000b00c0de1\r\n"
                      f"AMTSKLINGEL-ENROL-CODE {code}\r\n".encode())
    out, err = await asyncio.wait_for(claim.communicate(), 60)
    assert claim.returncode == 0, (out + err).decode()
    assert f"AMTSKLINGEL-SELFTEST PASS enrol-claimed: code {code}" in out.decode()
    assert "Rathaus Musterdorf, Foyer" in out.decode()
    done = await unit.recv("enrol.done", timeout=10)
    assert done["location"] == "Rathaus Musterdorf, Foyer"
    # The token works: the unit is a kiosk now.
    await demo_central.kiosk(done["token"])


async def test_departments_central_does_not_offer_are_refused(demo_central, tmp_path):
    _unit_peer, code = await _unit(demo_central)
    (tmp_path / "console.log").write_text(f"AMTSKLINGEL-ENROL-CODE {code}\n")
    claim = await _claim(demo_central, tmp_path, "--departments", "buergerbuero,hundesteuer", timeout=4)
    out, _err = await asyncio.wait_for(claim.communicate(), 30)
    assert claim.returncode == 1 and "departments hundesteuer not offered by central" in out.decode()


async def test_a_code_central_does_not_know_is_passed_over_for_the_next(demo_central, tmp_path):
    """A code that expired before the claim: the unit shows a new one, and that one is claimed."""
    (tmp_path / "console.log").write_bytes(b"AMTSKLINGEL-ENROL-CODE K7MP-4QX9\r\n")
    claim = await _claim(demo_central, tmp_path)
    await asyncio.sleep(3)
    unit, code = await _unit(demo_central)
    with (tmp_path / "console.log").open("ab") as console:
        console.write(f"AMTSKLINGEL-ENROL-CODE {code}\r\n".encode())
    out, err = await asyncio.wait_for(claim.communicate(), 60)
    assert claim.returncode == 0, (out + err).decode()
    assert "K7MP-4QX9" in err.decode() and "No unit is showing this code" in err.decode()
    assert (await unit.recv("enrol.done", timeout=10))["location"] == "Rathaus Musterdorf, Foyer"


async def test_no_code_on_the_console_is_a_failure_saying_so(demo_central, tmp_path):
    (tmp_path / "console.log").write_bytes(b"[    1.0] Booting Linux\r\n")
    claim = await _claim(demo_central, tmp_path, timeout=3)
    out, _err = await asyncio.wait_for(claim.communicate(), 30)
    assert claim.returncode == 1
    assert "AMTSKLINGEL-SELFTEST FAIL enrol-claimed: no AMTSKLINGEL-ENROL-CODE line on the console" in out.decode()


async def test_wrong_admin_credentials_are_a_failure(demo_central, tmp_path):
    _unit_peer, code = await _unit(demo_central)
    (tmp_path / "console.log").write_text(f"AMTSKLINGEL-ENROL-CODE {code}\n")
    (tmp_path / "demo.json").write_text('{"admin_user": "admin", "admin_password": "not-the-password"}')
    claim = await _claim(demo_central, tmp_path, timeout=4)
    out, _err = await asyncio.wait_for(claim.communicate(), 30)
    assert claim.returncode == 1 and "logging in as admin failed (HTTP 401)" in out.decode()
