"""What restarts a unit into an installed update: with RAUC's real slots the machine itself, also where
the devices are fake (a unit under QEMU, as ./build.sh update-test runs it), since the boot loader
switches slots only on a real restart; the demo's fake slots keep the fake power."""
from appliance.service.power import FakePower, SystemdPower, open_power, open_update_power


def test_real_slots_restart_the_machine_even_with_fake_devices():
    devices_power = open_power({"backend": "fake"})
    assert isinstance(devices_power, FakePower)
    assert isinstance(open_update_power({"backend": "rauc"}, devices_power), SystemdPower)


def test_fake_slots_or_no_updates_keep_the_power_the_devices_have():
    devices_power = FakePower()
    assert open_update_power({"backend": "fake"}, devices_power) is devices_power
    assert open_update_power({}, devices_power) is devices_power
