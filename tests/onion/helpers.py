"""Routes of fixed keys for the onion tests."""

from __future__ import annotations

import hashlib

from channels.onion import FinalPayload, ForwardPayload, Hop, public_key

PAYMENT_HASH = hashlib.sha256(b"onion-test-payment").digest()
SESSION = hashlib.sha256(b"onion-test-session").digest()
NOW = 1_700_000_000
EXPIRY = NOW + 86_400


def secret(i: int) -> bytes:
    return hashlib.sha256(b"onion-test-node/%d" % i).digest()


def ref(i: int) -> bytes:
    """The 8-byte next-hop reference hop ``i`` is told to forward to."""
    return hashlib.sha256(b"onion-test-channel/%d" % i).digest()[:8]


def route(n: int, *, ref_len: int = 8) -> tuple[list[Hop], list[bytes]]:
    """``n`` hops: forwarders keep a fee of 10, the payee gets 1000 with a payment secret."""
    hops, secrets = [], []
    for i in range(n):
        secrets.append(secret(i))
        pub = public_key(secret(i))
        if i < n - 1:
            next_hop = (ref(i) * 5)[:ref_len]
            hops.append(Hop(pub, ForwardPayload(next_hop=next_hop, amount=1000 + 10 * (n - 1 - i),
                                                expiry=EXPIRY - 600 * (i + 1))))
        else:
            hops.append(Hop(pub, FinalPayload(amount=1000, expiry=EXPIRY - 600 * n, total_amount=1000,
                                              payment_secret=hashlib.sha256(b"secret").digest())))
    return hops, secrets
