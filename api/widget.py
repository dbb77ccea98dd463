"""The shop's chat widget: ``GET /`` serves the page, ``/widget/`` its script and stylesheet.

The page runs under a strict Content-Security-Policy (no inline scripts or styles, same-origin
connections only); the widget renders everything the server sends as text. Shops embed it with
one ``<script src="https://<api>/widget/widget.js" defer></script>`` tag (see the README).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
# The script and stylesheet are loaded by the shop's own pages too: no frame or CSP rules of their own.
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


class WidgetFiles(StaticFiles):
    """Static files with the widget's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """Serve one file (or the static 404) with ``ASSET_HEADERS``."""
        response = await super().get_response(path, scope)
        response.headers.update(ASSET_HEADERS)
        return response


@router.get("/")
async def page() -> FileResponse:
    """The chat page."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def mount_widget(app: FastAPI) -> None:
    """Add the page and the static files to ``app``."""
    app.include_router(router)
    app.mount("/widget", WidgetFiles(directory=WEB_DIR / "widget"), name="widget")
