"""``python -m bench``: run every benchmark module of this package.

A benchmark module is any module of ``bench/`` (not starting with ``_``) that
defines ``NAME``, ``run(args) -> int`` and optionally ``add_arguments(parser)``
for options of its own. The common options below are passed to all of them.

Every figure is printed twice on stdout: in a human-readable summary, and as
one JSON line ``{"metric": ..., "value": ..., "unit": ...}`` (grep ``^{``).
Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

import bench


def discover() -> list:
    modules = []
    for info in sorted(pkgutil.iter_modules([str(Path(bench.__file__).parent)]), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "run", None)) and hasattr(module, "NAME"):
            modules.append(module)
    return modules


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list, argparse.ArgumentParser]:
    """The options every benchmark gets (``run(args)`` completes its own defaults), the benchmark modules,
    and the parser."""
    modules = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=None, help="measured visits (default 2000; 200 with --quick)")
    parser.add_argument("--consoles", type=int, default=50, help="clerk consoles connected (default 50)")
    parser.add_argument("--kiosks", type=int, default=None,
                        help="kiosks connected (default: enough that none asks for a visit more often than central "
                             "allows a kiosk, once per 20 s: --rate x 20 s x 1.25, 2500 at 100 visits/s)")
    parser.add_argument("--rate", type=float, default=100.0, help="target visit requests per second (default 100)")
    parser.add_argument("--quick", action="store_true",
                        help="small smoke run; each benchmark shortens itself (central_latency: 200 visits, "
                             "no throughput ramp; kiosk_call: 5 calls per mode, 8 s windows)")
    parser.add_argument("--only", metavar="NAME", action="append",
                        help=f"run only this benchmark (of: {', '.join(m.NAME for m in modules)})")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    for module in modules:
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.visits is None:
        args.visits = 200 if args.quick else 2000
    for name in ("visits", "consoles", "kiosks"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.rate <= 0:
        parser.error("--rate must be positive")
    return args, modules, parser


def main(argv: list[str] | None = None) -> int:
    args, modules, parser = parse(argv)
    if args.list:
        for module in modules:
            print(f"{module.NAME}: {(module.__doc__ or '').strip().splitlines()[0]}")
        return 0
    selected = [m for m in modules if not args.only or m.NAME in args.only]
    unknown = set(args.only or ()) - {m.NAME for m in modules}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    worst = 0
    for module in selected:
        print(f"== {module.NAME} ==", file=sys.stderr, flush=True)
        worst = max(worst, module.run(args))
    return worst


if __name__ == "__main__":
    sys.exit(main())
