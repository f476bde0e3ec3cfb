"""Multi-hop payments above the channels (proto/04-onion.md, proto/09-forwarding.md).

``machine`` is the pure forwarding state machine: an incoming lock with an onion becomes an
outgoing lock on the next channel (or, at the payee, is claimed), a preimage learned downstream
fulfills upstream, a failure downstream fails upstream. ``records`` are what it persists (in
the engine step's transaction, with the channel states they depend on), ``policy`` the fees,
expiry deltas and limits it checks, with the safety rule a forwarder's expiry delta obeys.
"""

from __future__ import annotations

from .machine import HopMachine, HopTxn, Propose, Resolved
from .policy import FeePolicy, HopLimits, PolicyError, check_expiry_delta
from .records import Forward, InvoiceRecord, PaymentRecord, ReceivedPart, RecordDecodeError, SentPart

__all__ = [
    "FeePolicy", "Forward", "HopLimits", "HopMachine", "HopTxn", "InvoiceRecord", "PaymentRecord", "PolicyError",
    "Propose", "ReceivedPart", "RecordDecodeError", "Resolved", "SentPart", "check_expiry_delta",
]
