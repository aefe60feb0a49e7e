#!/bin/bash
# Amtsklingel build entry point. Run as root on a fresh Debian machine:
#   ./build.sh demo    install what is needed, run central + one simulated kiosk locally
#   ./build.sh test    install what is needed, run the whole test suite
#   ./build.sh bench   run the benchmarks (figures go to docs/benchmarks.md by hand)
#   ./build.sh image   build the Raspberry Pi image into out/ (image/README.md)
#   ./build.sh image-test  boot that image under QEMU and check it
#   ./build.sh bundle  the signed update bundle of that image (--cert, --key; image/README.md)
#   ./build.sh update-test  the whole update path under QEMU: install, roll back, refuse, interrupt
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
VENV=.venv
PY=$VENV/bin/python

# Debian packages: chromium is the staff console in end-to-end tests, iproute2 and
# util-linux build the loopback-only network namespace the tests run in; pyalsaaudio
# builds against libasound2-dev (its ALSA "null" device serves the audio tests) and
# picamera2's python-prctl against libcap-dev. rauc and squashfs-tools make and read
# the signed update bundles (tests/rauc_bundles.py, ./build.sh bundle); central checks their
# signatures with the openssl command. softhsm2, opensc and libengine-pkcs11-openssl stand in for the
# city's signing token (tests/imagebuild/test_bundle_pkcs11.py). firefox-esr is the clerk's console
# on Firefox ESR in tests/e2e/test_firefox_clerk.py, driven by puppeteer-core from npm (nodejs, npm);
# axe-core from npm checks the citizen pages' accessibility in chromium (tests/accessibility.py).
# coturn is the TURN server the TURN tests start themselves (tests/turn_server.py).
SYSTEM_PACKAGES=(chromium firefox-esr nodejs fonts-dejavu-core iproute2 util-linux python3-venv python3-dev gcc postgresql libasound2-dev libcap-dev systemd udev nftables openssh-client fdisk mount e2fsprogs dosfstools mtools bmap-tools prometheus openssl rauc squashfs-tools u-boot-tools u-boot-qemu qemu-system-arm libubootenv-tool softhsm2 opensc libengine-pkcs11-openssl gpg gpgv coturn)
# Several centrals (docs/decisions/0008-several-centrals.md): the tests start their own redis-server (Debian 12's
# BSD-licensed 7.0; production runs trixie's valkey-server) and HAProxy in front of two centrals.
SYSTEM_PACKAGES+=(redis-server haproxy)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

install_system() {
    local missing=()
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    # Debian's nodejs comes without npm; other builds of nodejs (NodeSource) bring their own.
    command -v npm >/dev/null || missing+=(npm)
    [ ${#missing[@]} -eq 0 ] && return
    if [ "$(id -u)" != 0 ]; then
        echo "Missing Debian packages: ${missing[*]}. Run this as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    say "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || true
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    # Only promtool is wanted (the /metrics tests); the Prometheus server the package starts is not.
    if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
        systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
    # Nor the TURN server the coturn package may start: the tests start their own.
    if [[ " ${missing[*]} " == *" coturn "* ]] && command -v systemctl >/dev/null; then
        systemctl disable --now coturn.service >/dev/null 2>&1 || true
    fi
    # Nor the Redis and HAProxy the packages start (a Redis of the system's would also save to disk).
    for service in redis-server haproxy; do
        if [[ " ${missing[*]} " == *" $service "* ]] && command -v systemctl >/dev/null; then
            systemctl disable --now "$service.service" >/dev/null 2>&1 || true
        fi
    done
}

install_node() {
    # Node packages for the tests, at the versions each package-lock.json pins; never a browser:
    # puppeteer-core drives Debian's firefox-esr (PUPPETEER_SKIP_DOWNLOAD), axe-core is only a script
    # that tests/accessibility.py runs inside Debian's chromium.
    local dir stamp
    for dir in tests/firefox tests/axe; do
        stamp=$dir/node_modules/.installed-$(sha256sum $dir/package-lock.json | cut -c1-16)
        if [ ! -e "$stamp" ]; then
            say "Installing the Node packages of $dir"
            (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
            touch "$stamp"
        fi
    done
}

install_python() {
    if [ ! -x "$PY" ]; then
        say "Creating the Python environment in $VENV"
        python3 -m venv "$VENV"
    fi
    # Reinstall only when the dependency list changed.
    local stamp=$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)
    if [ ! -e "$stamp" ]; then
        say "Installing Python packages"
        "$PY" -m pip install -q --upgrade pip >/dev/null
        "$PY" -m pip install -q -e '.[test]'
        touch "$stamp"
    fi
}

case "${1:-}" in
    demo)
        install_system
        install_python
        exec "$PY" tools/demo.py "${@:2}"
        ;;
    test)
        install_system
        install_python
        install_node
        say "Running the tests (in a loopback-only network namespace)"
        exec tools/netns-run "$PY" -m pytest -q "${@:2}"
        ;;
    bench)
        install_system
        install_python
        exec tools/netns-run "$PY" -m bench "${@:2}"
        ;;
    image-check)
        # The base's archives, keys and package list checked without building (AMTSKLINGEL_BASE=raspios
        # for the Raspberry Pi OS base; a minute, no root); see image/README.md.
        exec /usr/bin/python3 image/build/check-base.py "${@:2}"
        ;;
    image)
        # The Raspberry Pi image (as root, 10-40 min); see image/README.md.
        exec image/build/build-image.sh "${@:2}"
        ;;
    bundle)
        # The signed RAUC update bundle of the last image build (as root); see image/README.md.
        install_system
        install_python
        exec image/build/bundle.sh "${@:2}"
        ;;
    update-test)
        # Updates end to end under QEMU (as root, 40-60 min): builds an image and bundles with
        # throwaway keys in out/update-test/, then installs, rolls back, refuses; see image/README.md.
        install_system
        install_python
        exec image/build/update-test.sh "${@:2}"
        ;;
    image-test)
        # Boots the built image under qemu-system-aarch64 in a network namespace with this
        # repository's central server, and checks it from the serial console.
        install_system
        install_python
        exec image/build/boot-test.sh "${@:2}"
        ;;
    *)
        echo "usage: $0 demo|test|bench|image-check|image|image-test|bundle|update-test" >&2
        exit 2
        ;;
esac
