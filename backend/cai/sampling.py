"""Principle sampling with a recorded seed: the same seed gives the same principles."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from backend.cai.constitution import ConstitutionContent, Principle
from backend.errors import ValidationError


def derived_seed(seed: int, *parts: object) -> int:
    """A stable sub-seed for (seed, item, round, …), independent of Python's hash seed."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & 0x7FFF_FFFF


def eligible(content: ConstitutionContent, keys: Sequence[str] | None = None
             ) -> tuple[Principle, ...]:
    """Enabled principles, or exactly the ones named by ``keys`` (in that order)."""
    if keys:
        by_key = {p.key: p for p in content.principles}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise ValidationError(f"Unknown principle key(s): {', '.join(missing)}; pick "
                                  "principles of the constitution version in use.")
        return tuple(by_key[k] for k in keys)
    enabled = content.enabled_principles()
    if not enabled:
        raise ValidationError("This constitution version has no enabled principle; enable one.")
    return enabled


def sample_one(pool: Sequence[Principle], seed: int, *parts: object) -> Principle:
    return random.Random(derived_seed(seed, *parts)).choice(list(pool))


def sample_k(pool: Sequence[Principle], k: int, seed: int, *parts: object) -> list[Principle]:
    """k distinct principles (all of them when k ≥ the pool size), in sampled order."""
    if k < 1:
        raise ValidationError("The number of principles to ensemble must be at least 1.")
    rng = random.Random(derived_seed(seed, *parts))
    if k == 1:  # the same draw as sample(pool, 1) (one _randbelow(len)), without its set-up
        return [rng.choice(pool)]
    return rng.sample(list(pool), min(k, len(pool)))


# The assignment rule: an item's principles depend only on (run seed, the item's stable key,
# the step: "label" or the critique round), never on its batch, its position in a batch or
# whether the run was resumed. Both orders (A,B) and (B,A) of a pair use the same principles,
# so averaging over orders removes position bias only.


def item_key(*texts: str) -> str:
    """A stable key for an item that has no id of its own: a hash of its texts."""
    return hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:16]


def label_principles(pool: Sequence[Principle], k: int, seed: int, item: object
                     ) -> list[Principle]:
    """The k principles that label one pair (item = its dataset id or stable key)."""
    return sample_k(pool, k, seed, "label", item)


def round_principle(pool: Sequence[Principle], seed: int, item: object, round_: int
                    ) -> Principle:
    """The principle of one SL-CAI critique round of one item."""
    return sample_one(pool, seed, "critique", item, round_)
