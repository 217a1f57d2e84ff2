"""Ratings of policies from pairwise verdicts: win rates, Bradley–Terry and Elo, each with a
bootstrap interval (pure; numpy only).

A match is one judged pair: players ``a`` and ``b`` and ``score_a`` in [0, 1], the (soft)
probability that ``a``'s response is better (1: a won, 0: b won, 0.5: a tie). Soft scores
enter Bradley–Terry as fractional wins, so a verdict of 0.7 counts as 0.7 of a win for ``a``
and 0.3 for ``b``.

Bradley–Terry: P(i beats j) = π_i / (π_i + π_j); the rating is log π (natural-log units), fitted
by Hunter's MM iteration. Two players with a win probability p therefore differ by
log(p / (1 − p)). Elo is the same fit on the Elo scale, 400·log10 π, so they differ by
400·log10(p / (1 − p)) (the paper reports Elo). ``prior`` adds that many tied pseudo-games
between every two players, so a player that never won keeps a finite rating; 0 gives the
exact maximum-likelihood fit.

Intervals resample the *groups* (the prompts) with replacement, so the several pairs judged on
one prompt stay together; each interval is the percentile interval of the resampled estimates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from backend.errors import ValidationError

FloatArray = NDArray[np.float64]
ELO_PER_NAT = 400.0 / math.log(10.0)


@dataclass(frozen=True)
class Match:
    a: int
    b: int
    score_a: float
    group: int = 0  # the resampling unit (the prompt's index)


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3g} [{self.low:.3g}, {self.high:.3g}]"


@dataclass(frozen=True)
class Ratings:
    players: int
    games: int
    bt: tuple[Interval, ...]  # Bradley–Terry log-strengths (anchor = 0, or mean 0)
    elo: tuple[Interval, ...]
    win_rate: tuple[Interval, ...]  # each player's mean score over all its games
    pairwise: dict[tuple[int, int], Interval]  # (i, j), i != j: i's mean score against j
    anchor: int | None


def _check(n_players: int, matches: Sequence[Match]) -> None:
    if n_players < 2:
        raise ValidationError("A rating needs at least two players.")
    for m in matches:
        if not (0 <= m.a < n_players and 0 <= m.b < n_players) or m.a == m.b:
            raise ValidationError(f"A match names players {m.a} and {m.b}; use two different "
                                  f"players 0..{n_players - 1}.")
        if not 0.0 <= m.score_a <= 1.0 or math.isnan(m.score_a):
            raise ValidationError(f"A match score must be in [0, 1], got {m.score_a}.")


def group_tensors(n_players: int, matches: Sequence[Match]
                  ) -> tuple[list[int], FloatArray, FloatArray]:
    """(group ids, wins[G, P, P], games[G, P, P]): ``wins[g, i, j]`` is i's score against j
    summed over the group's matches, ``games[g, i, j]`` the number of i–j matches."""
    _check(n_players, matches)
    groups = sorted({m.group for m in matches})
    index = {g: k for k, g in enumerate(groups)}
    wins = np.zeros((len(groups), n_players, n_players))
    games = np.zeros_like(wins)
    for m in matches:
        g = index[m.group]
        wins[g, m.a, m.b] += m.score_a
        wins[g, m.b, m.a] += 1.0 - m.score_a
        games[g, m.a, m.b] += 1.0
        games[g, m.b, m.a] += 1.0
    return groups, wins, games


def bradley_terry(wins: FloatArray, games: FloatArray, *, prior: float = 0.0,
                  max_iter: int = 10_000, tol: float = 1e-10) -> FloatArray:
    """Log-strengths (mean 0) maximising the Bradley–Terry likelihood of the (fractional)
    ``wins[i, j]`` in ``games[i, j]``; ``prior`` tied pseudo-games between every two players."""
    n = wins.shape[0]
    if prior < 0:
        raise ValidationError("The prior must be 0 or more pseudo-games.")
    off = 1.0 - np.eye(n)
    w = wins + off * prior / 2.0
    g = games + off * prior
    total_wins = w.sum(axis=1)
    pi = np.ones(n)
    floor = 1e-300
    for _ in range(max_iter):
        denom = (g / (pi[:, None] + pi[None, :])).sum(axis=1)
        new = np.where(denom > 0, total_wins / np.where(denom > 0, denom, 1.0), pi)
        new = np.maximum(new, floor)
        new /= math.exp(float(np.mean(np.log(new))))
        if float(np.max(np.abs(np.log(new) - np.log(pi)))) < tol:
            pi = new
            break
        pi = new
    logs: FloatArray = np.log(pi)
    return logs - float(np.mean(logs))


def _anchored(logs: FloatArray, anchor: int | None) -> FloatArray:
    return logs - (logs[anchor] if anchor is not None else float(np.mean(logs)))


def _interval(value: float, samples: FloatArray, confidence: float) -> Interval:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return Interval(value, math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return Interval(value, float(low), float(high))


def _scores(wins: FloatArray, games: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(overall mean score per player, pairwise mean score matrix); NaN where no games."""
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = wins.sum(axis=-1) / games.sum(axis=-1)
        pair = wins / games
    return overall, pair


def rate(n_players: int, matches: Sequence[Match], *, prior: float = 0.5, n_boot: int = 1000,
         seed: int = 0, anchor: int | None = 0, confidence: float = 0.95) -> Ratings:
    """Win rates, Bradley–Terry and Elo ratings of ``n_players`` with bootstrap intervals.

    Ratings are relative to ``anchor`` (its rating is 0, e.g. the base model), or to the mean
    when ``anchor`` is None."""
    if not matches:
        raise ValidationError("No judged pairs yet; run the comparison first.")
    if not 0.0 < confidence < 1.0:
        raise ValidationError("The confidence level must be between 0 and 1.")
    if anchor is not None and not 0 <= anchor < n_players:
        raise ValidationError(f"The anchor must be a player 0..{n_players - 1}.")
    _, gw, gg = group_tensors(n_players, matches)
    wins, games = gw.sum(axis=0), gg.sum(axis=0)
    bt = _anchored(bradley_terry(wins, games, prior=prior), anchor)
    overall, pair = _scores(wins, games)
    n_groups = gw.shape[0]
    rng = np.random.default_rng(seed)
    boot_bt = np.empty((n_boot, n_players))
    boot_overall = np.empty((n_boot, n_players))
    boot_pair = np.empty((n_boot, n_players, n_players))
    flat_w, flat_g = gw.reshape(n_groups, -1), gg.reshape(n_groups, -1)
    for b in range(n_boot):
        counts = np.bincount(rng.integers(0, n_groups, size=n_groups),
                             minlength=n_groups).astype(np.float64)
        w = (counts @ flat_w).reshape(n_players, n_players)
        g = (counts @ flat_g).reshape(n_players, n_players)
        boot_bt[b] = _anchored(bradley_terry(w, g, prior=prior, max_iter=2000, tol=1e-8),
                               anchor)
        boot_overall[b], boot_pair[b] = _scores(w, g)
    bt_iv = tuple(_interval(float(bt[i]), boot_bt[:, i], confidence) for i in range(n_players))
    elo_iv = tuple(Interval(iv.value * ELO_PER_NAT, iv.low * ELO_PER_NAT,
                            iv.high * ELO_PER_NAT) for iv in bt_iv)
    win_iv = tuple(_interval(float(overall[i]), boot_overall[:, i], confidence)
                   for i in range(n_players))
    pairwise = {(i, j): _interval(float(pair[i, j]), boot_pair[:, i, j], confidence)
                for i in range(n_players) for j in range(n_players)
                if i != j and games[i, j] > 0}
    return Ratings(n_players, len(matches), bt_iv, elo_iv, win_iv, pairwise, anchor)


def mean_interval(values: Sequence[float], *, n_boot: int = 1000, seed: int = 0,
                  confidence: float = 0.95) -> Interval:
    """The mean of ``values`` with a percentile bootstrap interval (NaN when empty)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return _interval(float(x.mean()), means, confidence)


def elo_difference(p: float) -> float:
    """The Elo gap at which the stronger player wins with probability ``p``."""
    return 400.0 * math.log10(p / (1.0 - p))
