"""Ratings against closed forms: two players with win probability p differ by log(p/(1-p))
in Bradley–Terry units and 400·log10(p/(1-p)) in Elo; bootstrap intervals cover the estimate,
narrow with more data and are reproducible from the seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.cai.ratings import (
    ELO_PER_NAT,
    Match,
    bradley_terry,
    elo_difference,
    group_tensors,
    rate,
)
from backend.errors import ValidationError


def _two_players(p: float, n: int = 100) -> list[Match]:
    wins = round(p * n)
    return [Match(0, 1, 1.0 if k < wins else 0.0, group=k) for k in range(n)]


@pytest.mark.parametrize("p", [0.6, 0.75, 0.9])
def test_two_players_closed_form_hard_wins(p: float) -> None:
    r = rate(2, _two_players(p), prior=0.0, n_boot=50, anchor=0)
    assert r.bt[0].value == 0.0
    assert r.bt[1].value == pytest.approx(-math.log(p / (1 - p)), abs=1e-6)
    assert r.elo[1].value == pytest.approx(-400 * math.log10(p / (1 - p)), abs=1e-4)
    assert r.elo[1].value == pytest.approx(-elo_difference(p), abs=1e-4)
    assert r.win_rate[0].value == pytest.approx(p)
    assert r.pairwise[(0, 1)].value == pytest.approx(p)
    assert r.pairwise[(1, 0)].value == pytest.approx(1 - p)


def test_soft_labels_are_fractional_wins() -> None:
    """Every verdict at 0.8 is the same fit as 80 % hard wins."""
    soft = [Match(1, 0, 0.8, group=k) for k in range(10)]
    r = rate(2, soft, prior=0.0, n_boot=20, anchor=0)
    assert r.bt[1].value == pytest.approx(math.log(4.0), abs=1e-6)
    assert r.elo[1].value == pytest.approx(400 * math.log10(4.0), abs=1e-4)
    # every resample is identical, so the interval collapses onto the estimate
    assert r.bt[1].low == pytest.approx(r.bt[1].high, abs=1e-6)


def test_three_players_recover_generating_strengths() -> None:
    """Exact expected wins from known strengths give back those strengths (BT is consistent)."""
    truth = np.array([0.0, 0.7, -0.4])
    n = 3
    wins, games = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                games[i, j] = 50
                wins[i, j] = 50 / (1 + math.exp(truth[j] - truth[i]))
    fit = bradley_terry(wins, games)
    assert fit - fit[0] == pytest.approx(truth, abs=1e-6)


def test_prior_keeps_a_winless_player_finite_and_shrinks() -> None:
    matches = [Match(0, 1, 1.0, group=k) for k in range(5)]
    r = rate(2, matches, prior=1.0, n_boot=20)
    # 5.5 wins against 0.5 in 6 games: log(11)
    assert r.bt[1].value == pytest.approx(-math.log(11.0), abs=1e-6)
    assert math.isfinite(r.elo[1].low)


def test_bootstrap_interval_contains_estimate_narrows_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    big = [Match(0, 1, float(rng.random() < 0.7), group=k) for k in range(400)]
    small = big[:40]
    r_big = rate(2, big, n_boot=300, seed=3)
    r_small = rate(2, small, n_boot=300, seed=3)
    for r in (r_big, r_small):
        iv = r.elo[1]
        assert iv.low <= iv.value <= iv.high
        w = r.pairwise[(0, 1)]
        assert w.low <= w.value <= w.high
    width = lambda r: r.elo[1].high - r.elo[1].low  # noqa: E731
    assert width(r_big) < width(r_small)
    assert rate(2, small, n_boot=300, seed=3) == r_small
    # a 95 % interval of the win rate around 0.7 from 400 games is about ±0.045
    w = r_big.pairwise[(0, 1)]
    assert 0.06 < w.high - w.low < 0.12


def test_groups_are_resampled_together() -> None:
    """Pairs from one prompt move together: within-group totals stay whole in every resample."""
    matches = [Match(0, 1, 1.0, group=0), Match(0, 2, 1.0, group=0),
               Match(1, 2, 0.0, group=1)]
    groups, wins, games = group_tensors(3, matches)
    assert groups == [0, 1]
    assert games[0].sum() == 4 and games[1].sum() == 2
    assert wins[1, 2, 1] == 1.0


def test_elo_scale() -> None:
    assert math.isclose(ELO_PER_NAT, 400 / math.log(10))
    assert elo_difference(0.5) == 0.0
    assert elo_difference(10 / 11) == pytest.approx(400.0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValidationError):
        rate(2, [])
    with pytest.raises(ValidationError):
        rate(2, [Match(0, 0, 1.0)])
    with pytest.raises(ValidationError):
        rate(2, [Match(0, 1, 1.5)])
    with pytest.raises(ValidationError):
        rate(1, [Match(0, 1, 0.5)])


def test_mean_interval() -> None:
    from backend.cai.ratings import mean_interval

    iv = mean_interval([1.0, 2.0, 3.0, 4.0], n_boot=200)
    assert iv.value == 2.5 and 1.0 <= iv.low < 2.5 < iv.high <= 4.0
    assert math.isnan(mean_interval([]).value)
