"""The scale benchmark on two centrals behind HAProxy, with PostgreSQL and Redis: what the proxy hop and the
waiting rooms' write-through to Redis cost.

Everything as in bench/scale.py (the same ``--scale-*`` options, steps and pass rule), but the kiosks and
consoles connect through HAProxy to two ``python -m central serve`` processes sharing one PostgreSQL and one
Redis (bench/_scale/fronts.py starts them as the failover bench does). One central leads
(docs/decisions/0008-several-centrals.md): its hub decides every visit and it writes every changed visit through
to Redis; HAProxy spreads the sockets round robin over both, and the other central (the edge) relays its half to
the leader through Redis. So this is not twice the capacity: compared with ``scale_joins_per_s_p99_100ms`` it
shows what the extra hop, the relay, Redis and PostgreSQL cost on the same two cores.

Figures: the scale bench's with the prefix ``scale2_`` (``scale2_joins_per_s_p99_100ms``, ``scale2_rss_mb``,
``scale2_kb_per_socket``, ...), of the leading central; each step's line also gives HAProxy's, Redis's and the
other central's CPU (``standby``: the edge). HAProxy holds both ends of every socket, so the file descriptors
needed are twice the sockets.
"""
from __future__ import annotations

import sys

from bench import scale

NAME = "scale2"
kiosk_plan = scale.kiosk_plan   # the same kiosks, asking as often as central allows one


def run(args) -> int:
    return scale.run(args, NAME)


if __name__ == "__main__":
    from bench.__main__ import main as _main

    sys.exit(_main(["--only", NAME, *sys.argv[1:]]))
