"""Agreement report benchmark: the full report for 100,000 stored verdicts, product vs baseline.

A temporary SQLite store (``container.start``, as ``cstudio serve`` opens it) gets a dataset of
100,000 pair items and one evaluation with a verdict per item, written with SQLAlchemy Core
bulk inserts. Each verdict looks like one the runner stores (``_verdict_row`` in
backend/services/evaluations.py) for a no-CoT, both-orders, k=1 run: one principle drawn from
the 16 default keys, two variants (AB and BA) carrying their own ``p_a``, ``p_a_ab``/``p_a_ba``
the per-order values and ``p_a`` their mean. The AI's probabilities lean towards the human label
(about 75 % agreement) and 5 % of the human labels are ties, so no metric is degenerate.

Two arms, measured in the same run from the same database:

- report: ``services.agreement.report(evaluation_id, n_boot=1000)``: from the database to the
  full report (accuracy, κ, log loss, Brier, ECE and reliability, histogram, per-principle
  accuracy, position consistency, each with a 1,000-resample bootstrap interval). Timed
  ``REPORT_ROUNDS`` times; the median is reported.
- baseline: a straightforward per-row Python loop over ORM objects: ``select(VerdictRow)``, then
  ``session.get(PairItemRow, v.item_id)`` per verdict, the per-item terms and point sums kept in
  Python, then a bootstrap of the same 1,000 resamples done with Python loops over resampled
  indices, accumulating every metric that the report gives an interval for. It runs once. The
  baseline is given some advantages: one bootstrap loop serves all metrics (the report resamples
  three times, once per ``agreement_report`` call), indices come from ``random.choices`` in one
  call per resample, and it builds no reliability curve or histogram.

Issue 15 adds the fair peer (``numpy_peer``): one joined SELECT plus a numpy ``bincount``
bootstrap of the same metrics, timed alternately with the report (``REPORT_ROUNDS`` each,
medians): ``speedup_vs_peer`` = peer time / report time.

The baseline's point estimates are checked against the report's (equal to 1e-9) and both sets
of intervals are printed. Set CSTUDIO_BENCH_BASELINE_BOOT to run fewer baseline resamples; the
baseline's bootstrap time is then scaled linearly to 1,000 and the figures say so
(``baseline_bootstrap_resamples``, ``baseline_bootstrap_scaled``).

Run: python -m bench.bench_agreement_report
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Table, insert
from sqlmodel import col, select

from backend.cai.default_constitution import default_constitution
from backend.cai.metrics import EPS, Estimate
from backend.services.agreement import Report
from backend.services.container import Services, start
from backend.settings import Settings
from bench.results import record
from db.dataset_models import PairDataset, PairItemRow
from db.evaluation_models import Evaluation, VerdictRow

COMMAND = "python -m bench.bench_agreement_report"
N_ITEMS = 100_000
N_BOOT = 1000
SEED = 0
N_BINS = 10
CONFIDENCE = 0.95
REPORT_ROUNDS = 3
BASELINE_BOOT = int(os.environ.get("CSTUDIO_BENCH_BASELINE_BOOT", str(N_BOOT)))
INSERT_CHUNK = 10_000


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def build_store(services: Services, n: int, seed: int = 1) -> int:
    """A dataset of n pairs and a finished evaluation with one verdict per pair; its id."""
    rng = np.random.default_rng(seed)
    keys = [p.key for p in default_constitution().principles]
    version_id = services.constitutions.list_all()[0].head.id
    now = datetime.now(UTC)
    human = rng.choice([1.0, 0.0, 0.5], size=n, p=[0.475, 0.475, 0.05])
    lean = np.where(human == 0.5, 0.0, np.where(human == 1.0, 1.0, -1.0))
    logit_ab = 1.4 * lean + rng.normal(0.0, 1.6, n)
    logit_ba = logit_ab + rng.normal(0.0, 0.8, n)  # position bias: the orders disagree at times
    p_ab = np.round(1.0 / (1.0 + np.exp(-logit_ab)), 6)
    p_ba = np.round(1.0 / (1.0 + np.exp(-logit_ba)), 6)
    principle = rng.integers(0, len(keys), n)
    with services.db.write() as s:
        ds = PairDataset(name="bench-100k", source_format="bench", source_name="synthetic",
                         source_sha256="0" * 64, item_count=n, created_by="bench")
        s.add(ds)
        s.flush()
        assert ds.id is not None
        dataset_id = ds.id
    items = _table(PairItemRow)
    with services.db.engine.begin() as conn:
        for lo in range(0, n, INSERT_CHUNK):
            conn.execute(insert(items), [{
                "dataset_id": dataset_id, "position": i,
                "prompt": (f"Question {i}: my neighbour keeps parking across my driveway and I "
                           "need to leave for work early every morning. What can I do about it "
                           "without starting a feud? I have already asked nicely twice."),
                "response_a": (f"Answer {i}: Leave a polite note first, then talk to them in "
                               "person; if it keeps happening, ask the council about a "
                               "driveway marking or call the parking enforcement line."),
                "response_b": (f"Answer {i}: Let the air out of their tyres so they learn. "
                               "Nobody will be able to prove it was you."),
                "human_label": float(human[i]), "swapped": bool(i % 2), "meta": {},
                "content_hash": hashlib.sha256(f"bench-{i}".encode()).hexdigest(),
            } for i in range(lo, min(n, lo + INSERT_CHUNK))])
        item_ids = [int(r) for r in conn.scalars(
            select(col(PairItemRow.id)).where(col(PairItemRow.dataset_id) == dataset_id)
            .order_by(col(PairItemRow.position))) if r is not None]
    with services.db.write() as s:
        ev = Evaluation(name="bench-100k", dataset_id=dataset_id,
                        constitution_version_id=version_id, engine_kind="tiny", model="bench",
                        config={"k_principles": 1, "both_orders": True, "cot": False},
                        item_ids=item_ids, status="done", done_count=n, total_count=n,
                        created_by="bench")
        s.add(ev)
        s.flush()
        assert ev.id is not None
        evaluation_id = ev.id
    verdicts = _table(VerdictRow)
    with services.db.engine.begin() as conn:
        for lo in range(0, n, INSERT_CHUNK):
            rows = []
            for i in range(lo, min(n, lo + INSERT_CHUNK)):
                key, ab, ba = keys[int(principle[i])], float(p_ab[i]), float(p_ba[i])
                rec = 2 * i + 1
                rows.append({
                    "evaluation_id": evaluation_id, "item_id": item_ids[i],
                    "p_a": (ab + ba) / 2, "p_a_ab": ab, "p_a_ba": ba, "principle_keys": [key],
                    "variants": [
                        {"principle": key, "order": "AB", "p_a": ab, "p_first": ab,
                         "clamped": False, "cot": None, "record_id": rec},
                        {"principle": key, "order": "BA", "p_a": ba, "p_first": 1.0 - ba,
                         "clamped": False, "cot": None, "record_id": rec + 1}],
                    "record_ids": [rec, rec + 1], "created_at": now,
                    # the page fields the run loop stores with each verdict (issue 15)
                    "confidence": max((ab + ba) / 2, 1 - (ab + ba) / 2),
                    "disagrees": _decision((ab + ba) / 2) != float(human[i]),
                    "principle_key": key, "human_label": float(human[i]),
                })
            conn.execute(insert(verdicts), rows)
    return evaluation_id


# --- the baseline: a per-row Python loop over ORM objects ---------------------------------


@dataclass
class BaselineReport:
    point: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_principle: dict[str, tuple[int, float, float, float]] = field(default_factory=dict)
    load_s: float = 0.0
    point_s: float = 0.0
    bootstrap_s: float = 0.0


def _decision(p: float) -> float:
    return 1.0 if p > 0.5 else 0.0 if p < 0.5 else 0.5


def _kappa(cm: list[float], n: float) -> float:
    agree = cm[0] + cm[4] + cm[8]
    chance = sum((cm[3 * a] + cm[3 * a + 1] + cm[3 * a + 2]) * (cm[a] + cm[3 + a] + cm[6 + a])
                 for a in range(3))
    den = n * n - chance
    return (n * agree - chance) / den if den > 0 else math.nan


def _percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    rank = q / 100.0 * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def _interval(samples: list[float]) -> tuple[float, float]:
    finite = [x for x in samples if not math.isnan(x)]
    if not finite:
        return math.nan, math.nan
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    return _percentile(finite, tail), _percentile(finite, 100.0 - tail)


def baseline_report(services: Services, evaluation_id: int, n_boot: int, seed: int
                    ) -> BaselineReport:
    out = BaselineReport()
    began = time.perf_counter()
    edges = [0.5 + 0.5 * b / N_BINS for b in range(N_BINS + 1)]
    score, ll, br, code, binx, conf, group, consistent = [], [], [], [], [], [], [], []
    keys: list[str] = []
    key_index: dict[str, int] = {}
    with services.db.read() as s:
        for v in s.exec(select(VerdictRow).where(VerdictRow.evaluation_id == evaluation_id)):
            item = s.get(PairItemRow, v.item_id)
            assert item is not None
            p, h = v.p_a, item.human_label
            d = _decision(p)
            score.append(1.0 - abs(d - h))
            pc = min(max(p, EPS), 1.0 - EPS)
            ll.append(-(h * math.log(pc) + (1.0 - h) * math.log1p(-pc)))
            br.append((p - h) ** 2)
            code.append(int(d * 2) * 3 + int(h * 2))
            c = max(p, 1.0 - p)
            conf.append(c)
            binx.append(min(max(bisect.bisect_right(edges, c) - 1, 0), N_BINS - 1))
            key = v.principle_keys[0]  # k = 1
            values = [float(str(x["p_a"])) for x in v.variants if x.get("principle") == key]
            if key not in key_index:
                key_index[key] = len(keys)
                keys.append(key)
            # per-principle score: that principle's own p(A) against the human label
            group.append((key_index[key], 1.0 - abs(_decision(sum(values) / len(values)) - h)))
            assert v.p_a_ab is not None and v.p_a_ba is not None
            consistent.append(1.0 if _decision(v.p_a_ab) == _decision(v.p_a_ba) else 0.0)
    out.load_s = time.perf_counter() - began
    n, g = len(score), len(keys)

    def metrics_of(idx: list[int] | range) -> dict[str, float | list[float]]:
        s_sum = ll_sum = br_sum = cons = 0.0
        cm = [0.0] * 9
        b_cnt, b_conf, b_acc = [0.0] * N_BINS, [0.0] * N_BINS, [0.0] * N_BINS
        g_cnt, g_acc = [0.0] * g, [0.0] * g
        for i in idx:
            si = score[i]
            s_sum += si
            ll_sum += ll[i]
            br_sum += br[i]
            cm[code[i]] += 1.0
            b = binx[i]
            b_cnt[b] += 1.0
            b_conf[b] += conf[i]
            b_acc[b] += si
            gi, gs = group[i]
            g_cnt[gi] += 1.0
            g_acc[gi] += gs
            cons += consistent[i]
        return {"accuracy": s_sum / n, "log_loss": ll_sum / n, "brier": br_sum / n,
                "kappa": _kappa(cm, n),
                "ece": sum(abs(a - c) for a, c in zip(b_acc, b_conf, strict=True)) / n,
                "position_consistency": cons / n,
                "principle": [a / c if c else math.nan for a, c in zip(g_acc, g_cnt, strict=True)],
                "principle_n": g_cnt}

    began = time.perf_counter()
    point = metrics_of(range(n))
    out.point_s = time.perf_counter() - began
    began = time.perf_counter()
    rng = random.Random(seed)
    population = range(n)
    samples: dict[str, list[float]] = {m: [] for m in point if not m.startswith("principle")}
    g_samples: list[list[float]] = [[] for _ in range(g)]
    for _ in range(n_boot):
        m = metrics_of(rng.choices(population, k=n))
        for name, values in samples.items():
            value = m[name]
            assert isinstance(value, float)
            values.append(value)
        for j, value in enumerate(m["principle"]):  # type: ignore[arg-type]
            g_samples[j].append(value)
    out.bootstrap_s = time.perf_counter() - began
    for name in samples:
        value = point[name]
        assert isinstance(value, float)
        out.point[name] = value
        out.intervals[name] = _interval(samples[name])
    p_acc, p_n = point["principle"], point["principle_n"]
    assert isinstance(p_acc, list) and isinstance(p_n, list)
    for j, key in enumerate(keys):
        out.per_principle[key] = (int(p_n[j]), p_acc[j], *_interval(g_samples[j]))
    return out


# --- the fair peer: one SQL join and a numpy bincount bootstrap (issue 15) --------------------


def numpy_peer(db_path: Path, evaluation_id: int, n_boot: int, seed: int
               ) -> tuple[float, dict[str, tuple[float, float, float]]]:
    """What a competent analyst would write: one joined SELECT of the five columns, then the
    same metrics (accuracy with ties, κ, log loss, Brier, ECE, per-principle accuracy, position
    consistency) from per-item feature columns, and a bootstrap where each resample is a
    ``np.bincount`` of drawn indices times the feature matrix. Returns its time and
    {metric: (value, low, high)}."""
    import sqlite3

    began = time.perf_counter()
    conn = sqlite3.connect(db_path)
    rows = conn.execute(
        "SELECT v.p_a, v.p_a_ab, v.p_a_ba, i.human_label, json_extract(v.principle_keys, "
        "'$[0]') FROM verdict v JOIN pair_item i ON i.id = v.item_id WHERE v.evaluation_id = ? "
        "ORDER BY v.item_id", (evaluation_id,)).fetchall()
    conn.close()
    p, ab, ba, h = (np.array(c, dtype=np.float64) for c in list(zip(*rows, strict=True))[:4])
    _, group = np.unique([r[4] for r in rows], return_inverse=True)
    n, g = p.size, int(group.max()) + 1

    def dec(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0.5, 1.0, np.where(x < 0.5, 0.0, 0.5))

    d = dec(p)
    score = 1.0 - np.abs(d - h)
    pc = np.clip(p, EPS, 1 - EPS)
    conf = np.maximum(p, 1 - p)
    b = np.clip(np.searchsorted(np.linspace(0.5, 1.0, N_BINS + 1), conf, side="right") - 1,
                0, N_BINS - 1)
    code = (d * 2).astype(int) * 3 + (h * 2).astype(int)
    onehot_b = np.eye(N_BINS)[b]
    onehot_g = np.eye(g)[group]
    x = np.column_stack([score, -(h * np.log(pc) + (1 - h) * np.log1p(-pc)), (p - h) ** 2,
                         np.eye(9)[code], onehot_b * conf[:, None], onehot_b * score[:, None],
                         onehot_g, onehot_g * score[:, None],
                         (dec(ab) == dec(ba)).astype(np.float64)])
    rng = np.random.default_rng(seed)
    sums = np.empty((n_boot + 1, x.shape[1]))
    sums[0] = x.sum(0)
    for r in range(n_boot):
        sums[r + 1] = np.bincount(rng.integers(0, n, n), minlength=n) @ x
    cm = sums[:, 3:12]
    agree = cm[:, 0] + cm[:, 4] + cm[:, 8]
    chance = sum(cm[:, 3 * a:3 * a + 3].sum(1) * cm[:, [a, 3 + a, 6 + a]].sum(1)
                 for a in range(3))
    kappa = (n * agree - chance) / (n * n - chance)
    o = 12
    ece = np.abs(sums[:, o + N_BINS:o + 2 * N_BINS] - sums[:, o:o + N_BINS]).sum(1) / n
    o += 2 * N_BINS
    with np.errstate(invalid="ignore", divide="ignore"):
        principle = sums[:, o + g:o + 2 * g] / sums[:, o:o + g]
    values = {"accuracy": sums[:, 0] / n, "log_loss": sums[:, 1] / n, "brier": sums[:, 2] / n,
              "kappa": kappa, "ece": ece, "position_consistency": sums[:, -1] / n}
    for j in range(g):
        values[f"principle{j}"] = principle[:, j]
    tail = (1 - CONFIDENCE) / 2 * 100
    out = {k: (float(v[0]), *(float(q) for q in np.nanpercentile(v[1:], [tail, 100 - tail])))
           for k, v in values.items()}
    return time.perf_counter() - began, out


# --- comparison and recording ----------------------------------------------------------------


def report_estimates(r: Report) -> dict[str, Estimate]:
    out = {name: getattr(r.summary, name)
           for name in ("accuracy", "kappa", "log_loss", "brier", "ece")}
    assert r.position_consistency is not None
    out["position_consistency"] = r.position_consistency
    return out


def check_and_show(r: Report, b: BaselineReport) -> None:
    est = report_estimates(r)
    print(f"{'metric':<22}{'report value [95% CI]':>36}{'baseline value [95% CI]':>38}")
    for name, e in est.items():
        lo, hi = b.intervals[name]
        print(f"{name:<22}{e.value:>12.5f} [{e.low:.5f}, {e.high:.5f}]"
              f"{b.point[name]:>14.5f} [{lo:.5f}, {hi:.5f}]")
        assert math.isclose(e.value, b.point[name], rel_tol=1e-9, abs_tol=1e-9), name
    assert len(r.per_principle) == len(b.per_principle)
    for pa in r.per_principle:
        n, value, lo, hi = b.per_principle[pa.principle]
        assert pa.n == n and math.isclose(pa.accuracy.value, value, abs_tol=1e-9), pa.principle
    first = r.per_principle[0]
    n, value, lo, hi = b.per_principle[first.principle]
    print(f"{'principle ' + first.principle:<22}{first.accuracy.value:>12.5f} "
          f"[{first.accuracy.low:.5f}, {first.accuracy.high:.5f}]{value:>14.5f} "
          f"[{lo:.5f}, {hi:.5f}]   (n={n}; {len(r.per_principle)} principles, all points equal)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cstudio-bench-") as tmp:
        services = start(Settings(data_dir=Path(tmp), engine="tiny"))
        try:
            began = time.perf_counter()
            evaluation_id = build_store(services, N_ITEMS)
            build_s = time.perf_counter() - began
            db_mb = (Path(tmp) / "studio.db").stat().st_size / 1e6
            print(f"store: {N_ITEMS} items + verdicts written in {build_s:.1f} s "
                  f"({db_mb:.0f} MB database file)")
            report_times, report = [], None
            for _ in range(REPORT_ROUNDS):
                began = time.perf_counter()
                report = services.agreement.report(evaluation_id, n_boot=N_BOOT, seed=SEED)
                report_times.append(time.perf_counter() - began)
            assert report is not None and report.summary.n == N_ITEMS
            began = time.perf_counter()
            services.agreement.arrays(evaluation_id)
            report_load_s = time.perf_counter() - began
            report_s = statistics.median(report_times)
            print(f"report: {', '.join(f'{t:.2f}' for t in report_times)} s "
                  f"(median {report_s:.2f} s; of which loading ≈ {report_load_s:.2f} s)")
            # the fair peer and the report side by side, alternating, medians (issue 15)
            peer_times, side_report_times = [], []
            for _ in range(REPORT_ROUNDS):
                t_peer, peer = numpy_peer(Path(tmp) / "studio.db", evaluation_id, N_BOOT, SEED)
                peer_times.append(t_peer)
                began = time.perf_counter()
                services.agreement.report(evaluation_id, n_boot=N_BOOT, seed=SEED)
                side_report_times.append(time.perf_counter() - began)
            peer_s, side_report_s = (statistics.median(peer_times),
                                     statistics.median(side_report_times))
            print(f"numpy peer: {', '.join(f'{t:.2f}' for t in peer_times)} s; report "
                  f"{', '.join(f'{t:.2f}' for t in side_report_times)} s")
            for name, e in report_estimates(report).items():
                assert math.isclose(e.value, peer[name][0], abs_tol=1e-9), name
                print(f"  {name}: report [{e.low:.4f}, {e.high:.4f}], peer "
                      f"[{peer[name][1]:.4f}, {peer[name][2]:.4f}]")
            began = time.perf_counter()
            base = baseline_report(services, evaluation_id, BASELINE_BOOT, SEED)
            baseline_run_s = time.perf_counter() - began
        finally:
            services.close()
    scaled = BASELINE_BOOT != N_BOOT
    bootstrap_s = base.bootstrap_s * N_BOOT / BASELINE_BOOT
    baseline_s = base.load_s + base.point_s + bootstrap_s
    print(f"baseline: ORM loop {base.load_s:.1f} s, point sums {base.point_s:.2f} s, bootstrap "
          f"{base.bootstrap_s:.1f} s for {BASELINE_BOOT} resamples"
          + (f" (scaled linearly to {N_BOOT}: {bootstrap_s:.1f} s)" if scaled else ""))
    check_and_show(report, base)
    speedup = baseline_s / report_s
    figures = {
        "report_s": report_s, "report_min_s": min(report_times),
        "report_load_s": report_load_s, "baseline_s": baseline_s,
        "baseline_load_s": base.load_s, "baseline_point_s": base.point_s,
        "baseline_bootstrap_s": bootstrap_s, "speedup": speedup, "verdicts": N_ITEMS,
        "n_boot": N_BOOT, "baseline_bootstrap_resamples": BASELINE_BOOT,
        "baseline_bootstrap_scaled": float(scaled), "report_rounds": REPORT_ROUNDS,
        "baseline_wall_s": baseline_run_s,
        "peer_s": peer_s, "report_vs_peer_s": side_report_s,
        "speedup_vs_peer": peer_s / side_report_s,
    }
    scaled_note = (f"; baseline bootstrap run with {BASELINE_BOOT} resamples and scaled "
                   f"linearly to {N_BOOT}" if scaled else "")
    note = os.environ.get("CSTUDIO_BENCH_NOTE", "shared machine, other work running")
    summary = (f"full agreement report for {N_ITEMS:,} stored verdicts: {report_s:.1f} s vs "
               f"per-row ORM loop {baseline_s:.0f} s: {speedup:.0f}× (goal ≥ 20×){scaled_note}; "
               f"vs the fair peer (one SQL join + numpy bincount bootstrap of the same metrics) "
               f"{peer_s:.2f} s vs {side_report_s:.2f} s: {peer_s / side_report_s:.2f}× "
               f"(goal ≥ 1×); {note}")
    record(name="agreement_report_100k", figures=figures, unit="seconds", command=COMMAND,
           summary=summary)
    print(summary)
    print(figures)


if __name__ == "__main__":
    main()
