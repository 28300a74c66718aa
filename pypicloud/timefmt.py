"""How times are written, in one place.

Every time pypicloud shows is UTC. The formats are part of what clients parse
(PEP 700 ``upload-time``, the legacy JSON API), so each is named once here.
"""

from __future__ import annotations

from datetime import datetime

#: PEP 700 ``upload-time`` and the JSON API's ``upload_time_iso_8601``: UTC with microseconds.
ISO_UTC = "%Y-%m-%dT%H:%M:%S.%fZ"
#: The legacy JSON API's ``upload_time``: seconds, no zone (as PyPI writes it).
ISO_SECONDS = "%Y-%m-%dT%H:%M:%S"
#: Shown to people on the command line.
HUMAN_UTC = "%Y-%m-%d %H:%M UTC"


def iso_utc(moment: datetime) -> str:
    """``2024-01-02T03:04:05.000006Z`` (``moment`` is UTC)."""
    return moment.strftime(ISO_UTC)


def iso_seconds(moment: datetime) -> str:
    """``2024-01-02T03:04:05`` (``moment`` is UTC)."""
    return moment.strftime(ISO_SECONDS)


def human_utc(moment: datetime) -> str:
    """``2024-01-02 03:04 UTC``."""
    return moment.strftime(HUMAN_UTC)
