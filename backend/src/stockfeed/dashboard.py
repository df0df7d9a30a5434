"""The dashboard at `/`: the built React app, or a plain page saying how to build it.

Which build: `STOCKFEED_DASHBOARD_DIR` when set (tests, another build); in a checkout
(`frontend/` beside `backend/`), its `frontend/dist`, built or not yet; otherwise the copy
an installed package carries (`stockfeed/static/`, put there by `make dist`).

Vite writes `index.html` and content-hashed files under `assets/`. The index is read from
disk on each request and never cached by browsers (it names the current assets); the hashed
assets never change under their names, so they are cached for a year. The directory is
looked up per request, so building the frontend while the server runs just works.

Beside them, the few files of `frontend/public/` that make the dashboard an installable app
(the web app manifest, its icons, the service worker): served from the build's top level by
name, never cached without a check (a new service worker must reach the browser).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

# backend/src/stockfeed/dashboard.py -> the repository root is three levels above src/.
_REPO_FRONTEND = Path(__file__).resolve().parents[3] / "frontend"
# The build inside the package (wheel, sdist): make dist copies frontend/dist here.
PACKAGED_DIST = Path(__file__).resolve().parent / "static"

FALLBACK_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>stockfeed</title>
<style>body{background:#0b0e12;color:#d6dde6;font:14px/1.5 system-ui,sans-serif;margin:40px}
a{color:#4c9aff}code{background:#151b22;padding:1px 5px;border-radius:3px}</style></head>
<body><h1>stockfeed</h1><p>Live stock prices, pushed. The dashboard is not built yet:
run <code>make run</code> (it builds it), or <code>cd frontend &amp;&amp; npm ci &amp;&amp;
npm run build</code>, then reload.</p>
<ul><li><a href="/docs">API documentation</a></li>
<li><a href="/api/ws/health">Feed health</a></li>
<li>WebSocket: <code>ws://HOST:PORT/ws/stocks/AAPL</code> or <code>ws://HOST:PORT/ws</code></li>
</ul></body></html>"""

_NO_CACHE = {"Cache-Control": "no-cache"}
# The build's top-level files, by name (nothing else at the top level is served).
PUBLIC_FILES = {
    "sw.js": "text/javascript",
    "manifest.webmanifest": "application/manifest+json",
    "icon.svg": "image/svg+xml",
    "icon-192.png": "image/png",
    "icon-512.png": "image/png",
}
_IMMUTABLE = "public, max-age=31536000, immutable"


def dashboard_dir() -> Path:
    configured = os.environ.get("STOCKFEED_DASHBOARD_DIR")
    if configured:
        return Path(configured)
    if (_REPO_FRONTEND / "package.json").is_file():
        return _REPO_FRONTEND / "dist"
    return PACKAGED_DIST


class _HashedAssets(StaticFiles):
    """Vite's `assets/` files: their names change with their content, so cache forever."""

    async def check_config(self) -> None:
        # Starlette raises (a 500) for a missing directory; before a build, 404 is the truth.
        pass

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = _IMMUTABLE
        return response


def mount_dashboard(app: FastAPI, dist: Path | None = None) -> None:
    root = dist or dashboard_dir()

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = root / "index.html"
        if page.is_file():
            return FileResponse(page, media_type="text/html", headers=_NO_CACHE)
        return HTMLResponse(FALLBACK_PAGE, headers=_NO_CACHE)

    for name, media_type in PUBLIC_FILES.items():
        _serve_public(app, root, name, media_type)

    # check_dir=False: the build may appear after start-up; until then, 404s.
    app.mount("/assets", _HashedAssets(directory=root / "assets", check_dir=False), name="assets")


def _serve_public(app: FastAPI, root: Path, name: str, media_type: str) -> None:
    async def public_file() -> Response:
        path = root / name
        if path.is_file():
            return FileResponse(path, media_type=media_type, headers=_NO_CACHE)
        return Response(status_code=404)

    app.add_api_route(f"/{name}", public_file, methods=["GET"], include_in_schema=False)
