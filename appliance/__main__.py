"""``python -m appliance [--config FILE]``: run the kiosk (as the systemd service does)."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from appliance.config import BUILTIN_PATH, DEFAULT_PATH, ApplianceConfig, ConfigError
from appliance.hardware.native_exit import end_process
from appliance.service import systemd

# Imported one at a time, each a step of the start that systemd sees done (systemd.starting): together
# they are most of it. The service module last, with the rest of the appliance.
LIBRARIES = ("numpy", "av", "aiortc", "aiohttp", "appliance.service.main")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance", description="Amtsklingel kiosk appliance")
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH,
                        help=f"this unit's settings (default {DEFAULT_PATH}); they win over the built-in ones")
    parser.add_argument("--builtin", type=Path, default=BUILTIN_PATH,
                        help=f"the image's built-in settings, read first (default {BUILTIN_PATH})")
    args = parser.parse_args()
    systemd.setup_logging()
    try:
        config = ApplianceConfig.load(args.builtin, args.config)
    except ConfigError as exc:
        print(f"amtsklingel appliance: {exc}", file=sys.stderr)
        systemd.notify(f"STATUS=configuration error: {exc}")
        return 2
    systemd.starting("settings read")
    for name in LIBRARIES:
        module = importlib.import_module(name)
        systemd.starting(f"{name} loaded")
    module.run(config)
    return 0


if __name__ == "__main__":
    end_process(main())  # an in-process echo canceller's runtime must not see the teardown (native_exit.py)
