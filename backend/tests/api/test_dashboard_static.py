"""The dashboard at `/`: the built frontend when there is one, else a page saying how to
build it; hashed assets cached for good; nothing else (API, docs, WebSocket) disturbed."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.servers import StartServer
from tests.wsutil import recv_until

pytestmark = pytest.mark.process

SIM = ("--source", "sim", "--sim-tick-interval", "0.2")
INDEX = '<!doctype html><html><body><div id="root">built-marker-71</div>'
INDEX += '<script type="module" src="/assets/index-Ab12Cd.js"></script></body></html>'
ASSET = "console.log('dashboard bundle');\n"


def build(dist: Path) -> None:
    (dist / "assets").mkdir(parents=True, exist_ok=True)
    (dist / "assets" / "index-Ab12Cd.js").write_text(ASSET)
    (dist / "index.html").write_text(INDEX)


async def test_serves_the_build_and_leaves_the_rest_alone(
    start_server: StartServer, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    build(dist)
    (tmp_path / "secret.txt").write_text("outside the build")
    server = start_server(*SIM, env={"STOCKFEED_DASHBOARD_DIR": str(dist)})
    base = server.base

    async with httpx.AsyncClient(base_url=base) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "built-marker-71" in page.text
        assert page.headers["cache-control"] == "no-cache"  # it names the current assets

        asset = await http.get("/assets/index-Ab12Cd.js")
        assert asset.status_code == 200 and asset.text == ASSET
        assert "javascript" in asset.headers["content-type"]
        assert "immutable" in asset.headers["cache-control"]

        missing = await http.get("/assets/index-Zz99.js")
        assert missing.status_code == 404 and "error" in missing.json()
        # Hostile paths stay inside the build directory.
        for path in ("/assets/..%2fsecret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"):
            r = await http.get(path)
            assert r.status_code == 404, path
            assert "outside the build" not in r.text
        assert (await http.post("/")).status_code == 405

        # The API, the docs and the socket are untouched by the mount.
        assert (await http.get("/api/ws/health")).json()["source"]["simulated"] is True
        assert (await http.get("/docs")).status_code == 200
        assert (await http.get("/api/nothing")).status_code == 404
    async with connect(server.ws + "/ws") as ws:
        await ws.send(json.dumps({"action": "subscribe", "tickers": ["AAPL"]}))
        assert (await recv_until(ws, "subscribed"))["tickers"] == ["AAPL"]


async def test_serves_the_installable_apps_files_by_name(
    start_server: StartServer, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    build(dist)
    (dist / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    (dist / "manifest.webmanifest").write_text('{"name": "stockfeed"}')
    (dist / "other.txt").write_text("not public")
    server = start_server(*SIM, env={"STOCKFEED_DASHBOARD_DIR": str(dist)})
    async with httpx.AsyncClient(base_url=server.base) as http:
        sw = await http.get("/sw.js")
        assert sw.status_code == 200 and "addEventListener" in sw.text
        assert "javascript" in sw.headers["content-type"]
        assert sw.headers["cache-control"] == "no-cache"  # a new worker reaches the browser
        manifest = await http.get("/manifest.webmanifest")
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        assert manifest.json() == {"name": "stockfeed"}
        assert (await http.get("/icon-192.png")).status_code == 404  # not in this build
        assert (await http.get("/other.txt")).status_code == 404  # not a public file


def test_not_built_says_how_then_serves_a_later_build(
    start_server: StartServer, tmp_path: Path
) -> None:
    dist = tmp_path / "not-built-yet"
    server = start_server(*SIM, env={"STOCKFEED_DASHBOARD_DIR": str(dist)})
    page = httpx.get(server.base + "/")
    assert page.status_code == 200
    assert "npm run build" in page.text and "make run" in page.text
    assert 'href="/docs"' in page.text
    # No directory at all: a plain 404, not a server error.
    assert httpx.get(server.base + "/assets/index-Ab12Cd.js").status_code == 404

    build(dist)  # `npm run build` while the server runs
    assert "built-marker-71" in httpx.get(server.base + "/").text
    assert httpx.get(server.base + "/assets/index-Ab12Cd.js").text == ASSET


def test_which_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The variable, else a checkout's frontend/dist (built or not), else the package's."""
    from stockfeed import dashboard

    checkout = tmp_path / "frontend"
    checkout.mkdir()
    monkeypatch.setattr(dashboard, "_REPO_FRONTEND", checkout)
    monkeypatch.delenv("STOCKFEED_DASHBOARD_DIR", raising=False)
    assert dashboard.dashboard_dir() == dashboard.PACKAGED_DIST  # installed: no checkout
    assert dashboard.PACKAGED_DIST.name == "static"
    assert dashboard.PACKAGED_DIST.parent == Path(dashboard.__file__).resolve().parent
    (checkout / "package.json").write_text("{}")
    assert dashboard.dashboard_dir() == checkout / "dist"  # a checkout, even before a build
    monkeypatch.setenv("STOCKFEED_DASHBOARD_DIR", str(tmp_path / "elsewhere"))
    assert dashboard.dashboard_dir() == tmp_path / "elsewhere"
