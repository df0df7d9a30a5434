"""The server as a package: the wheel, installed alone in a new virtualenv, serves the API,
the WebSocket and the dashboard, with no checkout and no Node.

The wheel and sdist are built here as `make dist` builds them (the built dashboard,
frontend/dist, copied into the package as `stockfeed/static/`), from a copy of backend/ so
the checkout is left alone, and pass `twine check --strict`. The sdist comes first and the
wheel is built from it (`python -m build`), so the sdist is complete too.

The new virtualenv gets the wheel and nothing else by hand: pip resolves its dependencies
with `--no-index` from a wheelhouse repacked from this virtualenv's installed
distributions (the same pinned versions, no network, seconds instead of minutes; kept in
`.venv/wheelhouse/`). The server then runs from that virtualenv in a directory outside
the checkout, and Debian's Chromium opens its dashboard and waits for candles on the chart.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name
from websockets.asyncio.client import ClientConnection, connect

from stockfeed import __version__
from stockfeed.testing.processes import ManagedProcess, StockfeedServer
from tests.servers import IN_CI
from tests.wsutil import recv_until

pytestmark = pytest.mark.process

REPO = Path(__file__).resolve().parents[2]
BACKEND = REPO / "backend"
FRONTEND_DIST = REPO / "frontend" / "dist"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Repacked dependency wheels, reused by later runs (they name their versions).
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"


# The new virtualenv's processes write their bytecode (pip installs with --no-compile):
# the first import compiles only what the server imports, and the next ones are quick.
NOT_PASSED_ON = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")


def _run(*argv: str | Path, cwd: Path | None = None, timeout: float = 180) -> str:
    env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED_ON}
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


# --- building ---------------------------------------------------------------------------


def build_dist(out: Path, scratch: Path) -> tuple[Path, Path]:
    """The sdist and the wheel, as `make dist` makes them, from a copy of backend/."""
    if not (FRONTEND_DIST / "index.html").is_file():
        pytest.fail("frontend/dist is not built (make test builds it before pytest runs)")
    tree = scratch / "backend"
    tree.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(BACKEND / name, tree / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "static")
    shutil.copytree(BACKEND / "src", tree / "src", ignore=junk)
    shutil.copytree(FRONTEND_DIST, tree / "src" / "stockfeed" / "static")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, tree)
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return wheels[0], sdists[0]


# --- the wheelhouse ---------------------------------------------------------------------


def _needed(root: str) -> list[metadata.Distribution]:
    """The installed distributions `root` depends on (extras and markers followed)."""
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        dist = metadata.distribution(name)
        if canonicalize_name(name) != canonicalize_name(root):
            found[canonicalize_name(name)] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                todo.append((req.name, frozenset(req.extras)))
    return list(found.values())


def _repack(dist: metadata.Distribution, into: Path) -> Path:
    """A wheel of an installed distribution: its files under site-packages and its
    dist-info, with a new RECORD (scripts are made again from entry_points.txt)."""
    wheel_file = dist.read_text("WHEEL") or ""
    tags = [
        line.split(":", 1)[1].strip() for line in wheel_file.splitlines() if line.startswith("Tag:")
    ]
    ours = {str(tag) for tag in sys_tags()}
    tag = next((t for t in tags if t in ours), None)  # py3-none-any, not py2-none-any
    if tag is None or dist.files is None:
        raise LookupError(f"{dist.metadata['Name']} was not installed from a wheel")
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    target = into / f"{name}-{dist.version}-{tag}.whl"
    if target.exists():
        return target
    skip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    partial = target.with_suffix(".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as zf:
        info_dir = ""
        for rel in dist.files:
            path = rel.as_posix()
            if path.startswith("..") or "__pycache__" in rel.parts or path.endswith(".pyc"):
                continue
            if rel.parts[0].endswith(".dist-info"):
                info_dir = rel.parts[0]
                if rel.name in skip:
                    continue
            data = Path(str(dist.locate_file(rel))).read_bytes()
            zf.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            writer.writerow([path, f"sha256={digest.decode()}", len(data)])
        assert info_dir, dist.metadata["Name"]
        writer.writerow([f"{info_dir}/RECORD", "", ""])
        zf.writestr(f"{info_dir}/RECORD", record.getvalue())
    partial.rename(target)
    return target


def wheelhouse() -> Path | None:
    """This virtualenv's copies of stockfeed's dependencies as wheels, or None when one
    cannot be repacked (then pip fetches them from the registry)."""
    WHEELHOUSE.mkdir(exist_ok=True)
    try:
        for dist in _needed("stockfeed"):
            _repack(dist, WHEELHOUSE)
    except (LookupError, OSError) as exc:
        print(f"wheelhouse: {exc}: installing from the registry instead")
        return None
    return WHEELHOUSE


# --- the installed server ---------------------------------------------------------------


class WheelServer(StockfeedServer):
    """`stockfeed serve` of the new virtualenv (its console script), run outside the
    checkout with no STOCKFEED_DASHBOARD_DIR: the dashboard must come from the package."""

    def __init__(self, bin_dir: Path, workdir: Path, *args: str) -> None:
        env = {"STOCKFEED_SIM_MARKET_HOURS": "false"}  # candles at any hour the test runs
        super().__init__(args, workdir / "server.log", env=env)
        assert self.env is not None
        for name in NOT_PASSED_ON:
            self.env.pop(name, None)
        self.argv = [str(bin_dir / "stockfeed"), "serve", "--port", str(self.port), *args]
        self.cwd = workdir
        self.name = "stockfeed (wheel)"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("dist")
    wheel, sdist = build_dist(tmp / "dist", tmp / "build")
    twine = _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    built = time.monotonic()

    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    house = wheelhouse()
    source = ["--no-index", "--find-links", str(house)] if house else []
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-input", "--no-compile"]
    _run(*pip, *source, wheel, timeout=600)
    print(
        f"dist: built in {built - started:.1f} s, installed in {time.monotonic() - built:.1f} s"
        f" ({'wheelhouse' if house else 'registry'})"
    )
    return {"wheel": wheel, "sdist": sdist, "twine": twine, "venv": venv, "tmp": tmp}


@pytest.fixture(scope="module")
def wheel_server(installed: dict[str, Any]) -> Iterator[WheelServer]:
    workdir = installed["tmp"] / "elsewhere"
    workdir.mkdir()
    server = WheelServer(installed["venv"] / "bin", workdir, "--source", "sim")
    server.start()
    try:
        yield server.wait_ready(timeout=60)
    finally:
        server.stop()


def test_the_packages_are_complete(installed: dict[str, Any]) -> None:
    assert installed["twine"].count("PASSED") == 2, installed["twine"]
    built_index = (FRONTEND_DIST / "index.html").read_bytes()
    assets = sorted(p.relative_to(FRONTEND_DIST).as_posix() for p in FRONTEND_DIST.rglob("*"))
    assets = [a for a in assets if (FRONTEND_DIST / a).is_file()]
    with zipfile.ZipFile(installed["wheel"]) as zf:
        names = set(zf.namelist())
        assert zf.read("stockfeed/static/index.html") == built_index
        meta = zf.read(f"stockfeed-{__version__}.dist-info/METADATA").decode()
        entry_points = zf.read(f"stockfeed-{__version__}.dist-info/entry_points.txt").decode()
    # Every file of the build, nested folders included (assets/...).
    assert {f"stockfeed/static/{a}" for a in assets} <= names
    assert any(a.startswith("assets/") for a in assets), assets
    for wanted in ("stockfeed/__main__.py", "stockfeed/spec/asyncapi.yaml", "stockfeed/py.typed"):
        assert wanted in names
    assert f"stockfeed-{__version__}.dist-info/licenses/LICENSE" in names
    for field in ("License-Expression: MIT", "Project-URL: ", "Classifier: ", "Summary: "):
        assert field in meta, field
    assert "Description-Content-Type: text/markdown" in meta
    assert "stockfeed = stockfeed.cli:main" in entry_points
    # The sdist carries the dashboard too (the wheel above was built from it).
    import tarfile

    with tarfile.open(installed["sdist"]) as tf:
        members = set(tf.getnames())
    root = f"stockfeed-{__version__}"
    assert f"{root}/src/stockfeed/static/index.html" in members
    assert {f"{root}/LICENSE", f"{root}/README.md"} <= members
    # One license text, at the repository root and beside the package.
    assert (REPO / "LICENSE").read_text() == (BACKEND / "LICENSE").read_text()


def test_the_new_virtualenv_runs_the_package_not_the_checkout(installed: dict[str, Any]) -> None:
    python = installed["venv"] / "bin" / "python"
    # `python -m stockfeed` (__main__.py); the server below runs the `stockfeed` script.
    assert _run(python, "-m", "stockfeed", "--version").strip() == f"stockfeed {__version__}"
    code = (
        "import stockfeed, stockfeed.dashboard as d; print(stockfeed.__file__, d.dashboard_dir())"
    )
    module, dashboard = _run(python, "-c", code, cwd=installed["tmp"]).split()
    site = str(installed["venv"])
    assert module.startswith(site) and dashboard.startswith(site), (module, dashboard)
    assert dashboard.endswith("stockfeed/static"), dashboard


async def test_it_serves_the_api_the_websocket_and_the_dashboard(
    wheel_server: WheelServer,
) -> None:
    base = wheel_server.base
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        health = (await http.get("/api/ws/health")).json()
        assert health["status"] == "ok" and health["version"] == __version__
        assert health["source"]["active"] == "sim" and health["source"]["simulated"] is True

        page = await http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.content == (FRONTEND_DIST / "index.html").read_bytes()
        assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text)
        assert any(a.endswith(".js") for a in assets), page.text
        for path in assets:
            asset = await http.get(path)
            assert asset.status_code == 200, path
            assert asset.content == (FRONTEND_DIST / path.lstrip("/")).read_bytes(), path
            if path.endswith(".js"):
                assert "javascript" in asset.headers["content-type"]
                assert "immutable" in asset.headers["cache-control"]

        assert (await http.get("/api/quotes/AAPL")).json()["ticker"] == "AAPL"
        assert (await http.get("/openapi.json")).status_code == 200
        assert (
            (await http.get("/asyncapi.yaml"))
            .headers["content-type"]
            .startswith("application/yaml")
        )

    async with connect(wheel_server.ws + "/ws/stocks/MSFT") as ws:
        first = await recv_until(ws, "price_update")
        assert first["ticker"] == "MSFT" and first["data"]["price"] > 0
        second = await recv_until(ws, "price_update")
        assert second["seq"] > first["seq"]


# --- the chart, in a real browser -------------------------------------------------------

# Pixels of the chart's canvases that are clearly coloured (candles are green or red; the
# background, grid and labels are greys): how much of a chart is drawn.
COLOURED_PIXELS = """(() => {
  let n = 0;
  for (const c of document.querySelectorAll('[data-testid="price-chart"] canvas')) {
    if (!c.width || !c.height) continue;
    const ctx = c.getContext("2d");
    if (!ctx) continue;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      const hi = Math.max(d[i], d[i + 1], d[i + 2]), lo = Math.min(d[i], d[i + 1], d[i + 2]);
      if (d[i + 3] > 0 && hi - lo > 80) n++;
    }
  }
  return n;
})()"""
DRAWN = 5000


class DevTools:
    """The few Chrome DevTools Protocol calls this test needs, over one page's socket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if msg.get("id") == ident:
                assert "error" not in msg, msg
                result: dict[str, Any] = msg["result"]
                return result


async def _watch_the_chart(page_ws: str, url: str, picture: Path) -> int:
    """Open `url` in the page, wait until its chart has drawn (30 s at most), screenshot
    it into `picture`; the coloured pixels it drew."""
    async with connect(page_ws, max_size=None) as ws:
        tools = DevTools(ws)
        await tools.call("Page.enable")
        await tools.call("Page.navigate", url=url)
        coloured, deadline = 0, time.monotonic() + 30
        while coloured < DRAWN and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            found = await tools.call(
                "Runtime.evaluate", expression=COLOURED_PIXELS, returnByValue=True
            )
            coloured = int(found["result"].get("value") or 0)
        await asyncio.sleep(1)  # a few live ticks on the forming candle
        shot = await tools.call("Page.captureScreenshot", format="png")
    await asyncio.to_thread(picture.write_bytes, base64.b64decode(shot["data"]))
    return coloured


def test_the_chart_draws_in_chromium(wheel_server: WheelServer, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"no Chromium at {CHROMIUM}; CI must have it (.ci/run installs it)")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    profile = tmp_path / "profile"
    browser = ManagedProcess(
        [
            CHROMIUM,
            *("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"),
            *("--remote-debugging-port=0", f"--user-data-dir={profile}"),
            *("--window-size=1440,860", "--no-first-run", "about:blank"),
        ],
        tmp_path / "chromium.log",
        name="chromium",
    ).start()
    try:
        port_file = profile / "DevToolsActivePort"
        browser.wait_ready(lambda: port_file.is_file() and bool(port_file.read_text()), 30)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        picture = tmp_path / "wheel-dashboard.png"
        coloured = asyncio.run(_watch_the_chart(page_ws, wheel_server.base + "/", picture))
        print(f"chart: {coloured} coloured pixels; screenshot {picture}")
        assert coloured >= DRAWN, f"the chart drew {coloured} coloured pixels; see {picture}"
    finally:
        browser.stop()
