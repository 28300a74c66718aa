"""Applying retention policies: plan, then delete each file through the service.

Every delete goes through :meth:`PackageIndex.delete_file` as the server's own
identity ``retention`` (an admin), so storage and the index follow the normal
write protocol and each delete publishes ``file.delete``. One ``retention.run``
event sums the run up (also for a dry run, which deletes nothing). A file that
fails is reported and the run goes on with the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import FileNotFound
from ..events import Event
from ..models import Identity, utcnow
from ..upstream.policy import UPSTREAM_UPLOADER
from .config import Policy, RetentionConfig
from .plan import Deletion, plan

LOG = logging.getLogger(__name__)

#: The actor of every delete and event of a retention run.
ACTOR = "retention"
IDENTITY = Identity(ACTOR, frozenset(), is_admin=True)
RUN = "retention.run"


@dataclass
class RunReport:
    """What a run planned, deleted and failed to delete (with the error's text)."""

    policies: tuple[str, ...]
    dry_run: bool
    planned: list[Deletion]
    deleted: list[Deletion] = field(default_factory=list)
    gone: list[Deletion] = field(default_factory=list)
    failed: list[tuple[Deletion, str]] = field(default_factory=list)

    @property
    def planned_bytes(self) -> int:
        return sum(d.record.size for d in self.planned)

    @property
    def deleted_bytes(self) -> int:
        return sum(d.record.size for d in self.deleted)

    def detail(self) -> dict[str, object]:
        """The ``retention.run`` event's detail."""
        return {
            "policies": list(self.policies),
            "dry_run": self.dry_run,
            "planned": len(self.planned),
            "planned_bytes": self.planned_bytes,
            "deleted": len(self.deleted),
            "deleted_bytes": self.deleted_bytes,
            "already_gone": len(self.gone),
            "failed": len(self.failed),
        }


def plan_run(service, policies: tuple[Policy, ...], config: RetentionConfig, now: datetime) -> list[Deletion]:
    """What ``policies`` would delete now, from every file published here (copies the
    upstream fallback cached are a cache, outside retention)."""
    records = [r for r in service.index.all_records() if r.uploader != UPSTREAM_UPLOADER]
    return plan(records, policies, config.pins, now)


def run(
    service,
    config: RetentionConfig,
    *,
    dry_run: bool = False,
    names: list[str] | None = None,
    now: datetime | None = None,
    step: Callable[[Deletion, str | None], None] | None = None,
    planned: list[Deletion] | None = None,
) -> RunReport:
    """Plan with the policies called ``names`` (None: all) and, unless ``dry_run``, delete.

    ``planned``: delete these (a plan already shown and confirmed) instead of
    planning again. ``step(deletion, error)`` is called after each file (error
    None: deleted or already gone), e.g. to move a progress bar. Publishes one
    ``retention.run`` event.
    """
    policies = config.selected(names)
    if planned is None:
        planned = plan_run(service, policies, config, now or utcnow())
    report = RunReport(tuple(p.name for p in policies), dry_run, planned)
    if not dry_run:
        for deletion in report.planned:
            error = _delete(service, deletion, report)
            if step is not None:
                step(deletion, error)
    LOG.info("retention %s: %s", "dry run" if dry_run else "run", report.detail())
    service.events.publish(Event(RUN, ACTOR, detail=report.detail()))
    return report


def _delete(service, deletion: Deletion, report: RunReport) -> str | None:
    record = deletion.record
    try:
        service.delete_file(IDENTITY, record.project, record.filename)
    except FileNotFound:  # deleted since the plan was made (by a person or another run)
        report.gone.append(deletion)
        return None
    except Exception as exc:  # reported; the next file may well succeed
        LOG.warning("retention: could not delete %s: %s", record.filename, exc)
        report.failed.append((deletion, str(exc) or type(exc).__name__))
        return str(exc) or type(exc).__name__
    report.deleted.append(deletion)
    return None
