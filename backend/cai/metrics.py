"""Agreement of AI verdicts with human labels: pure, vectorised numpy metrics.

Inputs, one entry per item: ``p_ai``, the AI's probability that response A is better (in [0, 1]);
``human``, 1.0 (humans preferred A), 0.0 (B) or 0.5 (human tie); optional ``principle`` keys;
optional ``p_ai_swapped``, the probability that the same response A is better when the pair was
shown in swapped order (already mapped back to A's side). Definitions, exactly as computed:

- Decision ``d = 1`` if ``p > 0.5``, ``0`` if ``p < 0.5``, ``0.5`` (tie) if ``p == 0.5``.
- Accuracy, ties counted as half: item score ``s = 1 - |d - human|`` (1 same side or both ties,
  0.5 exactly one of them a tie, 0 opposite sides); accuracy ``= mean(s)``, plain accuracy when
  there are no ties.
- Cohen's κ of decisions vs human labels over {B, tie, A}: ``(p_o - p_e) / (1 - p_e)`` from the
  3×3 confusion counts (= ``sklearn.metrics.cohen_kappa_score``); ``nan`` (as sklearn) when
  ``p_e == 1``, i.e. both put every item in the same single category (e.g. one item).
- Log loss ``mean(-(h·log p + (1-h)·log(1-p)))``, p clipped to [1e-12, 1-1e-12]; a human tie is
  the soft target 0.5 (its least possible loss is log 2, not 0). Brier ``mean((p - human)²)``.
- Reliability: confidence of the chosen side ``c = max(p, 1-p)`` in ``n_bins`` equal bins over
  [0.5, 1] (left-closed; 1.0 falls in the last). Per bin mean confidence, accuracy (mean ``s``)
  and count (``nan`` when empty); ``ECE = Σ count/N · |accuracy - confidence|``. The histogram
  counts ``p_ai`` itself in ``hist_bins`` equal bins over [0, 1].
- Position consistency: share of items with ``d(p_ai) == d(p_ai_swapped)``; exactly one of the
  two at 0.5 is inconsistent, both at 0.5 is consistent.
- Intervals: percentile bootstrap (default 95 %) over ``n_boot`` resamples of the items from
  ``numpy.random.default_rng(seed)`` (:func:`bootstrap_indices`). A chunk of index rows becomes
  item counts ``C`` (rows×N) and every metric is a function of ``C @ X`` for a fixed per-item
  feature matrix ``X``: no Python loop over resamples. Per-principle intervals use the same
  whole-sample resamples (a principle absent from one is skipped there); resamples where a metric
  is ``nan`` are skipped, and all ``nan`` gives a ``nan`` interval.
- compare_runs: runs joined on item id (ids in one run only are counted, not used). A flip is a
  changed decision: ``toward_human`` if ``s`` rose, ``away_from_human`` if it fell, else
  ``other`` (e.g. A→B on a human tie). Changes are ``b - a`` with a paired bootstrap (the same
  resampled items for both runs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from backend.errors import ValidationError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
EPS = 1e-12
METRICS: tuple[str, ...] = ("accuracy", "kappa", "log_loss", "brier", "ece")


@dataclass(frozen=True)
class Estimate:
    value: float  # point estimate on all items
    low: float  # bootstrap percentile interval (nan where the metric is undefined throughout)
    high: float


@dataclass(frozen=True)
class ReliabilityCurve:
    edges: tuple[float, ...]  # n_bins + 1 bin edges over [0.5, 1]
    confidence: tuple[float, ...]  # mean confidence per bin (nan if empty)
    accuracy: tuple[float, ...]  # mean item score per bin (nan if empty)
    count: tuple[int, ...]
    ece: float


@dataclass(frozen=True)
class Histogram:
    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class PrincipleAccuracy:
    principle: str
    n: int
    accuracy: Estimate


@dataclass(frozen=True)
class AgreementReport:
    n: int
    n_human_ties: int
    accuracy: Estimate
    kappa: Estimate
    log_loss: Estimate
    brier: Estimate
    ece: Estimate
    reliability: ReliabilityCurve
    histogram: Histogram
    per_principle: tuple[PrincipleAccuracy, ...]
    position_consistency: Estimate | None
    n_boot: int
    seed: int
    confidence: float


@dataclass(frozen=True)
class RunVerdicts:
    item_ids: Sequence[str | int]
    p_ai: ArrayLike
    human: ArrayLike


@dataclass(frozen=True)
class Flip:
    item_id: str | int
    decision_a: float
    decision_b: float
    human: float
    direction: Literal["toward_human", "away_from_human", "other"]


@dataclass(frozen=True)
class RunComparison:
    n_items: int
    n_only_a: int
    n_only_b: int
    flips: tuple[Flip, ...]
    n_toward_human: int
    n_away_from_human: int
    n_other: int
    deltas: Mapping[str, Estimate]  # metric -> change b - a with its paired interval
    first: Mapping[str, Estimate]  # metric -> run a on the shared items
    second: Mapping[str, Estimate]  # metric -> run b on the shared items


def _probs(name: str, x: ArrayLike) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValidationError(f"{name} must be a flat list of numbers, got shape {arr.shape}.")
    if arr.size == 0:
        raise ValidationError(f"No verdicts to score: {name} is empty. Run an evaluation first.")
    if not np.all(np.isfinite(arr) & (arr >= 0.0) & (arr <= 1.0)):
        raise ValidationError(f"{name} must hold probabilities between 0 and 1.")
    return arr


def _inputs(p_ai: ArrayLike, human: ArrayLike) -> tuple[FloatArray, FloatArray]:
    p, h = _probs("p_ai", p_ai), _probs("human", human)
    if p.shape != h.shape:
        raise ValidationError(f"p_ai has {p.size} items but human has {h.size}; align them.")
    if not np.all((h == 0.0) | (h == 0.5) | (h == 1.0)):
        raise ValidationError("human labels must be 1.0 (A better), 0.0 (B better) or 0.5 (tie).")
    return p, h


def decisions(p_ai: ArrayLike) -> FloatArray:
    """The AI's decision per item: 1.0 (A), 0.0 (B), 0.5 (exactly 0.5: tie)."""
    p = np.asarray(p_ai, dtype=np.float64)
    return np.where(p > 0.5, 1.0, np.where(p < 0.5, 0.0, 0.5))


def item_scores(p_ai: ArrayLike, human: ArrayLike) -> FloatArray:
    """1 - |decision - human|: 1 agree, 0.5 exactly one side a tie, 0 opposite sides."""
    return 1.0 - np.abs(decisions(p_ai) - np.asarray(human, dtype=np.float64))


def _log_losses(p: FloatArray, h: FloatArray) -> FloatArray:
    pc = np.clip(p, EPS, 1.0 - EPS)
    return -(h * np.log(pc) + (1.0 - h) * np.log1p(-pc))


def _codes(p: FloatArray, h: FloatArray) -> IntArray:
    """Confusion cell 3·ai + human per item, categories 0 = B, 1 = tie, 2 = A."""
    return (decisions(p) * 2).astype(np.intp) * 3 + (h * 2).astype(np.intp)


def _bins(p: FloatArray, n_bins: int) -> tuple[FloatArray, IntArray, FloatArray]:
    if n_bins < 1:
        raise ValidationError(f"n_bins must be at least 1, got {n_bins}.")
    # (n + i) / 2n: one correctly rounded division per edge, so 0.85 is 0.85 (linspace gave
    # 0.8500000000000001 and put a confidence of exactly 0.85 in the bin below)
    edges = (n_bins + np.arange(n_bins + 1, dtype=np.float64)) / (2 * n_bins)
    conf = np.maximum(p, 1.0 - p)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    return edges, idx.astype(np.intp), conf


def _kappa(cm: FloatArray) -> FloatArray:
    """κ per row of (R, 3, 3) integer-valued confusion counts; nan where p_e == 1."""
    n = cm.sum(axis=(1, 2))
    agree = np.trace(cm, axis1=1, axis2=2)
    chance = (cm.sum(axis=2) * cm.sum(axis=1)).sum(axis=1)
    den = n * n - chance
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (n * agree - chance) / np.where(den > 0, den, 1.0), np.nan)


def accuracy(p_ai: ArrayLike, human: ArrayLike) -> float:
    return float(np.mean(item_scores(*_inputs(p_ai, human))))


def cohen_kappa(p_ai: ArrayLike, human: ArrayLike) -> float:
    cm = np.bincount(_codes(*_inputs(p_ai, human)), minlength=9).astype(np.float64)
    return float(_kappa(cm.reshape(1, 3, 3))[0])


def log_loss(p_ai: ArrayLike, human: ArrayLike) -> float:
    return float(np.mean(_log_losses(*_inputs(p_ai, human))))


def brier(p_ai: ArrayLike, human: ArrayLike) -> float:
    p, h = _inputs(p_ai, human)
    return float(np.mean((p - h) ** 2))


def reliability(p_ai: ArrayLike, human: ArrayLike, n_bins: int = 10) -> ReliabilityCurve:
    p, h = _inputs(p_ai, human)
    edges, idx, conf = _bins(p, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=item_scores(p, h), minlength=n_bins)
    safe = np.where(count > 0, count, 1)
    return ReliabilityCurve(
        edges=tuple(edges.tolist()),
        confidence=tuple(np.where(count > 0, conf_sum / safe, np.nan).tolist()),
        accuracy=tuple(np.where(count > 0, acc_sum / safe, np.nan).tolist()),
        count=tuple(int(c) for c in count),
        ece=float(np.abs(acc_sum - conf_sum).sum() / p.size),
    )


def histogram(p_ai: ArrayLike, bins: int = 20) -> Histogram:
    if bins < 1:
        raise ValidationError(f"hist_bins must be at least 1, got {bins}.")
    counts, edges = np.histogram(_probs("p_ai", p_ai), bins=bins, range=(0.0, 1.0))
    return Histogram(edges=tuple(edges.tolist()), counts=tuple(int(c) for c in counts))


def position_consistency(p_ai: ArrayLike, p_ai_swapped: ArrayLike) -> float:
    p, q = _probs("p_ai", p_ai), _probs("p_ai_swapped", p_ai_swapped)
    if p.shape != q.shape:
        raise ValidationError("p_ai and p_ai_swapped must have the same number of items.")
    return float(np.mean(decisions(p) == decisions(q)))


def bootstrap_indices(
    n: int, n_boot: int, seed: int, max_elements: int = 1 << 22
) -> Iterator[IntArray]:
    """Resample index rows (chunks of the B×N matrix), deterministic in (n, n_boot, seed)."""
    if n_boot < 1:
        raise ValidationError(f"n_boot must be at least 1, got {n_boot}.")
    rng = np.random.default_rng(seed)
    rows = max(1, max_elements // max(n, 1))
    for start in range(0, n_boot, rows):
        yield rng.integers(0, n, size=(min(rows, n_boot - start), n)).astype(np.intp, copy=False)


def _resampled_sums(x: FloatArray, n_boot: int, seed: int) -> FloatArray:
    """(n_boot, F): for each resample, the column sums of X over the resampled items."""
    n = x.shape[0]
    xt = np.ascontiguousarray(x.T)  # (F, N) @ (N, r) is the fast BLAS layout here
    out = []
    for idx in bootstrap_indices(n, n_boot, seed):
        r = idx.shape[0]
        flat = np.add(idx, (np.arange(r, dtype=np.intp) * n)[:, None]).ravel()
        counts = np.bincount(flat, minlength=r * n).reshape(r, n).astype(np.float64)
        out.append((xt @ counts.T).T)
    return np.vstack(out)


def _features(
    p: FloatArray, h: FloatArray, n_bins: int, groups: IntArray | None, n_groups: int
) -> FloatArray:
    """Per-item columns: score, log loss, Brier, confusion one-hot (9), bin count/conf/score
    (n_bins each), then group count/score (n_groups each)."""
    n = p.size
    s = item_scores(p, h)
    _, b, conf = _bins(p, n_bins)
    onehot_bin = np.zeros((n, n_bins))
    onehot_bin[np.arange(n), b] = 1.0
    cols = [np.column_stack([s, _log_losses(p, h), (p - h) ** 2]), np.eye(9)[_codes(p, h)],
            onehot_bin, onehot_bin * conf[:, None], onehot_bin * s[:, None]]
    if groups is not None:
        cols += [np.eye(n_groups)[groups], np.eye(n_groups)[groups] * s[:, None]]
    return np.hstack(cols)


def _stats(sums: FloatArray, n: int, n_bins: int, n_groups: int = 0) -> dict[str, FloatArray]:
    """Metrics per row of feature sums (rows = resamples, or one row for the full sample)."""
    k = 12 + 3 * n_bins
    conf_sum, acc_sum = sums[:, 12 + n_bins : 12 + 2 * n_bins], sums[:, 12 + 2 * n_bins : k]
    out = {"accuracy": sums[:, 0] / n, "log_loss": sums[:, 1] / n, "brier": sums[:, 2] / n,
           "kappa": _kappa(sums[:, 3:12].reshape(-1, 3, 3)),
           "ece": np.abs(acc_sum - conf_sum).sum(axis=1) / n}
    if n_groups:
        g_n, g_s = sums[:, k : k + n_groups], sums[:, k + n_groups : k + 2 * n_groups]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["principle"] = np.where(g_n > 0, g_s / np.where(g_n > 0, g_n, 1.0), np.nan)
    return out


def _interval(value: float, samples: FloatArray, confidence: float) -> Estimate:
    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return Estimate(value, float("nan"), float("nan"))
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return Estimate(value, float(low), float(high))


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence must be between 0 and 1, got {confidence}.")


def agreement_report(
    p_ai: ArrayLike, human: ArrayLike, principle: Sequence[str] | None = None,
    p_ai_swapped: ArrayLike | None = None, *, n_bins: int = 10, hist_bins: int = 20,
    n_boot: int = 1000, seed: int = 0, confidence: float = 0.95,
    position: tuple[ArrayLike, ArrayLike] | None = None,
) -> AgreementReport:
    """Every agreement metric with its bootstrap interval (definitions: module docstring).

    Position consistency compares ``p_ai`` with ``p_ai_swapped``, or, given ``position``, the
    two orders' own probabilities (AB, BA) while ``p_ai`` is their average; either way it is
    one more column of the same bootstrap (same resamples as every other metric)."""
    p, h = _inputs(p_ai, human)
    _check_confidence(confidence)
    n = p.size
    keys: list[str] = []
    groups: IntArray | None = None
    counts: IntArray = np.zeros(0, dtype=np.intp)
    if principle is not None:
        labels = np.asarray([str(k) for k in principle])
        if labels.shape != p.shape:
            raise ValidationError(f"principle has {labels.size} keys for {n} items; align them.")
        uniq, inv = np.unique(labels, return_inverse=True)
        keys, groups = [str(k) for k in uniq], inv.astype(np.intp)
        counts = np.bincount(groups, minlength=len(keys))
    x = _features(p, h, n_bins, groups, len(keys))
    consistent: FloatArray | None = None
    if p_ai_swapped is not None or position is not None:
        other = position[1] if position is not None else p_ai_swapped
        assert other is not None
        first = p if position is None else _probs("p_ai (AB)", position[0])
        q = _probs("p_ai_swapped", other)
        if q.shape != p.shape or first.shape != p.shape:
            raise ValidationError("p_ai and p_ai_swapped must have the same number of items.")
        consistent = (decisions(first) == decisions(q)).astype(np.float64)
        x = np.hstack([x, consistent[:, None]])
    hist = histogram(p, hist_bins)
    sums = _resampled_sums(x, n_boot, seed)
    point, boot = (_stats(v, n, n_bins, len(keys)) for v in (x.sum(0, keepdims=True), sums))
    est = {m: _interval(float(point[m][0]), boot[m], confidence) for m in METRICS}
    per_principle = tuple(
        PrincipleAccuracy(key, int(counts[g]), _interval(
            float(point["principle"][0, g]), boot["principle"][:, g], confidence))
        for g, key in enumerate(keys)
    )
    pos = None if consistent is None else _interval(
        float(consistent.mean()), sums[:, -1] / n, confidence)
    return AgreementReport(
        n, int(np.sum(h == 0.5)), accuracy=est["accuracy"], kappa=est["kappa"],
        log_loss=est["log_loss"], brier=est["brier"], ece=est["ece"],
        reliability=reliability(p, h, n_bins), histogram=hist,
        per_principle=per_principle, position_consistency=pos, n_boot=n_boot, seed=seed,
        confidence=confidence,
    )


def _run_map(name: str, run: RunVerdicts) -> tuple[dict[str | int, int], FloatArray, FloatArray]:
    p, h = _inputs(run.p_ai, run.human)
    ids = list(run.item_ids)
    if len(ids) != p.size:
        raise ValidationError(f"Run {name} has {len(ids)} item ids for {p.size} verdicts.")
    pos = {item: i for i, item in enumerate(ids)}
    if len(pos) != len(ids):
        raise ValidationError(f"Run {name} lists the same item id more than once.")
    return pos, p, h


def compare_runs(
    a: RunVerdicts, b: RunVerdicts, *, n_bins: int = 10, n_boot: int = 1000, seed: int = 0,
    confidence: float = 0.95,
) -> RunComparison:
    """Flips and metric changes (b - a, paired bootstrap) on the items both runs share."""
    _check_confidence(confidence)
    pos_a, pa, ha = _run_map("a", a)
    pos_b, pb, hb = _run_map("b", b)
    common = [item for item in pos_a if item in pos_b]
    if not common:
        raise ValidationError("The two runs share no items; compare runs over the same dataset.")
    ia = np.asarray([pos_a[i] for i in common], dtype=np.intp)
    ib = np.asarray([pos_b[i] for i in common], dtype=np.intp)
    pa, h, pb = pa[ia], ha[ia], pb[ib]
    if not np.array_equal(h, hb[ib]):
        raise ValidationError("The runs disagree on some human labels; were they re-imported?")
    n = len(common)
    da, db = decisions(pa), decisions(pb)
    gain = item_scores(pb, h) - item_scores(pa, h)
    flips = tuple(
        Flip(common[i], float(da[i]), float(db[i]), float(h[i]),
             "toward_human" if gain[i] > 0 else "away_from_human" if gain[i] < 0 else "other")
        for i in np.flatnonzero(da != db)
    )
    x = np.hstack([_features(pa, h, n_bins, None, 0), _features(pb, h, n_bins, None, 0)])
    w = x.shape[1] // 2
    point, sums = x.sum(axis=0, keepdims=True), _resampled_sums(x, n_boot, seed)
    pt_a, pt_b = _stats(point[:, :w], n, n_bins), _stats(point[:, w:], n, n_bins)
    bt_a, bt_b = _stats(sums[:, :w], n, n_bins), _stats(sums[:, w:], n, n_bins)
    deltas = {m: _interval(float(pt_b[m][0] - pt_a[m][0]), bt_b[m] - bt_a[m], confidence)
              for m in METRICS}
    directions = [f.direction for f in flips]
    return RunComparison(
        n_items=n, n_only_a=len(pos_a) - n, n_only_b=len(pos_b) - n, flips=flips,
        n_toward_human=directions.count("toward_human"),
        n_away_from_human=directions.count("away_from_human"),
        n_other=directions.count("other"), deltas=deltas,
        first={m: _interval(float(pt_a[m][0]), bt_a[m], confidence) for m in METRICS},
        second={m: _interval(float(pt_b[m][0]), bt_b[m], confidence) for m in METRICS},
    )
