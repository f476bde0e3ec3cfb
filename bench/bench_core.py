"""Core update throughput between two in-process cores, beside the crypto limit.

One update = propose (sign), receive (recompute, verify, countersign), receive the
countersignature (verify): two signatures and two verifications, plus encoding.
The ceiling is therefore about 1 / (2/sign_rate + 2/verify_rate); the JSON reports
the measured rate as a fraction of that ceiling, measured in the same run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

from channels.core.ids import NATIVE
from channels.core.ops import AddLock, FulfillLock, hash_preimage
from channels.crypto import SigningKey, verify
from channels.testing import CorePair


def rate(fn, seconds: float) -> float:  # type: ignore[no-untyped-def]
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            fn()
        n += 100
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    key = SigningKey.from_label("bench")
    digest = bytes(32)
    sig = key.sign(digest)
    sign_rate = rate(lambda: key.sign(digest), args.seconds)
    verify_rate = rate(lambda: verify(key.public_key, digest, sig), args.seconds)
    ceiling = 1 / (2 / sign_rate + 2 / verify_rate)

    pair = CorePair((10**15, 10**15))
    side = [0]

    def lockstep() -> None:
        pair.pay(side[0], 1)
        pair.deliver_all()
        side[0] ^= 1

    lockstep_rate = rate(lockstep, args.seconds)

    def batched() -> None:
        for _ in range(100):
            pair.pay(0, 1)
        pair.deliver_all()

    start = time.perf_counter()
    batches = 0
    while time.perf_counter() - start < args.seconds:
        batched()
        batches += 1
    batched_rate = batches * 100 / (time.perf_counter() - start)
    mixed = {f"mixed_ops_per_update_{n}": round(mixed_rate(n, args.seconds)) for n in (1, 16, 256)}
    print(json.dumps({
        "ed25519_sign_per_s": round(sign_rate),
        "ed25519_verify_per_s": round(verify_rate),
        "crypto_ceiling_updates_per_s": round(ceiling),
        "core_updates_per_s": round(lockstep_rate),
        "core_updates_fraction_of_ceiling": round(lockstep_rate / ceiling, 3),
        "core_batched_payments_per_s": round(batched_rate),
        "batched_payments_over_ceiling": round(batched_rate / ceiling, 2),
        # operations per second in updates of n mixed operations (payments, locks added and
        # fulfilled): the cost of the one update path beside the crypto ceiling above
        **mixed,
    }, indent=2))


def mixed_rate(n: int, seconds: float) -> float:
    """Operations/s when each update carries ``n`` operations: a third payments, a third
    locks added, a third fulfillments of earlier locks."""
    pair = CorePair((10**15, 10**15))
    secret = bytes(32)
    hashlock = hash_preimage(secret)
    counter = itertools.count()
    settled: list[bytes] = []  # locks both sides hold: the payee may fulfill them
    ops_done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        added: list[bytes] = []
        for k in range(n):  # the first is sent at once; the rest batch into the next update
            i = next(counter)
            if k % 3 == 2 and settled:
                pair.propose(1, FulfillLock(lock_id=settled.pop(), preimage=secret))
            elif k % 3 == 1 and len(settled) + len(added) < 200:
                lock_id = i.to_bytes(8, "big")
                pair.propose(0, AddLock(lock_id=lock_id, asset=NATIVE, amount=1, hashlock=hashlock, expiry=10**9))
                added.append(lock_id)
            else:
                pair.pay(0, 1)
        pair.deliver_all()
        settled += added
        ops_done += n
    return ops_done / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
