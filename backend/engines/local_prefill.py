"""Reading prompts into a transformers model fast: shared prefixes once, no padding mask.

Two facts shape this module:

* Prompts of one call often begin with the same tokens: the few-shot examples of a critique
  or revision prompt (about 1,300 of 1,500 tokens with the default constitution), the
  conversation and instruction that the (A,B) and (B,A) orders of one verdict share. That
  prefix is read once and its keys and values are shared by every row.
* Batched prompts of different lengths are usually left-padded with an attention mask. On a
  CPU, PyTorch's masked attention is several times slower than its fused causal kernel, which
  it only takes when there is no mask. Here the rows are padded on the *right* and read with
  no mask: under causal attention a real token never sees the padding after it. The padding
  then sits between each row's tokens and what comes next; the attention mask of the decode
  steps hides it, and the position ids (from the mask) skip it.

A prompt batch is laid out in columns as ``[shared prefix | body, right-padded | last token]``:
the keys and values of everything but the last token are computed here, and ``generate`` is
handed the full ids, the mask and that cache, so it reads only the last column and decodes as
usual (stop strings, sampling and streaming unchanged). Scoring needs no cache: the body
includes the last token and only the logits at each row's last position are computed.

Rows can share more than the batch's common prefix: the two orders of one verdict share the
few-shot examples *and* the conversation and instruction, critiques of one response share
the exchange. Such rows form a *group* (``plan_groups``); the batch is then read in three
passes, ``[shared prefix | group part, right-padded | rest of each row, right-padded]``: the
prefix once, each group's part once for the group, then each row's rest. The padding after a
short group part is hidden by the attention mask, and explicit position ids skip it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

ATTENTION = "cstudio_shared_prefix_sdpa"

# How many leading key positions hold the same keys and values in every row of the batch
# being run (0: none); set by ``sharing_prefix`` around the forward passes of one batch.
_SHARED_KEYS: contextvars.ContextVar[int] = contextvars.ContextVar("cstudio_shared_keys",
                                                                   default=0)

# A shared prefix is read separately only when it is worth a second forward pass and the
# masked attention that its rows' bodies then need (query and key lengths differ).
MIN_SHARED_TOKENS = 32
MIN_SHARED_FRACTION = 0.25
# Rows are grouped when they share at least this many tokens beyond the batch's prefix, and
# the grouped layout is used when it reads at most this fraction of the plain layout's tokens
# (it costs one more forward pass and a masked attention).
MIN_GROUP_TOKENS = 32
GROUPED_MAX_COST = 0.85


def all_share(rows: Sequence[Sequence[int]]) -> int:
    """Tokens that every row begins with, leaving each row at least its last token."""
    n = min(len(r) for r in rows) - 1
    for row in rows[1:]:
        n = common_prefix(rows[0], row, n)
    return n


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Tokens that every row begins with, leaving each row at least its last token, or 0 when
    reading them once is not worth it (a single row, or a short prefix)."""
    if len(rows) < 2:
        return 0
    n = all_share(rows)
    return n if worth_sharing(n, sum(len(r) for r in rows) / len(rows)) else 0


def worth_sharing(prefix: int, length: float) -> bool:
    """Whether a prefix of ``prefix`` tokens, shared by rows ``length`` tokens long (mean),
    is read separately."""
    return prefix >= MIN_SHARED_TOKENS and prefix >= MIN_SHARED_FRACTION * length


def common_prefix(first: Sequence[int], row: Sequence[int], limit: int) -> int:
    """Length of the common prefix of ``first`` and ``row``, at most ``limit``."""
    n, end = 0, min(limit, len(first), len(row))
    while n < end and first[n] == row[n]:
        n += 1
    return n


def supports_cache_prefill(model: Any) -> bool:
    """Whether the model keeps a plain growing key/value cache for every layer (no sliding
    windows, no recurrent state), which is what the prefilled layouts here assume."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        return all(t == "full_attention" for t in layer_types)
    sliding = getattr(config, "sliding_window", None)
    return sliding is None or getattr(config, "use_sliding_window", True) is False


@dataclass
class Prefilled:
    """Inputs for ``model.generate``: the cache covers all columns but the last."""

    input_ids: Any
    attention_mask: Any
    cache: Any | None
    shared: int  # tokens read once for all rows


def _growing_layer_class() -> type:
    """A ``DynamicLayer`` whose keys and values live in a buffer with room to spare.

    transformers' dynamic layer concatenates the whole cache with each new token: on a CPU,
    for 16 rows of 1,500 tokens, that copy costs more than the decode step's attention. This
    layer writes new states into its buffer (growing it by half when full, or to the size
    reserved up front) and hands out views of the filled part.
    """
    import torch
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def __init__(self, reserve: int = 0) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.reserve = reserve
            self.filled = 0
            self.key_buffer: Any = None
            self.value_buffer: Any = None

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any
                   ) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.filled + key_states.shape[-2]
            if self.key_buffer is None or end > self.key_buffer.shape[-2]:
                room = max(end, self.reserve, int(end * 1.5) if self.key_buffer is not None
                           else end)
                self._regrow(key_states, value_states, room)
            self.key_buffer[:, :, self.filled:end].copy_(key_states)
            self.value_buffer[:, :, self.filled:end].copy_(value_states)
            self.filled = end
            self.keys = self.key_buffer[:, :, :end]
            self.values = self.value_buffer[:, :, :end]
            return self.keys, self.values

        def _regrow(self, key_states: Any, value_states: Any, room: int) -> None:
            def grown(old: Any, new: Any) -> Any:
                shape = (*new.shape[:2], room, new.shape[-1])
                buffer = torch.empty(shape, dtype=new.dtype, device=new.device)
                if old is not None and self.filled:
                    buffer[:, :, :self.filled].copy_(old[:, :, :self.filled])
                return buffer

            self.key_buffer = grown(self.key_buffer, key_states)
            self.value_buffer = grown(self.value_buffer, value_states)

        def _adopt(self) -> None:
            """Take ``keys``/``values`` as set by a batch operation as the new contents."""
            keys: Any = self.keys
            values: Any = self.values
            self.key_buffer, self.value_buffer = keys.contiguous(), values.contiguous()
            self.keys, self.values = self.key_buffer, self.value_buffer
            self.filled = self.key_buffer.shape[-2]

        def crop(self, tokens_to_remove: int) -> None:
            super().crop(tokens_to_remove)
            if self.is_initialized and self.keys is not None:
                self.filled = self.keys.shape[-2]

        def batch_repeat_interleave(self, repeats: int) -> None:
            super().batch_repeat_interleave(repeats)
            if self.get_seq_length() > 0:
                self._adopt()

        def batch_select_indices(self, indices: Any) -> None:
            super().batch_select_indices(indices)
            if self.get_seq_length() > 0:
                self._adopt()

    return GrowingLayer


def _new_cache(model: Any, reserve: int = 0) -> Any:
    """A dynamic cache for ``model`` whose layers write in place (see ``GrowingLayer``)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    layer_class = _growing_layer_class()
    cache.layers = [layer_class(reserve) for _ in cache.layers]
    return cache


def cache_keyword(model: Any) -> str:
    """The name of the forward/generate argument that takes a cache: ``cache`` in newer
    transformers, ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else (
        "past_key_values")


@dataclass
class PrefixMemo:
    """The keys and values of a prefix that every prompt of one call begins with (the system
    prompt and few-shot examples of a verdict run), read once for the call instead of once per
    batch: batches then cost only what their rows add, so they can be as small as the rows
    that share a long part (the two orders of one verdict) with no prefix read again."""

    tokens: list[int]
    cache: Any  # a one-row DynamicCache holding ``tokens``

    def begins(self, row: Sequence[int]) -> bool:
        """Whether ``row`` begins with the memo's tokens."""
        return list(row[:len(self.tokens)]) == self.tokens


def call_memo(model: Any, rows: Sequence[Sequence[int]], device: str) -> PrefixMemo | None:
    """The prefix every row of a call begins with (each row keeps at least one more token),
    read once, when it is worth a memo (``MIN_SHARED_TOKENS``); else None."""
    if len(rows) < 2 or (n := all_share(rows)) < MIN_SHARED_TOKENS:
        return None
    single: Any = _one_row_cache(model)
    _read_into(model, single, rows[0][:n], device)
    return PrefixMemo(list(rows[0][:n]), single)


def memo_covers(memo: PrefixMemo | None, rows: Sequence[Sequence[int]]) -> int:
    """The memo's length when every row begins with its tokens and has more; else 0."""
    if memo is None:
        return 0
    n = len(memo.tokens)
    return n if all(len(r) > n and memo.begins(r) for r in rows) else 0


def _one_row_cache(model: Any) -> Any:
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def _read_into(model: Any, cache: Any, tokens: Sequence[int], device: str) -> None:
    """Extend a one-row ``cache`` by ``tokens`` (one forward pass, no logits kept)."""
    import torch

    model(input_ids=torch.tensor([list(tokens)], dtype=torch.long, device=device),
          use_cache=True, logits_to_keep=1, **{cache_keyword(model): cache})


def _prefix_cache(model: Any, prefix: Sequence[int], rows: int, device: str, reserve: int = 0,
                  memo: PrefixMemo | None = None) -> Any:
    """A cache holding the prefix's keys and values, repeated for ``rows`` rows; the part of
    the prefix that ``memo`` holds is copied from it instead of read."""
    single = _one_row_cache(model)
    start = 0
    if memo is not None and len(memo.tokens) <= len(prefix) and memo.begins(prefix):
        for index, layer in enumerate(memo.cache.layers):  # clones: the memo stays as it is
            single.update(layer.keys.clone(), layer.values.clone(), index)
        start = len(memo.tokens)
    if start < len(prefix):
        _read_into(model, single, prefix[start:], device)
    cache = _new_cache(model, reserve)
    for index, layer in enumerate(single.layers):
        cache.update(layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1),
                     index)
    return cache


def clusters(rows: Sequence[Sequence[int]], indices: Sequence[int], base: int
             ) -> list[tuple[list[int], int]]:
    """Rows (``indices`` into ``rows``) that share more than their first ``base`` tokens, as
    (members, shared length) runs; a row alone is a run of one with shared length ``base``.

    The rows are sorted by their tokens, so rows with a long common prefix are neighbours; a
    run grows while the tokens it saves by taking the next row exceed those its members lose
    by sharing less. Each member keeps at least its last token out of the shared part."""
    ordered = sorted(indices, key=lambda i: list(rows[i][base:]))
    runs: list[tuple[list[int], int]] = []
    members: list[int] = []
    common = base
    for i in ordered:
        if members:
            n = common_prefix(rows[members[0]], rows[i], min(common, len(rows[i]) - 1))
            # taking row i saves n - base tokens; the other members but the first lose some
            if n - base >= MIN_GROUP_TOKENS and n - base > (common - n) * (len(members) - 1):
                members.append(i)
                common = n
                continue
            runs.append((members, common if len(members) > 1 else base))
        members, common = [i], len(rows[i]) - 1
    if members:
        runs.append((members, common if len(members) > 1 else base))
    return runs


def grouped_order(rows: Sequence[Sequence[int]]) -> list[int]:
    """Row indices, longest first, with rows that share a long prefix (``clusters``) next to
    each other so that they land in the same batch."""
    if len(rows) < 2:
        return list(range(len(rows)))
    runs = clusters(rows, range(len(rows)), all_share(rows))
    runs.sort(key=lambda run: (-max(len(rows[i]) for i in run[0]), run[0][0]))
    return [i for members, _ in runs for i in sorted(members, key=lambda i: -len(rows[i]))]


# A forward pass costs about as much as reading this many more tokens (one torch thread).
PASS_OVERHEAD_TOKENS = 48


def batch_costs(rows: Sequence[Sequence[int]]) -> Iterator[tuple[int, float]]:
    """(k, tokens read for a batch of the first k rows) for k = 1, 2, …: an estimate of what
    ``last_token_logits`` reads, with rows that share a long prefix next to each other (as
    ``grouped_order`` leaves them) counted in the grouped layout."""
    common = len(rows[0])
    longest = total = 0
    groups: list[list[int]] = []  # [first row, tokens its rows share, its longest row]
    for k, row in enumerate(rows, start=1):
        common = common_prefix(rows[0], row, min(common, len(row) - 1))
        longest, total = max(longest, len(row)), total + len(row)
        if groups:
            first, n, _ = groups[-1]
            m = common_prefix(rows[first], row, min(n, len(row) - 1))
            if m - common >= MIN_GROUP_TOKENS:
                groups[-1][1], groups[-1][2] = m, max(groups[-1][2], len(row))
            else:
                groups.append([k - 1, len(row) - 1, len(row)])
        else:
            groups.append([k - 1, len(row) - 1, len(row)])
        shared = common if k > 1 and worth_sharing(common, total / k) else 0
        plain = float(shared + k * (longest - shared))
        if k < 3 or len(groups) == k:
            yield k, plain
            continue
        singles = {g[0] for i, g in enumerate(groups)
                   if (groups[i + 1][0] if i + 1 < len(groups) else k) - g[0] == 1}
        parts = [0 if g[0] in singles else max(g[1] - shared, 0) for g in groups]
        rest = max(g[2] - shared - p for g, p in zip(groups, parts, strict=True))
        grouped = shared + len(groups) * max(parts) + k * rest + PASS_OVERHEAD_TOKENS
        yield k, min(plain, float(grouped)) if grouped <= GROUPED_MAX_COST * plain else plain


@dataclass
class GroupPlan:
    """How a batch is read in the grouped layout: each row's group and each group's part."""

    group_of: list[int]  # per row: its group
    group_len: list[int]  # per group: the tokens its rows share after the batch's prefix
    first: list[int]  # per group: a row of it


def plan_groups(rows: Sequence[Sequence[int]], shared: int) -> GroupPlan | None:
    """The grouped layout for a batch whose rows share ``shared`` tokens, or None when it would
    not read clearly fewer tokens than the plain one."""
    if len(rows) < 3:  # two rows share nothing beyond their common prefix
        return None
    runs = clusters(rows, range(len(rows)), shared)
    if len(runs) == len(rows):
        return None
    group_of = [0] * len(rows)
    for g, (members, _) in enumerate(runs):
        for i in members:
            group_of[i] = g
    group_len = [n - shared for _, n in runs]
    part = max(group_len)
    rest = max(len(r) - shared - group_len[group_of[i]] for i, r in enumerate(rows))
    plain = len(rows) * max(len(r) - shared for r in rows)
    if len(runs) * part + len(rows) * rest > GROUPED_MAX_COST * plain:
        return None
    return GroupPlan(group_of, group_len, [members[0] for members, _ in runs])


@dataclass
class _GroupRead:
    cache: Any
    mask: Any  # [rows, columns read]: which cached columns each row sees
    rest: list[list[int]]  # each row's tokens after its group part
    logits: Any  # of the rest pass, at the positions asked for (or None)


def _read_grouped(model: Any, rows: Sequence[Sequence[int]], shared: int, plan: GroupPlan,
                  pad_id: int, device: str, *, reserve: int, hold_last: bool,
                  keep: Any = None, memo: PrefixMemo | None = None) -> _GroupRead:
    """Read ``rows`` in the grouped layout: the prefix, each group's part, each row's rest
    (without its last token when ``hold_last``). ``keep``: positions of the rest pass whose
    logits are wanted."""
    import torch

    keyword = cache_keyword(model)
    groups, part = len(plan.group_len), max(plan.group_len)
    cache = (_prefix_cache(model, rows[0][:shared], groups, device, reserve, memo) if shared
             else _new_cache(model, reserve))
    with sharing_prefix(shared):
        if part:
            parts = [list(rows[f][shared:shared + n])
                     for f, n in zip(plan.first, plan.group_len, strict=True)]
            positions = (shared + torch.arange(part)).expand(groups, -1)
            model(input_ids=_right_padded(parts, part, pad_id).to(device),
                  position_ids=positions.to(device), use_cache=True, logits_to_keep=1,
                  **{keyword: cache})
        cache.batch_select_indices(torch.tensor(plan.group_of, device=device))
        starts = [shared + plan.group_len[g] for g in plan.group_of]
        rest = [list(r[s:len(r) - 1 if hold_last else len(r)])
                for r, s in zip(rows, starts, strict=True)]
        width = max(len(r) for r in rest)
        mask = torch.zeros((len(rows), shared + part + width), dtype=torch.long)
        mask[:, :shared] = 1
        for i, (g, r) in enumerate(zip(plan.group_of, rest, strict=True)):
            mask[i, shared:shared + plan.group_len[g]] = 1
            mask[i, shared + part:shared + part + len(r)] = 1
        logits = None
        if width:
            positions = torch.tensor(starts).unsqueeze(1) + torch.arange(width)
            out = model(input_ids=_right_padded(rest, width, pad_id).to(device),
                        attention_mask=mask.to(device), position_ids=positions.to(device),
                        use_cache=True, logits_to_keep=1 if keep is None else keep,
                        **{keyword: cache})
            logits = out.logits if keep is not None else None
    return _GroupRead(cache, mask, rest, logits)


def _right_padded(rows: Sequence[Sequence[int]], width: int, pad_id: int) -> Any:
    import torch

    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, :len(row)] = torch.tensor(list(row), dtype=torch.long)
    return ids


def prefill_for_generation(model: Any, rows: Sequence[Sequence[int]], pad_id: int,
                           device: str, max_new_tokens: int = 0,
                           memo: PrefixMemo | None = None) -> Prefilled:
    """Read every row but its last token; return the ids, mask and cache ``generate`` needs
    (with room reserved for ``max_new_tokens`` more); what ``memo`` holds is not read again."""
    import torch

    shared = max(shared_prefix_length(rows), memo_covers(memo, rows))
    plan = plan_groups(rows, shared)
    if plan is not None:
        read = _read_grouped(model, rows, shared, plan, pad_id, device,
                             reserve=shared + max(plan.group_len) + max(len(r) for r in rows)
                             + max_new_tokens, hold_last=True, memo=memo)
        ids = torch.full((len(rows), read.mask.shape[1] + 1), pad_id, dtype=torch.long)
        mask = torch.cat([read.mask, torch.ones((len(rows), 1), dtype=torch.long)], dim=1)
        part = max(plan.group_len)
        for i, (row, g) in enumerate(zip(rows, plan.group_of, strict=True)):
            n = plan.group_len[g]
            ids[i, :shared + n] = torch.tensor(list(row[:shared + n]), dtype=torch.long)
            rest = read.rest[i]
            ids[i, shared + part:shared + part + len(rest)] = torch.tensor(rest,
                                                                          dtype=torch.long)
            ids[i, -1] = int(row[-1])
        return Prefilled(ids.to(device), mask.to(device), read.cache, shared)
    bodies = [list(r[shared:-1]) for r in rows]
    body_width = max(len(b) for b in bodies)
    width = shared + body_width + 1
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, body) in enumerate(zip(rows, bodies, strict=True)):
        ids[i, :shared] = torch.tensor(list(row[:shared]), dtype=torch.long)
        ids[i, shared:shared + len(body)] = torch.tensor(body, dtype=torch.long)
        ids[i, -1] = int(row[-1])
        mask[i, :shared + len(body)] = 1
        mask[i, -1] = 1
    reserve = width + max_new_tokens
    cache = (_prefix_cache(model, rows[0][:shared], len(rows), device, reserve, memo) if shared
             else None)
    if body_width:
        cache = cache if cache is not None else _new_cache(model, reserve)
        with sharing_prefix(shared):
            model(input_ids=_right_padded(bodies, body_width, pad_id).to(device),
                  use_cache=True, logits_to_keep=1, **{cache_keyword(model): cache})
    return Prefilled(ids.to(device), mask.to(device), cache, shared)


def last_token_logits(model: Any, rows: Sequence[Sequence[int]], pad_id: int, device: str, *,
                      keeps_last_logits: bool, prefix_cache: bool,
                      memo: PrefixMemo | None = None) -> Any:
    """Next-token logits after each row (``[rows, vocab]``), from one pass over the rows
    (plus one over their shared prefix, if any, less what ``memo`` already holds). Only the
    logits at the rows' last positions are computed when the model can be told so
    (``logits_to_keep``)."""
    import torch

    shared = max(shared_prefix_length(rows), memo_covers(memo, rows)) if prefix_cache else 0
    plan = plan_groups(rows, shared) if prefix_cache else None
    if plan is not None:
        starts = [shared + plan.group_len[g] for g in plan.group_of]
        last = torch.tensor([len(r) - s - 1 for r, s in zip(rows, starts, strict=True)])
        keep = torch.unique(last)
        read = _read_grouped(model, rows, shared, plan, pad_id, device, reserve=0,
                             hold_last=False, keep=keep.to(device), memo=memo)
        index = torch.searchsorted(keep, last).to(read.logits.device)
        return read.logits[torch.arange(len(rows), device=read.logits.device), index, :]
    bodies = [list(r[shared:]) for r in rows]
    width = max(len(b) for b in bodies)
    ids = _right_padded(bodies, width, pad_id).to(device)
    cache = (_prefix_cache(model, rows[0][:shared], len(rows), device, memo=memo) if shared
             else None)
    last = torch.tensor([len(b) - 1 for b in bodies], dtype=torch.long)
    extra: dict[str, Any] = {cache_keyword(model): cache, "use_cache": cache is not None}
    with sharing_prefix(shared):
        if keeps_last_logits:
            keep = torch.unique(last)  # sorted; logits come back for these positions only
            out = model(input_ids=ids, logits_to_keep=keep.to(device), **extra)
            index = torch.searchsorted(keep, last).to(out.logits.device)
        else:
            out = model(input_ids=ids, **extra)
            index = last.to(out.logits.device)
    return out.logits[torch.arange(len(rows), device=out.logits.device), index, :]


@contextlib.contextmanager
def sharing_prefix(tokens: int) -> Iterator[None]:
    """Tell ``shared_prefix_attention`` that the first ``tokens`` cached positions are the same
    in every row, for the forward passes run inside this block."""
    token = _SHARED_KEYS.set(tokens)
    try:
        yield
    finally:
        _SHARED_KEYS.reset(token)


def shared_prefix_attention(module: Any, query: Any, key: Any, value: Any,
                            attention_mask: Any, dropout: float = 0.0,
                            scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """SDPA that reads a prefix shared by all rows once ("cascade" attention), on a CPU.

    With a shared prefix of P positions, every query of every row sees all of it (the
    queries come after it and it holds no padding), so the queries of all rows are stacked
    into one row and attend to a single copy of the prefix with no mask (the fused kernel);
    each row's remaining keys are attended to separately with its mask. The two partial
    results are merged by their log-sum-exp, which gives exactly softmax attention over the
    whole row. Elsewhere (no shared prefix, one row, not a CPU) this is plain SDPA.
    """
    import torch
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    shared = _SHARED_KEYS.get()
    batch, heads, queries, _ = query.shape
    unmasked_step = attention_mask is None and queries == 1  # a decode step, no padding
    if (not shared or batch < 2 or query.device.type != "cpu" or key.shape[2] <= shared
            or dropout or (attention_mask is None and not unmasked_step)
            or (attention_mask is not None and attention_mask.shape[-1] != key.shape[2])
            or kwargs.get("softcap") is not None or kwargs.get("output_attentions")):
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    groups = heads // key.shape[1]
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    if queries == 1:
        return _decode_step_attention(query, key, value, attention_mask, shared, groups,
                                      scaling)
    prefix_k = repeat_kv(key[:1, :, :shared], groups)
    prefix_v = repeat_kv(value[:1, :, :shared], groups)
    stacked = query.transpose(0, 1).reshape(1, heads, batch * queries, -1)
    out_p, lse_p = flash(stacked, prefix_k, prefix_v, scale=scaling)
    out_p = out_p.reshape(heads, batch, queries, -1).transpose(0, 1)
    lse_p = lse_p.reshape(heads, batch, queries).transpose(0, 1)
    rest_mask = None if attention_mask is None else attention_mask[..., shared:]
    if rest_mask is not None and rest_mask.dtype == torch.bool:
        rest_mask = torch.zeros(rest_mask.shape, dtype=query.dtype,
                                device=query.device).masked_fill_(~rest_mask, float("-inf"))
    out_r, lse_r = flash(query, repeat_kv(key[:, :, shared:], groups),
                         repeat_kv(value[:, :, shared:], groups), attn_mask=rest_mask,
                         scale=scaling)
    lse = torch.logaddexp(lse_p, lse_r)
    weight_p = torch.exp(lse_p - lse).nan_to_num_(0.0).unsqueeze(-1)
    weight_r = torch.exp(lse_r - lse).nan_to_num_(0.0).unsqueeze(-1)
    out = out_p * weight_p + out_r.nan_to_num(0.0) * weight_r
    return out.transpose(1, 2).contiguous(), None


def _decode_step_attention(query: Any, key: Any, value: Any, attention_mask: Any, shared: int,
                           groups: int, scaling: float | None) -> tuple[Any, None]:
    """``shared_prefix_attention`` for one new token per row. The query heads that share a
    key/value head attend together (stacked as that head's queries), so the keys and values
    are read as cached, never copied once per query head (``repeat_kv``)."""
    import torch

    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    grouped = query.reshape(batch, kv_heads, groups, dim)
    stacked = grouped.transpose(0, 1).reshape(1, kv_heads, batch * groups, dim)
    out_p, lse_p = flash(stacked, key[:1, :, :shared], value[:1, :, :shared], scale=scaling)
    out_p = out_p.reshape(kv_heads, batch, groups, dim).transpose(0, 1)
    lse_p = lse_p.reshape(kv_heads, batch, groups).transpose(0, 1)
    rest_mask = None
    if attention_mask is not None:
        rest_mask = attention_mask[..., shared:]
        if rest_mask.dtype == torch.bool:
            rest_mask = torch.zeros(rest_mask.shape, dtype=query.dtype,
                                    device=query.device).masked_fill_(~rest_mask, float("-inf"))
        rest_mask = rest_mask.expand(batch, 1, groups, rest_mask.shape[-1])
    out_r, lse_r = flash(grouped, key[:, :, shared:], value[:, :, shared:], attn_mask=rest_mask,
                         scale=scaling)
    lse = torch.logaddexp(lse_p, lse_r)
    weight_p = torch.exp(lse_p - lse).nan_to_num_(0.0).unsqueeze(-1)
    weight_r = torch.exp(lse_r - lse).nan_to_num_(0.0).unsqueeze(-1)
    out = out_p * weight_p + out_r.nan_to_num(0.0) * weight_r  # [batch, kv, groups, dim]
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def use_shared_prefix_attention(model: Any) -> bool:
    """Switch a CPU model that uses SDPA to ``shared_prefix_attention`` (registered under
    its own name; other models in the process are not touched). Returns whether it did."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(ATTENTION, shared_prefix_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    config._attn_implementation = ATTENTION
    return True
