"""``python -m appliance [--config FILE]``: run the kiosk (as the systemd service does)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.config import DEFAULT_PATH, ApplianceConfig, ConfigError
from appliance.service import systemd
from appliance.service.main import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance", description="Amtsklingel kiosk appliance")
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args()
    systemd.setup_logging()
    try:
        config = ApplianceConfig.load(args.config)
    except ConfigError as exc:
        print(f"amtsklingel appliance: {exc}", file=sys.stderr)
        systemd.notify(f"STATUS=configuration error: {exc}")
        return 2
    run(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
