from __future__ import annotations

import io
import json
import zipfile

import pytest
import yaml

from backend.access import local_admin
from backend.errors import ImportFormatError
from backend.services.container import Services

AS_A = local_admin("a")
AS_ANN = local_admin("ann")


def test_paper_files_import_as_one_constitution_with_the_source_texts(
        services: Services, paper_files: list[tuple[str, bytes]]) -> None:
    detail = services.constitution_io.import_files(paper_files, actor=AS_ANN)
    src = dict(paper_files)
    critiques = json.loads(src["CritiqueRevisionInstructions.json"])
    choices = json.loads(src["RLMadisonInstructions.json"])
    assert len(detail.content.principles) == 16
    for p, (key, entry), choice in zip(detail.content.principles, critiques.items(), choices,
                                       strict=True):
        assert p.key == key
        assert "\n\nCritiqueRequest: " + p.critique_request + "\n\nCritique:" == entry["prompt"][0]
        assert "\n\nRevisionRequest: " + p.revision_request + "\n\nRevision:" == \
            entry["edit_request"]
        assert "\n" + p.choice_instruction + " Options:" == choice
    kinds = [f.kind for f in detail.content.few_shots]
    assert kinds.count("critique_revision") == 5 and kinds.count("choice") == 5
    assert kinds.count("choice_cot") == 6
    # and the paper export gives back the same files, value for value
    exported = services.constitution_io.paper_files(detail.info.id)
    for name, raw in paper_files:
        assert json.loads(exported[name]) == json.loads(raw), name


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_then_import_reproduces_the_content_hash(services: Services, fmt: str) -> None:
    head = services.constitutions.list_all()[0].head
    exported = services.constitution_io.export(head.id, fmt)  # type: ignore[arg-type]
    again = services.constitution_io.import_files([(exported.filename, exported.data)],
                                                  actor=AS_ANN)
    assert again.info.content_hash == head.content_hash
    assert again.constitution.name == "Studio default (2)"
    doc = yaml.safe_load(exported.data) if fmt == "yaml" else json.loads(exported.data)
    assert doc["schema_version"] == 1 and doc["content_hash"] == head.content_hash


def test_paper_export_zip_round_trips(services: Services,
                                      paper_files: list[tuple[str, bytes]]) -> None:
    imported = services.constitution_io.import_files(paper_files, actor=AS_ANN, name="Paper")
    exported = services.constitution_io.export(imported.info.id, "paper")
    with zipfile.ZipFile(io.BytesIO(exported.data)) as zf:
        files = [(n, zf.read(n)) for n in zf.namelist()]
    again = services.constitution_io.import_files(files, actor=AS_ANN, name="Paper again")
    assert again.info.content_hash == imported.info.content_hash


def test_a_tampered_export_is_refused(services: Services) -> None:
    head = services.constitutions.list_all()[0].head
    doc = json.loads(services.constitution_io.export(head.id, "json").data)
    doc["principles"][0]["title"] = "Quietly changed"
    with pytest.raises(ImportFormatError, match="content_hash"):
        services.constitution_io.import_files([("c.json", json.dumps(doc).encode())], actor=AS_A)


def test_imports_are_audited_with_the_source_file_hash(services: Services) -> None:
    head = services.constitutions.list_all()[0].head
    exported = services.constitution_io.export(head.id, "yaml")
    services.constitution_io.import_files([(exported.filename, exported.data)], actor=AS_ANN)
    report = services.audit.verify()
    # events: the seed, the built-in prompt set and the import
    assert report.ok and report.events_checked == 3 and report.versions_checked == 2
