"""Helpers for agreement tests: a small labelled dataset written straight into the store."""

from __future__ import annotations

import hashlib

from backend.services.container import Services
from db.dataset_models import PairDataset, PairItemRow


def add_dataset(services: Services, n: int, name: str = "pairs") -> int:
    """n pairs; the human prefers A on even items and B on odd ones."""
    with services.db.write() as s:
        ds = PairDataset(name=name, source_format="test", source_name="test",
                         source_sha256="0" * 64, item_count=n, created_by="t")
        s.add(ds)
        s.flush()
        assert ds.id is not None
        for i in range(n):
            prompt, a, b = f"Question {i}?", f"Helpful answer {i}.", f"Rude answer {i}!"
            s.add(PairItemRow(dataset_id=ds.id, position=i, prompt=prompt, response_a=a,
                              response_b=b, human_label=1.0 if i % 2 == 0 else 0.0,
                              content_hash=hashlib.sha256(f"{i}{name}".encode()).hexdigest()))
        return ds.id
