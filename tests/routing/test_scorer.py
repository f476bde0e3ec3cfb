"""The success-probability model: a uniform prior, bounds learned from attempts, decay back to the prior."""

from __future__ import annotations

import math

import pytest

from channels.routing import scorer as scorer_module
from channels.routing.scorer import Scorer, ScoringParams, success_probability

KEY = (b"chan", 0)
HOUR = 3600.0


def test_the_prior_is_uniform_within_capacity() -> None:
    scorer = Scorer()
    assert scorer.probability(KEY, 999, 0, now=0) == 1.0
    assert scorer.probability(KEY, 999, 500, now=0) == pytest.approx(0.5)
    assert scorer.probability(KEY, 999, 999, now=0) == pytest.approx(1 / 1000)
    assert scorer.probability(KEY, 999, 1000, now=0) == 0.0
    assert success_probability(10, 20, 10) == 1.0 and success_probability(10, 20, 21) == 0.0


def test_a_failure_caps_and_a_success_floors_the_liquidity() -> None:
    scorer = Scorer()
    scorer.path_failed([(KEY, 1000, 600)], 0, now=0)
    assert scorer.bounds(KEY, 1000, now=0) == (0, 599)
    assert scorer.probability(KEY, 1000, 600, now=0) == 0.0
    assert scorer.probability(KEY, 1000, 300, now=0) == pytest.approx(0.5)
    scorer.path_succeeded([(KEY, 1000, 400)], now=0)
    assert scorer.bounds(KEY, 1000, now=0) == (400, 599)
    assert scorer.probability(KEY, 1000, 400, now=0) == 1.0
    assert scorer.probability(KEY, 1000, 500, now=0) == pytest.approx(0.5)


def test_a_failed_path_teaches_every_hop() -> None:
    scorer = Scorer()
    hops = [((b"a", 0), 1000, 700), ((b"b", 1), 5000, 690), ((b"c", 0), 800, 680)]
    scorer.path_failed(hops, 1, now=0)
    assert scorer.bounds((b"a", 0), 1000, now=0) == (700, 1000)
    assert scorer.bounds((b"b", 1), 5000, now=0) == (0, 689)
    assert scorer.bounds((b"c", 0), 800, now=0) == (0, 800)  # never reached: nothing learned
    assert set(scorer.known(now=0)) == {(b"a", 0), (b"b", 1)}


def test_bounds_decay_back_to_the_prior_with_the_half_life() -> None:
    scorer = Scorer(ScoringParams(half_life=HOUR))
    scorer.path_succeeded([(KEY, 1000, 400)], now=0)
    scorer.path_failed([(KEY, 1000, 601)], 0, now=0)
    assert scorer.bounds(KEY, 1000, now=0) == (400, 600)
    assert scorer.bounds(KEY, 1000, now=HOUR) == (200, 800)
    assert scorer.bounds(KEY, 1000, now=2 * HOUR) == (100, 900)
    assert scorer.bounds(KEY, 1000, now=-5.0) == (400, 600)  # time passed in, never read: no decay backwards
    assert scorer.bounds(KEY, 1000, now=20 * HOUR) == (0, 1000)
    assert scorer.known(now=20 * HOUR) == {}
    assert len(scorer) == 1
    scorer.prune(now=20 * HOUR)
    assert len(scorer) == 0


def test_learning_after_decay_starts_from_the_decayed_bounds() -> None:
    scorer = Scorer(ScoringParams(half_life=HOUR))
    scorer.path_failed([(KEY, 1000, 201)], 0, now=0)
    scorer.path_succeeded([(KEY, 1000, 100)], now=HOUR)
    assert scorer.bounds(KEY, 1000, now=HOUR) == (100, 600)


def test_contradictions_restart_from_the_new_fact() -> None:
    scorer = Scorer()
    scorer.path_failed([(KEY, 1000, 300)], 0, now=0)
    scorer.path_succeeded([(KEY, 1000, 500)], now=1)  # liquidity moved: it had 500 after all
    assert scorer.bounds(KEY, 1000, now=1) == (500, 1000)
    scorer.path_failed([(KEY, 1000, 400)], 0, now=2)
    assert scorer.bounds(KEY, 1000, now=2) == (0, 399)


def test_a_new_capacity_means_the_prior_again() -> None:
    scorer = Scorer()
    scorer.path_failed([(KEY, 1000, 300)], 0, now=0)
    assert scorer.bounds(KEY, 2000, now=0) == (0, 2000)


def test_the_penalty_grows_as_the_odds_fall_and_with_the_amount() -> None:
    scorer = Scorer(ScoringParams(base_penalty=500, liquidity_penalty=10_000, liquidity_penalty_ppm=3000))
    assert scorer.penalty(1.0, 10**6) == 500
    assert scorer.penalty(0.5, 10**6) == pytest.approx(500 + (10_000 + 3000) * math.log(2))
    assert scorer.penalty(0.5, 10**8) > scorer.penalty(0.5, 10**6) > scorer.penalty(0.9, 10**6)
    assert scorer.penalty(0.0, 1) == math.inf


def test_learned_entries_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer_module, "MAX_LEARNED", 3)
    scorer = Scorer()
    for i in range(5):
        scorer.path_failed([((bytes([i]), 0), 1000, 10)], 0, now=i)
    assert len(scorer) == 3
    assert set(scorer.known(now=5)) == {(bytes([2]), 0), (bytes([3]), 0), (bytes([4]), 0)}
