"""Datasets the stages made, as Hugging Face ``datasets`` people can take elsewhere (issue 17).

``export`` writes ``<data dir>/exports/datasets/<kind>-<id>/``: ``hf/`` (``save_to_disk``,
read back with ``datasets.load_from_disk``), ``<kind>-<id>.parquet`` and ``provenance.json``
(the dataset, the job that made it, the constitution version and its content hash, a sha256
of the rows). SL-CAI rows carry ``messages`` (user prompt, assistant revision: TRL's SFT
format); preference rows carry ``chosen`` / ``rejected`` by the soft label and the label
itself. ``push`` sends the export to the Hub (``Dataset.push_to_hub``), only when the Hub is
reachable and a repo id is given; offline it refuses with a message naming the folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.access import Action, Principal, require
from backend.errors import NotFoundError, ValidationError
from backend.hub import hub_offline, hub_reachable
from db import training_repo
from db.audit_chain import append_event
from db.engine import Database


def hub_online() -> bool:
    return not hub_offline() and hub_reachable()


@dataclass(frozen=True)
class DatasetExport:
    dataset_id: int
    kind: str
    folder: Path
    hf_dir: Path
    parquet: Path
    rows: int
    constitution_sha256: str | None


class DatasetExportService:
    def __init__(self, db: Database, export_dir: Path, *,
                 online: Callable[[], bool] = hub_online) -> None:
        self._db = db
        self._dir = export_dir
        self._online = online

    def rows(self, dataset_id: int) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        """(kind, rows, provenance) of a stage-made dataset."""
        from db.constitution_models import Constitution, ConstitutionVersion

        with self._db.read() as s:
            ds = training_repo.get_dataset(s, dataset_id=dataset_id)
            if ds is None:
                raise NotFoundError(f"No SL-CAI or preference dataset {dataset_id}.")
            version = None if ds.constitution_version_id is None else s.get(
                ConstitutionVersion, ds.constitution_version_id)
            parent = None if version is None else s.get(Constitution, version.constitution_id)
            if ds.kind == "sl_cai":
                rows = [{"prompt": r.prompt, "response": r.response, "revision": r.revision,
                         "messages": [{"role": "user", "content": r.prompt},
                                      {"role": "assistant", "content": r.revision}],
                         "principle_keys": list(r.principle_keys), "chain_id": r.chain_id,
                         "position": r.position}
                        for r in training_repo.sl_cai_samples(s, dataset_id=dataset_id)]
            else:
                rows = [{"prompt": r.prompt, "response_a": r.response_a,
                         "response_b": r.response_b, "p_a": r.p_a,
                         "chosen": r.response_a if r.p_a >= 0.5 else r.response_b,
                         "rejected": r.response_b if r.p_a >= 0.5 else r.response_a,
                         "principle_keys": list(r.principle_keys),
                         "verdict_chain_id": r.verdict_chain_id, "position": r.position}
                        for r in training_repo.ai_pairs(s, dataset_id=dataset_id)]
            provenance: dict[str, Any] = {
                "dataset_id": dataset_id, "kind": ds.kind, "name": ds.name, "job_id": ds.job_id,
                "model": ds.model, "source": ds.source, "source_sha256": ds.source_sha256,
                "constitution": None if version is None else {
                    "name": None if parent is None else parent.name,
                    "version_id": version.id, "number": version.number,
                    "content_hash": version.content_hash},
            }
            kind = ds.kind
        if not rows:
            raise ValidationError(f"Dataset {dataset_id} has no rows yet; export it when its "
                                  "stage stored some.")
        text = json.dumps(rows, sort_keys=True, ensure_ascii=False)
        provenance["rows"] = len(rows)
        provenance["rows_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return kind, rows, provenance

    def export(self, dataset_id: int, *, actor: Principal) -> DatasetExport:
        require(actor, Action.EXPORT)
        from datasets import Dataset

        kind, rows, provenance = self.rows(dataset_id)
        folder = self._dir / f"{kind}-{dataset_id}"
        folder.mkdir(parents=True, exist_ok=True)
        data = Dataset.from_list(rows)
        data.info.description = json.dumps(provenance, sort_keys=True)
        hf_dir = folder / "hf"
        data.save_to_disk(str(hf_dir))
        parquet = folder / f"{kind}-{dataset_id}.parquet"
        data.to_parquet(str(parquet))
        (folder / "provenance.json").write_text(json.dumps(provenance, indent=2,
                                                           sort_keys=True), encoding="utf-8")
        constitution = provenance.get("constitution") or {}
        with self._db.write() as s:
            append_event(s, actor=actor.name, action="dataset.export_hf",
                         entity_type="training_dataset", entity_id=str(dataset_id),
                         payload={"folder": str(folder), "rows": len(rows),
                                  "rows_sha256": provenance["rows_sha256"]})
        return DatasetExport(dataset_id, kind, folder, hf_dir, parquet, len(rows),
                             constitution.get("content_hash"))

    def job_dataset(self, job_id: int) -> int:
        """The id of the dataset a stage job made (SL-CAI data or preference data)."""
        with self._db.read() as s:
            for kind in ("sl_cai", "preference"):
                row = training_repo.dataset_of_job(s, job_id=job_id, kind=kind)
                if row is not None and row.id is not None:
                    return row.id
        raise NotFoundError(f"Job {job_id} made no dataset: pick an SL-CAI data or preference "
                            "data job (training jobs make models; download those instead).")

    def archive(self, done: DatasetExport) -> Path:
        """A zip of an export's folder (``hf/``, the Parquet file, ``provenance.json``), for
        a browser download; made in a fresh temporary folder."""
        target = Path(tempfile.mkdtemp(prefix=f"cstudio-dataset{done.dataset_id}-"))
        return Path(shutil.make_archive(str(target / done.folder.name), "zip",
                                        root_dir=done.folder))

    def push(self, dataset_id: int, repo_id: str, *, actor: Principal,
             token: str | None = None, private: bool = True) -> str:
        """Export, then push to the Hub as ``repo_id``; refused offline (the export stays)."""
        require(actor, Action.EXPORT)
        _hub_repo(repo_id)  # a bad repo id is refused before anything is written
        return self.publish(self.export(dataset_id, actor=actor), repo_id, actor=actor,
                            token=token, private=private)

    def publish(self, done: DatasetExport, repo_id: str, *, actor: Principal,
                token: str | None = None, private: bool = True) -> str:
        """Push an export already made (``export``) to the Hub as ``repo_id``; refused
        offline, naming the export folder."""
        require(actor, Action.EXPORT)
        repo = _hub_repo(repo_id)
        if not self._online():
            raise ValidationError(
                f"The Hugging Face Hub is not reachable from here (offline, or HF_HUB_OFFLINE "
                f"is set), so nothing was pushed. The export is in {done.folder}; push it "
                "when online, or upload that folder by hand.")
        from datasets import load_from_disk

        load_from_disk(str(done.hf_dir)).push_to_hub(repo, token=token, private=private)
        with self._db.write() as s:
            append_event(s, actor=actor.name, action="dataset.push_hub",
                         entity_type="training_dataset", entity_id=str(done.dataset_id),
                         payload={"repo_id": repo, "rows": done.rows})
        return f"https://huggingface.co/datasets/{repo}"


def _hub_repo(repo_id: str) -> str:
    repo = repo_id.strip()
    if not repo or "/" not in repo:
        raise ValidationError("Give the Hub repository as owner/name to push to.")
    return repo
