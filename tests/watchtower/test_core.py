"""The tower's pure core: what it stores, what it refuses, what it submits and when."""

from __future__ import annotations

import ast
import pathlib

import attrs
import pytest

from channels.core.state import ChannelParams
from channels.crypto import sha256
from channels.watchtower import core as core_module
from channels.watchtower.appointment import PLAIN, Appointment
from channels.watchtower.core import Dispute, MemoryRecords, Rate, Refute, RegisterSecret, Tower, Usage
from channels.watchtower.errors import (
    MalformedAppointment,
    NonMonotonic,
    OverQuota,
    Oversize,
    RateLimited,
    TowerError,
    Unsigned,
    WrongDomain,
)
from tests.watchtower.helpers import (
    ALICE,
    BOB,
    TOWER_KEY,
    appointment,
    channel,
    event,
    lock,
    make_tower,
    preimage,
    registered,
    signed,
)

NOW = 1_000


def store(tower: Tower, appt: Appointment, client: str = "client-a", now: float = NOW) -> None:
    acc = tower.accept(appt, client, now)
    tower.records.save_accepted(acc)  # type: ignore[attr-defined]


def test_the_core_imports_no_io() -> None:
    tree = ast.parse(pathlib.Path(core_module.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
    assert not imported & {"trio", "sqlite3", "time", "os", "socket", "random", "libp2p", "datetime", "secrets"}


# --- accepting ---------------------------------------------------------------------------------------


def test_a_valid_appointment_is_stored_with_a_receipt_that_verifies() -> None:
    tower, p = make_tower(), channel()
    appt = appointment(p, 3)
    acc = tower.accept(appt, "client-a", NOW)
    assert acc.changed and acc.replaced is None
    r = acc.receipt
    assert (r.kind, r.subject, r.version, r.appointment_hash, r.time) == (PLAIN, p.channel_id, 3, appt.digest(), NOW)
    assert r.tower_key == TOWER_KEY.address and r.verifies()
    assert not attrs.evolve(r, version=4).verifies()  # the signature covers the version
    tower.records.save_accepted(acc)  # type: ignore[attr-defined]
    stored = tower.records.appointment(p.channel_id)
    assert stored is not None and stored.appointment == appt and stored.client == "client-a"
    assert tower.usage("client-a") == Usage(appointments=1, bytes=len(appt.encode()))


def refusals() -> list[tuple[str, type[TowerError], object]]:
    p = channel()
    good = appointment(p, 2)
    half = attrs.evolve(good, signed=good.signed.with_signature(1, b""))
    forged = attrs.evolve(good, signed=good.signed.with_signature(1, good.signed.signatures[0]))
    other_chain = channel(chain_id=7)
    other_adj = channel(adjudicator=b"\x01" * 32)
    other_state = attrs.evolve(good, signed=signed(channel(b"other"), 2))
    stray = attrs.evolve(good, preimages=(preimage("none"),))
    lk = lock("x", expiry=5_000)
    twice = appointment(p, 2, locks=[lk], preimages=[preimage("x"), preimage("x")])
    return [
        ("unsigned", Unsigned, half), ("forged signature", Unsigned, forged),
        ("another chain", WrongDomain, appointment(other_chain, 2)),
        ("another adjudicator", WrongDomain, appointment(other_adj, 2)),
        ("a state of another channel", MalformedAppointment, other_state),
        ("a preimage of no lock", MalformedAppointment, stray),
        ("a preimage twice", MalformedAppointment, twice),
    ]


@pytest.mark.parametrize(("what", "error", "appt"), refusals(), ids=[r[0] for r in refusals()])
def test_bad_appointments_are_refused_with_typed_errors_and_change_nothing(what: str, error: type[TowerError],
                                                                           appt: Appointment) -> None:
    records = MemoryRecords()
    tower = make_tower(records)
    with pytest.raises(error) as caught:
        tower.accept(appt, "client-a", NOW)
    assert "\n" not in str(caught.value) and str(caught.value)
    assert records.plain == {} and tower.usage("client-a") == Usage() and tower.total_usage == Usage()


def test_oversize_is_refused() -> None:
    p = channel()
    big = appointment(p, 1, app_data=b"\x00" * 4000)
    tower = make_tower(max_appointment_bytes=len(big.encode()) - 1)
    with pytest.raises(Oversize):
        tower.accept(big, "c", NOW)
    store(tower, appointment(p, 1), "c")  # a small one passes


def test_replaced_only_by_a_strictly_higher_version() -> None:
    tower, p = make_tower(), channel()
    store(tower, appointment(p, 5))
    with pytest.raises(NonMonotonic):
        tower.accept(appointment(p, 4), "client-a", NOW)
    with pytest.raises(NonMonotonic):  # same version, another state: never swapped in
        tower.accept(appointment(p, 5, to_alice=900), "client-a", NOW)
    again = tower.accept(appointment(p, 5), "client-a", NOW)  # an identical resend: a receipt, no write
    assert not again.changed and again.receipt.verifies()
    store(tower, appointment(p, 6))
    stored = tower.records.appointment(p.channel_id)
    assert stored is not None and stored.appointment.version == 6
    assert tower.usage("client-a").appointments == 1  # one record per channel


def test_a_resend_at_the_same_version_adds_preimages_and_a_new_version_keeps_those_still_locked() -> None:
    tower, p = make_tower(), channel()
    x, y = lock("x", expiry=9_000), lock("y", expiry=9_000)
    store(tower, appointment(p, 3, locks=[x, y]))
    store(tower, appointment(p, 3, locks=[x, y], preimages=[preimage("x")]))
    stored = tower.records.appointment(p.channel_id)
    assert stored is not None and stored.appointment.preimages == (preimage("x"),)
    # version 4 settled lock y off-chain but still holds x: the preimage of x stays
    store(tower, appointment(p, 4, locks=[x]))
    stored = tower.records.appointment(p.channel_id)
    assert stored is not None and stored.appointment.preimages == (preimage("x"),)
    store(tower, appointment(p, 5))  # no lock left: nothing to keep
    stored = tower.records.appointment(p.channel_id)
    assert stored is not None and stored.appointment.preimages == ()


def test_per_client_and_total_quotas() -> None:
    tower = make_tower(per_client_appointments=2, total_appointments=3)
    for i in range(2):
        store(tower, appointment(channel(b"a%d" % i), 1), "a")
    with pytest.raises(OverQuota):
        tower.accept(appointment(channel(b"a9"), 1), "a", NOW)
    store(tower, appointment(channel(b"a0"), 2), "a")  # a replacement takes no more room: allowed
    store(tower, appointment(channel(b"b0"), 1), "b")
    with pytest.raises(OverQuota):  # "b" is within its own quota, but the tower is full
        tower.accept(appointment(channel(b"b1"), 1), "b", NOW)
    assert tower.total_usage.appointments == 3


def test_byte_quota() -> None:
    one = len(appointment(channel(b"x"), 1).encode())
    tower = make_tower(per_client_bytes=one * 2 + 10)
    store(tower, appointment(channel(b"x"), 1), "a")
    store(tower, appointment(channel(b"y"), 1), "a")
    with pytest.raises(OverQuota):
        tower.accept(appointment(channel(b"z"), 1), "a", NOW)


def test_rate_limit_is_a_token_bucket_with_time_passed_in() -> None:
    tower = make_tower(client_rate=Rate(per_second=1.0, burst=3.0))
    for i in range(3):
        store(tower, appointment(channel(b"r%d" % i), 1), "a", now=NOW)
    with pytest.raises(RateLimited):
        tower.accept(appointment(channel(b"r9"), 1), "a", NOW)
    store(tower, appointment(channel(b"s"), 1), "b", now=NOW)  # another client has its own bucket
    store(tower, appointment(channel(b"r9"), 1), "a", now=NOW + 1)  # a second later: one token back
    with pytest.raises(RateLimited):
        tower.accept(appointment(channel(b"r8"), 1), "a", NOW + 1)
    with pytest.raises(RateLimited):  # time going backwards refills nothing
        tower.accept(appointment(channel(b"r8"), 1), "a", NOW - 100)


def test_total_rate_bounds_all_clients() -> None:
    tower = make_tower(total_rate=Rate(per_second=0.0, burst=2.0))
    store(tower, appointment(channel(b"t1"), 1), "a")
    store(tower, appointment(channel(b"t2"), 1), "b")
    with pytest.raises(RateLimited):
        tower.accept(appointment(channel(b"t3"), 1), "c", NOW)


# --- reacting to the L1 ------------------------------------------------------------------------------


def watched(version: int = 5, *, p: ChannelParams | None = None, **kw: object) -> tuple[Tower, ChannelParams]:
    p = p or channel()
    tower = make_tower()
    store(tower, appointment(p, version, **kw))  # type: ignore[arg-type]
    return tower, p


def test_a_stale_registration_is_refuted_with_the_newest_state() -> None:
    tower, p = watched(5)
    stale = signed(p, 2)
    reaction = tower.on_chain_event(registered(p, stale, deadline=NOW + 100))
    (action,) = reaction.actions
    assert isinstance(action, Refute)
    assert action.signed.state.version == 5 and action.against == 2 and action.deadline == NOW + 100
    assert action.signed == signed(p, 5) and action.params == p
    assert reaction.disputes and reaction.disputes[0].version == 2
    assert tower.pending(NOW + 50) == [action]  # still due until the L1 shows it done
    assert tower.pending(NOW + 100) == []  # the window is over: nothing the ledger would take


def test_our_refute_ends_it_and_a_registration_at_our_version_needs_nothing() -> None:
    tower, p = watched(5)
    tower.on_chain_event(registered(p, signed(p, 2), deadline=NOW + 100))
    done = tower.on_chain_event(registered(p, signed(p, 5), deadline=NOW + 100, kind="Refuted", cursor=2))
    assert done.actions == () and tower.pending(NOW + 1) == []
    tower2, p2 = watched(5)
    assert tower2.on_chain_event(registered(p2, signed(p2, 5), deadline=NOW + 100)).actions == ()
    assert tower2.on_chain_event(registered(p2, signed(p2, 7), deadline=NOW + 100)).actions == ()


def test_a_forced_move_from_a_stale_state_is_answered_with_the_newer_co_signed_state() -> None:
    p = channel(app_id="lastone")
    tower, _ = watched(6, p=p)
    tower.on_chain_event(registered(p, signed(p, 2), deadline=NOW + 100))
    moved = signed(p, 3).with_signature(1, b"")  # the mover's signature only
    reaction = tower.on_chain_event(event("Progressed", p.channel_id, cursor=2, time=NOW + 5, version=3,
                                          deadline=NOW + 105, mover=0, state=moved))
    (action,) = reaction.actions
    assert isinstance(action, Refute) and action.signed.state.version == 6 and action.against == 3
    assert action.deadline == NOW + 105  # progress restarted the window
    # a move forced from our own newest state is the client's to answer, not the tower's
    later = tower.on_chain_event(event("Progressed", p.channel_id, cursor=3, time=NOW + 9, version=7,
                                       deadline=NOW + 109, mover=0, state=signed(p, 7).with_signature(1, b"")))
    assert later.actions == ()


def test_known_preimages_are_registered_in_a_dispute_before_expiry() -> None:
    x, y = lock("x", expiry=NOW + 500), lock("y", expiry=NOW + 500)
    tower, p = watched(5, locks=[x, y], preimages=[preimage("x")])
    reaction = tower.on_chain_event(registered(p, signed(p, 5, locks=[x, y]), deadline=NOW + 100))
    (action,) = reaction.actions  # no refute (the L1 holds our version); the one preimage we know
    assert isinstance(action, RegisterSecret)
    assert action.preimage == preimage("x") and action.hashlock == x.hashlock and action.expiry == NOW + 500
    assert tower.pending(NOW + 499) == [action]
    assert tower.pending(NOW + 500) == []  # at the expiry it would no longer count
    seen = tower.on_chain_event(event("SecretRegistered", None, cursor=3, hashlock=x.hashlock,
                                      preimage=preimage("x"), time=NOW + 10))
    assert seen.secrets_seen == (x.hashlock,) and tower.pending(NOW + 11) == []


def test_a_stale_registration_with_locks_gets_both_the_refute_and_the_preimages() -> None:
    x = lock("x", expiry=NOW + 500)
    tower, p = watched(5, locks=[x], preimages=[preimage("x")])
    actions = tower.on_chain_event(registered(p, signed(p, 1), deadline=NOW + 100)).actions
    assert {type(a) for a in actions} == {Refute, RegisterSecret}


def test_without_a_dispute_a_preimage_is_registered_within_the_lock_margin_of_its_expiry() -> None:
    x = lock("x", expiry=NOW + 500)
    records = MemoryRecords()
    tower = make_tower(records, lock_margin=60)
    p = channel()
    store(tower, appointment(p, 4, locks=[x], preimages=[preimage("x")]))
    assert tower.pending(NOW + 439) == []
    (action,) = tower.pending(NOW + 440)
    assert isinstance(action, RegisterSecret) and action.preimage == preimage("x")
    assert tower.pending(NOW + 500) == []
    records.apply(tower.on_chain_event(event("SecretRegistered", None, hashlock=x.hashlock, preimage=preimage("x"),
                                             time=NOW + 441)))
    assert tower.pending(NOW + 450) == []
    # a newer state that settled the lock off-chain takes the watch away
    store(tower, appointment(p, 5, locks=[lock("z", expiry=NOW + 480)], preimages=[preimage("z")]))
    assert [a.hashlock for a in tower.pending(NOW + 430)] == [sha256(preimage("z"))]  # type: ignore[union-attr]
    store(tower, appointment(p, 6))
    assert tower.pending(NOW + 470) == []


def test_registrations_of_channels_nobody_gave_us_are_ignored() -> None:
    tower, _ = watched(5)
    other = channel(b"stranger")
    reaction = tower.on_chain_event(registered(other, signed(other, 1), deadline=NOW + 100))
    assert reaction == core_module.EMPTY and tower.disputes == {}


def test_a_settled_channel_is_forgotten() -> None:
    tower, p = watched(5)
    records = tower.records
    assert isinstance(records, MemoryRecords)
    records.apply(tower.on_chain_event(registered(p, signed(p, 2), deadline=NOW + 100)))
    records.apply(tower.on_chain_event(event("Withdrawn", p.channel_id, version=5, refunded=False, payouts=())))
    assert tower.disputes[p.channel_id].settled and tower.pending(NOW) == []
    gone = tower.expire(NOW + 1)
    records.apply(gone)
    assert gone.forgotten == (p.channel_id,) and records.plain == {} and tower.disputes == {}
    assert tower.usage("client-a") == Usage() and records.usage()["client-a"] == Usage()


def test_a_dispute_is_kept_while_a_preimage_can_still_count() -> None:
    x = lock("x", expiry=NOW + 500)
    tower, p = watched(5, locks=[x], preimages=[preimage("x")])
    tower.on_chain_event(event("Concluded", p.channel_id, version=5, state=signed(p, 5, locks=[x])))
    assert tower.expire(NOW + 10).closed == ()  # the lock's preimage must still go on chain
    assert tower.expire(NOW + 500).closed == (p.channel_id,)


def test_expire_keeps_an_open_window() -> None:
    tower, p = watched(5)
    tower.on_chain_event(registered(p, signed(p, 5), deadline=NOW + 100))
    assert tower.expire(NOW + 99).closed == ()
    assert tower.expire(NOW + 100).closed == (p.channel_id,)


def test_disputes_round_trip_and_usage_matches_the_records() -> None:
    d = Dispute(channel_id=channel().channel_id, version=3, deadline=99, locks=((b"\x01" * 32, 7),),
                secrets_done=(b"\x01" * 32,), settled=True)
    assert Dispute.from_fields(d.to_fields()) == d
    records = MemoryRecords()
    tower = make_tower(records)
    for i in range(5):
        store(tower, appointment(channel(b"u%d" % i), 1), "a")
        store(tower, appointment(channel(b"u%d" % i), 2), "b")  # "b" takes each record over
    assert tower.usage("a") == Usage() and tower.usage("b").appointments == 5
    assert {c: u for c, u in records.usage().items() if u.appointments or u.bytes} == {"b": tower.usage("b")}
    restarted = Tower(signer=TOWER_KEY, scheme=tower.scheme, chain_id=tower.chain_id, adjudicator=tower.adjudicator,
                      records=records, usage=records.usage())
    assert restarted.total_usage == tower.total_usage and restarted.clients == 1


def test_both_parties_may_hand_in_the_channel_and_the_higher_version_wins() -> None:
    tower, p = watched(5)
    store(tower, appointment(p, 8), "client-b")
    stored = tower.records.appointment(p.channel_id)
    assert stored is not None and stored.client == "client-b" and stored.appointment.version == 8
    assert (ALICE.address, BOB.address) == p.participants
