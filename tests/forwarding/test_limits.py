"""The per-channel bounds on forwards in flight, as the machine counts them (pure, no network)."""

from __future__ import annotations

import attrs

from channels.forwarding import Forward, HopLimits, HopMachine

OUT_A, OUT_B = b"\xaa" * 32, b"\xbb" * 32


def forward(n: int, out: bytes, amount: int, status: str = "pending") -> Forward:
    return Forward(in_channel=b"\x01" * 32, in_lock=n.to_bytes(32, "big"), out_channel=out,
                   out_lock=(1000 + n).to_bytes(32, "big"), asset="", hashlock=bytes(32), amount_in=amount + 1,
                   amount_out=amount, in_expiry=10_000, out_expiry=9_000, shared_secret=bytes(32), status=status)


def machine(**limits: int) -> HopMachine:
    return HopMachine(node_secret=bytes(32), node_public=bytes(32), lock_margin=60, limits=HopLimits(**limits))


def test_committed_and_staged_forwards_count_against_their_out_channel() -> None:
    m = machine(max_locks_in_flight=3, max_value_in_flight=1_000)
    m.load([forward(1, OUT_A, 100), forward(2, OUT_A, 200), forward(3, OUT_B, 50),
            forward(4, OUT_A, 400, status="settled")], now=0)
    txn = m.begin(0, 0)
    assert txn._out_count(OUT_A) == (2, 300) and txn._out_count(OUT_B) == (1, 50)
    assert txn._room(OUT_A, 700) and not txn._room(OUT_A, 701)  # the value cap
    txn.put(forward(5, OUT_A, 10))  # staged in this step: counts before it is committed
    assert txn._out_count(OUT_A) == (3, 310)
    assert not txn._room(OUT_A, 1)  # the count cap: three in flight
    txn.put(attrs.evolve(forward(1, OUT_A, 100), status="settled"))  # one ends in the same step
    assert txn._out_count(OUT_A) == (2, 210) and txn._room(OUT_A, 1)
    m.commit(txn)
    assert m.out_flight == {OUT_A: (2, 210), OUT_B: (1, 50)}


def test_a_forward_ended_or_rewritten_is_counted_once() -> None:
    m = machine()
    txn = m.begin(0, 0)
    txn.put(forward(1, OUT_A, 100))
    m.commit(txn)
    again = m.begin(0, 0)
    again.put(forward(1, OUT_A, 100))  # the same pending forward stored again (a re-delivered notice)
    assert again._out_count(OUT_A) == (1, 100)
    m.commit(again)
    assert m.out_flight == {OUT_A: (1, 100)}
    end = m.begin(0, 0)
    end.put(forward(1, OUT_A, 100, status="failed"))
    m.commit(end)
    assert m.out_flight == {} and m.forwards == {} and m.by_out == {}
