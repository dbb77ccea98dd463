"""One admin scheme for every admin route: a token from settings, compared in constant time."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from core.settings import get_settings

logger = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False)
_basic = HTTPBasic(auto_error=False, realm="shop-assistant admin")


def _matches(candidate: str | None, expected: str) -> bool:
    return candidate is not None and hmac.compare_digest(candidate.encode(), expected.encode())


async def require_admin(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> None:
    """Accept ``Authorization: Bearer <token>`` or HTTP Basic with the token as password.

    Basic auth lets a browser open the playground (it prompts once). Refused when no
    admin token is configured.
    """
    token = get_settings().admin_token
    if token is None or not token.get_secret_value():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin routes are disabled: ADMIN_TOKEN is not set")
    expected = token.get_secret_value()
    if _matches(bearer.credentials if bearer else None, expected) or _matches(
        basic.password if basic else None, expected
    ):
        return
    logger.warning("admin authentication failed for %s", request.url.path)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "admin authentication required",
        headers={"WWW-Authenticate": 'Basic realm="shop-assistant admin"'},
    )


AdminDep = Annotated[None, Depends(require_admin)]
