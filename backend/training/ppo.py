"""A compact PPO with a value head (the paper's RL), since TRL no longer ships PPO.

Per step: sample one completion for each of ``batch_size`` prompts; score it with the weighted
reward models; per-token reward = −β·(log π − log π_ref) with the sequence score added at the
last token; advantages by GAE(γ, λ) over the completion tokens, whitened; then ``ppo_epochs``
passes of the clipped policy loss and the clipped value loss. β follows the adaptive KL
controller (Ziegler et al. 2019) when ``kl_target`` is set, else stays fixed. Checkpoints hold
the policy, the value head, the optimizer and the controller state, so a restart resumes.

Completions are sampled from exactly the distribution that is scored: softmax(logits / T) with
no top-k, top-p or repetition penalty (the model's own generation config is not used), and the
update scores log-probabilities at the same temperature T, for the policy and the reference.
The logged ``kl`` is then an unbiased estimate of KL(π ‖ π_ref) per completion: the mean over
the batch of Σ_t log π(y_t) − log π_ref(y_t) over the sampled tokens (``kl_k3``: the
non-negative k3 estimator Σ_t (r_t − 1) − log r_t, r_t = π_ref/π, also unbiased). Each
rollout and its reward score goes to the critique log (a sample of them when there are many).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.common.job_files import write_json_atomic
from backend.training import models, trainer_common
from backend.training.context import StageContext, StageResult
from backend.training.inputs import note_model
from backend.training.rl_common import RolloutLog, prompt_rows, reward_scorers


@dataclass
class KLController:
    """β: fixed, or adapted towards ``target`` by the proportional controller of Ziegler et al.
    (2019): e = clip(KL / target − 1, −0.2, 0.2) and β ← β·(1 + e·n / horizon), where n is the
    number of rollouts just scored and ``horizon`` is counted in rollouts. β can thus change by
    at most a factor e^0.2 over ``horizon`` rollouts, whatever the batch size."""

    value: float
    target: float | None = None
    horizon: int = 256  # rollouts

    def update(self, current_kl: float, n_steps: int) -> None:
        """``n_steps``: rollouts since the last update (the batch size)."""
        if self.target is None or self.target <= 0:
            return
        error = max(-0.2, min(0.2, current_kl / self.target - 1.0))
        self.value *= 1.0 + error * n_steps / max(1, self.horizon)


def masked_mean(x: Any, mask: Any) -> Any:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: Any, mask: Any) -> Any:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * (var + 1e-8).rsqrt() * mask


def gae(rewards: Any, values: Any, mask: Any, gamma: float, lam: float) -> tuple[Any, Any]:
    """(advantages, returns) over the completion tokens; masked positions contribute nothing."""
    import torch

    advantages = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], device=rewards.device)
    length = rewards.shape[1]
    for t in reversed(range(length)):
        next_value = values[:, t + 1] * mask[:, t + 1] if t + 1 < length else 0.0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        advantages[:, t] = last
    return advantages, (advantages + values) * mask


def clipped_losses(logp: Any, old_logp: Any, advantages: Any, values: Any, old_values: Any,
                   returns: Any, mask: Any, cliprange: float, cliprange_value: float
                   ) -> tuple[Any, Any, Any]:
    """(policy loss, value loss, clip fraction) of PPO-clip."""
    import torch

    ratio = torch.exp(logp - old_logp)
    pg = torch.max(-advantages * ratio,
                   -advantages * torch.clamp(ratio, 1 - cliprange, 1 + cliprange))
    v_clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    vf = 0.5 * torch.max((values - returns) ** 2, (v_clipped - returns) ** 2)
    clipfrac = masked_mean(((ratio - 1).abs() > cliprange).float(), mask)
    return masked_mean(pg, mask), masked_mean(vf, mask), clipfrac


class _Policy:
    """The causal LM with a scalar value head on its last hidden state."""

    def __init__(self, location: str, cfg: dict[str, Any], device: str) -> None:
        import torch

        model = models.load_causal_lm(location, dtype=models.torch_dtype_for(cfg))
        lora = models.lora_config(cfg, "CAUSAL_LM")
        if lora is not None:
            from peft import get_peft_model

            model = get_peft_model(model, lora)
        self.model = model.to(device)
        hidden = int(model.config.get_text_config().hidden_size)
        self.value_head = torch.nn.Linear(hidden, 1).to(device)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)

    def parameters(self) -> list[Any]:
        return [p for p in self.model.parameters() if p.requires_grad] + \
            list(self.value_head.parameters())

    def forward(self, ids: Any, attn: Any, prompt_len: int, temperature: float = 1.0
                ) -> tuple[Any, Any]:
        """(log-probs of the completion tokens at ``temperature``, values before each)."""
        logits, hidden = _forward(self.model, ids, attn, hidden=True)
        logp = _token_logp(logits, ids, prompt_len, temperature)
        values = self.value_head(hidden[:, prompt_len - 1:-1].float()).squeeze(-1).float()
        return logp, values


def _forward(model: Any, ids: Any, attn: Any, hidden: bool = False) -> tuple[Any, Any]:
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=attn, position_ids=position_ids,
                output_hidden_states=hidden, use_cache=False)
    return out.logits, (out.hidden_states[-1] if hidden else None)


def _token_logp(logits: Any, ids: Any, prompt_len: int, temperature: float = 1.0) -> Any:
    """log softmax(logits / T) of each completion token: the distribution it was sampled from."""
    import torch

    logp = torch.log_softmax(logits[:, prompt_len - 1:-1].float() / temperature, dim=-1)
    return logp.gather(-1, ids[:, prompt_len:].unsqueeze(-1)).squeeze(-1)


def sampling_config(tokenizer: Any, temperature: float, max_new_tokens: int) -> Any:
    """Plain ancestral sampling from softmax(logits / T): no top-k (transformers' default is
    50), top-p, min-p, typical-p or repetition penalty, whatever the model's own
    generation_config says, so the sampled distribution is the one the update scores."""
    from transformers import GenerationConfig

    if temperature <= 0:
        from backend.errors import ValidationError

        raise ValidationError("PPO samples its rollouts: set temperature above 0.")
    make: Any = GenerationConfig
    return make(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0,
                min_p=None, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0,
                repetition_penalty=1.0, no_repeat_ngram_size=0,
                max_new_tokens=int(max_new_tokens), pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id)


def sample(model: Any, enc: Any, config: Any) -> Any:
    """Prompt + completion ids, sampled with ``config`` (see ``sampling_config``)."""
    return model.generate(**enc, generation_config=config)


def kl_estimates(logp: Any, ref_logp: Any, mask: Any) -> tuple[float, float]:
    """(k1, k3) estimates of KL(π ‖ π_ref) per completion, from tokens sampled from π."""
    import torch

    log_ratio = (logp - ref_logp) * mask
    k1 = log_ratio.sum(-1).mean()
    k3 = ((torch.exp(-log_ratio) - 1 + log_ratio) * mask).sum(-1).mean()
    return float(k1), float(k3)


def completion_mask(tokens: Any, eos_id: int | None, pad_id: int | None) -> Any:
    """1 for each generated token up to and including the first EOS, 0 after it."""
    import torch

    if eos_id is None:
        return (tokens != pad_id).float() if pad_id is not None else torch.ones_like(tokens)
    is_eos = (tokens == eos_id).int()
    after = (is_eos.cumsum(-1) - is_eos) > 0
    return (~after).float()


def save_checkpoint(path: Path, policy: _Policy, optimizer: Any, tokenizer: Any, step: int,
                    kl: KLController) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    policy.model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    torch.save(policy.value_head.state_dict(), tmp / "value_head.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    state = {"global_step": step, "kl_coef": kl.value, "kl_target": kl.target,
             "kl_horizon": kl.horizon,
             "python_rng": repr(random.getstate())}
    write_json_atomic(tmp / "ppo_state.json", state)  # written last: marks it complete
    tmp.rename(path)


def run(ctx: StageContext) -> StageResult:
    import torch

    cfg = ctx.config
    rows = prompt_rows(ctx)
    prompts = [r["prompt"][0]["content"] for r in rows]
    ref = models.resolve(str(cfg["model"]), db=ctx.db, data_dir=ctx.data_dir, build_tiny=True)
    note_model(ctx, "policy", ref.ref, ref.location)
    device = "cpu" if trainer_common.use_cpu(ctx) else "cuda"
    torch.manual_seed(ctx.seed)
    checkpoint = ctx.latest_checkpoint()
    start = 0
    kl = KLController(float(cfg["beta"]), cfg.get("kl_target"),
                      int(cfg.get("kl_horizon") or 256))
    tokenizer = models.load_tokenizer(ref.location)
    tokenizer.padding_side = "left"
    policy = _Policy(ref.location, cfg, device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=float(cfg["learning_rate"]))
    if checkpoint is not None:
        start = _restore(checkpoint, policy, optimizer, kl, cfg, device)
        ctx.inputs["resumed_from"] = checkpoint.name
    reference = models.load_causal_lm(
        ref.location, dtype=models.torch_dtype_for(cfg, frozen=True)).to(device).eval()
    scorers, weights = reward_scorers(ctx, device)
    metrics = ctx.metrics
    board = trainer_common.summary_writer(ctx)
    batch = int(cfg["batch_size"])
    rollout_log = RolloutLog(ctx, ref.ref)
    summary: dict[str, Any] = {}
    for step in range(start, int(cfg["max_steps"])):
        began = time.perf_counter()
        rng = random.Random(f"{ctx.seed}:{step}")
        chosen = [prompts[rng.randrange(len(prompts))] for _ in range(batch)]
        stats, rollouts = _ppo_step(chosen, policy, reference, tokenizer, optimizer, scorers,
                                    weights, kl, cfg, device)
        rollout_log.log(step + 1, *rollouts)
        kl.update(stats["kl"], batch)
        elapsed = time.perf_counter() - began
        metrics.write(step + 1, **stats, beta=kl.value,
                      learning_rate=float(cfg["learning_rate"]),
                      samples_per_second=batch / elapsed if elapsed > 0 else None,
                      progress=(step + 1) / int(cfg["max_steps"]))
        summary = {**stats, "beta": kl.value, "global_step": step + 1}
        if board is not None:
            for key, value in summary.items():
                board.add_scalar(f"train/{key}", value, step + 1)
            board.flush()
        if (step + 1) % int(cfg["save_steps"]) == 0 or step + 1 == int(cfg["max_steps"]):
            ctx.checkpoints_dir.mkdir(parents=True, exist_ok=True)
            save_checkpoint(ctx.checkpoints_dir / f"checkpoint-{step + 1}", policy, optimizer,
                            tokenizer, step + 1, kl)
    model = policy.model.merge_and_unload() if hasattr(policy.model, "merge_and_unload") \
        else policy.model
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(ctx.output_dir))
    tokenizer.save_pretrained(str(ctx.output_dir))
    torch.save(policy.value_head.state_dict(), ctx.output_dir / "value_head.pt")
    summary.setdefault("global_step", start)
    return StageResult(outputs={"model_dir": str(ctx.output_dir)}, summary=summary)


def _restore(checkpoint: Path, policy: _Policy, optimizer: Any, kl: KLController,
             cfg: dict[str, Any], device: str) -> int:
    import torch

    state = json.loads((checkpoint / "ppo_state.json").read_text(encoding="utf-8"))
    if cfg.get("lora"):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(policy.model,
                                  load_file(str(checkpoint / "adapter_model.safetensors")))
    else:
        loaded = models.load_causal_lm(str(checkpoint), dtype=models.torch_dtype_for(cfg))
        policy.model.load_state_dict(loaded.state_dict())
    policy.value_head.load_state_dict(torch.load(checkpoint / "value_head.pt",
                                                 map_location=device))
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location=device))
    kl.value = float(state["kl_coef"])
    return int(state["global_step"])


def _ppo_step(prompts: list[str], policy: _Policy, reference: Any, tokenizer: Any,
              optimizer: Any, scorers: list[Any], weights: list[float], kl: KLController,
              cfg: dict[str, Any], device: str
              ) -> tuple[dict[str, float], tuple[list[str], list[str], list[float]]]:
    import torch

    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    prompt_len = enc["input_ids"].shape[1]
    policy.model.eval()
    with torch.no_grad():
        temperature = float(cfg["temperature"])
        ids = sample(policy.model, enc, sampling_config(
            tokenizer, temperature, int(cfg["max_completion_length"])))
        completion = ids[:, prompt_len:]
        mask = completion_mask(completion, tokenizer.eos_token_id, tokenizer.pad_token_id)
        attn = torch.cat([enc["attention_mask"], mask.long()], dim=1)
        old_logp, old_values = policy.forward(ids, attn, prompt_len, temperature)
        ref_logits, _ = _forward(reference, ids, attn)
        ref_logp = _token_logp(ref_logits, ids, prompt_len, temperature)
        replies = tokenizer.batch_decode(completion * mask.long() + tokenizer.pad_token_id *
                                         (1 - mask.long()), skip_special_tokens=True)
        scores = torch.zeros(len(prompts), device=device)
        for scorer, weight in zip(scorers, weights, strict=True):
            scores += weight * torch.tensor(scorer.score(prompts, replies), device=device)
        token_kl = (old_logp - ref_logp) * mask
        rewards = -kl.value * token_kl
        last = (mask.sum(-1).long() - 1).clamp(min=0)
        rewards[torch.arange(len(prompts)), last] += scores
        advantages, returns = gae(rewards, old_values, mask, float(cfg["gamma"]),
                                  float(cfg["lam"]))
        advantages = whiten(advantages, mask)
    policy.model.train()
    totals = {"loss": 0.0, "policy_loss": 0.0, "value_loss": 0.0, "clipfrac": 0.0}
    epochs = int(cfg["ppo_epochs"])
    for _ in range(epochs):
        logp, values = policy.forward(ids, attn, prompt_len, temperature)
        pg, vf, clipfrac = clipped_losses(logp, old_logp, advantages, values, old_values, returns,
                                          mask, float(cfg["cliprange"]),
                                          float(cfg["cliprange_value"]))
        loss = pg + float(cfg["vf_coef"]) * vf
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        for key, value in (("loss", loss), ("policy_loss", pg), ("value_loss", vf),
                           ("clipfrac", clipfrac)):
            totals[key] += float(value.detach()) / epochs
    k1, k3 = kl_estimates(old_logp, ref_logp, mask)
    stats = {**totals, "reward": float(scores.mean()), "kl": k1, "kl_k3": k3,
             "completion_length": float(mask.sum(-1).mean())}
    return stats, (texts, replies, [float(x) for x in scores.tolist()])
