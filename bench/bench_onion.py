"""Onion throughput: packets built and peeled per second, failures returned, replay checks.

Building is O(n^2) X25519 for n hops (proto/04-onion.md section 3.3), so 5 and 20 hops are
reported apart; a hop's peel is 2 X25519 plus keystreams and HMACs whatever the route. The
raw X25519 rate is printed beside them as the ceiling the rest is measured against.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
from collections.abc import Callable

import nacl.bindings

from channels.onion import (
    FinalPayload,
    ForwardPayload,
    Hop,
    ReplayCache,
    build_onion,
    create_failure,
    decode_failure,
    peel_packet,
    public_key,
    wrap_failure,
)
from channels.onion.failures import TEMPORARY_CHANNEL_FAILURE, Failure

AD = hashlib.sha256(b"bench-payment").digest()


def rate(fn: Callable[[], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(10):
            fn()
        n += 10
    return n / elapsed


def route(n: int) -> tuple[list[Hop], list[bytes]]:
    secrets = [hashlib.sha256(b"bench-node/%d" % i).digest() for i in range(n)]
    hops = [Hop(public_key(s), ForwardPayload(next_hop=bytes([i]) * 8, amount=10**6 + 10 * (n - i), expiry=2**31))
            for i, s in enumerate(secrets[:-1])]
    hops.append(Hop(public_key(secrets[-1]), FinalPayload(amount=10**6, expiry=2**31 - 1, total_amount=10**6,
                                                          payment_secret=bytes(32))))
    return hops, secrets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per figure")
    args = parser.parse_args()
    sessions = (hashlib.sha256(b"%d" % i).digest() for i in itertools.count())
    point = public_key(bytes(32))
    x25519_rate = rate(lambda: nacl.bindings.crypto_scalarmult(b"\x01" * 32, point), args.seconds)

    out: dict[str, float] = {"x25519_per_s": round(x25519_rate)}
    for n in (1, 5, 20):
        hops, secrets = route(n)

        def build(hops: list[Hop] = hops) -> object:
            return build_onion(hops, session_key=next(sessions), associated_data=AD)

        out[f"build_{n}_hops_per_s"] = round(rate(build, args.seconds), 1)
    hops, secrets = route(5)
    built = build_onion(hops, session_key=next(sessions), associated_data=AD)
    pub = public_key(secrets[0])
    out["peel_per_s"] = round(rate(
        lambda: peel_packet(built.packet, node_secret=secrets[0], associated_data=AD, node_public=pub), args.seconds))
    out["peel_and_decode_per_s"] = round(rate(
        lambda: peel_packet(built.packet, node_secret=secrets[0], associated_data=AD,
                            node_public=pub).decode_payload(), args.seconds))

    ss = built.shared_secrets
    failure = Failure(code=TEMPORARY_CHANNEL_FAILURE, data=bytes(100))

    def failure_round_trip() -> None:
        pkt = create_failure(ss[4], failure)
        for i in (3, 2, 1, 0):
            pkt = wrap_failure(ss[i], pkt)
        decode_failure(ss, pkt)

    out["failure_5_hops_round_trips_per_s"] = round(rate(failure_round_trip, args.seconds))
    cache = ReplayCache(max_entries=10_000_000)
    tags = (hashlib.sha256(b"%d" % i).digest() for i in itertools.count())
    out["replay_checks_per_s"] = round(rate(lambda: cache.check_and_add(next(tags), expiry=2000, now=1000),
                                            args.seconds))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
