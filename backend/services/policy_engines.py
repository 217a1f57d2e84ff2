"""Engines of policies for interactive use (the Playground): a trained checkpoint is loaded
once and kept while it is in use, so a chat, a critique→revision preview and a verdict with the
same policy do not reload it. At most ``keep`` checkpoints stay loaded (two: a side-by-side
needs both); the least recently used idle one is closed to make room. The base model is the
studio's own engine and is never closed here.

Only the policies a user can pick (``base``, ``job:<id>``, ``server:<model>``) are accepted,
never a folder path: a link or an API call cannot make the studio load an arbitrary directory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from backend.engines.base import Engine
from backend.errors import ValidationError
from backend.services.policies import Policy, PolicyResolver

PICKABLE = ("base", "job:", "server:")


@dataclass
class _Loaded:
    engine: Engine
    owned: bool
    users: int = 0


class PolicyEngines:
    def __init__(self, resolver: PolicyResolver, *, keep: int = 2) -> None:
        self._resolver = resolver
        self._keep = keep
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def options(self) -> list[Policy]:
        return self._resolver.options()

    def resolve(self, ref: str | None) -> Policy:
        ref = (ref or "base").strip() or "base"
        if not (ref == "base" or ref.startswith(PICKABLE[1:])):
            raise ValidationError(f"Policy {ref[:80]!r}: pick base, job:<id> or server:<model> "
                                  "(a model folder can only be compared, not opened here).")
        return self._resolver.resolve(ref)

    @contextmanager
    def use(self, ref: str | None) -> Iterator[tuple[Policy, Engine]]:
        """The policy and its engine for the block (loaded once, kept for later calls)."""
        policy = self.resolve(ref)
        if policy.kind == "base":
            engine, _ = self._resolver.build(policy)
            yield policy, engine
            return
        with self._lock:
            entry = self._loaded.get(policy.ref)
            if entry is not None:
                self._loaded.move_to_end(policy.ref)
                entry.users += 1
        if entry is None:
            engine, owned = self._resolver.build(policy)  # slow: outside the lock
            with self._lock:
                entry = self._loaded.get(policy.ref)
                if entry is None:
                    entry = _Loaded(engine, owned)
                    self._loaded[policy.ref] = entry
                elif owned:  # another call loaded it meanwhile
                    engine.close()
                entry.users += 1
                self._evict()
        try:
            yield policy, entry.engine
        finally:
            with self._lock:
                entry.users -= 1
                self._evict()

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def _evict(self) -> None:
        """Close idle engines beyond ``keep`` (least recently used first). Holds the lock."""
        for ref in list(self._loaded):
            if len(self._loaded) <= self._keep:
                return
            entry = self._loaded[ref]
            if entry.users == 0:
                del self._loaded[ref]
                if entry.owned:
                    entry.engine.close()

    def close(self) -> None:
        with self._lock:
            entries = list(self._loaded.values())
            self._loaded.clear()
        for entry in entries:
            if entry.owned:
                entry.engine.close()
