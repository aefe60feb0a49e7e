"""The login script in docs/protocol.md works as printed, against a running central."""
from __future__ import annotations

import json
import re

from protocol import doc


def printed_script() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", doc.DOC_PATH.read_text(), flags=re.S | re.M)
    assert len(blocks) == 1, "expected one Python example in docs/protocol.md"
    return blocks[0]


async def test_the_printed_login_script_opens_a_staff_socket(central):
    namespace: dict = {}
    exec(compile(printed_script(), "docs/protocol.md", "exec"), namespace)
    session, ws = await namespace["staff_socket"](central.url, central.credentials["clerk_user"],
                                                  central.credentials["clerk_password"])
    try:
        first = json.loads((await ws.receive(timeout=5)).data)
        assert first["type"] == "console.snapshot"
    finally:
        await ws.close()
        await session.close()
