"""Random dispute sequences against the adjudicator.

Whatever the order of deposits, registrations, refutations, forced moves, checkpoints,
conclusions, secrets, time jumps and withdrawals:

* a refused transaction leaves the ledger byte-for-byte unchanged;
* money is conserved: accounts + escrow always equal what the faucet minted;
* the payout (the withdraw's, plus every lock's) equals the deposits, exactly, and nothing
  is paid twice: one ``Withdrawn``, at most one ``LockResolved`` per lock;
* no lock whose preimage was registered before its expiry ever pays its payer, and a lock
  goes back to its payer only once ledger time has reached its expiry;
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
from channels.chain.devnet.rules import DepositEntry, compute_payouts, lock_outcome
from channels.chain.devnet.scheme import DevnetScheme
from channels.core.ids import NATIVE, Version
from channels.core.state import Allocation, Lock, SignedState, State
from channels.crypto import sha256
from tests.devnet.devnet_util import TEST_APPS

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
                           expiry=CLOCKLESS_GENESIS + draw(st.integers(0, 300)), payer=p, payee=1 - p)
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
_secret = st.tuples(st.just("secret"), st.integers(0, 2), st.integers(0, 2))  # at random times: before
ops = st.one_of(                                                             # or after expiries and withdraws
    st.tuples(st.just("deposit"), st.integers(0, 2), st.integers(0, 150)),
    _adjudicate, _adjudicate, _adjudicate, _progress, _progress, _advance, _advance, _withdraw, _withdraw,
    _secret, _secret,
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


def check_lock_payouts(dn: Devnet) -> None:
    """Every lock paid so far went where the registry and the clock say, and only once."""
    resolved = [ev for ev in dn.store.events_after(0) if ev.kind == "LockResolved"]
    indices = [ev.data["index"] for ev in resolved]
    assert len(indices) == len(set(indices)), "a lock was paid twice"
    if not resolved:
        return
    paid_state = dn.channel_sync(PARAMS.channel_id).registered
    assert paid_state is not None
    for ev in resolved:
        lock = paid_state.state.allocation.locks[ev.data["index"]]
        secret = dn.store.secret(lock.hashlock)
        in_time = secret is not None and secret.time < lock.expiry
        assert ev.data["fulfilled"] == in_time, "a lock paid its payer although its preimage came in time" \
            if in_time else "a lock paid its payee without its preimage registered before the expiry"
        assert ev.data["to"] == PARTIES[lock.payee if in_time else lock.payer].address
        assert ev.data["amount"] == lock.amount and ev.data["version"] == paid_state.state.version
        if not in_time:
            assert ev.time >= lock.expiry, "a lock went back to its payer before its expiry"


def reference_payouts(dn: Devnet, paid: State, deposits: list[tuple[bytes, int]]) -> dict[bytes, int]:
    """Who must end up with what, by the rule alone and whenever the withdraws came: the
    balances, each lock to its payee iff its preimage was registered before its expiry (else
    to its payer), the excess back latest deposit first; or, under-funded, every deposit back."""
    out: dict[bytes, int] = {}

    def pay(who: bytes, amount: int) -> None:
        out[who] = out.get(who, 0) + amount

    alloc, held = paid.allocation, sum(n for _, n in deposits)
    if held < alloc.total(0):
        for who, n in deposits:
            pay(who, n)
        return out
    for who, n in enumerate(alloc.balances[0]):
        pay(PARTIES[who].address, n)
    for lk in alloc.locks:
        secret = dn.store.secret(lk.hashlock)
        pay(PARTIES[lk.payee if secret is not None and secret.time < lk.expiry else lk.payer].address, lk.amount)
    excess = held - alloc.total(0)
    for who, n in reversed(deposits):
        back = min(n, excess)
        excess -= back
        pay(who, back)
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=states(), funding=fundings, script=st.lists(ops, min_size=1, max_size=40),
       opening=st.sampled_from([None, 0, 0, 1]), late=st.lists(st.integers(0, 2), max_size=3))
def test_random_disputes_conserve_money_and_pay_once(pool: list[SignedState], funding: tuple[int, int],
                                                     script: list[tuple], opening: int | None,
                                                     late: list[int]) -> None:
    with Devnet(clock=None, apps=TEST_APPS) as dn:
        for k in ACCOUNTS:
            dn.faucet_sync(k.address, MINT)
        deposits: list[tuple[bytes, int]] = []  # (depositor, amount), in order
        for key, amount in zip(PARTIES, funding, strict=True):
            if amount:
                submit(dn, key, t.Deposit(channel_id=PARAMS.channel_id, asset=NATIVE, amount=amount))
                deposits.append((key.address, amount))
        if opening is not None:  # most runs open with a dispute on an old state
            script = [("register", opening, 0), *script]
        # Then a withdraw, preimages registered after it (the review's case when a lock's expiry
        # is still ahead), and the channel settles for good: every lock expires, withdraws pay the rest.
        script = [*script, ("advance", 20, 0), ("withdraw", 2, 0), *(("secret", x, 2) for x in late),
                  ("advance", 400, 0), ("withdraw", 0, 0), ("withdraw", 1, 0)]
        held_version = -1
        for name, x, y in script:
            before = dn.state_digest()
            view = dn.channel_sync(PARAMS.channel_id)
            cursor = dn.store.last_cursor()
            try:
                if name == "deposit":
                    submit(dn, ACCOUNTS[x], t.Deposit(channel_id=PARAMS.channel_id, asset=NATIVE, amount=y))
                    deposits.append((ACCOUNTS[x].address, y))
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
                    submit(dn, ACCOUNTS[x], t.Withdraw(params=PARAMS))
                    caused = dn.store.events_after(cursor)
                    kinds = [ev.kind for ev in caused]
                    if view.withdrawn:  # a later withdraw pays locks, and only locks: at least one
                        assert kinds and set(kinds) == {"LockResolved"}, "a withdrawn channel paid out again"
                    else:
                        assert kinds[0] == "Withdrawn" and set(kinds[1:]) <= {"LockResolved"}
                    when = "after the withdraw" if view.withdrawn else "at the withdraw"
                    for ev in caused if view.withdrawn else caused[1:]:
                        event(f"lock to its {'payee' if ev.data['fulfilled'] else 'payer'} {when}")
                event(f"{name}: applied")
            except AlreadyWithdrawn:
                event(f"{name}: AlreadyWithdrawn")
                assert dn.state_digest() == before
                assert view.withdrawn or name == "deposit"
                assert name != "withdraw" or view.holdings == {}, "a withdraw was refused with locks in escrow"
            except LedgerError as exc:
                event(f"{name}: {type(exc).__name__}")
                assert dn.state_digest() == before, f"refused {name} changed the ledger"
            assert money(dn) == 3 * MINT, "money was created or destroyed"
            check_lock_payouts(dn)
            now_view = dn.channel_sync(PARAMS.channel_id)
            if now_view.registered is not None:
                assert now_view.registered.state.version >= held_version, "the held version went down"
                held_version = now_view.registered.state.version
        events = dn.store.events_after(0)
        withdrawn_events = [ev for ev in events if ev.kind == "Withdrawn"]
        assert len(withdrawn_events) <= 1, "the channel was withdrawn twice"
        deposited = sum(n for _, n in deposits)
        final = dn.channel_sync(PARAMS.channel_id)
        # Balances alone, whatever the events say: every account ends with what the rule gives it.
        owed = reference_payouts(dn, final.registered.state, deposits) if final.withdrawn else {}
        for key in ACCOUNTS:
            put_in = sum(n for who, n in deposits if who == key.address)
            assert dn.store.balance(key.address, NATIVE) == MINT - put_in + owed.get(key.address, 0), \
                "an account was not paid what the rule gives it"
        if withdrawn_events:
            payout = withdrawn_events[0].data
            assert final.withdrawn and final.holdings == {}, "escrow left behind after every lock expired"
            assert final.registered is not None
            locks = [ev.data for ev in events if ev.kind == "LockResolved"]
            event(f"withdrawn, refunded={payout['refunded']}, locks={len(locks)}")
            paid = sum(amount for _, _, amount in payout["payouts"]) + sum(lk["amount"] for lk in locks)
            assert paid == deposited, "the payouts differ from the deposits"
            if payout["refunded"]:
                assert not locks
            else:
                assert sorted(lk["index"] for lk in locks) == list(range(len(final.registered.state.allocation.locks)))
                got = {acct: amount for acct, _, amount in payout["payouts"]}
                for who, key in enumerate(PARTIES):
                    assert got.get(key.address, 0) >= final.registered.state.allocation.balances[0][who]


@settings(max_examples=300, deadline=None)
@given(deposits=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["native", "USD"]), st.integers(1, 100)),
                         max_size=8),
       balances=st.tuples(st.integers(0, 150), st.integers(0, 150)),
       lock=st.one_of(st.none(), st.tuples(st.integers(1, 50), st.integers(0, 1))))
def test_payouts_always_equal_deposits(deposits, balances, lock) -> None:
    """The payout rule alone: exact conservation per asset (the locks stay in escrow, to be
    paid in full later), refunds iff under-funded."""
    entries = [DepositEntry(depositor=ACCOUNTS[w].address, asset=a, amount=n) for w, a, n in deposits]
    locks = () if lock is None else (Lock(asset=NATIVE, amount=lock[0], hashlock=sha256(b"x"), expiry=100,
                                          payer=lock[1], payee=1 - lock[1]),)
    state = State(channel_id=PARAMS.channel_id, version=Version(1),
                  allocation=Allocation(assets=(NATIVE,), balances=(balances,), locks=locks))
    payouts, refunded = compute_payouts(PARAMS, state, entries)
    escrowed = 0 if refunded else sum(lk.amount for lk in locks)
    for asset in ("native", "USD"):
        assert sum(n for (_, a), n in payouts.items() if a == asset) + (escrowed if asset == NATIVE else 0) == sum(
            d.amount for d in entries if d.asset == asset)
    held = sum(d.amount for d in entries if d.asset == NATIVE)
    assert refunded == (held < state.allocation.total(0))
    if not refunded:
        for who, key in enumerate(PARTIES):
            assert payouts.get((key.address, NATIVE), 0) >= balances[who]


@settings(max_examples=300, deadline=None)
@given(expiry=st.integers(0, 50), registered=st.one_of(st.none(), st.integers(0, 60)),
       times=st.lists(st.integers(0, 60), min_size=1, max_size=6))
def test_a_decided_lock_never_changes_hands(expiry: int, registered: int | None, times: list[int]) -> None:
    """Whatever the moment of the withdraws, a lock pays the payee iff its preimage was
    registered before the expiry, the payer only from the expiry on, and once decided the
    outcome never changes (a later registration cannot move an earlier decision)."""
    lock = Lock(asset=NATIVE, amount=1, hashlock=sha256(b"x"), expiry=expiry, payer=0, payee=1)
    decided: bool | None = None
    for now in sorted(times):
        # The registry as it stands at ``now``: a preimage registered later is not in it yet.
        seen = registered if registered is not None and registered <= now else None
        outcome = lock_outcome(lock, seen, now)
        if decided is not None:
            assert outcome is decided, "a decided lock changed hands"
        if outcome is False:
            assert now >= expiry and not (registered is not None and registered < expiry)
        if outcome is True:
            assert registered is not None and registered < expiry
        if outcome is None:
            assert now < expiry
        decided = outcome
