"""Multi-hop payment commands: thin clients of the node's control socket (``node.payments``).

Public contract (extend, never rename): ``invoice AMOUNT [--description D] [--expiry S]``
(keys ``invoice``, ``payment_hash``), ``pay INVOICE [--max-fee N] [--amount N] [--timeout S]`` and
``keysend PEER_ID AMOUNT [--max-fee N]`` (keys ``status``, ``amount``, ``fee_paid``, ``route``,
``preimage``, ``payment_hash``, ``failure``), ``list-forwards`` (``forwards``, ``fees_earned``),
``route PEER_ID AMOUNT`` (the candidate routes), ``graph`` (``num_nodes``, ``num_channels``,
``channels``) and ``set-fees CHANNEL_ID ...`` (``base_fee``, ``fee_ppm``, ``expiry_delta``,
``htlc_minimum``, ``htlc_maximum``, ``enabled``); each is the JSON-RPC method of the same name.

A payment that did not succeed (``failed``, or still ``pending`` when ``--timeout`` ran out) is
printed like a successful one, then one ``error: ...`` line on stderr, and the exit status is 1:
scripts can trust exit 0 to mean the payee has been paid. Paying an invoice again never pays
twice: it returns the first payment (or waits for it). Like the other client commands, this
module imports no trio, libp2p or nacl.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ..core.ids import MAX_AMOUNT
from .cli import amount, emit, one_line_errors, positive_integer
from .control_client import call_sync
from .formatting import format_amount, format_deadline
from .node_commands import data_dir

Human = Callable[[Any], str]
Params = Callable[[argparse.Namespace], dict[str, Any]]


def _any_amount(text: str) -> int | None:
    """An invoice's amount: a positive integer, or ``any`` (the payer chooses)."""
    return None if text.strip().lower() == "any" else amount(text)


def _non_negative(text: str) -> int:
    """A fee or limit: an integer from 0 to 2^256-1 (0 is a real value here: a free channel)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the value must be an integer >= 0, got {text[:100]!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"the value must be an integer >= 0, got {value}")
    if value > MAX_AMOUNT:
        raise argparse.ArgumentTypeError(f"the value {value} is too large: the largest is 2^256-1")
    return value


def _drop_none(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser,
             name: str, help: str, human: Human, params: Params | None = None,
             check: Callable[[dict[str, Any]], str | None] | None = None) -> argparse.ArgumentParser:
    """One RPC call of the same name; ``check`` names what went wrong in a result that is not a
    success (printed as one error line after the result, exit 1)."""
    p = one_line_errors(sub.add_parser(name, parents=[common], help=help, description=help))

    def run(args: argparse.Namespace) -> int:
        result = call_sync(data_dir(args) / "rpc.sock", name, params(args) if params else {})
        emit(args, result, human)
        problem = check(result) if check else None
        if problem:
            sys.stdout.flush()
            print(f"error: {problem}", file=sys.stderr)
            return 1
        return 0

    p.set_defaults(func=run)
    return p


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = _command(sub, common, "invoice", "create an invoice to this node (give it to the payer)", _human_invoice,
                 lambda a: _drop_none(amount=a.amount, description=a.description, expiry=a.expiry))
    p.add_argument("amount", metavar="AMOUNT", type=_any_amount,
                   help="the amount asked, in units of the asset; 'any' lets the payer choose")
    p.add_argument("--description", metavar="TEXT", help="what the payment is for, shown to the payer")
    p.add_argument("--expiry", type=positive_integer, metavar="SECONDS", default=3600,
                   help="seconds the invoice can be paid for (default: 3600)")

    p = _command(sub, common, "pay", "pay an invoice over one or more hops (never pays the same invoice twice)",
                 _human_pay, lambda a: _drop_none(invoice=a.invoice, amount=a.amount, max_fee=a.max_fee,
                                                  timeout=a.timeout), check=_not_paid)
    p.add_argument("invoice", metavar="INVOICE", help="the invoice text (chd1...); see decode-invoice")
    p.add_argument("--max-fee", type=_non_negative, metavar="N",
                   help="the most the forwarders may charge in all (default: no limit)")
    p.add_argument("--amount", type=amount, metavar="N", help="the amount, for an invoice that names none")
    p.add_argument("--timeout", type=positive_integer, metavar="SECONDS",
                   help="return (status pending, exit 1) after this long; paying again waits for the same "
                        "payment (default: 120, at most 500)")

    p = _command(sub, common, "keysend", "pay a peer without an invoice (the secret travels in the onion)",
                 _human_pay, lambda a: _drop_none(peer_id=a.peer_id, amount=a.amount, max_fee=a.max_fee,
                                                  timeout=a.timeout), check=_not_paid)
    p.add_argument("peer_id", metavar="PEER_ID", help="the payee's peer id")
    p.add_argument("amount", metavar="AMOUNT", type=amount, help="amount to deliver, in units of the asset")
    p.add_argument("--max-fee", type=_non_negative, metavar="N",
                   help="the most the forwarders may charge in all (default: no limit)")
    p.add_argument("--timeout", type=positive_integer, metavar="SECONDS",
                   help="return (status pending, exit 1) after this long (default: 120, at most 500)")

    p = _command(sub, common, "route", "show candidate routes to a peer and why the first is chosen (pays nothing)",
                 _human_route, lambda a: {"peer_id": a.peer_id, "amount": a.amount})
    p.add_argument("peer_id", metavar="PEER_ID", help="the payee's peer id")
    p.add_argument("amount", metavar="AMOUNT", type=amount, help="the amount to deliver")

    _command(sub, common, "graph", "the channel graph this node routes over (what gossip told it)", _human_graph)

    p = _command(sub, common, "set-fees", "set what forwarding out of one of our channels costs; prints the terms",
                 _human_fees, lambda a: _drop_none(channel_id=a.channel_id, base=a.base, ppm=a.ppm,
                                                   expiry_delta=a.expiry_delta, htlc_minimum=a.min,
                                                   htlc_maximum=a.max, enabled=a.enabled))
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("--base", type=_non_negative, metavar="N", help="fixed fee per forward (default: unchanged)")
    p.add_argument("--ppm", type=_non_negative, metavar="N",
                   help="proportional fee, in millionths of the amount forwarded (default: unchanged)")
    p.add_argument("--expiry-delta", type=positive_integer, metavar="SECONDS",
                   help="seconds between the incoming and outgoing lock's expiry, at least 2 x lock_margin "
                        "(default: unchanged)")
    p.add_argument("--min", type=_non_negative, metavar="N", help="smallest amount forwarded (default: unchanged)")
    p.add_argument("--max", type=amount, metavar="N", help="largest amount forwarded (default: unchanged)")
    on_off = p.add_mutually_exclusive_group()
    on_off.add_argument("--disable", dest="enabled", action="store_false", default=None,
                        help="refuse to forward out of this channel")
    on_off.add_argument("--enable", dest="enabled", action="store_true", default=None,
                        help="forward out of this channel again")

    p = _command(sub, common, "list-forwards", "payments forwarded through this node and the fees earned",
                 _human_forwards, lambda a: _drop_none(limit=a.limit))
    p.add_argument("--limit", type=positive_integer, metavar="N", help="show only the newest N forwards")


# --- results -------------------------------------------------------------------------------------


def _not_paid(r: dict[str, Any]) -> str | None:
    if r["status"] == "succeeded":
        return None
    if r["status"] == "pending":
        return "the payment is still pending; pay again to wait for it (it never pays twice)"
    return f"payment failed: {r.get('failure') or 'no reason given'}"


def _human_invoice(r: dict[str, Any]) -> str:
    asked = "any amount" if r.get("amount") is None else format_amount(r["amount"], r.get("asset"))
    return "\n".join([r["invoice"], f"amount:       {asked}", f"payment_hash: {r['payment_hash']}",
                      f"expires:      {format_deadline(r.get('expires_at'))}"])


def _human_pay(r: dict[str, Any]) -> str:
    asset = r.get("asset")
    what = f"{format_amount(r['amount'], asset)} to {r.get('payee')}"
    if r["status"] == "succeeded":
        return (f"paid {what}, fee {format_amount(r['fee_paid'], asset)}, route {' -> '.join(r['route'])} "
                f"(payment {r['payment_hash']}, preimage {r['preimage']})")
    return f"{r['status']}: {what} (payment {r['payment_hash']}, {r.get('attempts', 0)} attempts)"


def _human_route(r: dict[str, Any]) -> str:
    lines = []
    for n, c in enumerate(r["candidates"], 1):
        hops = c.get("route") or c.get("nodes", [])[1:]
        lines.append(f"#{n}  fee {c['fee']}  probability {c['probability']:.3f}  cost {c['cost']}  "
                     + " -> ".join(hops))
    lines.append(f"chosen #{r['chosen'] + 1}: {r['why']}")
    return "\n".join(lines)


def _human_graph(r: dict[str, Any]) -> str:
    lines = [f"{r['num_nodes']} nodes, {r['num_channels']} channels"]
    for c in r.get("channels", []):
        fees = "; ".join(f"from {d['source']}: {d['base_fee']} + {d['fee_ppm']} ppm"
                         + ("" if d["enabled"] else " (disabled)") for d in c["directions"])
        lines.append(f"{c['channel_id']}  {c['node1']} <-> {c['node2']}  capacity {c['capacity']}  {fees}")
    if r.get("truncated"):
        lines.append(f"(the first {len(r['channels'])} channels; --json lists the same)")
    return "\n".join(lines)


def _human_fees(r: dict[str, Any]) -> str:
    largest = "the channel's balance" if r["htlc_maximum"] is None else r["htlc_maximum"]
    return (f"channel {r['channel_id']}: base fee {r['base_fee']}, {r['fee_ppm']} ppm, expiry delta "
            f"{r['expiry_delta']} s, forwards {r['htlc_minimum']} to {largest}, "
            f"{'enabled' if r['enabled'] else 'disabled'}")


def _human_forwards(r: dict[str, Any]) -> str:
    lines = []
    for f in r["forwards"]:
        failure = f"  {f['failure']}" if f.get("failure") else ""
        lines.append(f"{f['status']:<8}  {format_amount(f['amount_in'], f['asset'])} in, "
                     f"{format_amount(f['amount_out'], f['asset'])} out, fee {f['fee']}  "
                     f"channel {f['in_channel']} -> {f['out_channel']}  payment {f['payment_hash']}{failure}")
    lines.append(f"fees earned: {r['fees_earned']}" if lines else f"no forwards; fees earned: {r['fees_earned']}")
    return "\n".join(lines)
