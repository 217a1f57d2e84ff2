"""Wiring: one Services object built from Settings at the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from backend.access import local_admin
from backend.services.agreement import AgreementService
from backend.services.audit import AuditService
from backend.services.audit_search import AuditSearchService
from backend.services.comparison_report import ComparisonReports
from backend.services.comparison_votes import ComparisonVotes
from backend.services.comparisons import ComparisonService
from backend.services.constitution_ci import ConstitutionCI
from backend.services.constitution_io import ConstitutionIO
from backend.services.constitutions import ConstitutionService
from backend.services.critique_log import CritiqueLogService
from backend.services.dataset_export import DatasetExportService
from backend.services.datasets import DatasetService
from backend.services.engines import EngineManager
from backend.services.evaluations import EvaluationService
from backend.services.evidence_export import EvidenceExportService
from backend.services.golden import GoldenCaseService
from backend.services.jobs import JobService
from backend.services.pipelines import PipelineService
from backend.services.playground import PlaygroundService
from backend.services.policies import PolicyResolver
from backend.services.policy_engines import PolicyEngines
from backend.services.prompt_sets import PromptSetService, default_prompt_set_path
from backend.services.provenance import ProvenanceService
from backend.services.users import UserService
from backend.settings import Settings
from db import migrate
from db.anchor import protect
from db.engine import Database
from db.record_seal import SEALED_TABLES


@dataclass
class Services:
    settings: Settings
    db: Database
    constitutions: ConstitutionService
    constitution_io: ConstitutionIO
    audit: AuditService
    engines: EngineManager
    critique_log: CritiqueLogService
    playground: PlaygroundService
    datasets: DatasetService
    evaluations: EvaluationService
    agreement: AgreementService
    golden: GoldenCaseService
    audit_search: AuditSearchService
    evidence: EvidenceExportService
    provenance: ProvenanceService
    jobs: JobService
    users: UserService
    prompt_sets: PromptSetService
    comparisons: ComparisonService
    comparison_reports: ComparisonReports
    comparison_votes: ComparisonVotes
    ci: ConstitutionCI
    pipelines: PipelineService
    dataset_exports: DatasetExportService

    def close(self) -> None:
        self.pipelines.stop_watcher()
        if self.playground.policies is not None:
            self.playground.policies.close()
        self.engines.close()
        self.db.dispose()


def build_services(settings: Settings, *, upgrade: bool = True) -> Services:
    """Open the database (migrating it to the newest schema unless ``upgrade`` is False)."""
    db = Database(settings.resolved_database_url())
    if upgrade:
        migrate.upgrade(db)
    # rows sealed as they are written, chain heads anchored outside the database
    anchor = protect(db, settings.data_dir, sealed_tables=SEALED_TABLES)
    constitutions = ConstitutionService(db)
    engines = EngineManager(settings, db)
    critique_log = CritiqueLogService(db)
    prompt_set = settings.prompt_set_path or default_prompt_set_path()
    prompt_sets = PromptSetService(db, max_import_bytes=settings.max_dataset_bytes)
    jobs = JobService(db, settings)
    policies = PolicyResolver(db, engines, jobs, settings.data_dir)
    comparisons = ComparisonService(db, constitutions, engines, critique_log, policies,
                                    prompt_set)
    datasets = DatasetService(db, max_import_bytes=settings.max_dataset_bytes)
    golden = GoldenCaseService(db, constitutions, engines, critique_log)
    agreement = AgreementService(db)
    return Services(
        settings=settings,
        db=db,
        constitutions=constitutions,
        constitution_io=ConstitutionIO(constitutions, max_import_bytes=settings.max_import_bytes),
        audit=AuditService(db, anchor),
        engines=engines,
        critique_log=critique_log,
        playground=PlaygroundService(constitutions, engines, critique_log, prompt_set,
                                     fallback=prompt_sets.prompts,
                                     policies=PolicyEngines(policies)),
        datasets=datasets,
        evaluations=EvaluationService(db, constitutions, engines, critique_log),
        agreement=agreement,
        golden=golden,
        audit_search=AuditSearchService(db, constitutions),
        evidence=EvidenceExportService(db, settings.data_dir / "exports", anchor),
        provenance=ProvenanceService(db),
        jobs=jobs,
        users=UserService(db),
        prompt_sets=prompt_sets,
        comparisons=comparisons,
        comparison_reports=ComparisonReports(db, comparisons),
        comparison_votes=ComparisonVotes(db, comparisons, datasets),
        ci=ConstitutionCI(db, constitutions, engines, critique_log, golden, agreement),
        pipelines=PipelineService(db, settings.data_dir, jobs, comparisons, constitutions),
        dataset_exports=DatasetExportService(db, settings.data_dir / "exports" / "datasets"),
    )


def start(settings: Settings) -> Services:
    """What `cstudio serve` does before the UI starts: migrate, then seed if the store is empty."""
    services = build_services(settings)
    if settings.seed_default:
        services.constitution_io.seed_default(actor=local_admin(settings.user))
    # the project's own prompt set: the default wherever one is needed (issue 14 point 1)
    services.prompt_sets.seed_builtin(actor=local_admin(settings.user))
    return services
