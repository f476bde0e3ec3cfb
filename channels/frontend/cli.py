"""The ``channels`` command: a thin front over the library, the devnet and the node daemon.

Every command prints human output by default and JSON with ``--json``; errors
print one line on stderr and exit non-zero (no tracebacks for expected failures).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .. import __version__
from ..core.ids import MAX_AMOUNT
from ..errors import ChannelsError

Handler = Callable[[argparse.Namespace], Any]


def emit(args: argparse.Namespace, result: Any, human: Callable[[Any], str] | None = None) -> None:
    """Print a command result as JSON (``--json``) or as readable text."""
    if getattr(args, "json", False):
        print(json.dumps(result, indent=None if isinstance(result, (int, str)) else 2, sort_keys=True))
    elif human is not None:
        print(human(result))
    elif isinstance(result, dict):
        for key, value in result.items():
            print(f"{key}: {value}")
    elif result is not None:
        print(result)


def positive_integer(text: str, what: str = "the value", largest: int | None = None) -> int:
    """An integer argument checked at parsing: a bad one is named as such, not by the wire."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a positive integer, got {text[:100]!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{what} must be a positive integer, got {value}")
    if largest is not None and value > largest:
        shown = f"2^{largest.bit_length()}-1" if largest == MAX_AMOUNT else str(largest)
        raise argparse.ArgumentTypeError(f"{what} {value} is too large: the largest is {shown}")
    return value


def amount(text: str) -> int:
    """An amount argument: a positive integer of at most 2^256-1."""
    return positive_integer(text, "the amount", MAX_AMOUNT)


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A mistyped command or flag gives one ``error: ...`` line (exit 2), like every other failure."""

    def error(message: str) -> NoReturn:
        print(f"error: {message} (see: {parser.prog} --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = error  # type: ignore[method-assign]
    return parser


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts after its name too (``channels getinfo --json``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="data directory")
    return common


def command_group(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser,
                  name: str, help: str) -> tuple[argparse.ArgumentParser, Any]:
    """A command with subcommands (``channels devnet ...``); alone it prints its help."""
    group = one_line_errors(sub.add_parser(name, parents=[common], help=help))
    cmds = group.add_subparsers(dest=f"{name}_command", metavar=f"{name.upper()}_COMMAND")

    def usage(args: argparse.Namespace) -> int:
        group.print_help()
        return 2

    group.set_defaults(func=usage)
    return group, cmds


def build_parser() -> argparse.ArgumentParser:
    parser = one_line_errors(argparse.ArgumentParser(prog="channels",
                                                     description="p2p-channels: state channels over libp2p"))
    parser.add_argument("--data-dir", help="data directory of a node or devnet (default: ~/.channels, "
                        "or $CHANNELS_DATA_DIR; the devnet's: ~/.channels/devnet)")
    parser.add_argument("--version", action="version", version=f"channels {__version__}",
                        help="print the version and exit")
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_options()
    # Imported here: each command module imports this one for ``emit`` and ``command_group``.
    from .demo_command import add_commands as add_demo
    from .devnet_commands import add_commands as add_devnet
    from .game_commands import add_commands as add_game
    from .hop_commands import add_commands as add_hop
    from .invoice_commands import add_commands as add_invoice
    from .node_commands import add_commands as add_node
    from .route_commands import add_commands as add_route
    from .tower_commands import add_commands as add_tower

    for add in (add_demo, add_devnet, add_node, add_invoice, add_tower, add_route, add_game, add_hop):
        add(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code = func(args)
    except ChannelsError as exc:
        for line in str(exc).splitlines() or [""]:  # several problems (bad settings): one line each
            print(f"error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
