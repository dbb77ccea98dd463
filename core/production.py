"""Production mode (``APP_ENV=production``): the API refuses to start without its deployment secrets.

Unset, each of them falls back to a random value per process (development): conversation handles, audit IP
hashes and the prompt canary would then differ between replicas and change at every restart, and the admin
routes would be off. In production that is an outage waiting to happen, so ``create_app`` calls
``check_secrets`` first and a missing or too short secret stops the start, naming every one of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import SecretStr

from core.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Required:
    """One deployment secret: its variable, its settings field, its minimum length, what it is for."""

    env: str
    field: str
    min_chars: int
    purpose: str


# The audit log has two keys: AUDIT_HMAC_KEY keys the IP hashes, AUDIT_CHAIN_KEY its hash chain (guards/audit.py).
REQUIRED = (
    Required("ADMIN_TOKEN", "admin_token", 32, "the admin routes' bearer token"),
    Required("THREAD_HMAC_KEY", "thread_hmac_key", 16, "signs the shoppers' conversation handles"),
    Required("AUDIT_HMAC_KEY", "audit_hmac_key", 16, "keys the IP hashes of the audit log and the rate limits"),
    Required("AUDIT_CHAIN_KEY", "audit_chain_key", 16, "keys the audit log's hash chain (verify needs it)"),
    Required("PROMPT_CANARY", "prompt_canary", 12, "the system prompt's canary the output filter looks for"),
)
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
_warned = False


class ProductionSecretsError(RuntimeError):
    """``APP_ENV=production`` without the deployment secrets."""


def _value(settings: Settings, field: str) -> str:
    raw = getattr(settings, field)
    return raw.get_secret_value() if isinstance(raw, SecretStr) else (raw or "")


def secret_problems(settings: Settings) -> list[str]:
    """One line per missing, too short or reused deployment secret (empty: all fine)."""
    problems = []
    seen: dict[str, str] = {}
    for req in REQUIRED:
        value = _value(settings, req.field).strip()
        if not value:
            problems.append(f"{req.env} is not set ({req.purpose}; at least {req.min_chars} characters)")
        elif len(value) < req.min_chars:
            problems.append(f"{req.env} has {len(value)} characters, needs at least {req.min_chars}")
        elif value in seen:
            problems.append(f"{req.env} is the same value as {seen[value]}: give each secret its own")
        else:
            seen[value] = req.env
    return problems


def check_secrets(settings: Settings) -> None:
    """In production raise ``ProductionSecretsError`` naming every problem; in development warn once."""
    global _warned
    problems = secret_problems(settings)
    if not problems:
        return
    if settings.app_env == "production":
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ProductionSecretsError(
            f"APP_ENV=production: refusing to start without the deployment secrets:\n{lines}\n"
            f"Set them in the environment or the env file (.env.example, section 'Security: client identity, "
            f"secrets, production mode'; deploy/.env for compose); generate each with: {GENERATE}"
        )
    if not _warned:
        _warned = True
        unset = ", ".join(r.env for r in REQUIRED if not _value(settings, r.field).strip())
        logger.warning(
            "APP_ENV=development: %s; unset secrets are random per process (never run production like this)",
            f"unset: {unset}" if unset else "secrets too short or reused",
        )
