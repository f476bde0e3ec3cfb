"""Three cores under random schedules (seeded): frames delivered in any order, some lost,
participants restarted from their records, moves and closes proposed by whoever may, stalls
resynced. Whatever happened, once the network heals every participant holds the same state
with all three signatures, nobody ever signed two states at one version, and the pot is whole."""

from __future__ import annotations

import random

import pytest

from channels.core import inputs as ins
from channels.core.channel import Phase, verify_signed
from channels.errors import InvalidTransition, LocalProtocolError
from channels.games import GAME_APPS, LastOneStanding
from channels.testing.coregroup import CoreGroup

APP = LastOneStanding()
SEEDS = range(20)


def heal(g: CoreGroup, rounds: int = 12) -> None:
    """Deliver everything, then let every participant resync until nothing changes."""
    for _ in range(rounds):
        g.run()
        before = [g.channel(i) for i in range(g.n)]
        for i in range(g.n):
            for j in range(g.n):
                if i != j:
                    g.apply(i, ins.ActionReconnect(peer=j))
            g.apply(i, ins.ActionResync())
        g.run()
        if [g.channel(i) for i in range(g.n)] == before and all(
                g.channel(i).pending is None and g.channel(i).cosign is None and not g.channel(i).queue
                for i in range(g.n)):
            return


@pytest.mark.parametrize("seed", SEEDS)
def test_random_schedules_converge_without_equivocation(seed: int) -> None:
    rng = random.Random(seed)
    g = CoreGroup((100, 100, 100), app_id=APP.app_id, apps=GAME_APPS, label=f"sched-{seed}")
    g.open()
    closing = False
    for step in range(400):
        roll = rng.random()
        busy = [pair for pair, q in g.queues.items() if q]
        if roll < 0.55 and busy:
            src, dst = rng.choice(busy)
            if rng.random() < 0.08:
                g.drop(src, dst)  # lost on the way
            else:
                g.deliver(src, dst)
        elif roll < 0.80:
            i = rng.randrange(3)
            turn = APP.turn(g.params, g.channel(i).latest.state)  # whose turn it is, as i sees it
            i = turn if turn is not None and rng.random() < 0.8 else i
            try:
                g.move(i, rng.choice((1, 2, 3)))
            except (InvalidTransition, LocalProtocolError):
                pass  # not its turn as it sees the game, or the game is over
        elif roll < 0.83 and not closing and step > 300:
            try:
                g.apply(rng.randrange(3), ins.ActionClose())
                closing = True
            except LocalProtocolError:
                pass
        elif roll < 0.93:
            g.apply(rng.randrange(3), ins.ActionResync())
        elif roll < 0.95:
            g.restart(rng.randrange(3))  # frames to and from it are lost
        else:
            i, j = rng.sample(range(3), 2)
            g.apply(i, ins.ActionReconnect(peer=j))
    heal(g)
    assert g.signed_twice() == [], "nobody signed two states at one version"
    latest = [g.channel(i).latest for i in range(3)]
    assert latest[0] == latest[1] == latest[2], [g.channel(i).version for i in range(3)]
    assert verify_signed(g.params, latest[0], g.scheme)
    assert sum(latest[0].state.allocation.balances[0]) == 300
    phases = {g.channel(i).phase for i in range(3)}
    assert phases == ({Phase.CLOSING} if latest[0].state.is_final else {Phase.OPEN})
