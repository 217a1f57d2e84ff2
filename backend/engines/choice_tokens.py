"""Which token a choice such as ``A`` is, for every engine, and how a verdict is scored from
next-token log-probabilities.

A choice is scored as the *continuation of the answer prefix* (``The answer is: (``), so its
token is the one that follows ``(``. On byte-level BPE tokenizers (GPT-2, Llama 3, SmolLM2) that
is ``A``; on SentencePiece tokenizers (Llama 2, Mistral, Gemma) encoding ``"A"`` alone gives the
word-initial ``▁A``, while ``(A`` gives ``(`` then ``A``: the token after ``(`` is picked, not
the word-initial one.

Engines that see a server's top-k token *texts* (not ids) match them with ``token_is_choice``.
``scores_from_top`` turns top-k log-probabilities into probabilities: a choice absent from the
top-k gets a bounded estimate (at most the smallest listed probability) and is reported in
``bounded``; a prompt with none of the choices in its top-k is reported as unscorable. Never a
silent 0.5, 1.0 or 0.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from backend.engines.base import ChoiceScores
from backend.errors import ChoiceTokenError

ANSWER_OPEN = "("  # the character the answer prefix ends in: ``The answer is: (``
SPACE_MARKS = " \t\n▁Ġ"  # SentencePiece (▁) and byte-level BPE (Ġ) word-initial marks


def check_choices(choices: Sequence[str]) -> list[str]:
    names = [c.strip() for c in choices]
    if not names or not all(names) or len(set(names)) != len(names):
        raise ChoiceTokenError(f"choices must be distinct non-blank tokens, got {list(choices)!r}")
    return names


def choice_token_id(tokenizer: Any, choice: str, *, model: str = "the model",
                    after: str = ANSWER_OPEN) -> int:
    """The vocabulary id of ``choice`` as the next token after ``after`` (a Hugging Face
    tokenizer, or anything with ``encode``, ``decode``, ``get_vocab`` and
    ``convert_ids_to_tokens``).

    1. ``encode(after + choice)`` minus ``encode(after)``, when that is exactly one token;
    2. else the exact vocabulary entry ``choice`` (not the unknown token);
    3. else ``encode(choice)`` when it is one token that decodes back to ``choice``.
    Otherwise ``ChoiceTokenError``.
    """
    check_choices([choice])
    head = list(tokenizer.encode(after, add_special_tokens=False))
    both = list(tokenizer.encode(after + choice, add_special_tokens=False))
    if len(both) == len(head) + 1 and both[:len(head)] == head:
        return int(both[-1])
    exact = tokenizer.get_vocab().get(choice)
    if exact is not None and exact != getattr(tokenizer, "unk_token_id", None):
        return int(exact)
    ids = list(tokenizer.encode(choice, add_special_tokens=False))
    if len(ids) == 1 and tokenizer.decode(ids, skip_special_tokens=False) == choice:
        return int(ids[0])
    pieces = tokenizer.convert_ids_to_tokens(ids)
    raise ChoiceTokenError(
        f"The choice {choice!r} is not a single token for {model} (it encodes as {pieces}). "
        "Use single-token choices such as 'A' and 'B'.")


def token_is_choice(token: str, choice: str) -> bool:
    """Whether a server's token text spells ``choice`` (``A``, `` A``, ``▁A`` and ``ĠA`` do)."""
    return token.strip(SPACE_MARKS) == choice.strip(SPACE_MARKS) != ""


def logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def scores_from_top(top: Sequence[tuple[str, float]], choices: Sequence[str], *,
                    prompt_sent: str, latency_s: float = 0.0, complete: bool = False
                    ) -> ChoiceScores:
    """Choice probabilities from a next-token top-k list of ``(token text, logprob)``.

    Token texts that spell the same choice (``A`` and `` A``) are merged (logsumexp). A choice
    absent from the list gets the smallest listed logprob as an upper-bound estimate and is
    named in ``bounded`` (unless ``complete``: the list is the whole distribution, e.g. exact
    per-candidate scoring, then absence means the engine gave no value and the prompt is
    unscorable). None of the choices in the list: unscorable, with the top tokens as evidence.
    """
    pairs = [(t, lp) for t, lp in top if math.isfinite(lp)]
    evidence: dict[str, float] = {}
    for token, lp in pairs[:20]:
        evidence[token] = max(lp, evidence.get(token, -math.inf))
    found: dict[str, list[float]] = {}
    for token, lp in pairs:
        for c in choices:
            if token_is_choice(token, c):
                found.setdefault(c, []).append(lp)
    if not pairs:
        return ChoiceScores(probs={}, logprobs=dict.fromkeys(choices), prompt_sent=prompt_sent,
                            latency_s=latency_s, unscorable="the engine returned no "
                            "next-token log-probabilities", top_tokens=evidence)
    if not found or (complete and len(found) < len(choices)):
        shown = ", ".join(f"{t!r} {lp:.2f}" for t, lp in list(evidence.items())[:10])
        missing = [c for c in choices if c not in found]
        return ChoiceScores(
            probs={}, logprobs={c: (logsumexp(found[c]) if c in found else None)
                                for c in choices},
            prompt_sent=prompt_sent, latency_s=latency_s, top_tokens=evidence,
            unscorable=f"the choices {missing} are not among the model's top {len(pairs)} next "
                       f"tokens (top: {shown})")
    floor = min(lp for _, lp in pairs)
    logprobs: dict[str, float | None] = {
        c: (logsumexp(found[c]) if c in found else None) for c in choices}
    bounded = tuple(c for c in choices if c not in found)
    estimate = {c: (lp if lp is not None else floor) for c, lp in logprobs.items()}
    norm = logsumexp(list(estimate.values()))
    probs = {c: math.exp(lp - norm) for c, lp in estimate.items()}
    return ChoiceScores(probs=probs, logprobs=logprobs, prompt_sent=prompt_sent,
                        latency_s=latency_s, bounded=bounded,
                        top_tokens=evidence if bounded else {})


def scores_from_logprobs(logprobs: Mapping[str, float], *, prompt_sent: str,
                         latency_s: float = 0.0) -> ChoiceScores:
    """Exact scores (every choice's log-probability is known): renormalised over the choices."""
    norm = logsumexp(list(logprobs.values()))
    return ChoiceScores(probs={c: math.exp(lp - norm) for c, lp in logprobs.items()},
                        logprobs=dict(logprobs), prompt_sent=prompt_sent, latency_s=latency_s)
