"""Kill test: SIGKILL a process that writes through the studio's services (constitution
versions, critique-log records, verdict chunks) at random moments (uniform in 0..max-delay
after its first acknowledged write), N times; after each kill
reopen the store and check that every write it acknowledged is there, unchanged, and that the
audit chain, version hashes, critique-log hashes and record seals verify.

    python -m bench.bench_kill_durability [--kills 100] [--database-url URL] [--seed 0]

Without --database-url the store is a SQLite file (WAL, synchronous=FULL) in a temp folder.
With one, it must name an empty PostgreSQL database the script may fill.
The result is written to bench/results/kill_durability[_postgresql].json and
docs/benchmarks.md. tests/bench/test_kill_durability.py runs a 5-kill version in the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import col

from backend.access import local_admin
from backend.services.audit import AuditService
from backend.services.container import start
from backend.settings import Settings
from db.constitution_models import ConstitutionVersion
from db.critique_log_models import CritiqueLogRecord
from db.engine import Database
from db.evaluation_models import VerdictRow

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class KillResult:
    kills: int = 0
    acknowledged: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    verify_failures: list[str] = field(default_factory=list)
    killed_mid_write: int = 0  # kills whose writer had acknowledged writes (all, by design)

    @property
    def total_acknowledged(self) -> int:
        return sum(self.acknowledged.values())

    @property
    def ok(self) -> bool:
        return not self.lost and not self.verify_failures


def _pairs_jsonl(n: int = 24) -> bytes:
    rows = [{"prompt": f"Question {i}: how do I stay safe?", "chosen": f"Helpful answer {i}.",
             "rejected": f"Unhelpful answer {i}."} for i in range(n)]
    return "\n".join(json.dumps(r) for r in rows).encode("utf-8")


def prepare_store(data_dir: Path, url: str | None) -> int:
    """Seed the default constitution and a small pairs dataset; returns the dataset id."""
    settings = Settings(data_dir=data_dir, database_url=url, user="kill-test",
                        embedded_worker=False)
    services = start(settings)
    try:
        info = services.datasets.import_file(
            "pairs.jsonl", _pairs_jsonl(), "jsonl", actor=local_admin("kill-test"),
            mapping={"prompt": "prompt", "response_a": "chosen", "response_b": "rejected"})
        return info.id
    finally:
        services.close()


def _read_lines(stream: object, lines: list[str]) -> None:
    buffer = b""
    fd = stream.fileno()  # type: ignore[attr-defined]
    while chunk := os.read(fd, 65536):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        lines.extend(c.decode("utf-8") for c in complete)
    # a partial last line was never acknowledged: dropped


def one_kill(data_dir: Path, url: str | None, dataset_id: int, delay_s: float,
             result: KillResult) -> None:
    argv = [sys.executable, "-m", "bench.kill_writer", "--data-dir", str(data_dir),
            "--dataset-id", str(dataset_id)]
    if url:
        argv += ["--url", url]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(child.stdout, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while len(lines) < 2:  # "ready" and the first acknowledged write: it is in its loop
        if child.poll() is not None:
            err = child.stderr.read().decode() if child.stderr else ""
            raise RuntimeError(f"the writer exited before writing: {err[-3000:]}")
        if time.monotonic() > deadline:
            child.kill()
            raise RuntimeError("the writer wrote nothing in 120 s")
        time.sleep(0.005)
    time.sleep(delay_s)
    if child.poll() is not None:
        err = child.stderr.read().decode() if child.stderr else ""
        raise RuntimeError(f"the writer died on its own: {err[-3000:]}")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    reader.join(timeout=10)
    if child.stderr:
        child.stderr.close()
    result.kills += 1
    acks = [line.split(" ") for line in lines if line != "ready"]
    if acks:
        result.killed_mid_write += 1
    check_acknowledged(data_dir, url, acks, result)


def check_acknowledged(data_dir: Path, url: str | None, acks: list[list[str]],
                       result: KillResult) -> None:
    db = Database(url or f"sqlite:///{data_dir / 'studio.db'}")
    try:
        if db.dialect == "sqlite":
            conn = sqlite3.connect(data_dir / "studio.db")
            status = conn.execute("PRAGMA integrity_check").fetchone()[0]
            conn.close()
            if status != "ok":
                result.verify_failures.append(f"integrity_check: {status}")
        with db.read() as s:
            for parts in acks:
                kind = parts[0]
                result.acknowledged[kind] += 1
                if kind == "version":
                    row = s.get(ConstitutionVersion, int(parts[1]))
                    if row is None or row.content_hash != parts[2]:
                        result.lost.append(" ".join(parts))
                elif kind == "log":
                    rec = s.get(CritiqueLogRecord, int(parts[1]))
                    if rec is None or rec.output != parts[2]:
                        result.lost.append(" ".join(parts))
                elif kind == "verdicts":
                    count = s.execute(select(func.count()).select_from(VerdictRow).where(
                        col(VerdictRow.evaluation_id) == int(parts[1]))).scalar_one()
                    if count < int(parts[2]):
                        result.lost.append(" ".join(parts))
        report = AuditService(db).verify()
        if not report.ok:
            result.verify_failures.extend(report.problems[:3])
    finally:
        db.dispose()


def run_kills(kills: int, data_dir: Path, url: str | None = None, seed: int = 0,
              max_delay_s: float = 1.5) -> KillResult:
    dataset_id = prepare_store(data_dir, url)
    rng = random.Random(seed)
    result = KillResult()
    for _ in range(kills):
        one_kill(data_dir, url, dataset_id, rng.uniform(0.0, max_delay_s), result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=1.5)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cstudio-kill-") as tmp:
        result = run_kills(args.kills, Path(tmp) / "data", args.database_url, args.seed,
                           args.max_delay)
    wall = time.monotonic() - started
    kind = "postgresql" if args.database_url else "sqlite"
    print(f"{result.kills} kills, {result.total_acknowledged} acknowledged writes "
          f"({dict(result.acknowledged)}), {len(result.lost)} lost, "
          f"{len(result.verify_failures)} verification failures, {wall:.0f} s")
    for line in (result.lost + result.verify_failures)[:20]:
        print("  ", line)
    from bench.results import record

    name = "kill_durability" if kind == "sqlite" else "kill_durability_postgresql"
    command = "python -m bench.bench_kill_durability --kills " + str(args.kills)
    if args.database_url:
        command += " --database-url postgresql+psycopg://…"
    record(name, {
        "kills": result.kills,
        "acknowledged_writes": result.total_acknowledged,
        "acknowledged_versions": result.acknowledged["version"],
        "acknowledged_log_records": result.acknowledged["log"],
        "acknowledged_verdict_chunks": result.acknowledged["verdicts"],
        "lost": len(result.lost),
        "verification_failures": len(result.verify_failures),
        "kills_after_first_ack": result.killed_mid_write,
        "wall_s": wall,
    }, "count", command,
        f"SIGKILL of a {kind} writer at random moments ×{result.kills}: "
        f"{len(result.lost)} of {result.total_acknowledged} acknowledged writes lost, "
        f"chain verified after every kill: {'yes' if not result.verify_failures else 'NO'} "
        "(goal: 0 lost)")
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
