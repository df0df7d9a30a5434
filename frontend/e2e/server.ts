// A real stockfeed server (simulator, 0.5 s ticks) serving the built dashboard, on a port
// that stays the same across stop() and start(): the tests stop it and bring it back.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { dist, results, stockfeedBin } from "./env";

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => ok(port));
    });
  });
}

/** Debian's libfaketime (apt-get install faketime; .ci/run installs it). */
export const FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
export const faketimeMissing = !existsSync(FAKETIME_LIB);

export interface ServerOptions {
  /** The directory served at / (default: the built dashboard). */
  dashboard?: string;
  /** The logs' prefix. */
  name?: string;
  /** The simulator on its markets' real calendar (default: every ticker trades at any hour). */
  marketHours?: boolean;
  /** The server's clock starts at this UTC moment ("2026-12-08 08:30:00") and runs on
   * (libfaketime; FAKETIME_DONT_FAKE_MONOTONIC is left unset: with 0.9.10 it breaks sleeps). */
  faketime?: string;
  /** More environment for the server. */
  env?: Record<string, string>;
}

// The servers' store directories, removed when the test worker exits.
const dataDirs = new Set<string>();
process.once("exit", () => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

export class StockfeedServer {
  private proc: ChildProcess | null = null;
  private starts = 0;
  /** The server's own store (kept across stop() and start()), never the user's: a test's
   * server, on a fake clock or not, must not write into ~/.local/share/stockfeed. */
  private readonly dataDir = mkdtempSync(join(tmpdir(), "stockfeed-e2e-"));

  constructor(
    readonly port: number,
    private readonly opts: ServerOptions = {},
  ) {
    dataDirs.add(this.dataDir);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Start and wait until /api/ws/health answers (30 s at most). */
  async start(): Promise<void> {
    this.starts += 1;
    const log = `${this.opts.name ?? "server"}-${this.starts}.log`;
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("STOCKFEED_")));
    env.STOCKFEED_DASHBOARD_DIR = this.opts.dashboard ?? dist;
    env.PYTHONUNBUFFERED = "1";
    env.STOCKFEED_DATA_DIR = this.dataDir;
    // Every ticker trades at any hour the tests run (the simulator's market SIM), unless
    // a test wants the real calendar.
    env.STOCKFEED_SIM_MARKET_HOURS = this.opts.marketHours ? "true" : "false";
    if (this.opts.faketime) {
      if (faketimeMissing) throw new Error(`no ${FAKETIME_LIB}: apt-get install faketime`);
      Object.assign(env, { LD_PRELOAD: FAKETIME_LIB, FAKETIME: `@${this.opts.faketime}`, TZ: "UTC" });
    }
    Object.assign(env, this.opts.env ?? {});
    const out = createWriteStream(join(results, log));
    const proc = spawn(
      stockfeedBin,
      ["serve", "--source", "sim", "--sim-tick-interval", "0.5", "--host", "127.0.0.1", "--port", String(this.port)],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.proc = proc;
    proc.stdout?.pipe(out);
    proc.stderr?.pipe(out);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`the server exited with ${proc.exitCode}; see test-results/${log}`);
      const res = await fetch(`${this.url}api/ws/health`).catch(() => null);
      if (res?.ok) return;
      if (Date.now() > deadline) throw new Error(`no server on port ${this.port} after 30 s; see test-results/${log}`);
      await sleep(150);
    }
  }

  /** SIGTERM (the server says goodbye to its clients), SIGKILL after 15 s. */
  async stop(): Promise<void> {
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
