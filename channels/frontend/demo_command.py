"""``channels demo``: a short, readable story of the network at work.

By default it runs the real thing, ``examples/network.py`` of the source tree: a devnet
daemon and three node processes on loopback. ``--core`` shows the sans-I/O core alone: two cores in
one process, relayed by hand through the real wire encoding.
"""

from __future__ import annotations

import argparse
import random
import runpy
from pathlib import Path

from ..errors import ConfigError

NETWORK_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "network.py"


def run_core_demo(payments: int = 20, seed: int = 7) -> int:
    from ..core import effects as fx
    from ..core import inputs as ins
    from ..testing import CorePair

    rng = random.Random(seed)
    pair = CorePair((1_000, 1_000), labels=("alice", "bob"))
    names = ("alice", "bob")
    print(f"channel {pair.channel(0).channel_id.hex()[:16]}... opened: alice 1000, bob 1000 (version 0)")
    for _ in range(payments):
        payer = rng.randrange(2)
        amount = rng.randint(1, 40)
        pair.pay(payer, amount)
        pair.deliver_all()
        a, b = pair.balances(0)
        print(f"  {names[payer]:>5} pays {names[1 - payer]:<5} {amount:>3}  -> version {pair.channel(0).version:>3}:"
              f" alice {a:>4}, bob {b:>4}")
    pair.apply(0, ins.ActionClose())
    pair.deliver_all()
    final = pair.channel(0).latest.state
    concluded = pair.notified(0, fx.SubmitConclude)
    print(f"cooperative close: final state version {final.version} signed by both "
          f"(is_final={final.is_final}); {len(concluded)} conclude transaction ready for the L1")
    a, b = pair.balances(0)
    print(f"final balances: alice {a}, bob {b} (total {a + b}, conserved)")
    return 0 if a + b == 2_000 and final.is_final else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.core:
        return run_core_demo(payments=args.payments)
    if not NETWORK_EXAMPLE.is_file():
        raise ConfigError(f"{NETWORK_EXAMPLE} is missing: the live demo runs from a source checkout "
                          "(pip install -e .); `channels demo --core` needs none")
    example = runpy.run_path(str(NETWORK_EXAMPLE), run_name="channels_demo")
    return int(example["run_network_demo"](keep=args.keep))


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[common], help="run a live demo of the network")
    p.add_argument("--core", action="store_true", help="only the in-process core demo (no processes)")
    p.add_argument("--payments", type=int, default=12, help="payments in the --core demo")
    p.add_argument("--keep", action="store_true", help="keep the demo's data dirs and logs")
    p.set_defaults(func=_cmd_demo)
