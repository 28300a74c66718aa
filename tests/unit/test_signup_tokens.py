"""Sign-up tokens are pypicloud 1.3.12's, byte for byte (tests/fixtures/v1/make_signup_token.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pypicloud.signup_tokens import SignupTokens

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "v1" / "signup-tokens-1.3.12.json").read_text()
)


def tokens_at(now: float, key: str | None = FIXTURE["signing_key"]) -> SignupTokens:
    return SignupTokens(key, FIXTURE["token_expire"], clock=lambda: now)


@pytest.mark.parametrize("username", sorted(FIXTURE["tokens"]))
def test_tokens_are_the_ones_1x_made(username):
    assert tokens_at(FIXTURE["issued"]).issue(username) == FIXTURE["tokens"][username]


@pytest.mark.parametrize("case", FIXTURE["verdicts"], ids=lambda c: f"{c['token'][:12]}@{c['now']}")
def test_verdicts_are_the_ones_1x_gave(case):
    assert tokens_at(case["now"]).verify(case["token"]) == case["username"]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "alice",
        "alice:notanumber:abc",
        "alice:1700000000",
        "::",
        "alice:1700000000:" + "0" * 64 + ":x",
        None,
    ],
)
def test_malformed_tokens_name_nobody(token):
    assert tokens_at(FIXTURE["issued"]).verify(token) is None


def test_without_a_signing_key_nothing_is_valid():
    off = tokens_at(FIXTURE["issued"], key=None)
    assert not off.enabled
    assert off.verify(FIXTURE["tokens"]["alice"]) is None


def test_another_key_voids_the_tokens():
    assert tokens_at(FIXTURE["issued"], key="another key").verify(FIXTURE["tokens"]["alice"]) is None
