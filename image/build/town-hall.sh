# shellcheck shell=bash
# The town hall's network of the QEMU tests (boot-test.sh, update-test.sh), sourced by both: a network
# namespace made for this run with a tap device for QEMU's network card, dnsmasq handing out the
# guest's address and answering DNS for central.amtsklingel.test, and this repository's central server
# (SQLite, demo data) on it. Nothing leaves the namespace: it has no route out.
# Needs: NS (the namespace's name), T (a scratch directory), REPO, PYTHON; sets LAN_IP, CENTRAL_NAME,
# CENTRAL_PORT and in_ns. The caller's cleanup kills what runs in NS and deletes it.
LAN_IP=10.77.0.1
CENTRAL_NAME=central.amtsklingel.test
CENTRAL_PORT=8080
in_ns() { ip netns exec "$NS" "$@"; }

# start_town_hall [TOML]: the namespace, dnsmasq and central (TOML: more lines for central.toml);
# central's demo logins in $T/demo.json, its log in $T/central.log. Returns once central answers.
start_town_hall() {
    ip netns add "$NS"
    in_ns ip link set lo up
    in_ns ip tuntap add dev tap0 mode tap
    in_ns ip addr add "$LAN_IP/24" dev tap0
    in_ns ip link set tap0 up
    cat > "$T/central.toml" <<TOML
database_url = "sqlite:///$T/central.db"
host = "$LAN_IP"
port = $CENTRAL_PORT
public_url = "http://$CENTRAL_NAME:$CENTRAL_PORT"
secure_cookies = false
${1:-}
TOML
    (cd "$REPO" && "$PYTHON" -m central --config "$T/central.toml" demo-data) > "$T/demo.json" ||
        die "central could not create its demo data"
    (cd "$REPO" && in_ns "$PYTHON" -m central --config "$T/central.toml" serve) > "$T/central.log" 2>&1 &
    in_ns dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root --group=root \
        --interface=tap0 --bind-interfaces --no-resolv --no-hosts --log-facility=- --log-dhcp --log-queries \
        --dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h --dhcp-leasefile="$T/leases" \
        --dhcp-option=option:router,$LAN_IP --dhcp-option=option:dns-server,$LAN_IP \
        --host-record=$CENTRAL_NAME,$LAN_IP > "$T/dnsmasq.log" 2>&1 &
    local _
    for _ in $(seq 50); do
        in_ns "$PYTHON" -c "import socket; socket.create_connection(('$LAN_IP', $CENTRAL_PORT), 1).close()" \
            2>/dev/null && break
        sleep 0.2
    done
    note "network namespace $NS: dnsmasq on tap0 ($LAN_IP), central on http://$CENTRAL_NAME:$CENTRAL_PORT"
}
