"""``channels bench-route``: the routing benchmark on a channel graph file the user has.

It needs no node: it reads a Lightning ``listchannels``-style JSON graph (optionally .xz),
draws channel balances and payments from the seed, and replays them (``channels.routing.simulate``).
The routing package is imported inside the command, so other commands do not pay for it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from .cli import emit, positive_integer

BENCH_KEYS = ("single_route_p50_ms", "single_route_p99_ms", "multipart_p50_ms", "multipart_p99_ms",
              "success_rate", "mean_fee_ppm")


def _pairs(text: str) -> int:
    from ..routing.simulate import MAX_PAIRS

    return positive_integer(text, "the number of pairs", MAX_PAIRS)


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed must be an integer, got {text[:100]!r}") from None


def _human(report: dict[str, Any]) -> str:
    first = [f"{key}: {report[key]}" for key in BENCH_KEYS]
    rest = [f"{key}: {value}" for key, value in report.items() if key not in BENCH_KEYS]
    return "\n".join(first + rest)


def _cmd_bench_route(args: argparse.Namespace) -> int:
    from ..routing.loader import load_graph
    from ..routing.simulate import run_benchmark

    started = time.perf_counter()
    graph = load_graph(Path(args.graph))
    loaded = time.perf_counter() - started
    report = run_benchmark(graph, args.pairs, args.seed, clock=time.perf_counter)
    report["load_s"] = round(loaded, 3)
    emit(args, report, _human)
    return 0


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("bench-route", parents=[common],
                       help="benchmark pathfinding on a listchannels-style graph file (no node needed)")
    p.add_argument("--graph", required=True, metavar="FILE",
                   help="a Lightning listchannels-style JSON graph, optionally .xz-compressed")
    p.add_argument("--pairs", type=_pairs, default=100, metavar="N", help="random payer/payee pairs to replay")
    p.add_argument("--seed", type=_seed, default=1, metavar="S",
                   help="seed of the drawn balances, pairs and amounts (the same seed gives the same outcomes)")
    p.set_defaults(func=_cmd_bench_route)
