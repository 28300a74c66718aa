"""The retention.* settings: what is read, and the error that names a bad key."""

from __future__ import annotations

import pytest
from packaging.version import Version

from pypicloud.errors import ConfigError
from pypicloud.retention.config import Policy, retention_from_settings


def test_blocks_pins_and_schedule_are_read():
    config = retention_from_settings(
        {
            "retention.nightly.projects": "Acme_* widget",
            "retention.nightly.keep_latest": "5",
            "retention.nightly.prerelease_days": "30",
            "retention.old.yanked_days": "0",
            "retention.old.keep_latest_final": "no",
            "retention.keep": "\nWidget==1.4\nacme-core\n# a comment\n",
            "retention.schedule": "24h",
            "pypi.db": "sql",
        }
    )
    assert config.policies == (
        Policy("nightly", ("acme-*", "widget"), keep_latest=5, prerelease_days=30),
        Policy("old", ("*",), yanked_days=0, keep_latest_final=False),
    )
    assert [p.project for p in config.pins] == ["widget", "acme-core"]
    assert config.pins[0].protects("widget", Version("1.4.0"))
    assert not config.pins[0].protects("widget", Version("1.5"))
    assert config.pins[1].protects("acme-core", None)
    assert config.schedule == 86400
    assert [p.name for p in config.selected(["old"])] == ["old"]


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"retention.p.keep_lastest": "3"}, "retention.p.keep_lastest"),
        ({"retention.p.keep_latest": "0"}, "retention.p.keep_latest"),
        ({"retention.p.keep_latest": "three"}, "retention.p.keep_latest"),
        ({"retention.p.prerelease_days": "-1"}, "retention.p.prerelease_days"),
        ({"retention.p.projects": "acme-*"}, "retention.p.keep_latest"),
        (
            {"retention.p.yanked_days": "1", "retention.p.keep_latest_final": "maybe"},
            "retention.p.keep_latest_final",
        ),
        ({"retention.bad name.keep_latest": "1"}, "retention.bad name.keep_latest"),
        ({"retention.keep_latest": "1"}, "retention.keep_latest"),
        ({"retention.keep": "widget[extra]==1"}, "retention.keep"),
        ({"retention.keep": "widget=1"}, "retention.keep"),
        ({"retention.schedule": "daily"}, "retention.schedule"),
        ({"retention.schedule": "10s"}, "retention.schedule"),
    ],
)
def test_bad_settings_name_the_key(settings, key):
    with pytest.raises(ConfigError) as info:
        retention_from_settings(settings)
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("", None), ("off", None), ("0", None), ("30m", 1800), ("2d", 172800), ("3600", 3600)],
)
def test_schedule_intervals(text, seconds):
    assert retention_from_settings({"retention.schedule": text}).schedule == seconds


def test_an_unknown_policy_name_is_refused():
    config = retention_from_settings({"retention.p.keep_latest": "1"})
    with pytest.raises(ConfigError, match="retention.q"):
        config.selected(["q"])
