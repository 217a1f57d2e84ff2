"""Disagreement browser pages at 1,000,000 verdicts: p95 time per page, and the old way.

A temporary SQLite store (``container.start``, as ``cstudio serve`` opens it, so every migration
and index is there) gets a dataset of N pair items and one finished evaluation with a verdict
per item, generated inside SQLite with bulk ``INSERT ... SELECT`` statements (a recursive
counter; ``random()`` for the probabilities; 16 principles, k = 1; 5 % tied human labels).
The verdict rows carry what the run loop stores (confidence, disagrees, principle key).

Then ``services.agreement.disagreements`` (what the Agreement tab calls) is timed over a set of
page requests as the tab makes them: the first page, later pages (offset 200 and 2,000), a
confidence band, one principle, one human label, all verdicts (not only disagreements), and
combinations; each request ``ROUNDS`` times, as a user pages back and forth. Figures:
``p95_ms`` and ``median_ms`` over all timed requests, ``max_ms``, and
``first_request_p95_ms`` over each request's first call only (a filter's match count is
computed on its first page and kept for the run's current progress, so later pages skip it).
``--old`` also times the former implementation (load every verdict and item, filter in
Python) once, for the record. The temporary database is removed.

Run: python -m bench.bench_disagreement_page [--verdicts 1000000]
"""

# The generating SQL is built from integers and the constitution's own keys, never user text.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from backend.cai.default_constitution import default_constitution
from backend.services.container import start
from backend.settings import Settings
from bench.results import record
from db.dataset_models import PairDataset

COMMAND = "python -m bench.bench_disagreement_page"
ROUNDS = 5


def build(services: object, n: int) -> int:
    db = services.db  # type: ignore[attr-defined]
    version = services.constitutions.list_all()[0].head.id  # type: ignore[attr-defined]
    keys = [p.key for p in default_constitution().principles]
    key_case = "CASE x % {} {} END".format(
        len(keys), " ".join(f"WHEN {i} THEN '{k}'" for i, k in enumerate(keys)))
    counter = (f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) ")
    with db.write() as s:
        row = PairDataset(name="bench-1m", source_format="bench", source_name="synthetic",
                          source_sha256="0" * 64, item_count=n, created_by="bench")
        s.add(row)
        s.flush()
        ds = row.id
    with db.engine.begin() as conn:
        conn.execute(text(
            counter + "INSERT INTO pair_item (dataset_id, position, prompt, response_a, "
            "response_b, human_label, swapped, meta, content_hash) SELECT "
            f"{ds}, x, 'Question ' || x || ': my neighbour parks across my driveway; what now?', "
            "'Answer ' || x || ': leave a polite note, then talk to them.', "
            "'Answer ' || x || ': let the air out of their tyres.', "
            "CASE WHEN x % 20 = 0 THEN 0.5 WHEN x % 2 = 0 THEN 1.0 ELSE 0.0 END, 0, '{}', "
            "printf('%064d', x) FROM c"))
        first = conn.execute(text(f"SELECT min(id) FROM pair_item WHERE dataset_id = {ds}")
                             ).scalar()
        conn.execute(text(
            "INSERT INTO evaluation (name, dataset_id, constitution_version_id, engine_kind, "
            "model, config, item_ids, status, done_count, total_count, error, created_by, "
            f"created_at, updated_at) SELECT 'bench-1m', {ds}, {version}, 'tiny', 'bench', "
            "'{\"k_principles\": 1}', (SELECT json_group_array(id) FROM pair_item WHERE "
            f"dataset_id = {ds}), 'done', {n}, {n}, '', 'bench', '2026-11-28 00:00:00.000000', "
            "'2026-11-28 00:00:00.000000'"))
        ev = conn.execute(text("SELECT max(id) FROM evaluation")).scalar()
        # p(A) leans towards the human label (about 75 % agreement), rounded to 1e-4
        conn.execute(text(
            counter + ", p AS MATERIALIZED (SELECT x, i.id AS item, i.human_label AS h, "
            "round(min(max((abs(random()) % 10000) / 10000.0 * 0.9 + "
            "CASE WHEN i.human_label = 1.0 THEN 0.25 WHEN i.human_label = 0.0 THEN -0.15 "
            "ELSE 0.0 END, 0.0), 1.0), 4) AS pa FROM c JOIN pair_item i ON i.id = "
            f"{first} + x - 1) "
            "INSERT INTO verdict (evaluation_id, item_id, p_a, p_a_ab, p_a_ba, principle_keys, "
            "variants, record_ids, created_at, confidence, disagrees, principle_key, "
            "human_label) SELECT "
            f"{ev}, item, pa, pa, pa, json_array({key_case}), '[]', '[]', "
            "'2026-11-28 00:00:00.000000', max(pa, 1.0 - pa), "
            "CASE WHEN pa > 0.5 THEN h <> 1.0 WHEN pa < 0.5 THEN h <> 0.0 ELSE h <> 0.5 END, "
            f"{key_case}, h FROM p"))
        conn.execute(text("ANALYZE"))
    return int(ev)


def requests(principle: str) -> list[dict[str, object]]:
    return [
        {},  # the tab's first page: disagreements, most confident first
        {"offset": 200}, {"offset": 2000},
        {"min_confidence": 0.6, "max_confidence": 0.8},
        {"principle": principle}, {"principle": principle, "offset": 200},
        {"human_label": 0.0}, {"human_label": 0.5},
        {"only_disagreements": False}, {"only_disagreements": False, "offset": 2000},
        {"only_disagreements": False, "human_label": 1.0, "min_confidence": 0.7},
        {"principle": principle, "human_label": 1.0, "min_confidence": 0.55},
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--verdicts", type=int, default=1_000_000)
    parser.add_argument("--old", action="store_true", help="also time the former Python filter")
    parser.add_argument("--note", default="shared machine, other work running")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cstudio-bench-dis-"))
    try:
        services = start(Settings(data_dir=tmp, engine="tiny", user="bench"))
        t0 = time.perf_counter()
        run = build(services, args.verdicts)
        print(f"built {args.verdicts} verdicts in {time.perf_counter() - t0:.1f} s")
        principle = default_constitution().principles[3].key
        times: list[float] = []
        first: list[float] = []  # each request's first time (its filter's count not cached)
        for req in requests(principle):
            for k in range(ROUNDS):
                start_t = time.perf_counter()
                rows, total = services.agreement.disagreements(run, limit=20, **req)  # type: ignore[arg-type]
                times.append((time.perf_counter() - start_t) * 1000)
                if k == 0:
                    first.append(times[-1])
            print(f"{req}: {len(rows)} rows of {total}, {min(times[-ROUNDS:]):.1f}-"
                  f"{max(times[-ROUNDS:]):.1f} ms")
        figures = {"p95_ms": statistics.quantiles(times, n=20)[-1],
                   "median_ms": statistics.median(times), "max_ms": max(times),
                   "first_request_p95_ms": statistics.quantiles(first, n=20)[-1],
                   "verdicts": args.verdicts}
        if args.old:
            figures["old_first_page_s"] = _old_first_page(services, run)
        services.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(figures)
    record("disagreement_page", figures, "ms per page",
           f"{COMMAND} --verdicts {args.verdicts}" + (" --old" if args.old else ""),
           f"{len(requests('x'))} page requests x {ROUNDS} over {args.verdicts:,} verdicts, "
           f"paged in SQL, counts from verdict_count; goal p95 <= 50 ms ({args.note})")


def _old_first_page(services: object, run: int) -> float:
    """The former implementation: every verdict and item loaded, filtered in Python."""
    from backend.cai import metrics
    from db import dataset_repo
    from db import evaluation_repo as repo

    db = services.db  # type: ignore[attr-defined]
    start_t = time.perf_counter()
    with db.read() as s:
        verdicts = repo.evaluation_verdicts(s, evaluation_id=run)
        selected = [(max(v.p_a, 1 - v.p_a), v) for v in verdicts]
        ids = [v.item_id for _, v in selected]
        items = {r.id: r for r in dataset_repo.items_by_ids(s, ids=ids)}
    rows = [v for _, v in sorted(selected, key=lambda cv: -cv[0])
            if metrics.item_scores([v.p_a], [items[v.item_id].human_label])[0] != 1.0]
    assert rows
    return time.perf_counter() - start_t


if __name__ == "__main__":
    main()
