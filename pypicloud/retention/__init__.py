"""Retention policies (docs/retention.md): which files go (:mod:`.plan`), deleting them
(:mod:`.run`), the ``retention.*`` settings (:mod:`.config`) and the in-server
schedule (:mod:`.schedule`)."""

from .config import Pin, Policy, RetentionConfig, retention_from_settings
from .plan import Deletion, plan
from .run import RunReport, run

__all__ = [
    "Deletion",
    "Pin",
    "Policy",
    "RetentionConfig",
    "RunReport",
    "plan",
    "retention_from_settings",
    "run",
]
