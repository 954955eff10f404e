"""The browser assets the app serves itself at ``/static`` (package data under ``static/``, see its
README): Chart.js for the console's charts, Swagger UI for ``/docs``, and the console's own script.
Nothing is loaded from a CDN, so the console and the docs work on a network without the internet.

The files are public (library code and the console's drawing script, no data), so ``/static`` needs
no token. Their URLs carry a hash of the content (``?v=``), so they are cached for a year
(``immutable``) and a new file is a new URL.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).with_name("static")
PREFIX = "/static"
CACHE_CONTROL = "public, max-age=31536000, immutable"


@cache
def asset_url(name: str) -> str:
    """``/static/<name>?v=<first 12 hex digits of its sha256>`` (a missing file fails loudly)."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"{PREFIX}/{name}?v={digest}"


class CachedStatic(StaticFiles):
    """Starlette's static files with a year's ``Cache-Control`` on what they find."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = CACHE_CONTROL
        return response


def static_files() -> CachedStatic:
    return CachedStatic(directory=STATIC_DIR)


def swagger_page(openapi_url: str, title: str) -> HTMLResponse:
    """FastAPI's Swagger UI page on the vendored Swagger UI (no CDN, no outside favicon)."""
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=asset_url("swagger-ui/swagger-ui-bundle.js"),
        swagger_css_url=asset_url("swagger-ui/swagger-ui.css"),
        swagger_favicon_url=asset_url("swagger-ui/favicon-32x32.png"),
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
    )


def json_for_script(value: Any) -> str:
    """``value`` as JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&``
    (and the JavaScript line separators) escaped, so no string in it can close the element."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    for char, code in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, code)
    return text
