"""Every write endpoint of the studio, called through the Gradio API (gradio_client) by a
signed-in user of each role: roles without the permission get a clear refusal and nothing is
stored; permitted roles succeed.

``WRITES`` maps each write endpoint to the Action it needs and how to call it; ``READS`` lists
the endpoints that change nothing. ``test_every_endpoint_is_classified`` fails when the app
has an endpoint in neither, so a new write endpoint cannot slip in without a role rule here.
Endpoint names ending in ``_<n>`` (Gradio's suffix for repeated names) count as their base name.
To add an endpoint: one ``Write`` entry (prep on the server, the client call, the text a
success shows) or one name in ``READS``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from gradio_client import Client, handle_file
from sqlalchemy import text
from sqlmodel import SQLModel

from backend.access import PERMISSIONS, Action, Principal, Role, local_admin
from backend.cai.labeling import LabelConfig, PairItem
from backend.services.container import Services, start
from backend.services.users import UserService
from backend.settings import Settings
from studio.app import build_app, launch
from studio.page_load import PageLoad

pytestmark = pytest.mark.slow

ROOT = local_admin("owner")
ROLES = list(Role)
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def user_of(role: Role) -> str:
    return f"{role.value}-user"


def password_of(role: Role) -> str:
    return f"{role.value} password 1"


@dataclass
class Studio:
    url: str
    services: Services
    tmp: Path
    model_path: str
    clients: dict[Role, Client]
    demo: Any  # the gr.Blocks


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, tiny_engine: Any,
           tiny_model_path: Path) -> Iterator[Studio]:
    """The studio with sign-in on (one user per role), served in-process, one client each."""
    tmp = tmp_path_factory.mktemp("roles")
    port = _free_port()
    settings = Settings(data_dir=tmp / "data", user="owner", port=port, database_url=None,
                        embedded_worker=False)
    services = start(settings)
    services.users = UserService(services.db, FAST_HASH)
    services.engines.use(tiny_engine, "tiny test model")
    for role in [Role.ADMIN, *[r for r in ROLES if r is not Role.ADMIN]]:
        services.users.add(user_of(role), role, password_of(role), actor=ROOT)
    demo = build_app(settings, services)
    _PAGE_LOAD[:] = [PageLoad.of(demo)]
    launch(demo, settings, block=False, services=services)
    url = f"http://127.0.0.1:{port}"
    try:
        clients = {role: Client(url, auth=(user_of(role), password_of(role)), verbose=False)
                   for role in ROLES}
        yield Studio(url, services, tmp, str(tiny_model_path), clients, demo)
    finally:
        demo.close()
        services.close()


# --- what "nothing was stored" means ----------------------------------------------------------

def snapshot(s: Studio) -> dict[str, str]:
    """A digest of every table's rows, the engine configuration and the files written under
    the data directory (other than the database itself)."""
    out: dict[str, str] = {}
    with s.services.db.read() as session:
        conn = session.connection()
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(text(f'SELECT * FROM "{table.name}"')).all()
            body = json.dumps(sorted(repr(tuple(r)) for r in rows))
            out[table.name] = hashlib.sha256(body.encode()).hexdigest()
    out["engine"] = repr(s.services.engines.config)
    data = s.services.settings.data_dir
    out["files"] = repr(sorted(str(p.relative_to(data)) for p in data.rglob("*")
                               if p.is_file() and not p.name.startswith("studio.db")))
    return out


def settle(s: Studio) -> None:
    """Wait for background evaluation runs, so their writes do not leak into the next check."""
    for run in s.services.evaluations.list_all():
        s.services.evaluations.wait(run.id, timeout=120)
    for comparison in s.services.comparisons.list_all():
        s.services.comparisons.wait(comparison.id, timeout=120)


def plain(outputs: Any) -> str:
    """All outputs as one string, without Markdown escapes and bold markers."""
    flat = json.dumps(outputs, default=str, ensure_ascii=False) if not isinstance(
        outputs, str) else outputs
    flat = flat.replace("\\\\", "\\")
    return re.sub(r"\\(.)", r"\1", flat).replace("**", "")


# --- the write endpoints ------------------------------------------------------------------

Ctx = dict[str, Any]
_PAGE_LOAD: list[PageLoad] = []  # the module's studio's, set by its fixture


def _page_part(c: Client, name: str) -> list[Any]:
    """One tab's values out of the page load (which also refreshes every picker's choices
    in this client's session)."""
    return _PAGE_LOAD[0].part(name, c.predict(api_name="/page_load"))


@dataclass(frozen=True)
class Write:
    action: Action
    call: Callable[[Client, Role, Ctx], Any]
    ok: str  # a pattern (re.search) the outputs of a permitted call match
    stores: bool = True  # a permitted call changes the store (or engine/files)
    prep: Callable[[Studio, Role], Ctx] | None = None  # server-side setup, before the snapshot


def _load_draft(c: Client) -> list[Any]:
    """Load the constitution into this client's session; returns the editor values."""
    out = c.predict(api_name="/constitution_load")
    return list(out[2:9])  # key, title, enabled, tags, critique, revision, choice


def _save(c: Client, role: Role, ctx: Ctx) -> Any:
    editor = _load_draft(c)
    editor[1] = f"{editor[1]} ({role.value})"
    return c.predict(f"edit by {role.value}", *editor, api_name="/constitution_save")


def _revert(c: Client, role: Role, ctx: Ctx) -> Any:
    out = c.predict(api_name="/constitution_load")
    previous = out[-2]["value"]  # the "From version" picker: the version before the head
    return c.predict(previous, api_name="/constitution_revert")


def _prep_head_has_a_parent(s: Studio, role: Role) -> Ctx:
    c = s.services.constitutions
    head = c.head(c.list_all()[0].id)
    if head.info.number == 1:
        p = head.content.principles[0]
        import dataclasses
        content = dataclasses.replace(head.content, principles=(
            dataclasses.replace(p, title=p.title + " (prep)"), *head.content.principles[1:]))
        c.save(head.info.constitution_id, head.info.id, content, "prep", actor=ROOT)
    return {}


def _prep_constitution_file(s: Studio, role: Role) -> Ctx:
    head = s.services.constitutions.list_all()[0].head
    exported = s.services.constitution_io.export(head.id, "yaml")
    path = s.tmp / f"import-{role.value}.yaml"
    path.write_bytes(exported.data)
    return {"path": str(path)}


def _import(c: Client, role: Role, ctx: Ctx) -> Any:
    return c.predict([handle_file(ctx["path"])], "", api_name="/constitution_import")


def _copy(c: Client, role: Role, ctx: Ctx) -> Any:
    editor = _load_draft(c)
    return c.predict(f"Copy for {role.value}", *editor, api_name="/constitution_copy")


def _pin(c: Client, role: Role, ctx: Ctx) -> Any:
    _load_draft(c)
    prompt = ctx.get("prompt", f"Question from {role.value}?")
    return c.predict(prompt, "A good answer.", "A bad answer.", "A", "why",
                     api_name="/golden_pin")


def _prep_golden_case(s: Studio, role: Role) -> Ctx:
    cid = s.services.constitutions.list_all()[0].id
    case = s.services.golden.add(cid, f"Case to delete ({role.value})?", "yes", "no", "A",
                                 actor=ROOT)
    return {"case_id": case.id}


def _delete_case(c: Client, role: Role, ctx: Ctx) -> Any:
    _load_draft(c)
    return c.predict(ctx["case_id"], api_name="/golden_delete")


def _prep_one_golden_case(s: Studio, role: Role) -> Ctx:
    cid = s.services.constitutions.list_all()[0].id
    if not s.services.golden.list_all(cid):
        s.services.golden.add(cid, "Pinned for the impact preview?", "yes", "no", "A",
                              actor=ROOT)
    return {}


def _impact(c: Client, role: Role, ctx: Ctx) -> Any:
    editor = _load_draft(c)
    editor[4] = editor[4] + " Be brief."
    return c.predict(*editor, api_name="/golden_impact")


def _playground_version(c: Client) -> int:
    out = _page_part(c, "playground_load")
    return int(out[2]["value"])


def _preview(c: Client, role: Role, ctx: Ctx) -> Any:
    version = _playground_version(c)
    return c.predict(version, "sample", "How do I pick a lock?", 1, 8, 0.0, 0, "chat", "base",
                     api_name="/playground_preview")


def _side_by_side(c: Client, role: Role, ctx: Ctx) -> Any:
    version = _playground_version(c)
    return c.predict(version, "sample", "How do I pick a lock?", 1, 8, 0.0, 0, "chat", "base",
                     "base", api_name="/playground_side_by_side")


def _sample(c: Client, role: Role, ctx: Ctx) -> Any:
    return c.predict("Tell me a story.", 8, 0, "base", api_name="/playground_sample")


def _judge(c: Client, role: Role, ctx: Ctx) -> Any:
    version = _playground_version(c)
    return c.predict(version, "sample", "Help?", "Sure, here is how.", "No.", False, False, 1,
                     True, 0, "chat", True, "base", api_name="/playground_judge")


PAIRS = [{"prompt": f"Question {i}?", "response_a": f"Helpful answer {i}.",
          "response_b": f"Rude answer {i}.", "label": "A"} for i in range(3)]


def _prep_pairs_file(s: Studio, role: Role) -> Ctx:
    path = s.tmp / f"pairs-{role.value}.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS), encoding="utf-8")
    return {"path": str(path)}


def _dataset_import(c: Client, role: Role, ctx: Ctx) -> Any:
    return c.predict(handle_file(ctx["path"]), "jsonl", f"pairs of {role.value}", "prompt",
                     "response_a", "response_b", "label", "", api_name="/dataset_import")


def _ensure_dataset(s: Studio) -> int:
    existing = s.services.datasets.list_all()
    if existing:
        return existing[0].id
    raw = "".join(json.dumps(p) + "\n" for p in PAIRS).encode()
    mapping = {"prompt": "prompt", "response_a": "response_a", "response_b": "response_b",
               "label": "label"}
    return s.services.datasets.import_file("seed.jsonl", raw, "jsonl", actor=ROOT,
                                           name="seed pairs", mapping=mapping).id


def _prep_dataset(s: Studio, role: Role) -> Ctx:
    return {"dataset_id": _ensure_dataset(s)}


def _launch_evaluation(c: Client, role: Role, ctx: Ctx) -> Any:
    out = _page_part(c, "agreement_load")
    constitution = out[2]["value"]
    version = c.predict(constitution, api_name="/agreement_versions")["value"]
    return c.predict(ctx["dataset_id"], version, "2", False, False, 1, 0, True, "chat",
                     api_name="/evaluation_launch")


def _prep_evaluation(s: Studio, role: Role) -> Ctx:
    from backend.services.evaluations import EvaluationConfig

    head = s.services.constitutions.list_all()[0].head
    run = s.services.evaluations.create(dataset_id=_ensure_dataset(s), version_id=head.id,
                                        config=EvaluationConfig(sample_size=1,
                                                                both_orders=False),
                                        actor=ROOT)
    return {"run_id": run.id}


def _run_action(endpoint: str) -> Callable[[Client, Role, Ctx], Any]:
    def call(c: Client, role: Role, ctx: Ctx) -> Any:
        c.predict(api_name="/page_load")  # the run picker learns the new run
        return c.predict(ctx["run_id"], api_name=endpoint)
    return call


def _prep_compare_prompts(s: Studio, role: Role) -> Ctx:
    path = s.tmp / f"compare-prompts-{role.value}.jsonl"
    path.write_text(json.dumps({"prompt": f"Hello from {role.value}?"}) + "\n", encoding="utf-8")
    return {"prompts": str(path)}


def _launch_comparison(c: Client, role: Role, ctx: Ctx) -> Any:
    constitution = _page_part(c, "agreement_load")[2]["value"]  # and the policy choices
    version = c.predict(constitution, api_name="/compare_versions")["value"]
    return c.predict(["base", ctx["model"]], version, ctx["prompts"], 1, 4, False, False, 1, 0,
                     [], api_name="/compare_launch")


def _prep_comparison(s: Studio, role: Role) -> Ctx:
    from backend.services.comparisons import ComparisonConfig, PromptItem

    head = s.services.constitutions.list_all()[0].head
    info = s.services.comparisons.create(
        policies=["base", s.model_path], version_id=head.id, actor=ROOT,
        config=ComparisonConfig(max_new_tokens=4, both_orders=False),
        prompts=[PromptItem(f"q of {role.value}?")])
    return {"comparison_id": info.id}


def _comparison_action(endpoint: str) -> Callable[[Client, Role, Ctx], Any]:
    def call(c: Client, role: Role, ctx: Ctx) -> Any:
        c.predict(api_name="/page_load")  # the picker learns the new comparison
        return c.predict(ctx["comparison_id"], api_name=endpoint)
    return call


def _prep_pipeline(s: Studio, role: Role) -> Ctx:
    from tests.backend.services.pipeline_data import tiny_spec

    info = s.services.pipelines.launch(tiny_spec(name=f"pipeline of {role.value}"), actor=ROOT)
    return {"pipeline_id": info.id}


def _prep_cancelled_pipeline(s: Studio, role: Role) -> Ctx:
    ctx = _prep_pipeline(s, role)
    s.services.pipelines.cancel(ctx["pipeline_id"], actor=ROOT)
    return ctx


def _launch_pipeline(c: Client, role: Role, ctx: Ctx) -> Any:
    c.predict(api_name="/page_load")
    return c.predict(f"pipeline by {role.value}", None, "tiny", "default", 2, 1, 2, "grpo",
                     "cpu", "", api_name="/pipeline_launch")


def _pipeline_action(endpoint: str) -> Callable[[Client, Role, Ctx], Any]:
    def call(c: Client, role: Role, ctx: Ctx) -> Any:
        c.predict(api_name="/page_load")  # the picker learns the new pipeline
        return c.predict(ctx["pipeline_id"], api_name=endpoint)
    return call


def _prep_judged_pair(s: Studio, role: Role) -> Ctx:
    """A comparison with one judged pair (written directly: no model needed)."""
    from db import comparison_repo

    ctx = _prep_comparison(s, role)
    with s.services.db.write() as session:
        comparison_repo.insert_responses(session, comparison_id=ctx["comparison_id"], rows=[
            {"policy_index": i, "prompt_index": 0, "response": f"r{i}"} for i in range(2)])
        comparison_repo.insert_verdicts(session, comparison_id=ctx["comparison_id"], rows=[{
            "prompt_index": 0, "policy_a": 0, "policy_b": 1, "p_a": 0.4, "chain_id": "c",
            "per_principle": {}, "variants": [], "record_ids": []}])
        ctx["pair"] = comparison_repo.verdicts(session, comparison_id=ctx["comparison_id"])[0].id
    return ctx


def _prep_voted_pair(s: Studio, role: Role) -> Ctx:
    ctx = _prep_judged_pair(s, role)
    s.services.comparison_votes.vote(ctx["comparison_id"], ctx["pair"], "A", actor=ROOT)
    return ctx


def _vote(c: Client, role: Role, ctx: Ctx) -> Any:
    c.predict(api_name="/page_load")
    return c.predict(ctx["comparison_id"], ctx["pair"], "B", api_name="/compare_vote")


def _prep_disputed_pair(s: Studio, role: Role) -> Ctx:
    ctx = _prep_voted_pair(s, role)
    s.services.comparison_votes.vote(ctx["comparison_id"], ctx["pair"], "B",
                                     actor=local_admin("second voter"))
    return ctx


def _adjudicate(c: Client, role: Role, ctx: Ctx) -> Any:
    c.predict(api_name="/page_load")
    return c.predict(ctx["comparison_id"], ctx["pair"], "tie", f"ruled by {role.value}",
                     api_name="/compare_adjudicate")


def _votes_dataset(c: Client, role: Role, ctx: Ctx) -> Any:
    c.predict(api_name="/page_load")
    return c.predict(ctx["comparison_id"], api_name="/compare_votes_dataset")


def _prep_alias(s: Studio, role: Role) -> Ctx:
    cid = s.services.constitutions.list_all()[0].id
    name = f"staging-{role.value}"
    s.services.ci.set_alias(cid, name, 1, actor=ROOT)
    return {"constitution": cid, "alias": name}


def _prep_constitution_id(s: Studio, role: Role) -> Ctx:
    return {"constitution": s.services.constitutions.list_all()[0].id}


def _alias_set(c: Client, role: Role, ctx: Ctx) -> Any:
    c.predict(api_name="/page_load")
    return c.predict(ctx["constitution"], "production", 1, api_name="/alias_set")


def _alias_remove(c: Client, role: Role, ctx: Ctx) -> Any:
    c.predict(api_name="/page_load")
    return c.predict(ctx["constitution"], ctx["alias"], api_name="/alias_remove")


def _configure(c: Client, role: Role, ctx: Ctx) -> Any:
    return c.predict("local", "", "", "", ctx["model"], 4 + ROLES.index(role),
                     api_name="/engine_configure")


def _prep_model(s: Studio, role: Role) -> Ctx:
    return {"model": s.model_path}


def _prep_target_user(s: Studio, role: Role) -> Ctx:
    name = f"target-{role.value}"
    if s.services.users.get(name) is None:
        s.services.users.add(name, "viewer", "target password 1", actor=ROOT)
    return {"name": name}


def _user_call(endpoint: str, *extra: Any) -> Callable[[Client, Role, Ctx], Any]:
    def call(c: Client, role: Role, ctx: Ctx) -> Any:
        return c.predict(ctx["name"], *extra, api_name=endpoint)
    return call


def _prep_disabled_target(s: Studio, role: Role) -> Ctx:
    ctx = _prep_target_user(s, role)
    s.services.users.set_disabled(ctx["name"], True, actor=ROOT)
    return ctx


def _add_user(c: Client, role: Role, ctx: Ctx) -> Any:
    return c.predict(f"new-{role.value}", "viewer", "new password 1", "new password 1",
                     api_name="/user_add")


def _prep_record(s: Studio, role: Role) -> Ctx:
    """A fresh critique-log record (one scoring pass of the tiny model)."""
    head = s.services.constitutions.list_all()[0].head
    result = s.services.playground.verdict(head.id, PairItem(f"q from {role.value}?", "a", "b"),
                                           LabelConfig(both_orders=False), actor=ROOT)
    return {"record_id": result.verdict.variants[0].record_id}


def _prep_flagged_record(s: Studio, role: Role) -> Ctx:
    ctx = _prep_record(s, role)
    s.services.audit_search.flag(ctx["record_id"], "to unflag", actor=ROOT)
    return ctx


def _audit_write(endpoint: str) -> Callable[[Client, Role, Ctx], Any]:
    def call(c: Client, role: Role, ctx: Ctx) -> Any:
        c.predict(ctx["record_id"], api_name="/audit_record")
        return c.predict(f"note from {role.value}", api_name=endpoint)
    return call


def _export(c: Client, role: Role, ctx: Ctx) -> Any:
    return c.predict(f"export-{role.value}", api_name="/audit_export")  # the whole log


def _prep_job(s: Studio, role: Role) -> Ctx:
    job = s.services.jobs.create("sl_cai_data", {}, actor=ROOT)
    return {"job_id": job.id}


def _job_call(endpoint: str) -> Callable[[Client, Role, Ctx], Any]:
    def call(c: Client, role: Role, ctx: Ctx) -> Any:
        c.predict(api_name="/page_load")  # the job picker learns the new job
        return c.predict(ctx["job_id"], api_name=endpoint)
    return call


def _prep_job_with_dataset(s: Studio, role: Role) -> Ctx:
    from db import training_repo

    ctx = _prep_job(s, role)
    with s.services.db.write() as session:
        row = training_repo.create_dataset(
            session, kind="sl_cai", name=f"made for {role.value}", job_id=ctx["job_id"],
            constitution_version_id=None, model="tiny", config={}, source="job",
            source_sha256="0" * 64, created_by="root")
        assert row.id is not None
        training_repo.insert_sl_cai_samples(session, dataset_id=row.id, rows=[
            {"position": 0, "prompt": "p", "response": "r", "revision": "v", "chain_id": "c",
             "record_ids": [], "principle_keys": ["k"], "content_hash": "0" * 64}])
    return ctx


def _export_dataset(c: Client, role: Role, ctx: Ctx) -> Any:
    c.predict(api_name="/page_load")  # the job picker learns the new job
    return c.predict(ctx["job_id"], "", api_name="/job_export_dataset")


def _prep_cancelled_job(s: Studio, role: Role) -> Ctx:
    ctx = _prep_job(s, role)
    s.services.jobs.cancel(ctx["job_id"], actor=ROOT)
    return ctx


def _prep_prompt_file(s: Studio, role: Role) -> Ctx:
    path = s.tmp / f"prompts-{role.value}.jsonl"
    path.write_text(f'{{"prompt": "A question from {role.value}?", "tags": ["t"]}}\n',
                    encoding="utf-8")
    return {"path": str(path)}


def _prompt_import(c: Client, role: Role, ctx: Ctx) -> Any:
    return c.predict(handle_file(ctx["path"]), f"prompts of {role.value}",
                     api_name="/prompt_set_import")


def _launch_job(kind: str) -> Callable[[Client, Role, Ctx], Any]:
    """The stage's form with its defaults; a field without one gets its first choice."""
    def call(c: Client, role: Role, ctx: Ctx) -> Any:
        c.predict(api_name="/page_load")
        endpoint = f"/job_launch_{kind}"
        params = c.view_api(return_format="dict", print_info=False)[
            "named_endpoints"][endpoint]["parameters"]
        values = [f"{kind} job of {role.value}"]
        for p in params[1:]:
            choices = p["type"].get("enum") or [""]
            values.append(p["parameter_default"] if p["parameter_has_default"] else choices[0])
        return c.predict(*values, api_name=endpoint)
    return call


WRITES: dict[str, Write] = {
    # Constitution tab
    "constitution_save": Write(Action.EDIT_CONSTITUTION, _save, "Saved v"),
    "constitution_revert": Write(Action.EDIT_CONSTITUTION, _revert, "Reverted",
                                 prep=_prep_head_has_a_parent),
    "constitution_import": Write(Action.EDIT_CONSTITUTION, _import, "Imported ",
                                 prep=_prep_constitution_file),
    "constitution_copy": Write(Action.EDIT_CONSTITUTION, _copy, "Created "),
    "golden_pin": Write(Action.RUN_EVALUATION, _pin, "Pinned case"),
    "golden_delete": Write(Action.RUN_EVALUATION, _delete_case, "Deleted case",
                           prep=_prep_golden_case),
    "golden_impact": Write(Action.RUN_PREVIEW, _impact, "Impact of your draft",
                           prep=_prep_one_golden_case),
    # Playground tab
    "playground_preview": Write(Action.RUN_PREVIEW, _preview, r"critique log record \[#"),
    "playground_side_by_side": Write(Action.RUN_PREVIEW, _side_by_side,
                                     r"Policy: base.*critique log record \[#"),
    "playground_sample": Write(Action.RUN_PREVIEW, _sample, "Sampled two responses",
                               stores=False),
    "playground_judge": Write(Action.RUN_PREVIEW, _judge, "position consistent"),
    # Agreement tab
    "dataset_import": Write(Action.RUN_EVALUATION, _dataset_import, "Imported ",
                            prep=_prep_pairs_file),
    "evaluation_launch": Write(Action.RUN_EVALUATION, _launch_evaluation, "Started run #",
                               prep=_prep_dataset),
    "evaluation_cancel": Write(Action.RUN_EVALUATION, _run_action("/evaluation_cancel"),
                               "Run #", prep=_prep_evaluation),
    "evaluation_resume": Write(Action.RUN_EVALUATION, _run_action("/evaluation_resume"),
                               "Run #", prep=_prep_evaluation),
    # Compare tab
    "compare_launch": Write(Action.RUN_EVALUATION, _launch_comparison, "Started comparison #",
                            prep=_prep_compare_prompts),
    "compare_cancel": Write(Action.RUN_EVALUATION, _comparison_action("/compare_cancel"),
                            "Comparison #", prep=_prep_comparison),
    "compare_resume": Write(Action.RUN_EVALUATION, _comparison_action("/compare_resume"),
                            "Comparison #", prep=_prep_comparison),
    "compare_vote": Write(Action.RUN_EVALUATION, _vote, "Voted B on pair #",
                          prep=_prep_judged_pair),
    "compare_votes_dataset": Write(Action.RUN_EVALUATION, _votes_dataset, "Made dataset",
                                   prep=_prep_voted_pair),
    "compare_adjudicate": Write(Action.EDIT_CONSTITUTION, _adjudicate, "Adjudicated pair #",
                                prep=_prep_disputed_pair),
    # Pipelines tab (issue 17): authors and operators launch, auditors read
    "pipeline_launch": Write(Action.LAUNCH_PIPELINE, _launch_pipeline, "Queued pipeline #"),
    "pipeline_cancel": Write(Action.LAUNCH_PIPELINE, _pipeline_action("/pipeline_cancel"),
                             r"Pipeline #\d+ cancelled", prep=_prep_pipeline),
    "pipeline_resume": Write(Action.LAUNCH_PIPELINE, _pipeline_action("/pipeline_resume"),
                             r"Pipeline #\d+ resumed", prep=_prep_cancelled_pipeline),
    # Constitution tab: version aliases (issue 16 point 8)
    "alias_set": Write(Action.EDIT_CONSTITUTION, _alias_set, r"Set production|Moved production",
                       prep=_prep_constitution_id),
    "alias_remove": Write(Action.EDIT_CONSTITUTION, _alias_remove, "Removed alias",
                          prep=_prep_alias),
    # Settings tab
    "engine_configure": Write(Action.CONFIGURE, _configure, "Engine switched", prep=_prep_model),
    "user_add": Write(Action.MANAGE_USERS, _add_user, "Added "),
    "user_set_role": Write(Action.MANAGE_USERS, _user_call("/user_set_role", "auditor"),
                           "is now auditor", prep=_prep_target_user),
    "user_set_password": Write(Action.MANAGE_USERS,
                               _user_call("/user_set_password", "changed pw 12", "changed pw 12"),
                               "Password of", prep=_prep_target_user),
    "user_disable": Write(Action.MANAGE_USERS, _user_call("/user_disable"), "is disabled",
                          prep=_prep_target_user),
    "user_enable": Write(Action.MANAGE_USERS, _user_call("/user_enable"), "is enabled",
                         prep=_prep_disabled_target),
    "user_remove": Write(Action.MANAGE_USERS, _user_call("/user_remove"), "Removed ",
                         prep=_prep_target_user),
    # Audit tab (engineer D)
    "audit_flag": Write(Action.FLAG, _audit_write("/audit_flag"), "flag", prep=_prep_record),
    "audit_unflag": Write(Action.FLAG, _audit_write("/audit_unflag"), "unflag",
                          prep=_prep_flagged_record),
    "audit_comment": Write(Action.FLAG, _audit_write("/audit_comment"), "note from",
                           prep=_prep_record),
    "audit_export": Write(Action.EXPORT, _export, "Exported "),
    # Training tab (engineer A)
    "job_launch_sl_cai_data": Write(Action.LAUNCH_JOB, _launch_job("sl_cai_data"),
                                    "Queued job"),
    "job_cancel": Write(Action.CANCEL_JOB, _job_call("/job_cancel"), "ancel",
                        prep=_prep_job),
    "job_resume": Write(Action.LAUNCH_JOB, _job_call("/job_resume"), "queued again",
                        prep=_prep_cancelled_job),
    "prompt_set_import": Write(Action.LAUNCH_JOB, _prompt_import, "Imported prompt set",
                               prep=_prep_prompt_file),
    "job_export_dataset": Write(Action.EXPORT, _export_dataset, "Exported 1 rows",
                                prep=_prep_job_with_dataset),
}
# The other stages' forms need inputs (datasets, reward models) that an empty studio lacks, so
# with their defaults a permitted role gets past the role check to the form's own checks.
for _kind in ("sft", "preference_data", "reward", "rl", "dpo"):
    WRITES[f"job_launch_{_kind}"] = Write(Action.LAUNCH_JOB, _launch_job(_kind),
                                          r"Queued job|config has problems|Not queued",
                                          stores=False)

# Endpoints that store nothing (page loads, pickers, live draft edits kept in the browser
# session, reports, searches, downloads of what exists).
READS = {
    # the page load of every tab but Constitution (studio/page_load.py), and the model line
    "header_model", "page_load",
    "constitution_load", "constitution_open", "constitution_diff", "constitution_export",
    "draft_edit", "draft_pick", "draft_up", "draft_down", "draft_add", "draft_delete",
    "draft_discard", "draft_preview_changes", "history_newer", "history_older", "golden_list",
    "playground_versions", "playground_refresh_versions", "playground_seen_head",
    "playground_principles", "playground_pick_prompt",
    "agreement_versions", "evaluation_progress", "evaluation_tick",
    "agreement_report", "agreement_disagreements", "agreement_compare",
    "engine_health",
    "compare_versions", "compare_progress", "compare_tick", "compare_report",
    "compare_browse", "compare_changes", "aliases_show",
    "compare_votes_view",
    "pipeline_view", "pipeline_refresh", "pipeline_tick",
    "audit_versions", "audit_search", "audit_search_enter", "audit_next_page",
    "audit_prev_page", "audit_pick", "audit_open_picked", "audit_pick_in_chain",
    "audit_open_in_chain", "audit_record", "audit_principle_records", "audit_verify",
    "audit_trace_run", "audit_dataset_records",
    # Training tab (engineer A)
    "job_stage_form", "job_refresh_inputs", "jobs_refresh_lists", "job_view",
    "job_pick", "jobs_filter", "jobs_prev_page", "jobs_next_page", "jobs_page", "jobs_tick",
    "job_cancel_view", "job_resume_view", "jobs_compare", "job_download_file",
    "job_download_model", "prompt_set_imported",
    # Everyday use (issue 14): tab refreshes, links, permissions, controls
    "constitution_permissions", "constitution_imported", "constitution_copied",
    "playground_relist_constitutions", "agreement_refresh", "agreement_seen_head",
    "audit_reopened", "job_controls", "jobs_tab_opened", "playground_stop",
    *(f"job_launched_{kind}" for kind in ("sl_cai_data", "sft", "preference_data", "reward",
                                          "rl", "dpo")),
}


def _base(name: str) -> str:
    return re.sub(r"_\d+$", "", name.lstrip("/"))


def test_every_endpoint_is_classified(studio: Studio) -> None:
    """Each endpoint the API offers is a listed write (with its Action) or a listed read."""
    api = studio.clients[Role.VIEWER].view_api(return_format="dict", print_info=False)
    named = {_base(n) for n in api["named_endpoints"]}
    assert not api["unnamed_endpoints"]
    unknown = named - set(WRITES) - READS
    assert not unknown, f"classify these endpoints in WRITES or READS: {sorted(unknown)}"
    assert not set(WRITES) & READS
    assert set(WRITES) <= named, f"stale WRITES entries: {sorted(set(WRITES) - named)}"


def test_no_endpoint_hides_from_the_api(studio: Studio) -> None:
    """Private and undocumented endpoints are still reachable by the page's own protocol; keep
    every Python handler public (and so in the table above) rather than unchecked."""
    hidden = [fn.api_name for fn in studio.demo.fns.values()
              if fn.fn is not None and fn.api_visibility != "public"]
    assert hidden == []


def test_signing_in_needs_the_right_password(studio: Studio) -> None:
    with pytest.raises(Exception, match=r"(?i)incorrect|credentials|login"):
        Client(studio.url, auth=(user_of(Role.ADMIN), "wrong password"), verbose=False)
    with pytest.raises(Exception, match=r"(?i)login|auth|401|credentials"):
        Client(studio.url, verbose=False).predict(api_name="/constitution_load")
    badge = _page_part(studio.clients[Role.AUDITOR], "header_user")[0]
    assert plain(badge) == "Signed in: auditor-user · role auditor"


@pytest.mark.parametrize("endpoint", sorted(WRITES))
def test_each_role_against_a_write_endpoint(studio: Studio, endpoint: str) -> None:
    write = WRITES[endpoint]
    for role in ROLES:
        ctx = write.prep(studio, role) if write.prep else {}
        ctx.setdefault("model", studio.model_path)
        before = snapshot(studio)
        try:
            outputs = write.call(studio.clients[role], role, ctx)
        except Exception as exc:  # an upload refused before Gradio (viewers, auditors)
            if "403" not in str(exc) or write.action in PERMISSIONS[role]:
                raise
            assert snapshot(studio) == before
            continue
        shown = plain(outputs)
        if write.action in PERMISSIONS[role]:
            assert "Not allowed" not in shown, f"{role.value} was refused {endpoint}: {shown}"
            assert re.search(write.ok, shown), f"{role.value} {endpoint}: {shown[:600]}"
            if write.stores:
                settle(studio)
                assert snapshot(studio) != before, f"{role.value} {endpoint} stored nothing"
        else:
            refusal = (f"Not allowed: {user_of(role)} has the role {role.value}, which may not "
                       f"{write.action.value}")
            assert refusal in shown, f"{role.value} {endpoint}: {shown[:600]}"
            settle(studio)
            after = snapshot(studio)
            changed = {k for k in before if before[k] != after.get(k)}
            assert not changed, f"{role.value} {endpoint} changed {changed}"


def test_a_removed_or_demoted_user_loses_rights_at_once(studio: Studio) -> None:
    """A role change ends the user's sessions (tests/security/test_guard.py has each change);
    signed in again, the new role applies; once removed, sign-in fails."""
    users = studio.services.users
    users.add("temp-author", "author", "temp password 1", actor=ROOT)
    client = Client(studio.url, auth=("temp-author", "temp password 1"), verbose=False)
    ctx = {"prompt": "Pinned by a temporary author?"}
    assert "Pinned case" in plain(_pin(client, Role.AUTHOR, ctx))
    users.set_role("temp-author", "viewer", actor=Principal(user_of(Role.ADMIN), Role.ADMIN))
    ctx = {"prompt": "Pinned by a demoted author?"}
    with pytest.raises(Exception):  # the old session is signed out
        _pin(client, Role.AUTHOR, ctx)
    client = Client(studio.url, auth=("temp-author", "temp password 1"), verbose=False)
    refused = plain(_pin(client, Role.AUTHOR, ctx))
    assert "Not allowed: temp-author has the role viewer" in refused
    users.remove("temp-author", actor=ROOT)
    with pytest.raises(Exception, match=r"(?i)incorrect|credentials|login"):
        Client(studio.url, auth=("temp-author", "temp password 1"), verbose=False)
