#!/usr/bin/env node
// End-to-end: a real stockfeed server (simulator) serving the built dashboard, driven by
// Debian's Chromium through playwright-core. It checks what a user sees: the page loads,
// the status dot goes green, prices move; the server stops: yellow, then red with a
// polling toast; it starts again on the same port: green; the real-time toggle survives a
// reload. Screenshots land in test-results/. Exits non-zero on any failure.
//
// Chromium missing: under CI=true that is a failure (.ci/run installs it); elsewhere the
// run is skipped with a loud message.

import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const frontend = resolve(here, "..");
const repo = resolve(frontend, "..");
const results = join(frontend, "test-results");
const dist = join(frontend, "dist");
const stockfeed = process.env.STOCKFEED_BIN ?? join(repo, ".venv", "bin", "stockfeed");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const inCI = /^(1|true|yes)$/i.test(process.env.CI ?? "");

function log(msg) {
  console.log(`e2e: ${msg}`);
}

if (!existsSync(chromiumPath)) {
  if (inCI) {
    console.error(`e2e: FAIL: no Chromium at ${chromiumPath}; CI must have it (.ci/run installs the chromium package)`);
    console.log("e2e: 0 passed, 1 failed");
    process.exit(1);
  }
  const bar = "!".repeat(78);
  console.error(`${bar}\ne2e: SKIPPED: no Chromium at ${chromiumPath}.\n     apt-get install -y chromium  (or set CHROMIUM_PATH) to run the browser tests.\n${bar}`);
  process.exit(0);
}
if (!existsSync(stockfeed)) {
  console.error(`e2e: FAIL: no stockfeed at ${stockfeed} (run make setup)`);
  process.exit(1);
}
if (!existsSync(join(dist, "index.html"))) {
  log("dist/ is not built: building it");
  const r = spawnSync("npm", ["run", "build"], { cwd: frontend, stdio: "inherit" });
  if (r.status !== 0) process.exit(1);
}
mkdirSync(results, { recursive: true });

const { chromium } = await import("playwright-core");

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until it returns a truthy value; fail with `what` after `timeoutMs`. */
async function waitFor(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await sleep(150);
  }
}

class Server {
  constructor(port) {
    this.port = port;
    this.proc = null;
    this.starts = 0;
  }

  async start() {
    this.starts += 1;
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("STOCKFEED_")));
    env.STOCKFEED_DASHBOARD_DIR = dist;
    env.PYTHONUNBUFFERED = "1";
    const out = createWriteStream(join(results, `server-${this.starts}.log`));
    this.proc = spawn(
      stockfeed,
      ["serve", "--source", "sim", "--sim-tick-interval", "0.5", "--host", "127.0.0.1", "--port", String(this.port)],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.proc.stdout.pipe(out);
    this.proc.stderr.pipe(out);
    const proc = this.proc;
    await waitFor(
      `the server on port ${this.port}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}; see test-results/server-${this.starts}.log`);
        const res = await fetch(`http://127.0.0.1:${this.port}/api/ws/health`).catch(() => null);
        return res?.ok;
      },
      30_000,
    );
  }

  async stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const done = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
    if (!done) {
      proc.kill("SIGKILL");
      await exited;
    }
  }
}

const steps = [];
let failed = 0;
let passed = 0;
async function step(name, fn) {
  if (failed > 0) {
    log(`-    ${name} (not run: an earlier step failed)`);
    steps.push([name, "not run"]);
    return;
  }
  const t0 = Date.now();
  try {
    await fn();
    passed += 1;
    log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed += 1;
    log(`FAIL ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const port = await freePort();
const server = new Server(port);
const base = `http://127.0.0.1:${port}/`;
// poll=3 / probe=2: shorter polling and retry periods than the defaults (60 s / 10 s).
const pageUrl = `${base}?poll=3&probe=2`;
let browser;
const pageErrors = [];

try {
  await server.start();
  log(`server on port ${port}`);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  const dot = page.getByTestId("connection-status");
  const dotIs = (color, state) => async () => {
    const [c, s] = await Promise.all([dot.getAttribute("data-color"), dot.getAttribute("data-state")]);
    return c === color && (state === undefined || s === state);
  };
  const prices = () => page.$$eval('[data-testid^="price-"]', (els) => els.map((e) => e.textContent).join("|"));

  await step("the dashboard loads (watchlist, chart, metrics, simulated badge)", async () => {
    await page.goto(pageUrl, { waitUntil: "load" });
    for (const id of ["watchlist", "price-chart", "ws-metrics", "realtime-toggle", "connection-status"]) {
      await page.getByTestId(id).waitFor({ state: "visible", timeout: 15_000 });
    }
    await page.locator('[data-testid="price-chart"] canvas').first().waitFor({ timeout: 15_000 });
    await page.getByTestId("simulated-badge").waitFor({ state: "visible", timeout: 15_000 });
    const rows = await page.locator('[data-testid="watchlist"] tbody tr').count();
    if (rows < 1) throw new Error("the watchlist has no rows");
  });

  await step("the status dot turns green (WebSocket live) with a spoken label", async () => {
    await waitFor("a green dot", dotIs("green", "connected"), 15_000);
    const label = await dot.getAttribute("aria-label");
    if (!/Live \(WebSocket\)/.test(label ?? "")) throw new Error(`label: ${label}`);
    await waitFor("a latency figure", async () => /\d+ ms/.test((await page.locator('[data-metric="latency"]').textContent()) ?? ""), 10_000);
  });

  await step("a price changes", async () => {
    const first = await waitFor("prices", async () => {
      const p = await prices();
      return p && !p.includes("—") ? p : null;
    }, 15_000);
    await waitFor("a different price", async () => (await prices()) !== first, 15_000);
    await waitFor("messages per second above 0", async () => Number(await page.locator('[data-metric="rate"]').textContent()) > 0, 5_000);
  });

  await step("screenshot of the live dashboard", async () => {
    await sleep(2500); // a few live ticks on the forming candle
    await page.screenshot({ path: join(results, "dashboard.png") });
  });

  await step("server stopped: the dot turns yellow (reconnecting)", async () => {
    await server.stop();
    await waitFor("a yellow dot", dotIs("yellow", "reconnecting"), 10_000);
    const label = await dot.getAttribute("aria-label");
    if (!/attempt \d of 3/.test(label ?? "")) throw new Error(`label: ${label}`);
  });

  await step("then red, polling, with a toast", async () => {
    // 3 attempts at 2 s, 4 s, 8 s (plus jitter, and the server's retry_after_ms).
    await waitFor("a red dot in polling state", dotIs("red", "polling"), 40_000);
    await waitFor("a polling toast", async () => {
      const texts = await page.getByTestId("toast").allTextContents();
      return texts.some((t) => /polling/i.test(t));
    }, 5_000);
    const mode = await page.getByTestId("mode-label").textContent();
    if (!/Polling/.test(mode ?? "")) throw new Error(`mode label: ${mode}`);
    await page.screenshot({ path: join(results, "dashboard-polling.png") });
  });

  await step("server started again on the same port: green again, with a toast", async () => {
    await server.start();
    await waitFor("a green dot", dotIs("green", "connected"), 30_000);
    await waitFor("a restored toast", async () => {
      const texts = await page.getByTestId("toast").allTextContents();
      return texts.some((t) => /restored/i.test(t));
    }, 5_000);
    const before = await prices();
    await waitFor("prices moving again", async () => (await prices()) !== before, 15_000);
  });

  await step("the real-time toggle survives a reload", async () => {
    const toggle = page.getByTestId("realtime-toggle");
    await toggle.click();
    await waitFor("the toggle off", async () => (await toggle.getAttribute("aria-checked")) === "false", 5_000);
    await waitFor("polling by choice", dotIs("red", "polling"), 5_000);
    await page.reload({ waitUntil: "load" });
    await page.getByTestId("realtime-toggle").waitFor({ state: "visible" });
    if ((await page.getByTestId("realtime-toggle").getAttribute("aria-checked")) !== "false") {
      throw new Error("the toggle was on again after the reload");
    }
    await waitFor("polling after the reload", dotIs("red", "polling"), 5_000);
    const mode = await page.getByTestId("mode-label").textContent();
    if (!/Polling/.test(mode ?? "")) throw new Error(`mode label: ${mode}`);
    await page.getByTestId("realtime-toggle").click();
    await page.reload({ waitUntil: "load" });
    await waitFor("the toggle on after reload", async () => (await page.getByTestId("realtime-toggle").getAttribute("aria-checked")) === "true", 5_000);
    await waitFor("green again", dotIs("green", "connected"), 15_000);
  });

  await step("no uncaught errors in the page", async () => {
    if (pageErrors.length > 0) throw new Error(pageErrors.join("; "));
  });
} catch (e) {
  failed += 1;
  log(`FAIL setup: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  await browser?.close().catch(() => {});
  await server.stop();
}

log(`screenshot: ${join(results, "dashboard.png")}`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
