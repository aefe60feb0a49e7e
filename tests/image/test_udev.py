"""udev/*.rules under udev's real rule engine, with Debian's own rules, on made-up devices
(tests/image/fakesys.py): a USB speakerphone, microphone, speaker and webcam, the Pi's
own sound, the Pi camera (unicam video0, media0, a DMA heap), the GPIO chip, a USB stick
and the SD card."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.image.imageroot import REPO

OUR_RULES = sorted(str(p) for p in (REPO / "udev").glob("*.rules"))
USB = "devices/platform/axi/1000120000.pcie/1f00200000.usb/xhci-hcd.0/usb1"  # a Pi 5's USB port


def _group_ids(root) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split(":")[2]) for line in (root / "etc/group").read_text().splitlines()}


def udev_event(image_root, devices: list[dict], event: str, *, action: str = "add", read: list[str] = (),
               rules: list[str] = OUR_RULES, before: list[str] = ()) -> dict:
    spec = {"rules": rules, "passwd": str(image_root.path / "etc/passwd"), "group": str(image_root.path / "etc/group"),
            "devices": devices, "before": list(before), "event": event, "action": action, "read": list(read)}
    spec_path = image_root.path.parent / "udev-spec.json"
    spec_path.write_text(json.dumps(spec))
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-m",
                             "tests.image.fakesys", str(spec_path)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["returncode"] == 0, out["log"]
    return out


def _descriptors(*interfaces: tuple[int, int, int]) -> str:
    """Raw USB descriptors (as in sysfs): device, configuration, then interfaces with an endpoint each."""
    blob = bytes([18, 1, 0, 2, 0, 0, 0, 64, 0x0e, 0x0b, 0x22, 0x04, 0, 1, 1, 2, 3, 1])
    blob += bytes([9, 2, 0, 0, len(interfaces), 1, 0, 0x80, 50])
    for number, (cls, sub, proto) in enumerate(interfaces):
        blob += bytes([9, 4, number, 0, 1, cls, sub, proto, 0]) + bytes([7, 5, 0x81 + number, 1, 0, 1, 1])
    return blob.hex()


def usb_device(port: int, product: str, interfaces: list[tuple[int, int, int]]) -> dict:
    return {"path": f"{USB}/1-{port}", "subsystem": "usb",
            "uevent": {"DEVTYPE": "usb_device", "DRIVER": "usb", "BUSNUM": "001", "DEVNUM": f"{port + 1:03}",
                       "MAJOR": "189", "MINOR": str(port), "DEVNAME": f"bus/usb/001/{port + 1:03}"},
            "attrs": {"idVendor": "0b0e", "idProduct": f"{0x400 + port:04x}", "bcdDevice": "0100",
                      "manufacturer": "Example", "product": product, "serial": f"SN{port:04}"},
            "binary_attrs": {"descriptors": _descriptors(*interfaces)}}


def usb_interface(port: int, number: int, cls: int, sub: int, proto: int = 0) -> dict:
    return {"path": f"{USB}/1-{port}/1-{port}:1.{number}", "subsystem": "usb",
            "uevent": {"DEVTYPE": "usb_interface", "INTERFACE": f"{cls}/{sub}/{proto}"},
            "attrs": {"bInterfaceClass": f"{cls:02x}", "bInterfaceSubClass": f"{sub:02x}",
                      "bInterfaceProtocol": f"{proto:02x}", "bInterfaceNumber": f"{number:02}"}}


def sound_card(parent: str, card: int, *, capture: bool, playback: bool, card_id: str = "Device") -> dict:
    pcms = ([f"pcmC{card}D0c"] if capture else []) + ([f"pcmC{card}D0p"] if playback else [])
    return {"path": f"{parent}/sound/card{card}", "subsystem": "sound", "uevent": {},
            "attrs": {"id": card_id, "number": str(card)}, "dirs": [*pcms, f"controlC{card}"]}


def usb_sound(port: int, card: int, *, capture: bool, playback: bool, webcam: bool = False,
              card_id: str = "Device") -> tuple[list[dict], str]:
    interfaces = [(0x0e, 1, 0), (0x0e, 2, 0)] if webcam else []
    interfaces += [(1, 1, 0), (1, 2, 0)]
    audio_if = 2 if webcam else 0
    devices = [usb_device(port, "USB Audio", interfaces), usb_interface(port, audio_if, 1, 1)]
    devices.append(sound_card(devices[-1]["path"], card, capture=capture, playback=playback, card_id=card_id))
    return devices, devices[-1]["path"]


@pytest.mark.parametrize(("capture", "playback", "name"), [
    (True, True, "kioskaudio"), (True, False, "kioskmic"), (False, True, "kioskspeaker")])
def test_usb_sound_gets_a_stable_alsa_name(image_root, capture, playback, name):
    devices, card = usb_sound(2, 3, capture=capture, playback=playback)
    out = udev_event(image_root, devices, card, action="change", read=[f"{card}/id"])
    assert out["properties"]["ID_BUS"] == "usb"
    assert out["properties"]["AMTSKLINGEL_AUDIO"] == name
    assert out["read"][f"{card}/id"] == name


def test_a_named_card_is_not_renamed_again(image_root):
    """Every later change event finds the name set; the kernel would refuse writing it again."""
    devices, card = usb_sound(2, 3, capture=True, playback=True, card_id="kioskaudio")
    out = udev_event(image_root, devices, card, action="change", read=[f"{card}/id"])
    assert out["read"][f"{card}/id"] == "kioskaudio"
    assert not [line for line in out["log"].splitlines() if "/id' writing" in line]


def test_a_webcam_microphone_is_not_the_kiosk_microphone(image_root):
    devices, card = usb_sound(2, 3, capture=True, playback=False, webcam=True)
    out = udev_event(image_root, devices, card, action="change", read=[f"{card}/id"])
    assert out["properties"]["SOUND_FORM_FACTOR"] == "webcam"
    assert "AMTSKLINGEL_AUDIO" not in out["properties"]
    assert out["read"][f"{card}/id"] == "Device"


@pytest.mark.parametrize(("parent", "card_id"), [
    ("devices/platform/soc/soc:audio/bcm2835_audio", "Headphones"),  # the Pi 4's jack (Raspberry Pi kernel)
    ("devices/platform/soc/fef00700.hdmi", "vc4hdmi0"),  # HDMI 0 of a Pi 4
    ("devices/platform/axi/107c701400.hdmi", "vc4hdmi1")])  # HDMI 1 of a Pi 5
def test_the_pis_own_sound_keeps_its_name(image_root, parent, card_id):
    """Its names are stable already (docs/install.md uses them): no rule may take kioskspeaker's for it."""
    card = sound_card(parent, 1, capture=False, playback=True, card_id=card_id)
    out = udev_event(image_root, [card], card["path"], action="change", read=[f"{card['path']}/id"])
    assert out["read"][f"{card['path']}/id"] == card_id
    assert "AMTSKLINGEL_AUDIO" not in out["properties"]


def _camera():
    return [{"path": "devices/platform/soc/fe801000.csi/video4linux/video0", "subsystem": "video4linux",
            "uevent": {"MAJOR": "81", "MINOR": "0", "DEVNAME": "video0"}, "attrs": {"name": "unicam-image", "index": "0"},
            "node": "video0"}]


def _media():
    return [{"path": "devices/platform/soc/fe801000.csi/media0", "subsystem": "media",
            "uevent": {"MAJOR": "238", "MINOR": "0", "DEVNAME": "media0"}, "node": "media0"}]


def _dma_heap():
    return [{"path": "devices/virtual/dma_heap/linux,cma", "subsystem": "dma_heap",
            "uevent": {"MAJOR": "251", "MINOR": "0", "DEVNAME": "dma_heap/linux,cma"}, "node": "dma_heap/linux,cma"}]


def _gpiochip():
    return [{"path": "devices/platform/soc/fe200000.gpio/gpiochip0", "subsystem": "gpio",
            "uevent": {"MAJOR": "254", "MINOR": "0", "DEVNAME": "gpiochip0"}, "node": "gpiochip0"}]


def _sound_control():
    devices, card = usb_sound(2, 3, capture=True, playback=True)
    control = {"path": f"{card}/controlC3", "subsystem": "sound",
               "uevent": {"MAJOR": "116", "MINOR": "7", "DEVNAME": "snd/controlC3"}, "node": "snd/controlC3"}
    devices[-1]["dirs"].remove("controlC3")
    return [*devices, control]


@pytest.mark.parametrize(("make", "group"), [
    (_camera, "video"), (_media, "video"), (_dma_heap, "video"), (_gpiochip, "gpio"), (_sound_control, "audio")])
def test_the_appliance_user_reaches_its_devices_through_groups(image_root, make, group):
    devices = make()
    out = udev_event(image_root, devices, devices[-1]["path"])
    assert out["node"]["uid"] == 0
    assert out["node"]["gid"] == _group_ids(image_root.path)[group]
    assert out["node"]["mode"] == 0o660


@pytest.mark.parametrize("make", [_camera, _media, _sound_control])
def test_the_kiosk_screen_session_gets_no_camera_or_sound(image_root, make):
    devices = make()
    out = udev_event(image_root, devices, devices[-1]["path"])
    assert "uaccess" not in out["properties"].get("TAGS", "").split(":")
    assert "RUN 'uaccess'" not in out["log"]
    # Without our rules, Debian's would hand the device to the seat's user:
    stock = udev_event(image_root, devices, devices[-1]["path"], rules=[])
    assert "uaccess" in stock["properties"]["TAGS"].split(":")


def test_dma_heaps_and_gpio_are_root_only_without_our_rules(image_root):
    for make in (_dma_heap, _gpiochip):
        out = udev_event(image_root, make(), make()[-1]["path"], rules=[])
        assert (out["node"]["gid"], out["node"]["mode"]) == (0, 0o600), make.__name__


def _usb_stick():
    port = 4
    devices = [usb_device(port, "Flash Disk", [(8, 6, 0x50)]), usb_interface(port, 0, 8, 6, 0x50)]
    scsi = f"{devices[-1]['path']}/host0/target0:0:0/0:0:0:0"
    devices += [
        {"path": f"{devices[-1]['path']}/host0", "subsystem": "scsi", "uevent": {"DEVTYPE": "scsi_host"}},
        {"path": f"{devices[-1]['path']}/host0/target0:0:0", "subsystem": "scsi", "uevent": {"DEVTYPE": "scsi_target"}},
        {"path": scsi, "subsystem": "scsi", "uevent": {"DEVTYPE": "scsi_device"},
         "attrs": {"vendor": "Generic", "model": "Flash Disk", "type": "0", "rev": "8.07"}},
        {"path": f"{scsi}/block/sda", "subsystem": "block",
         "uevent": {"DEVTYPE": "disk", "MAJOR": "8", "MINOR": "0", "DEVNAME": "sda"}, "attrs": {"removable": "1"}},
        {"path": f"{scsi}/block/sda/sda1", "subsystem": "block",
         "uevent": {"DEVTYPE": "partition", "MAJOR": "8", "MINOR": "1", "DEVNAME": "sda1", "PARTN": "1"},
         "attrs": {"partition": "1"}},
    ]
    return devices


@pytest.mark.parametrize("which", ["disk", "partition"])
def test_usb_storage_is_never_automounted(image_root, which):
    devices = _usb_stick()
    disk, partition = devices[-2]["path"], devices[-1]["path"]
    if which == "disk":
        out = udev_event(image_root, devices, disk)
    else:  # a partition takes the disk's properties from udev's database
        out = udev_event(image_root, devices, partition, before=[disk])
    assert out["properties"]["ID_BUS"] == "usb"
    assert (out["properties"]["UDISKS_IGNORE"], out["properties"]["UDISKS_AUTO"]) == ("1", "0")


def test_the_sd_card_is_left_alone(image_root):
    mmc = "devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa"
    devices = [
        {"path": mmc, "subsystem": "mmc", "uevent": {"MMC_TYPE": "SD"}, "attrs": {"name": "SC32G", "serial": "0x1234"}},
        {"path": f"{mmc}/block/mmcblk0", "subsystem": "block",
         "uevent": {"DEVTYPE": "disk", "MAJOR": "179", "MINOR": "0", "DEVNAME": "mmcblk0"}},
        {"path": f"{mmc}/block/mmcblk0/mmcblk0p4", "subsystem": "block",
         "uevent": {"DEVTYPE": "partition", "MAJOR": "179", "MINOR": "4", "DEVNAME": "mmcblk0p4", "PARTN": "4",
                    "PARTNAME": "data"}, "attrs": {"partition": "4"}},
    ]
    out = udev_event(image_root, devices, devices[-1]["path"], before=[devices[-2]["path"]])
    assert out["properties"]["DEVNAME"] == "/dev/mmcblk0p4"
    assert "UDISKS_IGNORE" not in out["properties"]
