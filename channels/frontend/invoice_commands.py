"""``channels decode-invoice INVOICE``: read an invoice without a node (proto/05-invoice.md).

Public contract (extend, never rename): the ``--json`` keys ``payee``, ``l1_account``,
``amount``, ``asset``, ``payment_hash``, ``description``, ``expiry``, ``expires_at``,
``route_hints``, ``features``, ``valid_signature``. A string that is not a valid invoice
(a bad signature included) is one ``error:`` line and exit 1: a forged invoice is never
shown as if it meant something. Expiry is shown (``expired``), not enforced: decoding is
for looking. The invoice package (and pynacl with it) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from .cli import emit
from .formatting import format_amount, format_deadline, format_time


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("decode-invoice", parents=[common], help="show every field of an invoice; check its signature")
    p.add_argument("invoice", metavar="INVOICE", help="the invoice text (chd1...)")
    p.set_defaults(func=decode_invoice_command)


def decode_invoice_command(args: argparse.Namespace) -> int:
    from ..invoice import decode_invoice

    invoice = decode_invoice(args.invoice)
    result = {**invoice.to_json(), "valid_signature": True, "expired": invoice.is_expired(time.time())}
    emit(args, result, _human)
    return 0


def _human(r: dict[str, Any]) -> str:
    from ..invoice.fields import feature_name

    amount = "any amount" if r["amount"] is None else format_amount(r["amount"], r["asset"])
    lines = [
        f"payee: {r['payee']}",
        f"l1_account: {r['l1_account']}",
        f"network: {r['network']} (chain {r['chain_id']})",
        f"amount: {amount}",
        f"asset: {r['asset']}",
        f"payment_hash: {r['payment_hash']}",
        f"payment_secret: {r['payment_secret']}",
        f"description: {r['description']!r}" if r["description"] else "description: (none)",
        f"timestamp: {format_time(r['timestamp'])}",
        f"expiry: {r['expiry']} s",
        f"expires_at: {format_deadline(r['expires_at'])}" + (" EXPIRED" if r["expired"] else ""),
        f"min_final_expiry_delta: {r['min_final_expiry_delta']} s",
        f"route_hints: {len(r['route_hints']) or 'none'}",
    ]
    for n, route in enumerate(r["route_hints"], 1):
        for hop in route:
            lines.append(f"  route {n}: {hop['peer_id']} channel {hop['channel_ref'][:16]}... fee {hop['fee_base']} + "
                         f"{hop['fee_ppm']} ppm, expiry delta {hop['expiry_delta']} s")
    lines.append("features: " + (", ".join(f"{b} ({feature_name(b)})" for b in r["features"]) or "none"))
    lines += [f"unknown field {f['tag']}: {f['value']}" for f in r["unknown_fields"]]
    lines.append(f"valid_signature: {str(r['valid_signature']).lower()}")
    return "\n".join(lines)
