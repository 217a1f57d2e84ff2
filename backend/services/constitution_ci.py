"""Constitution CI (issue 16): named aliases of versions (``production``, ``staging``) and the
headless checks a pipeline runs, which fail when a version breaks golden cases or loses
agreement with human labels beyond its interval.

Aliases are append-only rows: moving one adds a row, so the history of where ``production``
pointed, who moved it and when stays in the store (and in the audit chain).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from backend.access import Action, Principal, require
from backend.cai.labeling import LabelConfig, PairItem, label_pairs
from backend.cai.metrics import Estimate
from backend.errors import NotFoundError, ValidationError
from backend.services.agreement import AgreementService
from backend.services.constitutions import ConstitutionService, VersionDetail
from backend.services.critique_log import CritiqueLogService
from backend.services.engines import EngineManager
from backend.services.golden import GoldenCaseService
from db import alias_repo
from db.audit_chain import append_event
from db.engine import Database

ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")


@dataclass(frozen=True)
class AliasInfo:
    name: str
    version_id: int
    version_number: int
    set_by: str


@dataclass(frozen=True)
class AliasMove:
    name: str
    version_number: int | None  # None: the alias was removed
    set_by: str
    at: datetime


@dataclass(frozen=True)
class GoldenFailure:
    case_id: int
    expected: str
    got: str
    p_a: float


@dataclass(frozen=True)
class GoldenCheck:
    version_number: int
    cases: int
    failures: list[GoldenFailure]

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class RegressionCheck:
    metric: str
    delta: Estimate  # second − first, with its paired interval
    regressed: bool  # the whole interval is on the worse side


LOWER_IS_BETTER = ("log_loss", "brier", "ece")


class ConstitutionCI:
    def __init__(self, db: Database, constitutions: ConstitutionService, engines: EngineManager,
                 critique_log: CritiqueLogService, golden: GoldenCaseService,
                 agreement: AgreementService) -> None:
        self._db = db
        self._constitutions = constitutions
        self._engines = engines
        self._log = critique_log
        self._golden = golden
        self._agreement = agreement

    # --- aliases -------------------------------------------------------------------------------

    def set_alias(self, constitution_id: int, name: str, version_number: int | None, *,
                  actor: Principal) -> AliasInfo | None:
        """Point ``name`` at a version (None removes the alias)."""
        require(actor, Action.EDIT_CONSTITUTION)
        if not ALIAS_NAME.match(name):
            raise ValidationError(f"Alias {name!r}: use lower-case letters, digits, - and _ "
                                  "(starting with a letter), e.g. production.")
        version = (self._constitutions.version_by_number(constitution_id, version_number)
                   if version_number is not None else None)
        with self._db.write() as s:
            alias_repo.set_alias(s, constitution_id=constitution_id, name=name,
                                 version_id=version.info.id if version else None,
                                 set_by=actor.name)
            append_event(s, actor=actor.name, action="constitution.alias",
                         entity_type="constitution", entity_id=str(constitution_id),
                         payload={"alias": name, "version": version_number})
        if version is None:
            return None
        return AliasInfo(name, version.info.id, version.info.number, actor.name)

    def aliases(self, constitution_id: int) -> list[AliasInfo]:
        with self._db.read() as s:
            rows = alias_repo.current(s, constitution_id=constitution_id)
        out = []
        for name in sorted(rows):
            version_id = rows[name].version_id
            assert version_id is not None
            out.append(AliasInfo(name, version_id,
                                 self._constitutions.version(version_id).info.number,
                                 rows[name].set_by))
        return out

    def alias_history(self, constitution_id: int) -> list[AliasMove]:
        """Every setting, move and removal of this constitution's aliases, newest first."""
        with self._db.read() as s:
            rows = alias_repo.all_rows(s, constitution_id=constitution_id)
        numbers: dict[int, int] = {}
        out = []
        for r in reversed(rows):
            number = None
            if r.version_id is not None:
                if r.version_id not in numbers:
                    numbers[r.version_id] = self._constitutions.version(r.version_id).info.number
                number = numbers[r.version_id]
            out.append(AliasMove(r.name, number, r.set_by, r.created_at))
        return out

    def resolve(self, constitution_id: int, ref: str | None) -> VersionDetail:
        """A version by number, by alias, or the head when ``ref`` is empty."""
        summary = self._constitutions.find(str(constitution_id))
        if not ref:
            return self._constitutions.version_by_number(constitution_id, summary.head.number)
        if ref.isdigit():
            return self._constitutions.version_by_number(constitution_id, int(ref))
        found = {a.name: a for a in self.aliases(constitution_id)}
        if ref not in found:
            names = ", ".join(found) or "none yet"
            raise NotFoundError(f"Constitution {summary.name!r} has no version or alias "
                                f"{ref!r} (aliases: {names}).")
        return self._constitutions.version(found[ref].version_id)

    # --- checks --------------------------------------------------------------------------------

    def golden_check(self, constitution_id: int, version: VersionDetail, *, actor: Principal,
                     config: LabelConfig | None = None) -> GoldenCheck:
        """Judge every golden case under ``version``; a case fails when the verdict's side is
        not the expected one."""
        require(actor, Action.RUN_PREVIEW)
        cases = self._golden.list_all(constitution_id)
        if not cases:
            return GoldenCheck(version.info.number, 0, [])
        verdicts = label_pairs(self._engines.get(), version.content, version.info.id,
                               [PairItem(c.prompt, c.response_a, c.response_b) for c in cases],
                               config or LabelConfig(), self._log.logger(actor.name))
        failures = [GoldenFailure(c.id, c.expected, v.winner, v.p_a)
                    for c, v in zip(cases, verdicts, strict=True) if v.winner != c.expected]
        return GoldenCheck(version.info.number, len(cases), failures)

    def regression(self, first_run: int, second_run: int, *, metric: str = "accuracy",
                   n_boot: int = 1000) -> RegressionCheck:
        """Did the second agreement run lose ``metric`` beyond its paired bootstrap interval?"""
        comparison = self._agreement.compare(first_run, second_run, n_boot=n_boot)
        if metric not in comparison.deltas:
            raise ValidationError(f"Unknown metric {metric!r}; use one of "
                                  f"{', '.join(comparison.deltas)}.")
        delta = comparison.deltas[metric]
        worse = delta.low > 0 if metric in LOWER_IS_BETTER else delta.high < 0
        return RegressionCheck(metric, delta, bool(worse))
