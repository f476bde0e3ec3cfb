"""Random dispute sequences against the adjudicator.

Whatever the order of deposits, registrations, refutations, forced moves, checkpoints,
conclusions, secrets, time jumps and withdrawals:

* a refused transaction leaves the ledger byte-for-byte unchanged;
* money is conserved: accounts + escrow always equal what the faucet minted;
* the payout equals the deposits, exactly, and happens at most once;
* a fully funded payout gives each participant at least its balance in the paid state;
* the version the adjudicator holds never goes down.
"""

from __future__ import annotations

import attrs
from devnet_util import counter_data, keys, make_params
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from channels.chain.base import AlreadyWithdrawn, LedgerError
from channels.chain.devnet import tx as t
from channels.chain.devnet.ledger import CLOCKLESS_GENESIS, Devnet
from channels.chain.devnet.rules import DepositEntry, compute_payouts
from channels.chain.devnet.scheme import DevnetScheme
from channels.core.ids import NATIVE, Version
from channels.core.state import Allocation, Lock, SignedState, State
from channels.crypto import sha256

A, B, C = keys("alice", "bob", "carol")
PARTIES = [A, B]
ACCOUNTS = [A, B, C]
SCHEME = DevnetScheme()
PARAMS = make_params(PARTIES, app_id="test-counter", duration=20, nonce=b"hypothesis")
SECRETS = [b"s0", b"s1", b"s2"]
MINT = 10_000


@st.composite
def states(draw: st.DrawFn) -> list[SignedState]:
    """A pool of fully signed states with random versions, totals, locks and finality."""
    out = []
    for version in sorted(draw(st.sets(st.integers(0, 12), min_size=1, max_size=6))):
        total = draw(st.sampled_from([150, 200, 260]))
        locks = tuple(Lock(asset=NATIVE, amount=draw(st.integers(1, 20)),
                           hashlock=sha256(draw(st.sampled_from(SECRETS))),
                           expiry=CLOCKLESS_GENESIS + draw(st.integers(0, 80)), payer=p, payee=1 - p)
                      for p in draw(st.lists(st.integers(0, 1), max_size=2)))
        free = total - sum(lk.amount for lk in locks)
        a = draw(st.integers(0, free))
        state = State(channel_id=PARAMS.channel_id, version=Version(version),
                      allocation=Allocation(assets=(NATIVE,), balances=((a, free - a),), locks=locks),
                      app_data=counter_data(version), is_final=draw(st.sampled_from([False, False, False, True])))
        out.append(SignedState(state=state, signatures=tuple(SCHEME.sign(k, PARAMS, state) for k in PARTIES)))
    return out


_adjudicate = st.tuples(st.sampled_from(["register", "refute", "checkpoint", "conclude"]), st.integers(0, 5),
                        st.integers(0, 2))
_progress = st.tuples(st.just("progress"), st.booleans(), st.booleans())  # (the right player?, a valid move?)
_advance = st.tuples(st.just("advance"), st.integers(1, 30), st.just(0))
_withdraw = st.tuples(st.just("withdraw"), st.integers(0, 2), st.just(0))
ops = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 2), st.integers(0, 150)),
    _adjudicate, _adjudicate, _adjudicate, _progress, _progress, _advance, _advance, _withdraw, _withdraw,
    st.tuples(st.just("secret"), st.integers(0, 2), st.integers(0, 2)),
)
# Most runs start from a funded channel, so that disputes and payouts are the common case.
fundings = st.sampled_from([(130, 130), (130, 130), (200, 100), (100, 50), (0, 0)])


def submit(dn: Devnet, key, op) -> None:
    dn.submit(t.sign_tx(key, chain_id=dn.chain_id, nonce=dn.store.nonce(key.address), op=op))


def forced_move(held: SignedState, right_player: bool, valid: bool) -> tuple[int, State, bytes]:
    s = held.state
    mover = s.version % 2 if right_player else 1 - s.version % 2
    alloc = s.allocation.with_transfer(NATIVE, 1 if valid else 3, mover, 1 - mover) \
        if s.allocation.balances[0][mover] >= 3 else s.allocation
    nxt = attrs.evolve(s, version=Version(s.version + 1), allocation=alloc,
                       app_data=counter_data(int.from_bytes(s.app_data, "big") + 1))
    return mover, nxt, SCHEME.sign(PARTIES[mover], PARAMS, nxt)


def money(dn: Devnet) -> int:
    in_accounts = sum(dn.store.balance(k.address, NATIVE) for k in ACCOUNTS)
    return in_accounts + dn.channel_sync(PARAMS.channel_id).holdings.get(NATIVE, 0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=states(), funding=fundings, script=st.lists(ops, min_size=1, max_size=40),
       opening=st.sampled_from([None, 0, 0, 1]))
def test_random_disputes_conserve_money_and_pay_once(pool: list[SignedState], funding: tuple[int, int],
                                                     script: list[tuple], opening: int | None) -> None:
    with Devnet(clock=None) as dn:
        for k in ACCOUNTS:
            dn.faucet_sync(k.address, MINT)
        deposited = 0
        for key, amount in zip(PARTIES, funding, strict=True):
            if amount:
                submit(dn, key, t.Deposit(channel_id=PARAMS.channel_id, asset=NATIVE, amount=amount))
                deposited += amount
        paid: list[dict] = []
        if opening is not None:  # most runs open with a dispute on an old state
            script = [("register", opening, 0), *script]
        held_version = -1
        for name, x, y in script:
            before = dn.state_digest()
            view = dn.channel_sync(PARAMS.channel_id)
            try:
                if name == "deposit":
                    submit(dn, ACCOUNTS[x], t.Deposit(channel_id=PARAMS.channel_id, asset=NATIVE, amount=y))
                    deposited += y
                elif name in ("register", "refute", "checkpoint", "conclude"):
                    cls = {"register": t.Register, "refute": t.Refute, "checkpoint": t.Checkpoint,
                           "conclude": t.Conclude}[name]
                    # registrations tend to pick old states, refutations new ones: the interesting case
                    pick = pool[x % len(pool)] if name == "register" else pool[-1 - x % len(pool)]
                    submit(dn, ACCOUNTS[y], cls(params=PARAMS, signed=pick))
                elif name == "progress":
                    held = view.registered or pool[0]
                    mover, nxt, sig = forced_move(held, x, y)
                    submit(dn, C, t.Progress(params=PARAMS, signed_prev=held, next_state=nxt, mover=mover,
                                             signature=sig))
                elif name == "secret":
                    submit(dn, ACCOUNTS[y], t.RegisterSecret(preimage=SECRETS[x]))
                elif name == "advance":
                    dn.advance_time(x)
                elif name == "withdraw":
                    was_withdrawn = view.withdrawn
                    submit(dn, ACCOUNTS[x], t.Withdraw(params=PARAMS))
                    assert not was_withdrawn, "a withdrawn channel paid out again"
                    ev = dn.store.events_after(dn.store.last_cursor() - 1)[0]
                    paid.append(dict(ev.data))
                event(f"{name}: applied")
            except AlreadyWithdrawn:
                event(f"{name}: AlreadyWithdrawn")
                assert dn.state_digest() == before
                assert view.withdrawn or name == "deposit"
            except LedgerError as exc:
                event(f"{name}: {type(exc).__name__}")
                assert dn.state_digest() == before, f"refused {name} changed the ledger"
            assert money(dn) == 3 * MINT, "money was created or destroyed"
            now_view = dn.channel_sync(PARAMS.channel_id)
            if now_view.registered is not None:
                assert now_view.registered.state.version >= held_version, "the held version went down"
                held_version = now_view.registered.state.version
        assert len(paid) <= 1
        withdrawn_events = [ev for ev in dn.store.events_after(0) if ev.kind == "Withdrawn"]
        assert len(withdrawn_events) == len(paid)
        if paid:
            payout = paid[0]
            event(f"withdrawn, refunded={payout['refunded']}")
            assert sum(amount for _, _, amount in payout["payouts"]) == deposited
            if not payout["refunded"]:
                final = dn.channel_sync(PARAMS.channel_id).registered
                assert final is not None
                got = {acct: amount for acct, _, amount in payout["payouts"]}
                for who, key in enumerate(PARTIES):
                    assert got.get(key.address, 0) >= final.state.allocation.balances[0][who]


@settings(max_examples=300, deadline=None)
@given(deposits=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["native", "USD"]), st.integers(1, 100)),
                         max_size=8),
       balances=st.tuples(st.integers(0, 150), st.integers(0, 150)),
       lock=st.one_of(st.none(), st.tuples(st.integers(1, 50), st.integers(0, 1), st.booleans())))
def test_payouts_always_equal_deposits(deposits, balances, lock) -> None:
    """The payout rule alone: exact conservation per asset, refunds iff under-funded."""
    entries = [DepositEntry(depositor=ACCOUNTS[w].address, asset=a, amount=n) for w, a, n in deposits]
    locks = () if lock is None else (Lock(asset=NATIVE, amount=lock[0], hashlock=sha256(b"x"), expiry=100,
                                          payer=lock[1], payee=1 - lock[1]),)
    state = State(channel_id=PARAMS.channel_id, version=Version(1),
                  allocation=Allocation(assets=(NATIVE,), balances=(balances,), locks=locks))
    revealed = lock is not None and lock[2]
    payouts, refunded = compute_payouts(PARAMS, state, entries, secret_time=lambda h: 99 if revealed else None)
    for asset in ("native", "USD"):
        assert sum(n for (_, a), n in payouts.items() if a == asset) == sum(d.amount for d in entries
                                                                          if d.asset == asset)
    held = sum(d.amount for d in entries if d.asset == NATIVE)
    assert refunded == (held < state.allocation.total(0))
    if not refunded:
        for who, key in enumerate(PARTIES):
            assert payouts.get((key.address, NATIVE), 0) >= balances[who]
