"""The reward-model benchmark's extra training pairs never reach a scored split."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from bench.bench_reward_model import pair_key, read_lines, split_lines, with_extra


def _line(chosen: str, rejected: str) -> str:
    return json.dumps({"chosen": chosen, "rejected": rejected}) + "\n"


def test_extra_pairs_join_train_but_never_a_held_out_pair(tmp_path: Path) -> None:
    lines = [_line(f"\n\nHuman: q{i}\n\nAssistant: good", f"\n\nHuman: q{i}\n\nAssistant: bad")
             for i in range(20)]
    train, val, test = split_lines(lines, seed=0, n_val=5, n_test=5)
    # the extra file repeats a test pair (with other spacing) and a train pair, and adds two
    repeated_test = json.dumps(json.loads(test[0]), indent=1).replace("\n", " ") + "\n"
    new = [_line("\n\nHuman: new\n\nAssistant: yes", "\n\nHuman: new\n\nAssistant: no"),
           _line("\n\nHuman: other\n\nAssistant: yes", "\n\nHuman: other\n\nAssistant: no")]
    extra_file = tmp_path / "more.jsonl.gz"
    with gzip.open(extra_file, "wt", encoding="utf-8") as f:
        f.write("".join([repeated_test, train[0], *new, new[0], "\n"]))
    extra = read_lines(extra_file)
    assert len(extra) == 5  # the blank line is skipped
    grown = with_extra(train, extra, val + test)
    assert grown[:len(train)] == train
    assert grown[len(train):] == new  # each new pair once, in file order
    held = {pair_key(x) for x in val + test}
    assert not held & {pair_key(x) for x in grown}
