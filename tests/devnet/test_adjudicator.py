"""The adjudicator rules: each test fails if its rule is broken, and every refusal leaves
the ledger byte-for-byte unchanged."""

from __future__ import annotations

import attrs
import pytest
from devnet_util import counter_data, keys, make_params, make_state, sign_all, signed

from channels.chain.base import (
    AlreadyConcluded,
    AlreadyRegistered,
    AlreadyWithdrawn,
    BadSignature,
    InsufficientBalance,
    InvalidMove,
    Malformed,
    NotFinal,
    NotRegistered,
    StaleVersion,
    StateMismatch,
    UnknownChannelOnChain,
    WindowClosed,
    WindowOpen,
    WrongChain,
    WrongChannel,
)
from channels.chain.devnet.ledger import Devnet
from channels.chain.devnet.scheme import DevnetScheme
from channels.core.ids import NATIVE, AssetId
from channels.core.state import Allocation, Lock, SignedState
from channels.crypto import sha256
from tests.devnet.devnet_util import TEST_APPS

pytestmark = pytest.mark.trio
A, B, C, W = keys("alice", "bob", "carol", "watchtower")
PARTIES = [A, B]
SCHEME = DevnetScheme()


async def funded(dn: Devnet, params=None, amounts=(100, 100), *, app_id: str = "payment"):
    params = params or make_params(PARTIES, app_id=app_id)
    for key, amount in zip(PARTIES, amounts, strict=True):
        await dn.faucet(key.address, 1000)
        if amount:
            await dn.deposit(key, params.channel_id, NATIVE, amount)
    return params


async def balances(dn: Devnet) -> tuple[int, int]:
    return await dn.balance(A.address), await dn.balance(B.address)


# --- deposit ---------------------------------------------------------------------------------------


async def test_deposit_fills_escrow_and_reports_holdings(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    view = await dn.channel(params.channel_id)
    assert view.holdings == {"native": 200}
    assert (view.registered, view.concluded, view.withdrawn) == (None, False, False)
    deposited = [ev for ev in dn.store.events_after(0) if ev.kind == "Deposited"]
    assert [ev.data["holdings"] for ev in deposited] == [100, 200]
    assert deposited[1].data["depositor"] == B.address and deposited[1].channel_id == params.channel_id
    assert await balances(dn) == (900, 900)
    with refuse(dn, InsufficientBalance):
        await dn.deposit(A, params.channel_id, NATIVE, 901)


async def test_unknown_channel_view_is_empty() -> None:
    with Devnet(clock=None, apps=TEST_APPS) as dn:
        view = await dn.channel(make_params(PARTIES).channel_id)
        assert view.holdings == {} and view.registered is None


# --- conclude --------------------------------------------------------------------------------------


async def test_conclude_then_withdraw_pays_the_final_allocation(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    final = signed(params, PARTIES, 7, (60, 140), final=True)
    await dn.conclude(A, params, final)
    view = await dn.channel(params.channel_id)
    assert view.concluded and view.registered == final
    with refuse(dn, AlreadyConcluded):
        await dn.conclude(B, params, final)
    with refuse(dn, AlreadyConcluded):
        await dn.register(B, params, signed(params, PARTIES, 8, (0, 200)))
    await dn.withdraw(C, params)  # anyone may trigger the payout; no window after conclude
    assert await balances(dn) == (900 + 60, 900 + 140)
    assert (await dn.channel(params.channel_id)).holdings == {}


async def test_conclude_needs_a_final_fully_signed_state(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    with refuse(dn, NotFinal):
        await dn.conclude(A, params, signed(params, PARTIES, 7, (60, 140)))
    half = signed(params, PARTIES, 7, (60, 140), final=True)
    half = half.with_signature(1, b"")
    with refuse(dn, BadSignature):
        await dn.conclude(A, params, half)
    forged = signed(params, PARTIES, 7, (60, 140), final=True).with_signature(1, bytes(64))
    with refuse(dn, BadSignature):
        await dn.conclude(A, params, forged)
    swapped = signed(params, [B, A], 7, (60, 140), final=True)  # signatures in the wrong slots
    with refuse(dn, BadSignature):
        await dn.conclude(A, params, swapped)
    short = attrs.evolve(signed(params, PARTIES, 7, (60, 140), final=True), signatures=(b"x" * 64,))
    with refuse(dn, Malformed):
        await dn.conclude(A, params, short)


async def test_conclude_during_a_dispute_but_not_below_it(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    await dn.register(A, params, signed(params, PARTIES, 5, (150, 50)))
    with refuse(dn, StaleVersion):  # an old final state cannot override the registered v5
        await dn.conclude(A, params, signed(params, PARTIES, 4, (200, 0), final=True))
    await dn.conclude(B, params, signed(params, PARTIES, 6, (90, 110), final=True))
    await dn.withdraw(B, params)  # at once: the window no longer matters
    assert await balances(dn) == (990, 1010)


# --- parameters and state binding -------------------------------------------------------------------


async def test_states_and_params_must_belong_together(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    other = make_params(PARTIES, nonce=b"other")
    theirs = signed(other, PARTIES, 5, (200, 0))
    with refuse(dn, WrongChannel):  # a state of another channel against this escrow
        await dn.register(A, params, theirs)
    foreign = make_params(PARTIES, chain_id=99)
    with refuse(dn, WrongChain):
        await dn.register(A, foreign, signed(foreign, PARTIES, 5, (200, 0)))
    elsewhere = make_params(PARTIES, adjudicator=b"another adjudicator")
    with refuse(dn, WrongChain):
        await dn.register(A, elsewhere, signed(elsewhere, PARTIES, 5, (200, 0)))
    bad = attrs.evolve(params, participants=(A.address, A.address))
    with refuse(dn, Malformed):
        await dn.register(A, bad, signed(bad, [A, A], 5, (200, 0)))
    lopsided = sign_all(params, attrs.evolve(make_state(params, 5, (100, 100)),
                                             allocation=Allocation(assets=(NATIVE,), balances=((200,),))), PARTIES)
    with refuse(dn, Malformed):  # one balance per participant
        await dn.register(A, params, lopsided)


# --- register / refute -------------------------------------------------------------------------------


async def test_register_opens_a_window_and_a_second_register_is_refused(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    now = await dn.now()
    v3 = signed(params, PARTIES, 3, (120, 80))
    await dn.register(A, params, v3)
    view = await dn.channel(params.channel_id)
    assert view.registered == v3 and view.deadline == now + params.challenge_duration
    ev = dn.store.events_after(0)[-1]
    assert ev.kind == "Registered" and ev.data["state"] == v3 and ev.data["deadline"] == view.deadline
    assert ev.data["registrar"] == A.address and ev.data["version"] == 3
    with refuse(dn, AlreadyRegistered):
        await dn.register(B, params, signed(params, PARTIES, 4, (100, 100)))
    dn.advance_time(params.challenge_duration)
    with refuse(dn, WindowClosed):
        await dn.register(B, params, signed(params, PARTIES, 4, (100, 100)))


async def test_register_refuses_a_forged_state(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    state = make_state(params, 3, (200, 0))
    forged = SignedState(state=state, signatures=(SCHEME.sign(A, params, state), SCHEME.sign(A, params, state)))
    with refuse(dn, BadSignature):
        await dn.register(A, params, forged)


async def test_refute_replaces_with_higher_version_and_keeps_deadline(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    await dn.register(A, params, signed(params, PARTIES, 3, (180, 20)))  # stale: pays alice more
    deadline = (await dn.channel(params.channel_id)).deadline
    dn.advance_time(30)
    v5 = signed(params, PARTIES, 5, (40, 160))
    await dn.refute(W, params, v5)  # anyone may refute: a watchtower here
    view = await dn.channel(params.channel_id)
    assert view.registered == v5 and view.deadline == deadline
    ev = dn.store.events_after(0)[-1]
    assert (ev.kind, ev.data["version"], ev.data["deadline"], ev.data["registrar"]) == ("Refuted", 5, deadline,
                                                                                        W.address)
    with refuse(dn, StaleVersion):  # equal version
        await dn.refute(A, params, signed(params, PARTIES, 5, (200, 0)))
    with refuse(dn, StaleVersion):  # lower version
        await dn.refute(A, params, signed(params, PARTIES, 4, (200, 0)))
    dn.advance_time(params.challenge_duration - 30)
    with refuse(dn, WindowClosed):  # the deadline did not move with the refute
        await dn.refute(B, params, signed(params, PARTIES, 6, (0, 200)))
    await dn.withdraw(A, params)
    assert await balances(dn) == (940, 1060)


async def test_refute_needs_a_dispute_and_full_signatures(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    with refuse(dn, NotRegistered):
        await dn.refute(A, params, signed(params, PARTIES, 5, (100, 100)))
    await dn.register(A, params, signed(params, PARTIES, 3, (180, 20)))
    with refuse(dn, BadSignature):
        await dn.refute(B, params, signed(params, PARTIES, 9, (0, 200)).with_signature(0, b""))


# --- withdraw -----------------------------------------------------------------------------------------


async def test_withdraw_waits_for_the_window_and_pays_once(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    with refuse(dn, NotRegistered):
        await dn.withdraw(A, params)
    await dn.register(B, params, signed(params, PARTIES, 2, (70, 130)))
    with refuse(dn, WindowOpen):
        await dn.withdraw(B, params)
    dn.advance_time(params.challenge_duration - 1)
    with refuse(dn, WindowOpen):  # one second before the deadline
        await dn.withdraw(B, params)
    dn.advance_time(1)
    await dn.withdraw(B, params)  # at the deadline exactly
    assert await balances(dn) == (970, 1030)
    ev = dn.store.events_after(0)[-1]
    assert ev.kind == "Withdrawn" and not ev.data["refunded"]
    assert sorted(ev.data["payouts"]) == sorted([(A.address, "native", 70), (B.address, "native", 130)])
    with refuse(dn, AlreadyWithdrawn):
        await dn.withdraw(A, params)
    with refuse(dn, AlreadyWithdrawn):  # new money would be stuck in a settled escrow
        await dn.deposit(A, params.channel_id, NATIVE, 1)
    with refuse(dn, AlreadyWithdrawn):
        await dn.register(A, params, signed(params, PARTIES, 9, (200, 0)))
    assert (await dn.channel(params.channel_id)).withdrawn


async def test_withdraw_of_an_unknown_channel(dn: Devnet, refuse) -> None:
    with refuse(dn, UnknownChannelOnChain):
        await dn.withdraw(A, make_params(PARTIES, nonce=b"never"))


async def test_underfunded_channel_refunds_each_depositor(dn: Devnet) -> None:
    params = await funded(dn, amounts=(100, 0))  # bob never funded
    await dn.register(A, params, signed(params, PARTIES, 1, (0, 200)))  # would pay bob alice's money
    dn.advance_time(params.challenge_duration)
    await dn.withdraw(B, params)
    assert await balances(dn) == (1000, 1000)
    assert dn.store.events_after(0)[-1].data["refunded"] is True


async def test_excess_deposits_go_back_to_the_last_depositors(dn: Devnet) -> None:
    params = await funded(dn)
    await dn.deposit(A, params.channel_id, NATIVE, 30)  # alice by mistake, after full funding
    await dn.faucet(C.address, 10)
    await dn.deposit(C, params.channel_id, NATIVE, 10)  # a stranger
    await dn.create_token(C, "USD")
    await dn.mint(C, C.address, 5, "USD")
    await dn.deposit(C, params.channel_id, AssetId("USD"), 5)  # an asset the state does not name
    await dn.conclude(A, params, signed(params, PARTIES, 4, (50, 150), final=True))
    await dn.withdraw(A, params)
    assert await balances(dn) == (900 - 30 + 50 + 30, 900 + 150)
    assert await dn.balances(C.address) == {"native": 10, "USD": 5}


# --- locks and the secret registry ----------------------------------------------------------------------


async def test_locks_pay_the_payee_only_with_a_secret_registered_before_expiry(dn: Devnet) -> None:
    params = await funded(dn)
    now = await dn.now()
    secrets = [b"in time", b"too late", b"never", b"at expiry"]
    expiry = now + 50
    locks = [Lock(asset=NATIVE, amount=10 + i, hashlock=sha256(s), expiry=expiry, payer=0, payee=1)
             for i, s in enumerate(secrets)]
    state = signed(params, PARTIES, 3, (100 - sum(lk.amount for lk in locks), 100), locks=locks)
    await dn.register_secret(C, b"in time")
    assert await dn.secret_time(sha256(b"in time")) == now
    await dn.register(A, params, state)
    dn.advance_time(50)
    await dn.register_secret(C, b"at expiry")  # registered exactly at the expiry: too late
    dn.advance_time(1)
    await dn.register_secret(C, b"too late")
    dn.advance_time(params.challenge_duration)
    await dn.withdraw(C, params)
    # payee (bob) gets only the lock whose secret was registered strictly before the expiry
    assert await balances(dn) == (900 + 100 - 46 + 11 + 12 + 13, 900 + 100 + 10)
    assert await dn.secret_time(sha256(b"never")) is None


# A lock is decided by time, never by when someone withdraws (proto/03 section 6.11). The rule
# these tests replace paid every lock at the withdraw: a lock whose preimage was not registered
# *yet* went back to its payer, so a payee holding the preimage lost the lock to a withdraw that
# came before the expiry, and no forwarder could ever be safe.


def lock_events(dn: Devnet) -> list:
    return [ev for ev in dn.store.events_after(0) if ev.kind == "LockResolved"]


async def test_a_withdraw_before_expiry_leaves_the_lock_to_a_secret_registered_later(dn: Devnet, refuse) -> None:
    """The review's scenario: window 100 s, lock expiring in an hour, withdraw at 101 s,
    preimage registered at 111 s: the payee is paid the lock, the payer its balance at once."""
    params = await funded(dn, make_params(PARTIES, duration=100))
    t0 = await dn.now()
    lock = Lock(asset=NATIVE, amount=30, hashlock=sha256(b"preimage"), expiry=t0 + 3600, payer=0, payee=1)
    await dn.register(A, params, signed(params, PARTIES, 3, (70, 100), locks=[lock]))
    dn.advance_time(101)
    await dn.withdraw(A, params)  # the payer itself, trying to beat the payee to it
    assert await balances(dn) == (900 + 70, 900 + 100)  # the unlocked balances, at once
    view = await dn.channel(params.channel_id)
    assert view.withdrawn and view.holdings == {"native": 30}  # the lock stays in escrow
    withdrawn = dn.store.events_after(0)[-1]
    assert withdrawn.kind == "Withdrawn" and not withdrawn.data["refunded"]
    assert sorted(withdrawn.data["payouts"]) == sorted([(A.address, "native", 70), (B.address, "native", 100)])
    assert lock_events(dn) == []
    with refuse(dn, WindowOpen, match="wait for a preimage"):  # undecided: nobody may take it yet
        await dn.withdraw(A, params)
    with refuse(dn, AlreadyWithdrawn):  # the escrow still holds the lock: no deposit may join it
        await dn.deposit(A, params.channel_id, NATIVE, 1)

    dn.advance_time(10)
    assert await dn.now() == t0 + 111
    await dn.register_secret(B, b"preimage")
    await dn.withdraw(C, params)  # anyone may settle a decided lock
    assert await balances(dn) == (970, 1030)
    (ev,) = lock_events(dn)
    assert ev.channel_id == params.channel_id and ev.time == t0 + 111
    assert {k: ev.data[k] for k in ("version", "index", "hashlock", "fulfilled", "to", "asset", "amount")} == {
        "version": 3, "index": 0, "hashlock": lock.hashlock, "fulfilled": True, "to": B.address,
        "asset": "native", "amount": 30}
    assert (await dn.channel(params.channel_id)).holdings == {}
    with refuse(dn, AlreadyWithdrawn):  # every lock paid: nothing is paid twice
        await dn.withdraw(A, params)
    assert [ev.kind for ev in dn.store.events_after(0)].count("Withdrawn") == 1


async def test_a_preimage_registered_before_expiry_pays_the_payee_however_late_the_withdraw(dn: Devnet) -> None:
    params = await funded(dn, make_params(PARTIES, duration=100))
    t0 = await dn.now()
    lock = Lock(asset=NATIVE, amount=30, hashlock=sha256(b"preimage"), expiry=t0 + 300, payer=0, payee=1)
    await dn.register(A, params, signed(params, PARTIES, 3, (70, 100), locks=[lock]))
    dn.advance_time(100)
    await dn.withdraw(A, params)
    dn.advance_time(199)
    await dn.register_secret(B, b"preimage")  # one second before the expiry
    dn.advance_time(10_000)  # nobody withdraws for hours: the payer must still not get it
    await dn.withdraw(A, params)
    assert await balances(dn) == (970, 1030)
    assert lock_events(dn)[0].data["fulfilled"] is True


async def test_an_expired_lock_goes_back_to_the_payer_only_once_the_expiry_is_reached(dn: Devnet, refuse) -> None:
    params = await funded(dn, make_params(PARTIES, duration=100))
    t0 = await dn.now()
    early = Lock(asset=NATIVE, amount=20, hashlock=sha256(b"never"), expiry=t0 + 200, payer=0, payee=1)
    late = Lock(asset=NATIVE, amount=10, hashlock=sha256(b"never either"), expiry=t0 + 300, payer=1, payee=0)
    await dn.register(A, params, signed(params, PARTIES, 3, (80, 90), locks=[early, late]))
    dn.advance_time(100)
    await dn.withdraw(B, params)
    assert await balances(dn) == (980, 990)
    assert (await dn.channel(params.channel_id)).holdings == {"native": 30}
    dn.advance_time(99)  # one second before the first expiry
    with refuse(dn, WindowOpen):  # a withdraw before expiry pays the lock to nobody
        await dn.withdraw(B, params)
    dn.advance_time(1)  # ledger time == expiry: expired
    await dn.withdraw(B, params)
    assert await balances(dn) == (1000, 990)  # the first lock back to its payer, alice
    assert (await dn.channel(params.channel_id)).holdings == {"native": 10}
    (ev,) = lock_events(dn)
    assert (ev.data["index"], ev.data["fulfilled"], ev.data["to"], ev.data["amount"]) == (0, False, A.address, 20)
    with refuse(dn, WindowOpen):  # the second one is not decided yet
        await dn.withdraw(B, params)
    dn.advance_time(100)
    await dn.withdraw(A, params)
    assert await balances(dn) == (1000, 1000)
    assert [(ev.data["index"], ev.data["to"]) for ev in lock_events(dn)] == [(0, A.address), (1, B.address)]
    assert (await dn.channel(params.channel_id)).holdings == {}


async def test_a_secret_registered_at_or_after_expiry_does_not_count(dn: Devnet, refuse) -> None:
    params = await funded(dn, make_params(PARTIES, duration=100))
    t0 = await dn.now()
    at = Lock(asset=NATIVE, amount=20, hashlock=sha256(b"at expiry"), expiry=t0 + 200, payer=0, payee=1)
    after = Lock(asset=NATIVE, amount=10, hashlock=sha256(b"after expiry"), expiry=t0 + 50, payer=0, payee=1)
    await dn.register(A, params, signed(params, PARTIES, 3, (70, 100), locks=[at, after]))
    dn.advance_time(60)
    await dn.register_secret(B, b"after expiry")  # 10 s after its lock expired
    dn.advance_time(40)
    await dn.withdraw(B, params)  # the second lock is decided already: paid in the same transaction
    events = dn.store.events_after(0)
    assert [ev.kind for ev in events[-2:]] == ["Withdrawn", "LockResolved"]
    assert (events[-1].data["index"], events[-1].data["fulfilled"], events[-1].data["to"]) == (1, False, A.address)
    assert sum(n for _, _, n in events[-2].data["payouts"]) == 170  # Withdrawn's payouts leave the locks out
    assert await balances(dn) == (900 + 70 + 10, 900 + 100)
    dn.advance_time(100)
    await dn.register_secret(B, b"at expiry")  # registered at the very second of the expiry: too late
    assert await dn.secret_time(sha256(b"at expiry")) == at.expiry
    await dn.withdraw(B, params)
    assert await balances(dn) == (1000, 1000)
    assert lock_events(dn)[-1].data["fulfilled"] is False


async def test_an_underfunded_channel_refunds_and_keeps_no_lock(dn: Devnet, refuse) -> None:
    params = await funded(dn, amounts=(100, 0))
    t0 = await dn.now()
    lock = Lock(asset=NATIVE, amount=30, hashlock=sha256(b"p"), expiry=t0 + 3600, payer=0, payee=1)
    await dn.register(A, params, signed(params, PARTIES, 1, (70, 100), locks=[lock]))
    dn.advance_time(params.challenge_duration)
    await dn.withdraw(B, params)
    assert await balances(dn) == (1000, 1000) and lock_events(dn) == []
    assert (await dn.channel(params.channel_id)).holdings == {}
    with refuse(dn, AlreadyWithdrawn):
        await dn.withdraw(B, params)


async def test_a_secret_keeps_its_first_registration_time(dn: Devnet) -> None:
    await dn.register_secret(A, b"s")
    first = await dn.secret_time(sha256(b"s"))
    dn.advance_time(100)
    await dn.register_secret(B, b"s")
    assert await dn.secret_time(sha256(b"s")) == first
    assert [ev.kind for ev in dn.store.events_after(0)] == ["SecretRegistered"]


# --- checkpoint ----------------------------------------------------------------------------------------


async def test_checkpoint_sets_a_floor_for_register(dn: Devnet, refuse) -> None:
    params = await funded(dn)
    await dn.checkpoint(B, params, signed(params, PARTIES, 6, (10, 190)))
    view = await dn.channel(params.channel_id)
    assert view.checkpoint is not None and view.checkpoint.state.version == 6 and view.registered is None
    with refuse(dn, StaleVersion):
        await dn.checkpoint(A, params, signed(params, PARTIES, 6, (200, 0)))
    with refuse(dn, StaleVersion):
        await dn.register(A, params, signed(params, PARTIES, 5, (200, 0)))  # older than the checkpoint
    with refuse(dn, StaleVersion):
        await dn.conclude(A, params, signed(params, PARTIES, 5, (200, 0), final=True))
    await dn.checkpoint(A, params, signed(params, PARTIES, 7, (20, 180)))
    await dn.register(A, params, signed(params, PARTIES, 7, (20, 180)))  # equal to the checkpoint is fine
    with refuse(dn, AlreadyRegistered):  # during a dispute, refute instead
        await dn.checkpoint(B, params, signed(params, PARTIES, 8, (0, 200)))
    await dn.refute(B, params, signed(params, PARTIES, 8, (0, 200)))


# --- progress (app channels) --------------------------------------------------------------------------


async def game(dn: Devnet):
    params = await funded(dn, make_params(PARTIES, app_id="test-counter", duration=60))
    v4 = signed(params, PARTIES, 4, (100, 100), app_data=counter_data(4))
    await dn.register(A, params, v4)
    return params, v4


def move(params, prev: SignedState, mover_key, mover: int, *, pay: int = 1, step: int = 1):
    s = prev.state
    alloc = s.allocation.with_transfer(NATIVE, pay, mover, 1 - mover)
    nxt = attrs.evolve(s, version=s.version + step, allocation=alloc,
                       app_data=counter_data(int.from_bytes(s.app_data, "big") + 1))
    return nxt, SCHEME.sign(mover_key, params, nxt)


async def test_progress_forces_one_valid_move_and_restarts_the_window(dn: Devnet) -> None:
    params, v4 = await game(dn)
    dn.advance_time(40)
    nxt, sig = move(params, v4, A, 0)  # version 4: player 0 to move
    await dn.progress(A, params, v4, nxt, 0, sig)
    view = await dn.channel(params.channel_id)
    assert view.registered is not None and view.registered.state == nxt
    assert view.registered.signatures == (sig, b"")
    assert view.deadline == await dn.now() + 60
    ev = dn.store.events_after(0)[-1]
    assert (ev.kind, ev.data["version"], ev.data["mover"]) == ("Progressed", 5, 0)
    nxt2, sig2 = move(params, view.registered, B, 1)
    await dn.progress(C, params, view.registered, nxt2, 1, sig2)  # anyone may submit a signed move
    dn.advance_time(60)
    await dn.withdraw(A, params)
    assert await balances(dn) == (900 + 100 - 1 + 1, 900 + 100 + 1 - 1)


async def test_progress_refuses_invalid_moves(dn: Devnet, refuse) -> None:
    params, v4 = await game(dn)
    wrong_turn, sig = move(params, v4, B, 1)
    with refuse(dn, InvalidMove):
        await dn.progress(B, params, v4, wrong_turn, 1, sig)
    greedy, sig = move(params, v4, A, 0, pay=-5)  # takes coins instead of paying one
    with refuse(dn, InvalidMove):
        await dn.progress(A, params, v4, greedy, 0, sig)
    skip, sig = move(params, v4, A, 0, step=2)  # skips a version
    with refuse(dn, InvalidMove):
        await dn.progress(A, params, v4, skip, 0, sig)
    good, _ = move(params, v4, A, 0)
    with refuse(dn, BadSignature):  # signed by the other player
        await dn.progress(A, params, v4, good, 0, SCHEME.sign(B, params, good))
    with refuse(dn, Malformed):
        await dn.progress(A, params, v4, good, 5, SCHEME.sign(A, params, good))
    other = signed(params, PARTIES, 4, (150, 50), app_data=counter_data(4))
    with refuse(dn, StateMismatch):  # must start from the registered state
        await dn.progress(A, params, other, good, 0, SCHEME.sign(A, params, good))
    dn.advance_time(60)
    with refuse(dn, WindowClosed):
        await dn.progress(A, params, v4, good, 0, SCHEME.sign(A, params, good))


async def test_progress_needs_an_app_channel_and_a_dispute(dn: Devnet, refuse) -> None:
    payment = await funded(dn)
    v1 = signed(payment, PARTIES, 1, (100, 100))
    await dn.register(A, payment, v1)
    # a payment the payment rules would accept is still no move to force: refute instead
    pay = attrs.evolve(v1.state, version=2, allocation=v1.state.allocation.with_transfer(NATIVE, 5, 0, 1))
    with refuse(dn, InvalidMove, match="payment channels"):
        await dn.progress(A, payment, v1, pay, 0, SCHEME.sign(A, payment, pay))
    app = make_params(PARTIES, app_id="test-counter", nonce=b"app")
    v4 = signed(app, PARTIES, 4, (100, 100), app_data=counter_data(4))
    nxt, sig = move(app, v4, A, 0)
    with refuse(dn, NotRegistered):
        await dn.progress(A, app, v4, nxt, 0, sig)
    unknown = make_params(PARTIES, app_id="no-such-app", nonce=b"x")
    u4 = signed(unknown, PARTIES, 4, (0, 0), app_data=counter_data(4))
    await dn.register(A, unknown, u4)
    nxt, sig = move(unknown, u4, A, 0, pay=0)
    with refuse(dn, InvalidMove):
        await dn.progress(A, unknown, u4, nxt, 0, sig)


async def test_progress_after_a_final_state_is_invalid(dn: Devnet, refuse) -> None:
    params = await funded(dn, make_params(PARTIES, app_id="test-counter"))
    v4 = signed(params, PARTIES, 4, (100, 100), app_data=counter_data(4), final=True)
    await dn.register(A, params, v4)
    nxt, _ = move(params, v4, A, 0)
    nxt = attrs.evolve(nxt, is_final=False)
    with refuse(dn, InvalidMove):
        await dn.progress(A, params, v4, nxt, 0, SCHEME.sign(A, params, nxt))
