"""The process the kill test SIGKILLs: it writes through the studio's own services as fast as
it can and acknowledges each write on stdout (one flushed line) only after the service call,
and so the commit, has returned.

Lines: ``ready``; ``version <id> <content_hash>``; ``log <id> <output>``;
``verdicts <evaluation_id> <count>`` (the run's verdict count after a committed chunk).

Run by bench/bench_kill_durability.py: ``python -m bench.kill_writer --data-dir D [--url U]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from dataclasses import dataclass, field

from backend.access import local_admin
from backend.cai.steplog import StepRecord
from backend.engines.base import EngineInfo
from backend.engines.scripted import ScriptedEngine
from backend.services.container import build_services
from backend.services.evaluations import EvaluationConfig
from backend.settings import Settings

ACTOR = local_admin("kill-test")


@dataclass
class CountingEngine(ScriptedEngine):
    """The product's scripted engine without call records: writes cost what the store costs,
    nothing more. p(A) alternates between 0.3 and 0.7."""

    info: EngineInfo = field(
        default_factory=lambda: EngineInfo("scripted", "kill-test counting engine", True))
    record_calls: bool = False

    def p_a(self, text: str) -> float:
        self.counter += 1
        return 0.3 + 0.4 * (self.counter % 2)


def ack(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--url", default=None)
    parser.add_argument("--dataset-id", type=int, required=True)
    args = parser.parse_args(argv)
    settings = Settings(data_dir=args.data_dir, database_url=args.url, user="kill-test",
                        seed_default=False, embedded_worker=False)
    services = build_services(settings)
    engine = CountingEngine()
    services.engines.use(engine, note="kill test")
    cid = services.constitutions.list_all()[0].id
    logger = services.critique_log.logger(ACTOR.name)
    config = EvaluationConfig(sample_size=8, batch_size=4)
    ack("ready")
    run_tag = time.time_ns()  # each writer's titles differ from the head it starts from
    for n in itertools.count():
        # a new constitution version
        head = services.constitutions.head(cid)
        first = dataclasses.replace(head.content.principles[0], title=f"kill test {run_tag}-{n}")
        content = dataclasses.replace(head.content,
                                      principles=(first, *head.content.principles[1:]))
        saved = services.constitutions.save(cid, head.info.id, content,
                                            f"save {n}", actor=ACTOR)
        ack(f"version {saved.info.id} {saved.info.content_hash}")
        # critique-log records, as the Playground writes them (one transaction per batch)
        outputs = [f"kill-{run_tag}-{n}-{k}" for k in range(3)]
        chain = f"kill-{run_tag}-{n}"[:40]
        ids = logger.log([StepRecord(kind="critique", chain_id=chain, prompt_sent="p", output=o,
                                     engine=engine.info, params={},
                                     constitution_version_id=saved.info.id)
                          for o in outputs])
        for record_id, output in zip(ids, outputs, strict=True):
            ack(f"log {record_id} {output}")
        # an agreement run judged in chunks: each chunk's verdicts commit with the progress
        run = services.evaluations.create(dataset_id=args.dataset_id, version_id=saved.info.id,
                                          config=dataclasses.replace(config, seed=n),
                                          actor=ACTOR)
        def on_chunk(done: int, _total: int, run_id: int = run.id) -> None:
            ack(f"verdicts {run_id} {done}")

        services.evaluations.run(run.id, actor=ACTOR, on_chunk=on_chunk)


if __name__ == "__main__":
    main()
