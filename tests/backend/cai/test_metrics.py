"""Agreement metrics against independent computations, scikit-learn and scipy."""

from __future__ import annotations

import math
import warnings
from functools import partial

import numpy as np
import pytest

from backend.cai import metrics as M
from backend.errors import ValidationError

NAMES = {1.0: "A", 0.0: "B", 0.5: "tie"}


# ---------------------------------------------------------------- independent references
def ref_decision(p: float) -> float:
    if p > 0.5:
        return 1.0
    if p < 0.5:
        return 0.0
    return 0.5


def ref_score(p: float, h: float) -> float:
    d = ref_decision(p)
    if d == h:
        return 1.0
    if d == 0.5 or h == 0.5:
        return 0.5
    return 0.0


def ref_accuracy(p, h) -> float:
    return sum(ref_score(a, b) for a, b in zip(p, h, strict=True)) / len(p)


def ref_kappa(p, h) -> float:
    """Textbook κ from Python counts."""
    ai = [NAMES[ref_decision(x)] for x in p]
    hu = [NAMES[float(x)] for x in h]
    n = len(ai)
    po = sum(a == b for a, b in zip(ai, hu, strict=True)) / n
    pe = sum((ai.count(c) / n) * (hu.count(c) / n) for c in ("A", "B", "tie"))
    return math.nan if pe == 1 else float((po - pe) / (1 - pe))


def ref_log_loss(p, h) -> float:
    total = 0.0
    for x, y in zip(p, h, strict=True):
        x = min(max(x, 1e-12), 1 - 1e-12)
        total -= y * math.log(x) + (1 - y) * math.log(1 - x)
    return total / len(p)


def ref_brier(p, h) -> float:
    return float(sum((x - y) ** 2 for x, y in zip(p, h, strict=True)) / len(p))


def ref_ece(p, h, n_bins=10) -> float:
    width = 0.5 / n_bins
    bins: dict[int, list[tuple[float, float]]] = {}
    for x, y in zip(p, h, strict=True):
        conf = max(x, 1 - x)
        b = min(int((conf - 0.5) / width + 1e-9), n_bins - 1)
        bins.setdefault(b, []).append((conf, ref_score(x, y)))
    ece = 0.0
    for items in bins.values():
        conf = sum(c for c, _ in items) / len(items)
        acc = sum(s for _, s in items) / len(items)
        ece += len(items) / len(p) * abs(acc - conf)
    return ece


def random_set(n: int, seed: int = 0, tie_share: float = 0.1):
    rng = np.random.default_rng(seed)
    h = rng.choice([0.0, 0.5, 1.0], size=n, p=[(1 - tie_share) / 2, tie_share, (1 - tie_share) / 2])
    # an informative labeller: leans towards the human side
    p = np.clip(rng.beta(2, 2, size=n) * 0.6 + 0.4 * (h == 1.0) + 0.2 * (h == 0.5), 0.01, 0.99)
    return p, h


def labels(values) -> list[str]:
    return [NAMES[float(v)] for v in values]


# ---------------------------------------------------------------- hand-made sets
PERFECT_P = np.array([0.9, 0.1, 0.5, 0.8, 0.3])
PERFECT_H = np.array([1.0, 0.0, 0.5, 1.0, 0.0])


def test_perfect_agreement():
    assert M.accuracy(PERFECT_P, PERFECT_H) == 1.0
    assert M.cohen_kappa(PERFECT_P, PERFECT_H) == pytest.approx(1.0)
    expected_ll = -(2 * math.log(0.9) + math.log(0.5) + math.log(0.8) + math.log(0.7)) / 5
    assert M.log_loss(PERFECT_P, PERFECT_H) == pytest.approx(expected_ll)
    assert M.brier(PERFECT_P, PERFECT_H) == pytest.approx((0.01 * 2 + 0 + 0.04 + 0.09) / 5)


def test_inverted_agreement():
    p = np.array([0.1, 0.9, 0.2, 0.8])
    h = np.array([1.0, 0.0, 1.0, 0.0])
    assert M.accuracy(p, h) == 0.0
    assert M.cohen_kappa(p, h) == pytest.approx(-1.0)
    assert M.log_loss(p, h) == pytest.approx(-(2 * math.log(0.1) + 2 * math.log(0.2)) / 4)
    assert M.brier(p, h) == pytest.approx((0.81 * 2 + 0.64 * 2) / 4)


def test_ties_count_half():
    p = np.array([0.5, 0.5, 0.7, 0.7, 0.3])
    h = np.array([1.0, 0.5, 0.5, 1.0, 1.0])
    # AI tie vs A: 0.5; both ties: 1; A vs human tie: 0.5; agree: 1; opposite: 0
    assert M.item_scores(p, h).tolist() == [0.5, 1.0, 0.5, 1.0, 0.0]
    assert M.accuracy(p, h) == pytest.approx(3.0 / 5)


def test_all_ties():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.99, size=50)
    h = np.full(50, 0.5)
    assert M.accuracy(p, h) == 0.5
    assert M.accuracy(np.full(4, 0.5), np.full(4, 0.5)) == 1.0
    assert M.cohen_kappa(p, h) == pytest.approx(ref_kappa(p, h)) == pytest.approx(0.0)
    assert math.isnan(M.cohen_kappa(np.full(4, 0.5), np.full(4, 0.5)))
    # soft target 0.5: minimal loss is log 2 at p = 0.5
    assert M.log_loss(np.full(3, 0.5), np.full(3, 0.5)) == pytest.approx(math.log(2))
    assert M.log_loss(p, h) == pytest.approx(ref_log_loss(p, h))
    report = M.agreement_report(p, h, n_boot=200)
    assert report.n_human_ties == 50
    assert report.accuracy.low == report.accuracy.high == 0.5


def test_one_item():
    report = M.agreement_report([0.8], [1.0], ["harm"], [0.6], n_boot=50)
    assert report.n == 1
    assert report.accuracy == M.Estimate(1.0, 1.0, 1.0)
    assert math.isnan(report.kappa.value) and math.isnan(report.kappa.low)
    assert report.log_loss.value == pytest.approx(-math.log(0.8))
    assert report.log_loss.low == pytest.approx(report.log_loss.high)
    assert report.brier.value == pytest.approx(0.04)
    assert report.ece.value == pytest.approx(0.2)
    assert report.per_principle[0].principle == "harm"
    assert report.position_consistency == M.Estimate(1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("p", "h", "match"),
    [
        ([], [], "empty"),
        ([0.5, 0.5], [1.0], "align"),
        ([0.5], [0.7], "tie"),
        ([1.2], [1.0], "between 0 and 1"),
        ([float("nan")], [1.0], "between 0 and 1"),
        ([[0.5]], [[1.0]], "flat"),
    ],
)
def test_bad_input_is_rejected(p, h, match):
    with pytest.raises(ValidationError, match=match):
        M.agreement_report(p, h)


def test_other_bad_arguments():
    with pytest.raises(ValidationError, match="principle"):
        M.agreement_report([0.2, 0.7], [0.0, 1.0], ["a"])
    with pytest.raises(ValidationError, match="swapped"):
        M.agreement_report([0.2, 0.7], [0.0, 1.0], p_ai_swapped=[0.1])
    with pytest.raises(ValidationError, match="n_bins"):
        M.agreement_report([0.2], [0.0], n_bins=0)
    with pytest.raises(ValidationError, match="hist_bins"):
        M.agreement_report([0.2], [0.0], hist_bins=0)
    with pytest.raises(ValidationError, match="n_boot"):
        M.agreement_report([0.2], [0.0], n_boot=0)
    with pytest.raises(ValidationError, match="confidence"):
        M.agreement_report([0.2], [0.0], confidence=1.5)


# ---------------------------------------------------------------- random sets vs references
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_matches_python_reference(seed):
    p, h = random_set(300, seed)
    assert M.accuracy(p, h) == pytest.approx(ref_accuracy(p, h))
    assert M.cohen_kappa(p, h) == pytest.approx(ref_kappa(p, h))
    assert M.log_loss(p, h) == pytest.approx(ref_log_loss(p, h))
    assert M.brier(p, h) == pytest.approx(ref_brier(p, h))
    assert M.reliability(p, h).ece == pytest.approx(ref_ece(p, h))
    report = M.agreement_report(p, h, n_boot=100, seed=seed)
    assert report.accuracy.value == pytest.approx(ref_accuracy(p, h))
    assert report.kappa.value == pytest.approx(ref_kappa(p, h))
    assert report.log_loss.value == pytest.approx(ref_log_loss(p, h))
    assert report.brier.value == pytest.approx(ref_brier(p, h))
    assert report.ece.value == pytest.approx(ref_ece(p, h))


@pytest.mark.parametrize("seed", [0, 1])
def test_random_matches_sklearn(seed):
    skm = pytest.importorskip("sklearn.metrics")
    p, h = random_set(400, seed)
    d = M.decisions(p)
    assert M.cohen_kappa(p, h) == pytest.approx(skm.cohen_kappa_score(labels(d), labels(h)))
    sure = h != 0.5
    ps, hs = p[sure], h[sure]
    assert M.accuracy(ps, hs) == pytest.approx(skm.accuracy_score(hs, M.decisions(ps)))
    assert M.log_loss(ps, hs) == pytest.approx(skm.log_loss(hs, ps))
    assert M.brier(ps, hs) == pytest.approx(skm.brier_score_loss(hs, ps))


def test_kappa_edge_cases_match_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    cases = [
        ([0.9, 0.8], [1.0, 1.0]),  # p_e == 1: undefined
        ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        ([0.9, 0.2, 0.7], [0.5, 0.5, 0.5]),
        ([0.9, 0.2, 0.5, 0.5], [1.0, 1.0, 0.5, 0.0]),
        ([0.9], [0.0]),
    ]
    for p, h in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = skm.cohen_kappa_score(labels(M.decisions(p)), labels(h))
        got = M.cohen_kappa(p, h)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_log_loss_with_ties_matches_scipy_cross_entropy():
    stats = pytest.importorskip("scipy.stats")
    p, h = random_set(200, 5, tie_share=0.4)
    # cross-entropy H(target, p) = H(target) + KL(target || p), per item
    ce = [
        stats.entropy([y, 1 - y]) + stats.entropy([y, 1 - y], [x, 1 - x])
        for x, y in zip(p, h, strict=True)
    ]
    assert M.log_loss(p, h) == pytest.approx(float(np.mean(ce)))


def test_log_loss_clips_extremes():
    assert M.log_loss([0.0], [1.0]) == pytest.approx(-math.log(1e-12))
    assert M.log_loss([1.0], [1.0]) == pytest.approx(0.0, abs=1e-11)


# ---------------------------------------------------------------- reliability and histogram
def test_reliability_by_hand():
    # 5 bins of width 0.1 over [0.5, 1]; confidences 0.55, 0.65, 0.65, 0.95, 1.0, 0.5
    p = np.array([0.55, 0.35, 0.65, 0.95, 0.0, 0.5])
    h = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.5])
    curve = M.reliability(p, h, n_bins=5)
    assert curve.edges == pytest.approx((0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
    assert curve.count == (2, 2, 0, 0, 2)
    assert curve.confidence[0] == pytest.approx((0.55 + 0.5) / 2)
    assert curve.accuracy[0] == pytest.approx(1.0)  # agree; both ties
    assert curve.confidence[1] == pytest.approx(0.65)
    assert curve.accuracy[1] == pytest.approx(0.5)  # one wrong, one right
    assert math.isnan(curve.confidence[2]) and math.isnan(curve.accuracy[3])
    assert curve.confidence[4] == pytest.approx(0.975)
    assert curve.accuracy[4] == pytest.approx(1.0)
    expected = (2 * abs(1 - 0.525) + 2 * abs(0.5 - 0.65) + 2 * abs(1 - 0.975)) / 6
    assert curve.ece == pytest.approx(expected)
    assert M.agreement_report(p, h, n_bins=5, n_boot=10).ece.value == pytest.approx(expected)


def test_perfectly_calibrated_has_zero_ece():
    # in each bin, the share of correct items equals the confidence
    p = np.array([0.75] * 4 + [0.25] * 4)
    h = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    assert M.reliability(p, h).ece == pytest.approx(0.0)


def test_histogram():
    hist = M.histogram([0.0, 0.05, 0.5, 0.99, 1.0], bins=4)
    assert hist.edges == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert hist.counts == (2, 0, 1, 2)
    assert M.agreement_report([0.1, 0.9], [0.0, 1.0], hist_bins=2, n_boot=5).histogram.counts == (
        1, 1,
    )


# ---------------------------------------------------------------- principles, position
def test_per_principle():
    p = np.array([0.9, 0.2, 0.7, 0.4, 0.6, 0.5])
    h = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    keys = ["harm", "harm", "honesty", "honesty", "honesty", "law"]
    report = M.agreement_report(p, h, keys, n_boot=300)
    got = {pa.principle: pa for pa in report.per_principle}
    assert list(got) == ["harm", "honesty", "law"]
    assert [got[k].n for k in got] == [2, 3, 1]
    assert got["harm"].accuracy.value == pytest.approx(0.5)
    assert got["honesty"].accuracy.value == pytest.approx(2 / 3)
    assert got["law"].accuracy.value == pytest.approx(0.5)
    for pa in report.per_principle:
        assert pa.accuracy.low <= pa.accuracy.value <= pa.accuracy.high
    assert got["law"].accuracy.low == got["law"].accuracy.high == 0.5


def test_position_consistency():
    p = [0.9, 0.2, 0.7, 0.5, 0.5, 0.6]
    q = [0.6, 0.4, 0.3, 0.5, 0.8, 0.5]
    # same, same, flipped, both 0.5 (consistent), one 0.5, one 0.5
    assert M.position_consistency(p, q) == pytest.approx(3 / 6)
    report = M.agreement_report(p, [1.0] * 6, p_ai_swapped=q, n_boot=200)
    assert report.position_consistency is not None
    assert report.position_consistency.value == pytest.approx(0.5)
    assert M.agreement_report(p, [1.0] * 6, n_boot=5).position_consistency is None
    with pytest.raises(ValidationError):
        M.position_consistency([0.5], [0.5, 0.2])


# ---------------------------------------------------------------- bootstrap
def loop_bootstrap(
    p: np.ndarray, h: np.ndarray, keys: list[str], q: np.ndarray, n_boot: int, seed: int,
    n_bins: int = 10,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Straightforward per-resample loop over the same index rows."""
    idx = np.vstack(list(M.bootstrap_indices(len(p), n_boot, seed)))
    out: dict[str, list[float]] = {m: [] for m in (*M.METRICS, "position")}
    per_key: dict[str, list[float]] = {k: [] for k in sorted(set(keys))}
    for row in idx:
        pr, hr = p[row], h[row]
        out["accuracy"].append(ref_accuracy(pr, hr))
        out["kappa"].append(ref_kappa(pr, hr))
        out["log_loss"].append(ref_log_loss(pr, hr))
        out["brier"].append(ref_brier(pr, hr))
        out["ece"].append(ref_ece(pr, hr, n_bins))
        out["position"].append(M.position_consistency(pr, q[row]))
        kr = [keys[i] for i in row]
        for k in per_key:
            sel = [i for i, key in enumerate(kr) if key == k]
            per_key[k].append(ref_accuracy(pr[sel], hr[sel]) if sel else math.nan)
    return out, per_key


def percentile_ci(samples: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples, dtype=float)
    arr = arr[~np.isnan(arr)]
    low, high = np.percentile(arr, [2.5, 97.5])
    return float(low), float(high)


@pytest.mark.parametrize("chunk", [None, 64])
def test_vectorised_bootstrap_equals_loop(monkeypatch, chunk):
    if chunk is not None:  # force several chunks of the B×N index matrix
        monkeypatch.setattr(
            M, "bootstrap_indices", partial(M.bootstrap_indices, max_elements=chunk)
        )
    p, h = random_set(25, 7, tie_share=0.2)
    p[:2] = 0.5
    keys = [("a", "b", "c")[i % 3] for i in range(25)]
    q = np.clip(p + np.random.default_rng(1).normal(0, 0.2, 25), 0, 1)
    report = M.agreement_report(p, h, keys, q, n_boot=60, seed=11)
    loop, per_key = loop_bootstrap(p, h, keys, q, 60, 11)
    for m in M.METRICS:
        est = getattr(report, m)
        assert (est.low, est.high) == pytest.approx(percentile_ci(loop[m])), m
    assert report.position_consistency is not None
    pc = report.position_consistency
    assert (pc.low, pc.high) == pytest.approx(percentile_ci(loop["position"]))
    for pa in report.per_principle:
        expected = percentile_ci(per_key[pa.principle])
        assert (pa.accuracy.low, pa.accuracy.high) == pytest.approx(expected)


def test_bootstrap_indices_shape_and_chunks():
    chunks = list(M.bootstrap_indices(10, 25, 0, max_elements=30))
    assert [c.shape for c in chunks] == [(3, 10)] * 8 + [(1, 10)]
    stacked = np.vstack(chunks)
    assert stacked.min() >= 0 and stacked.max() <= 9
    again = np.vstack(list(M.bootstrap_indices(10, 25, 0, max_elements=30)))
    assert np.array_equal(stacked, again)


def test_bootstrap_contains_point_and_is_reproducible():
    p, h = random_set(400, 2)
    a = M.agreement_report(p, h, n_boot=500, seed=4)
    b = M.agreement_report(p, h, n_boot=500, seed=4)
    c = M.agreement_report(p, h, n_boot=500, seed=5)
    assert a == b
    assert a.accuracy != c.accuracy
    for m in M.METRICS:
        est = getattr(a, m)
        assert est.low <= est.value <= est.high, m
        assert est.low < est.high, m


def test_bootstrap_shrinks_with_more_items():
    def widths(n: int) -> list[float]:
        p, h = random_set(n, 9)
        r = M.agreement_report(p, h, n_boot=300, seed=0)
        return [getattr(r, m).high - getattr(r, m).low for m in M.METRICS]

    small, large = widths(200), widths(5000)
    for m, s, big in zip(M.METRICS, small, large, strict=True):
        assert big < s / 2, m  # ~ 1/sqrt(25) = 1/5 in theory


def test_bootstrap_agrees_with_scipy_percentile_interval():
    stats = pytest.importorskip("scipy.stats")
    p, h = random_set(600, 12)
    ours = M.agreement_report(p, h, n_boot=2000, seed=0).accuracy
    theirs = stats.bootstrap(
        (M.item_scores(p, h),), np.mean, n_resamples=2000, method="percentile",
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.01)
    assert ours.high == pytest.approx(theirs.high, abs=0.01)


def test_large_input_with_principles_and_swaps():
    """100k items run through the chunked bootstrap (speed is measured in bench/, not here)."""
    p, h = random_set(100_000, 0)
    keys = np.random.default_rng(0).choice(["a", "b", "c", "d"], size=p.size).tolist()
    report = M.agreement_report(p, h, keys, p[::-1].copy(), n_boot=200)
    assert report.accuracy.low <= report.accuracy.value <= report.accuracy.high
    assert {p.principle for p in report.per_principle} == {"a", "b", "c", "d"}


# ---------------------------------------------------------------- compare_runs
def test_compare_runs_flips_and_directions():
    ids = ["i1", "i2", "i3", "i4", "i5", "i6"]
    h = [1.0, 1.0, 0.5, 0.0, 0.0, 1.0]
    a = M.RunVerdicts(ids, [0.2, 0.9, 0.8, 0.3, 0.5, 0.7], h)
    # i1 B→A toward, i2 A→B away, i3 A→B on a tie: other, i4 same, i5 tie→B toward, i6 same
    b_p = {"i1": 0.8, "i2": 0.1, "i3": 0.3, "i4": 0.1, "i5": 0.2, "i6": 0.9, "x": 0.5}
    b = M.RunVerdicts(list(b_p), list(b_p.values()), [*h, 1.0])
    comp = M.compare_runs(a, b, n_boot=200)
    assert comp.n_items == 6 and comp.n_only_a == 0 and comp.n_only_b == 1
    assert {f.item_id: f.direction for f in comp.flips} == {
        "i1": "toward_human", "i2": "away_from_human", "i3": "other", "i5": "toward_human",
    }
    assert (comp.n_toward_human, comp.n_away_from_human, comp.n_other) == (2, 1, 1)
    flip = next(f for f in comp.flips if f.item_id == "i5")
    assert (flip.decision_a, flip.decision_b, flip.human) == (0.5, 0.0, 0.0)
    pb = np.array([b_p[i] for i in ids])
    pa = np.array([0.2, 0.9, 0.8, 0.3, 0.5, 0.7])
    assert comp.deltas["accuracy"].value == pytest.approx(
        ref_accuracy(pb, h) - ref_accuracy(pa, h)
    )
    assert comp.deltas["brier"].value == pytest.approx(ref_brier(pb, h) - ref_brier(pa, h))
    for est in comp.deltas.values():
        assert est.low <= est.value <= est.high or math.isnan(est.value)


def test_compare_identical_runs_has_zero_deltas():
    p, h = random_set(100, 3)
    run = M.RunVerdicts(list(range(100)), p, h)
    comp = M.compare_runs(run, run, n_boot=100)
    assert comp.flips == ()
    for m in M.METRICS:
        assert comp.deltas[m] == M.Estimate(0.0, 0.0, 0.0)


def test_compare_runs_paired_bootstrap_equals_loop():
    p, h = random_set(30, 4)
    q = np.clip(p + np.random.default_rng(2).normal(0, 0.15, 30), 0.01, 0.99)
    ids = list(range(30))
    # b lists the items in another order; they are joined on id
    order = np.random.default_rng(3).permutation(30)
    comp = M.compare_runs(
        M.RunVerdicts(ids, p, h), M.RunVerdicts([ids[i] for i in order], q[order], h[order]),
        n_boot=80, seed=6,
    )
    idx = np.vstack(list(M.bootstrap_indices(30, 80, 6)))
    refs = {"accuracy": ref_accuracy, "kappa": ref_kappa, "log_loss": ref_log_loss,
            "brier": ref_brier, "ece": ref_ece}
    for m, fn in refs.items():
        diffs = [fn(q[row], h[row]) - fn(p[row], h[row]) for row in idx]
        est = comp.deltas[m]
        assert est.value == pytest.approx(fn(q, h) - fn(p, h)), m
        assert (est.low, est.high) == pytest.approx(percentile_ci(diffs)), m


def test_paired_interval_is_narrower_than_unpaired():
    p, h = random_set(500, 8)
    q = p.copy()
    q[:10] = 1 - q[:10]  # a small edit: 10 items flip
    ids = list(range(500))
    comp = M.compare_runs(M.RunVerdicts(ids, p, h), M.RunVerdicts(ids, q, h), n_boot=400)
    single = M.agreement_report(p, h, n_boot=400).accuracy
    delta = comp.deltas["accuracy"]
    # an unpaired interval for a difference would be ~1.4x as wide as one run's interval
    assert delta.high - delta.low < 0.75 * (single.high - single.low)
    assert len(comp.flips) == 10


def test_compare_runs_rejects_bad_runs():
    good = M.RunVerdicts(["a", "b"], [0.2, 0.8], [0.0, 1.0])
    with pytest.raises(ValidationError, match="share no items"):
        M.compare_runs(good, M.RunVerdicts(["c"], [0.2], [0.0]))
    with pytest.raises(ValidationError, match="more than once"):
        M.compare_runs(good, M.RunVerdicts(["a", "a"], [0.2, 0.3], [0.0, 0.0]))
    with pytest.raises(ValidationError, match="item ids"):
        M.compare_runs(good, M.RunVerdicts(["a"], [0.2, 0.3], [0.0, 0.0]))
    with pytest.raises(ValidationError, match="human labels"):
        M.compare_runs(good, M.RunVerdicts(["a", "b"], [0.2, 0.8], [1.0, 1.0]))
    with pytest.raises(ValidationError, match="empty"):
        M.compare_runs(good, M.RunVerdicts([], [], []))


def test_ece_bin_edges_are_exact() -> None:
    """linspace put an edge at 0.8500000000000001, so a confidence of exactly 0.85 fell into
    the [0.80, 0.85) bin."""
    from backend.cai.metrics import reliability

    curve = reliability([0.85, 0.15, 0.7], [1.0, 0.0, 1.0], n_bins=10)
    assert curve.edges == tuple(round(0.5 + i * 0.05, 10) for i in range(11))
    assert curve.edges[7] == 0.85
    assert curve.count[7] == 2 and curve.count[6] == 0 and curve.count[4] == 1


def test_position_consistency_in_the_summary_bootstrap_equals_its_own_bootstrap() -> None:
    """Issue 15: one bootstrap for every metric gives the interval a second one gave."""
    rng = np.random.default_rng(0)
    n = 500
    human = rng.choice([0.0, 1.0, 0.5], n)
    ab, ba = rng.random(n), rng.random(n)
    one = M.agreement_report((ab + ba) / 2, human, None, n_boot=100, seed=3, position=(ab, ba))
    own = M.agreement_report(ab, human, None, ba, n_boot=100, seed=3)
    assert one.position_consistency == own.position_consistency
