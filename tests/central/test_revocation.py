"""Logout, password reset, deactivation and new departments reach an open console at once."""
from __future__ import annotations

import re

import aiohttp
import pytest

from central.web import consoles

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as r:
        return CSRF_RE.search(await r.text())[1]


async def ended(peer) -> dict:
    """The console's last frames: an error session_ended, then the socket closes."""
    frame = await peer.recv("error")
    assert frame["code"] == "session_ended", frame
    with pytest.raises(AssertionError, match="socket closed"):
        await peer.recv(timeout=5)
    return frame


async def console_opens(session: aiohttp.ClientSession, url: str) -> bool:
    async with session.get(url + "/console", allow_redirects=False) as r:
        return r.status == 200


async def admin_edits_clerk(central, **changes) -> None:
    admin = await central.login(central.credentials["admin_user"], central.credentials["admin_password"])
    clerk = next(m for m in await central.db.all_staff() if m.username == central.credentials["clerk_user"])
    form = [("display_name", clerk.display_name), ("role", clerk.role), ("active", "on"),
            *(("departments", slug) for slug in sorted(clerk.departments))]
    form = [(k, v) for k, v in form if k not in changes and not (k == "departments" and "departments" in changes)]
    for key, value in changes.items():
        form += [(key, v) for v in value] if isinstance(value, list) else [] if value is None else [(key, value)]
    form.append(("csrf_token", await csrf(admin, central.url + "/admin/staff")))
    async with admin.post(f"{central.url}/admin/staff/{clerk.id}/edit", data=form, allow_redirects=False) as r:
        assert r.status == 303, await r.text()


async def test_logout_ends_every_session_and_the_open_console(central):
    console = await central.clerk()
    other_device = await central.login(central.credentials["clerk_user"], central.credentials["clerk_password"])
    token = await csrf(console.session, central.url + "/console")
    async with console.session.post(central.url + "/logout", data={"csrf_token": token},
                                    allow_redirects=False) as r:
        assert r.status == 302
    assert "logged out" in (await ended(console))["detail"]
    assert central.credentials["clerk_user"] not in {p.staff.username for p in central.hub.staff.values()}
    # Arrivals reach no console of the clerk; neither cookie opens the console any more.
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    await kiosk.recv("visit.queued")
    assert not await console_opens(console.session, central.url)
    assert not await console_opens(other_device, central.url)


async def test_a_password_reset_ends_the_clerks_sessions_and_console(central):
    console = await central.clerk()
    await admin_edits_clerk(central, password="a brand new password")
    assert "password was changed" in (await ended(console))["detail"]
    assert not await console_opens(console.session, central.url)
    again = await central.clerk(password="a brand new password")  # the new password opens a new console
    await again.send(type="ping")
    await again.recv("pong")


async def test_deactivation_ends_the_open_console(central):
    console = await central.clerk()
    await admin_edits_clerk(central, active=None)
    assert "deactivated" in (await ended(console))["detail"]
    assert not await console_opens(console.session, central.url)


async def test_departments_taken_away_take_effect_on_the_open_console(central):
    console = await central.clerk()
    await admin_edits_clerk(central, departments=["standesamt"])
    snapshot = await console.recv("console.snapshot")
    assert [d["slug"] for d in snapshot["departments"]] == ["standesamt"]
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit_id = (await kiosk.recv("visit.queued"))["visit_id"]
    assert not [f for f in await console.quiet(0.3) if f["type"] == "queue.joined"]
    await console.send(type="visit.pickup", visit_id=visit_id)
    assert (await console.recv("error"))["code"] == "forbidden"
    await console.send(type="visit.pickup", department="buergerbuero")
    assert (await console.recv("error"))["code"] == "forbidden"
    # All departments gone: an empty console, still connected.
    await admin_edits_clerk(central, departments=[])
    assert (await console.recv("console.snapshot"))["departments"] == []
    await console.send(type="ping")
    await console.recv("pong")
    # And given back: the waiting citizen appears.
    await admin_edits_clerk(central, departments=["buergerbuero"])
    snapshot = await console.recv("console.snapshot")
    assert [v["visit_id"] for d in snapshot["departments"] for v in d["waiting"]] == [visit_id]


async def test_a_change_made_through_another_central_process_arrives_within_a_check(central):
    console = await central.clerk()
    clerk = next(m for m in await central.db.all_staff() if m.username == central.credentials["clerk_user"])
    # Another process wrote these; this one learns of them at its next check (consoles.watch).
    await central.db.update_staff(clerk.id, display_name=clerk.display_name, role="clerk", active=True,
                                  departments=["standesamt"])
    await consoles.refresh(central.app)
    assert [d["slug"] for d in (await console.recv("console.snapshot"))["departments"]] == ["standesamt"]
    await central.db.end_sessions(clerk.id)
    await consoles.refresh(central.app)
    assert "session has ended" in (await ended(console))["detail"]


async def test_a_deleted_department_leaves_the_open_console(central):
    console = await central.clerk()
    admin = await central.login(central.credentials["admin_user"], central.credentials["admin_password"])
    token = await csrf(admin, central.url + "/admin/departments/buergermeister/delete")
    async with admin.post(central.url + "/admin/departments/buergermeister/delete", data={"csrf_token": token},
                          allow_redirects=False) as r:
        assert r.status == 303
    snapshot = await console.recv("console.snapshot")
    assert "buergermeister" not in [d["slug"] for d in snapshot["departments"]]
    assert "buergermeister" not in [d["slug"] for d in snapshot["transfer_targets"]]
