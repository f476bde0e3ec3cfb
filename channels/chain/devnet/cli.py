"""``channels devnet ...`` commands (placeholder until the [devnet] issue lands)."""

from __future__ import annotations

import argparse


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser) -> None:
    sub.add_parser("devnet", parents=[common], help="the embedded development L1")
