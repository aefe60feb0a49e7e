"""Every unit installs remote updates through RAUC: the image's built-in settings turn the update agent
on, and a test set-up's appliance.toml on the boot partition (fake hardware) leaves it on."""
from pathlib import Path

from appliance.config import ApplianceConfig

REPO = Path(__file__).resolve().parents[2]
BUILTIN = REPO / "image/config/appliance.toml"
TEST_SETUP = REPO / "image/build/selftest/enrol/appliance.toml"


def test_the_image_turns_on_updates_through_rauc_and_a_test_set_up_keeps_them(tmp_path):
    builtin = tmp_path / "builtin.toml"  # as ./build.sh image --central writes it: the address in front
    builtin.write_text('central_url = "http://central.amtsklingel.test:8080"\n' + BUILTIN.read_text())
    assert ApplianceConfig.load(builtin).update == {"backend": "rauc"}
    with_test_setup = ApplianceConfig.load(builtin, TEST_SETUP)
    assert with_test_setup.hardware["backend"] == "fake"
    assert with_test_setup.update == {"backend": "rauc"}
