"""LocalEngine's fast prompt reading: shared prefixes read once, right padding without a mask,
in-place cache growth and shared-prefix attention give the same results as plain passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.engines import local_prefill as LP
from backend.engines.base import GenerationParams, Prompt
from backend.engines.local import LocalEngine

SHARED = ("Example. Human: how do I bake bread? Assistant: mix flour, water, salt and yeast. "
          "Critique request: identify ways in which the response is harmful. Critique: none. ")


def _shared_prompts(n: int) -> list[Prompt]:
    """Prompts that begin with the same long text and end differently (different lengths)."""
    return [Prompt.raw(SHARED + f"Human: question {i}? " + "more words " * (3 * i)
                       + "Assistant:") for i in range(n)]


def _rows(engine: LocalEngine, prompts: list[Prompt]) -> list[list[int]]:
    return [engine._encode(p).ids for p in prompts]


@pytest.fixture(scope="module")
def eos_free_engine(tiny_model_path: Path) -> Any:
    engine = LocalEngine(str(tiny_model_path), device="cpu", max_batch_size=16, ignore_eos=True)
    yield engine
    engine.close()


def test_the_prompts_share_a_prefix_worth_reading_once(tiny_engine: LocalEngine) -> None:
    rows = _rows(tiny_engine, _shared_prompts(6))
    shared = LP.shared_prefix_length(rows)
    assert shared >= LP.MIN_SHARED_TOKENS
    assert all(r[:shared] == rows[0][:shared] for r in rows)
    assert LP.shared_prefix_length(rows[:1]) == 0  # one row: nothing to share
    assert LP.shared_prefix_length([[1, 2, 3], [1, 2, 4]]) == 0  # too short to bother
    assert tiny_engine._model.config._attn_implementation == LP.ATTENTION


def test_shared_prefix_batch_equals_one_at_a_time(eos_free_engine: LocalEngine) -> None:
    prompts = _shared_prompts(6)
    params = GenerationParams(max_tokens=40)
    batched = eos_free_engine.generate(prompts, params)
    single = [eos_free_engine.generate([p], params)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.completion_tokens == 40 for g in batched)


def test_mixed_batch_with_and_without_prefix(tiny_engine: LocalEngine) -> None:
    """Short, long, chat and raw prompts together, some of one token: no shared prefix, rows
    of very different lengths read right-padded without a mask."""
    prompts = [*_shared_prompts(3), Prompt.raw("("), Prompt.chat(("user", "Hi")),
               Prompt.raw("Once upon a time " * 20)]
    params = GenerationParams(max_tokens=16)
    batched = tiny_engine.generate(prompts, params)
    single = [tiny_engine.generate([p], params)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]


def test_shared_prefix_scores_equal_a_manual_forward_pass(tiny_engine: LocalEngine) -> None:
    import torch

    prompts = [Prompt.raw(SHARED + f"Human: which is better, {i}? " + "x " * i
                          + "The answer is: (") for i in range(5)]
    rows = _rows(tiny_engine, prompts)
    assert LP.shared_prefix_length(rows) > 0
    scores = tiny_engine.score_choices(prompts, ["A", "B"])
    ids = [tiny_engine.choice_token_id(c) for c in ("A", "B")]
    with torch.inference_mode():
        for row, s in zip(rows, scores, strict=True):
            logits = tiny_engine._model(input_ids=torch.tensor([row])).logits[0, -1].double()
            expected = torch.softmax(logits[ids], dim=0).tolist()
            assert [s.probs["A"], s.probs["B"]] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_shared_prefix_attention_equals_sdpa(kv_heads: int) -> None:
    """Prefix read once for all rows, rest with each row's mask, merged by log-sum-exp."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    batch, heads, queries, shared, rest, dim = 3, 4, 5, 12, 9, 8
    module = torch.nn.Module()
    module.num_key_value_groups = heads // kv_heads  # type: ignore[assignment]
    module.is_causal = True  # type: ignore[assignment]
    query = torch.randn(batch, heads, queries, dim)
    prefix_k, prefix_v = torch.randn(1, kv_heads, shared, dim), torch.randn(1, kv_heads, shared,
                                                                           dim)
    key = torch.cat([prefix_k.expand(batch, -1, -1, -1), torch.randn(batch, kv_heads, rest, dim)],
                    dim=2)
    value = torch.cat([prefix_v.expand(batch, -1, -1, -1),
                       torch.randn(batch, kv_heads, rest, dim)], dim=2)
    mask = torch.ones(batch, 1, queries, shared + rest, dtype=torch.bool)
    mask[0, :, :, shared:shared + 4] = False  # padding in the middle of a row
    mask[1, :, 2:, -2:] = False
    plain, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=dim ** -0.5)
    with LP.sharing_prefix(shared):
        cascaded, _ = LP.shared_prefix_attention(module, query, key, value, mask,
                                                 scaling=dim ** -0.5)
    assert cascaded.shape == plain.shape
    assert torch.allclose(cascaded, plain, atol=1e-5)
    # A decode step without padding comes with no mask at all.
    step = query[:, :, :1]
    plain_step, _ = sdpa_attention_forward(module, step, key, value, None, scaling=dim ** -0.5)
    with LP.sharing_prefix(shared):
        cascaded_step, _ = LP.shared_prefix_attention(module, step, key, value, None,
                                                      scaling=dim ** -0.5)
    assert torch.allclose(cascaded_step, plain_step, atol=1e-5)
    # A decode step with padding holes in some rows.
    step_mask = mask[:, :, :1]
    plain_step, _ = sdpa_attention_forward(module, step, key, value, step_mask,
                                           scaling=dim ** -0.5)
    with LP.sharing_prefix(shared):
        cascaded_step, _ = LP.shared_prefix_attention(module, step, key, value, step_mask,
                                                      scaling=dim ** -0.5)
    assert torch.allclose(cascaded_step, plain_step, atol=1e-5)
    # Outside a shared-prefix block it is plain SDPA.
    again, _ = LP.shared_prefix_attention(module, query, key, value, mask, scaling=dim ** -0.5)
    assert torch.equal(again, plain)


def test_growing_cache_layer_matches_concatenation() -> None:
    import torch

    layer = LP._growing_layer_class()(reserve=0)
    parts_k = [torch.randn(2, 3, n, 4) for n in (5, 1, 1, 7, 1)]
    parts_v = [torch.randn(2, 3, n, 4) for n in (5, 1, 1, 7, 1)]
    for k, v in zip(parts_k, parts_v, strict=True):
        keys, values = layer.update(k, v)
    assert torch.equal(keys, torch.cat(parts_k, dim=2))
    assert torch.equal(values, torch.cat(parts_v, dim=2))
    assert layer.get_seq_length() == 15
    layer.crop(-2)
    assert layer.get_seq_length() == 13
    layer.update(parts_k[1], parts_v[1])
    assert torch.equal(layer.keys[:, :, -1:], parts_k[1])
    layer.batch_select_indices(torch.tensor([1]))
    layer.update(parts_k[2][1:], parts_v[2][1:])
    assert layer.keys.shape == (1, 3, 15, 4)
    assert torch.equal(layer.keys[0, :, :5], parts_k[0][1])


def test_chunks_count_a_shared_prefix_once(tiny_model_path: Path) -> None:
    engine = LocalEngine(str(tiny_model_path), device="cpu", max_batch_size=8,
                         max_batch_tokens=600)
    rows = [[7] * 200 + [i] * 50 for i in range(6)]  # 250 tokens each, 200 of them shared
    order = list(range(len(rows)))
    # Padded, six rows are 1,500 tokens; read with the prefix once, 200 + 6 * 50 = 500.
    assert engine._chunks(order, rows) == [order]
    distinct = [[i] * 250 for i in range(6)]
    assert engine._chunks(order, distinct) == [[0, 1], [2, 3], [4, 5]]
    # Scoring batches stop before a row much shorter than the batch's longest.
    uneven = [[i] * n for i, n in enumerate((100, 95, 91, 60, 58))]
    assert engine._chunks(order[:5], uneven, slack=0.9) == [[0, 1, 2], [3, 4]]
    engine.close()


def test_models_with_other_caches_use_plain_batches() -> None:
    from types import SimpleNamespace

    def model(**config: Any) -> Any:
        return SimpleNamespace(config=SimpleNamespace(**config))

    assert LP.supports_cache_prefill(model(layer_types=["full_attention"] * 2))
    assert not LP.supports_cache_prefill(model(layer_types=["full_attention",
                                                            "sliding_attention"]))
    assert LP.supports_cache_prefill(model(sliding_window=4096, use_sliding_window=False))
    assert not LP.supports_cache_prefill(model(sliding_window=4096))
    assert not LP.supports_cache_prefill(model(is_encoder_decoder=True))


def _paired_prompts(items: int) -> list[Prompt]:
    """Both orders of a few A/B questions: all rows share SHARED, the two orders of one
    question share its long conversation too, and they end differently."""
    prompts = []
    for k in range(items):
        talk = f"Human: question {k}? " + "and some more words " * (6 + 3 * k)
        for first, second in (("yes", "no thanks"), ("no thanks", "yes")):
            prompts.append(Prompt.raw(SHARED + talk + f"Options: (A) {first} (B) {second}. "
                                      "The answer is: ("))
    return prompts


def test_pairs_are_grouped_and_next_to_each_other(tiny_engine: LocalEngine) -> None:
    rows = _rows(tiny_engine, _paired_prompts(3))
    order = LP.grouped_order(list(reversed(rows)))
    assert sorted(order) == list(range(6))
    partners = {frozenset(order[i:i + 2]) for i in range(0, 6, 2)}
    assert partners == {frozenset({0, 1}), frozenset({2, 3}), frozenset({4, 5})}
    shared = LP.shared_prefix_length(rows)
    plan = LP.plan_groups(rows, shared)
    assert plan is not None
    assert plan.group_of == [0, 0, 1, 1, 2, 2] or len(set(plan.group_of)) == 3
    for i, g in enumerate(plan.group_of):
        n = shared + plan.group_len[g]
        assert rows[i][:n] == rows[plan.first[g]][:n] and n < len(rows[i])
    assert LP.plan_groups(rows[::2], LP.shared_prefix_length(rows[::2])) is None  # no pairs


def _count_grouped_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = LP._read_grouped

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(LP, "_read_grouped", counted)
    return calls


def _expected_logprobs(engine: LocalEngine, row: list[int]) -> list[float]:
    import torch

    ids = [engine.choice_token_id(c) for c in ("A", "B")]
    with torch.inference_mode():
        logits = engine._model(input_ids=torch.tensor([row])).logits[0, -1].double()
    return list(torch.log_softmax(logits, dim=0)[ids].tolist())


def test_grouped_scores_equal_a_full_forward_pass(tiny_engine: LocalEngine,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls = _count_grouped_reads(monkeypatch)
    rows = _rows(tiny_engine, _paired_prompts(3))
    assert LP.plan_groups(rows, LP.shared_prefix_length(rows)) is not None
    ids = [tiny_engine.choice_token_id(c) for c in ("A", "B")]
    with torch.inference_mode():
        logits = LP.last_token_logits(tiny_engine._model, rows, tiny_engine._pad_id, "cpu",
                                      keeps_last_logits=True, prefix_cache=True)
        got = torch.log_softmax(logits.double(), dim=-1)[:, ids].tolist()
    for row, pair in zip(rows, got, strict=True):
        assert pair == pytest.approx(_expected_logprobs(tiny_engine, row), abs=1e-4)
    assert calls == [6]  # the grouped layout was used


def test_scores_read_the_call_prefix_once(tiny_engine: LocalEngine,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The few-shot prefix that every prompt of a call shares is read once for the call; the
    batches are then the verdicts' order pairs (what they share beyond it read once each), and
    the scores equal a full forward pass of each prompt."""
    reads: list[int] = []
    real = LP.call_memo

    def counted(model: Any, rows: Any, device: str) -> Any:
        memo = real(model, rows, device)
        if memo is not None:
            reads.append(len(memo.tokens))
        return memo

    monkeypatch.setattr(LP, "call_memo", counted)
    prompts = _paired_prompts(3)
    rows = _rows(tiny_engine, prompts)
    paid = LP.all_share(rows)
    assert paid >= LP.shared_prefix_length(rows) > 0
    chunks = tiny_engine._score_chunks(tiny_engine._order(rows), rows, paid=paid)
    assert {frozenset(c) for c in chunks} == {frozenset({i, i + 1}) for i in range(0, 6, 2)}
    scores = tiny_engine.score_choices(prompts, ["A", "B"])
    assert reads == [paid]
    for row, s in zip(rows, scores, strict=True):
        assert [s.logprobs["A"], s.logprobs["B"]] == pytest.approx(
            _expected_logprobs(tiny_engine, row), abs=1e-4)
    single = tiny_engine.score_choices(prompts[:1], ["A", "B"])  # one prompt: no memo
    assert reads == [paid] and single[0].logprobs == pytest.approx(scores[0].logprobs, abs=1e-4)


def test_grouped_generation_equals_one_at_a_time(eos_free_engine: LocalEngine,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_grouped_reads(monkeypatch)
    prompts = _paired_prompts(3)
    params = GenerationParams(max_tokens=24)
    batched = eos_free_engine.generate(prompts, params)
    assert calls == [6]
    single = [eos_free_engine.generate([p], params)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]


def test_greedy_equals_stock_hf_generate(tiny_model_path: Path,
                                         eos_free_engine: LocalEngine) -> None:
    """Our batched greedy output equals transformers' own generate, one prompt at a time on a
    separately loaded model (no prefix sharing, no custom attention)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    prompts = [*_paired_prompts(2), *_shared_prompts(2), Prompt.chat(("user", "Hi there"))]
    params = GenerationParams(max_tokens=12)
    ours = eos_free_engine.generate(prompts, params)
    for prompt, got in zip(prompts, ours, strict=True):
        ids = torch.tensor([eos_free_engine._encode(prompt).ids])
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 max_new_tokens=12, min_new_tokens=12, do_sample=False,
                                 pad_token_id=eos_free_engine._pad_id)
        assert eos_free_engine._tok.decode(out[0, ids.shape[1]:].tolist(),
                                           skip_special_tokens=True) == got.text
