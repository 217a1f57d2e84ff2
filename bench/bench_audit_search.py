"""Audit search and evidence export benchmark on 1,000,000 critique-log records.

A temporary SQLite store is migrated to head and filled with 1,000,000 critique-log rows
(executemany in one transaction per 50,000 rows; the FTS5 insert trigger indexes each row as
the studio does). The text is realistic-ish: prompts and outputs of 30–60 words drawn from a
Zipf-like vocabulary of 20,000 words plus a few fixed phrases, kinds and principle keys mixed
as an SL-CAI run writes them.

Search, measured side by side in one run on the same database:

- fts: ``AuditSearchService.search`` as the Audit tab calls it: the first page of 25 (newest
  first) and the match count (capped at 10,001), for single words of varied frequency (rare,
  medium, common), two-word queries, phrases and prefixes. Each query runs ``ROUNDS`` times;
  p50/p95 over all runs.
- like: the same work with ``LIKE '%word%'`` over prompt and output: the first page (newest
  first; it stops after 25 matches) plus the capped count (a scan until 10,001 matches or the
  end). Only single words (LIKE has no word semantics); the ratio compares the two on those same
  single-word queries (median of ``like`` ÷ median of ``fts`` per query, then the median).

Export: in a fresh subprocess each (so peak RSS is that export's alone), the selection of the
first 10,000 and the first 100,000 records (marker words in those rows) is exported to JSONL +
CSV + manifest + zip; peak RSS (ru_maxrss) and the RSS before exporting are reported. Rows are
sealed once before (that time is reported too), as `cstudio serve` does at start.

Issue 15 adds prefixes of 1, 2, 3 and 4 letters (a 1-letter prefix is answered at once with
the minimum-length message), more phrases, and filters combined with prefixes and phrases;
``prefix_p95_ms`` is the p95 over the prefix queries, ``all_queries_p95_ms`` over every query.
The temporary database is removed at the end (unless CSTUDIO_BENCH_DB names one to reuse).

Run: python -m bench.bench_audit_search   (CSTUDIO_BENCH_RECORDS=N for a smaller run)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import record
from db import migrate
from db.audit_search_repo import SearchFilters, like_scan_ids
from db.engine import Database, sqlite_url

N = int(os.environ.get("CSTUDIO_BENCH_RECORDS", "1000000"))
BATCH = 50_000
ROUNDS = 3
KINDS = ("response", "critique", "revision", "critique", "revision", "cot", "verdict")
KEYS = [f"harmful{i}" for i in range(16)]
PHRASES = ["the assistant should refuse", "this response is harmful", "a safer answer would",
           "explain the risks", "illegal activity", "medical advice"]


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(words)


def generate(path: Path) -> tuple[float, list[str]]:
    rng = random.Random(0)
    vocab = vocabulary(rng)
    weights = [1.0 / (i + 1) for i in range(len(vocab))]  # Zipf-like
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    start = time.perf_counter()
    base = time.time() - N  # one record per second, oldest first
    for first in range(0, N, BATCH):
        rows = []
        count = min(BATCH, N - first)
        prompt_words = rng.choices(vocab, weights, k=count * 40)
        output_words = rng.choices(vocab, weights, k=count * 30)
        for j in range(count):
            i = first + j
            markers = (" exportten" if i < 10_000 else "") + (" exporthundred"
                                                                if i < 100_000 else "")
            prompt = ("Human: " + " ".join(prompt_words[j * 40:(j + 1) * 40]) + "\n\n"
                      + rng.choice(PHRASES) + markers)
            output = " ".join(output_words[j * 30:(j + 1) * 30]) + ". " + rng.choice(PHRASES)
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(base + i)) + ".000000"
            rows.append((created, KINDS[i % len(KINDS)], f"chain{i // 7}",
                         None, i % 4, None, rng.choice(KEYS), "openai_compat", "bench-model",
                         '{"max_tokens": 128}', 0, prompt, output, None, 0.05, "bench",
                         hashlib.sha256(output.encode()).hexdigest()))
        conn.executemany(
            "INSERT INTO critique_log (created_at, kind, chain_id, parent_id, round, "
            "constitution_version_id, principle_key, engine_kind, model, params, seed, "
            "prompt_sent, output, probabilities, latency_s, actor, record_hash) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.commit()
        print(f"  {first + count:,} rows ({time.perf_counter() - start:.0f} s)", flush=True)
    conn.close()
    return time.perf_counter() - start, vocab


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def like_work(db: Database, needle: str) -> None:
    """The LIKE equivalent of one search: first page of 25 plus the count capped at 10,001."""
    with db.read() as s:
        like_scan_ids(s, needle=needle, limit=26)
        like_scan_ids(s, needle=needle, limit=10_001)


EXPORT_CHILD = """
import json, resource, sys, time
from backend.access import local_admin
from backend.services.evidence_export import EvidenceExportService
from db.audit_search_repo import SearchFilters
from db.engine import Database
db = Database(sys.argv[1])
service = EvidenceExportService(db, __import__("pathlib").Path(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result = service.export(SearchFilters(query=sys.argv[3]), actor=local_admin("bench"),
                        name=sys.argv[3])
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"records": result.count, "seconds": elapsed, "rss_before_kb": before,
                  "peak_rss_kb": peak}))
"""


def export_child(url: str, exports: Path, query: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", EXPORT_CHILD, url, str(exports), query],
                         check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    data: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def main() -> None:
    from backend.services.audit import AuditService
    from backend.services.audit_search import AuditSearchService
    from backend.services.constitutions import ConstitutionService

    reuse = os.environ.get("CSTUDIO_BENCH_DB")
    if reuse:  # a database generated by an earlier run: rebuild the audit tables and index
        path = Path(reuse)
        tmp = path.parent
        db = Database(sqlite_url(path))
        start = time.perf_counter()
        if not os.environ.get("CSTUDIO_BENCH_KEEP_INDEX"):
            migrate.downgrade(db, "0004")
            migrate.upgrade(db)
        gen_s = time.perf_counter() - start
        vocab = vocabulary(random.Random(0))
        print(f"Rebuilt the index of {path} in {gen_s:.0f} s", flush=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="cstudio-bench-audit-"))
        path = tmp / "bench.db"
        db = Database(sqlite_url(path))
        migrate.upgrade(db)
        print(f"Generating {N:,} critique-log records in {path} …", flush=True)
        gen_s, vocab = generate(path)
    service = AuditSearchService(db, ConstitutionService(db))

    rare, medium, common = vocab[-1], vocab[len(vocab) // 50], vocab[0]
    with db.read() as s:
        for w in (rare, medium, common):
            with_w = len(like_scan_ids(s, needle=w, limit=N))
            print(f"  '{w}': {with_w:,} records contain it (as a substring)")
    singles = [rare, medium, common, vocab[len(vocab) // 10], "exportten"]
    others = [f"{vocab[3]} {vocab[40]}", '"this response is harmful"', f"{vocab[7][:4]}*",
              f"{medium} refuse", '"illegal activity"']
    # Issue 15: 1-, 2- and 3-letter prefixes (1 letter is refused with a message), more
    # phrases, and filters with prefixes and phrases.
    prefixes = ["a*", "s*", "t*", "ab*", "st*", "re*", "com*", "pre*", "sta*",
                f"{common[:2]}*", f"{medium[:3]}*", f"{vocab[7][:4]}*"]
    phrases = ['"a safer answer would"', '"explain the risks"', '"medical advice"',
               f'"{vocab[0]} {vocab[1]}"']
    filtered = [SearchFilters(query="st*", principle_key="harmful3"),
                SearchFilters(query="re*", kind="critique"),
                SearchFilters(query='"illegal activity"', kind="revision"),
                SearchFilters(query=f"{medium} ab*", principle_key="harmful5"),
                SearchFilters(query="", principle_key="harmful7", kind="verdict")]
    fts_times: dict[str, list[float]] = {}
    like_times: dict[str, list[float]] = {}
    for query in prefixes + phrases:
        fts_times[query] = [timed(service.search, SearchFilters(query=query))
                            for _ in range(ROUNDS)]
        print(f"  fts {query!r}: {statistics.median(fts_times[query]) * 1000:.1f} ms",
              flush=True)
    for f in filtered:
        label = f"{f.query!r} {f.as_dict()}"
        fts_times[label] = [timed(service.search, f) for _ in range(ROUNDS)]
        print(f"  fts {label}: {statistics.median(fts_times[label]) * 1000:.1f} ms", flush=True)
    for query in singles + others:
        fts_times[query] = [timed(service.search, SearchFilters(query=query))
                            for _ in range(ROUNDS)]
        print(f"  fts {query!r}: {statistics.median(fts_times[query]) * 1000:.1f} ms",
              flush=True)
        if query in singles[:3]:  # with a principle filter too
            filtered = SearchFilters(query=query, principle_key="harmful3")
            fts_times[query + " [+principle]"] = [timed(service.search, filtered)
                                                 for _ in range(ROUNDS)]
            print(f"  fts {query!r} + principle: "
                  f"{statistics.median(fts_times[query + ' [+principle]']) * 1000:.1f} ms",
                  flush=True)
    for query in singles:
        like_times[query] = [timed(like_work, db, query)]
        print(f"  like {query!r}: {statistics.median(like_times[query]) * 1000:.0f} ms",
              flush=True)
    all_fts = sorted(t for ts in fts_times.values() for t in ts)
    p50 = statistics.median(all_fts) * 1000
    p95 = all_fts[max(0, int(len(all_fts) * 0.95) - 1)] * 1000
    prefix_all = sorted(t for q, ts in fts_times.items() if "*" in q for t in ts)
    prefix_p95 = prefix_all[max(0, int(len(prefix_all) * 0.95) - 1)] * 1000
    ratios = [statistics.median(like_times[q]) / statistics.median(fts_times[q])
              for q in singles]
    ratio = statistics.median(ratios)
    for q in singles:
        print(f"  {q!r}: fts {statistics.median(fts_times[q]) * 1000:.1f} ms, like "
              f"{statistics.median(like_times[q]) * 1000:.0f} ms")
    print(f"FTS p50 {p50:.1f} ms, p95 {p95:.1f} ms; LIKE/FTS median ratio {ratio:.0f}x "
          f"(min {min(ratios):.0f}x)", flush=True)

    search_figures = {"records": N, "build_s": gen_s, "fts_p50_ms": p50, "fts_p95_ms": p95,
                      "prefix_p95_ms": prefix_p95, "all_queries_p95_ms": p95,
                      "queries": len(fts_times),
                      "like_over_fts_median_x": ratio, "like_over_fts_min_x": min(ratios)}
    note = os.environ.get("CSTUDIO_BENCH_NOTE", "shared machine, other work running")
    record("audit_search", search_figures, "ms / x / s", "python -m bench.bench_audit_search",
           f"search p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(fts_times)} queries (words, "
           f"1-4 letter prefixes, phrases, filters), prefixes p95 {prefix_p95:.1f} ms, "
           f"{N:,} records (goal p95 < 50 ms); LIKE scan {ratio:.0f}x slower, median over "
           f"single words (goal ≥ 50x); {note}")
    if os.environ.get("CSTUDIO_BENCH_SKIP_EXPORT"):
        db.dispose()
        if not reuse:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    seal_start = time.perf_counter()
    AuditService(db).seal()
    seal_s = time.perf_counter() - seal_start
    print(f"Sealed {N:,} rows in {seal_s:.0f} s", flush=True)
    db.dispose()
    small = export_child(sqlite_url(path), tmp / "exports", "exportten")
    large = export_child(sqlite_url(path), tmp / "exports", "exporthundred")
    print(f"Export 10k: {small}\nExport 100k: {large}", flush=True)

    figures = {
        "records": N, "seal_s": seal_s,
        "export_10k_s": small["seconds"], "export_10k_peak_rss_mb": small["peak_rss_kb"] / 1024,
        "export_100k_s": large["seconds"],
        "export_100k_peak_rss_mb": large["peak_rss_kb"] / 1024,
        "export_rss_before_mb": large["rss_before_kb"] / 1024,
    }
    assert small["records"] == min(N, 10_000) and large["records"] == min(N, 100_000)
    summary = (f"export peak RSS {figures['export_10k_peak_rss_mb']:.0f} MB for 10k vs "
               f"{figures['export_100k_peak_rss_mb']:.0f} MB for 100k records (of {N:,})")
    record("audit_export", figures, "s / MB", "python -m bench.bench_audit_search", summary)
    print(summary)
    if not reuse:  # the temporary database (about 1.2 GB at 1M records) goes
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
