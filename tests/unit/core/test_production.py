"""APP_ENV=production: no start without the deployment secrets; development keeps random ones and warns once."""

from __future__ import annotations

import logging

import pytest

from core import production
from core.production import ProductionSecretsError, check_secrets, secret_problems
from core.settings import Settings

GOOD = {
    "ADMIN_TOKEN": "a" * 32,
    "THREAD_HMAC_KEY": "t" * 16,
    "AUDIT_HMAC_KEY": "h" * 16,
    "AUDIT_CHAIN_KEY": "c" * 16,
    "PROMPT_CANARY": "KH-canary-0001",
}


def settings(monkeypatch, env: str = "production", **values: str | None) -> Settings:
    monkeypatch.setenv("APP_ENV", env)
    for name, value in {**GOOD, **values}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_production_with_every_secret_starts(monkeypatch):
    s = settings(monkeypatch)
    assert secret_problems(s) == []
    check_secrets(s)  # no error


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_each_missing_secret_refuses_the_start(monkeypatch, missing):
    with pytest.raises(ProductionSecretsError) as err:
        check_secrets(settings(monkeypatch, **{missing: None}))
    message = str(err.value)
    assert f"{missing} is not set" in message
    assert ".env.example" in message and "secrets.token_urlsafe" in message
    assert not [name for name in GOOD if name != missing and f"  - {name}" in message]  # only the missing one


def test_an_empty_value_counts_as_missing_and_every_problem_is_named(monkeypatch):
    with pytest.raises(ProductionSecretsError) as err:
        check_secrets(settings(monkeypatch, ADMIN_TOKEN="", THREAD_HMAC_KEY=None, AUDIT_HMAC_KEY=None))
    message = str(err.value)
    for name in ("ADMIN_TOKEN", "THREAD_HMAC_KEY", "AUDIT_HMAC_KEY"):
        assert f"{name} is not set" in message
    assert "PROMPT_CANARY" not in message


@pytest.mark.parametrize(
    ("name", "value", "needed"),
    [("ADMIN_TOKEN", "a" * 31, 32), ("THREAD_HMAC_KEY", "t" * 15, 16), ("AUDIT_HMAC_KEY", "short", 16)],
)
def test_too_short_secrets_refuse_the_start(monkeypatch, name, value, needed):
    with pytest.raises(ProductionSecretsError, match=f"{name} has {len(value)} characters, needs at least {needed}"):
        check_secrets(settings(monkeypatch, **{name: value}))


def test_one_value_for_two_secrets_refuses_the_start(monkeypatch):
    with pytest.raises(ProductionSecretsError, match="AUDIT_HMAC_KEY is the same value as THREAD_HMAC_KEY"):
        check_secrets(settings(monkeypatch, AUDIT_HMAC_KEY="t" * 16))


def test_development_starts_without_secrets_and_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(production, "_warned", False)
    s = settings(monkeypatch, "development", **dict.fromkeys(GOOD))
    with caplog.at_level(logging.WARNING, logger="core.production"):
        check_secrets(s)
        check_secrets(s)
    warnings = [r.getMessage() for r in caplog.records if r.name == "core.production"]
    assert len(warnings) == 1
    assert "ADMIN_TOKEN, THREAD_HMAC_KEY, AUDIT_HMAC_KEY, AUDIT_CHAIN_KEY, PROMPT_CANARY" in warnings[0]


def test_development_is_the_default(monkeypatch):
    monkeypatch.delenv("APP_ENV", raising=False)
    assert Settings(_env_file=None).app_env == "development"  # type: ignore[call-arg]


def test_the_app_factory_refuses_to_build_in_production(monkeypatch):
    import server
    from core.settings import get_settings

    settings(monkeypatch, ADMIN_TOKEN="too-short")
    get_settings.cache_clear()
    with pytest.raises(ProductionSecretsError, match="ADMIN_TOKEN has 9 characters"):
        server.create_app()
