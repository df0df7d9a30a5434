// Real things to test against: a `stockfeed serve` process (simulator, 50 ms ticks, the
// memory broker) on a free port that stays the same across restarts, and a TCP proxy in
// front of it whose connections can be cut (a network drop, with the server still up).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, connect, type Server, type Socket, type AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const stockfeedBin = process.env.STOCKFEED_BIN ?? join(repo, ".venv", "bin", "stockfeed");
export const haveStockfeed = existsSync(stockfeedBin);

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

export interface ServerOptions {
  env?: Record<string, string>;
  args?: string[];
}

export class StockfeedServer {
  private proc: ChildProcess | null = null;
  private log = "";
  // Its own market-data store, kept across its restarts (never the user's default one).
  private readonly dataDir = mkdtempSync(join(tmpdir(), "stockfeed-client-test-"));

  private constructor(
    readonly port: number,
    private readonly opts: ServerOptions,
  ) {}

  static async start(opts: ServerOptions = {}): Promise<StockfeedServer> {
    const server = new StockfeedServer(await freePort(), opts);
    await server.start();
    return server;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Start (again, on the same port) and wait until /api/ws/health answers. */
  async start(): Promise<void> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("STOCKFEED_")) env[k] = v;
    // Every instrument trades at any hour the tests run (the simulator's market SIM): with
    // market hours on, US equities are silent from 20:00 to 04:00 New York time.
    Object.assign(
      env,
      { PYTHONUNBUFFERED: "1", STOCKFEED_SIM_MARKET_HOURS: "false", STOCKFEED_DATA_DIR: this.dataDir },
      this.opts.env,
    );
    const args = ["serve", "--source", "sim", "--sim-tick-interval", "0.05", "--host", "127.0.0.1", "--port", String(this.port), ...(this.opts.args ?? [])];
    const proc = spawn(stockfeedBin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    this.log = "";
    const keep = (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-4000);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`stockfeed exited with ${proc.exitCode}:\n${this.log}`);
      const res = await fetch(`${this.http}/api/ws/health`).catch(() => null);
      if (res?.ok) return;
      if (Date.now() > deadline) throw new Error(`no stockfeed on port ${this.port} after 30 s:\n${this.log}`);
      await sleep(100);
    }
  }

  /** SIGTERM (clients get `server_shutdown`, then 1001) or SIGKILL (they get nothing). */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill(signal);
    const done = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
    if (!done) {
      proc.kill("SIGKILL");
      await exited;
    }
  }
}

/** A token from `stockfeed token` (the server's secret in the environment). */
export function mintToken(secret: string, args: string[] = []): string {
  const r = spawnSync(stockfeedBin, ["token", "--sub", "client-test", "--ttl", "10m", ...args], {
    env: { ...process.env, STOCKFEED_AUTH_SECRET: secret },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`stockfeed token failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** A TCP proxy to `target`: `cut()` drops every connection through it (the server stays
 * up), `refuse()` stops accepting new ones until `accept()`. */
export class Proxy {
  private readonly sockets = new Set<Socket>();
  private refusing = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<Proxy> {
    const box: { proxy?: Proxy } = {};
    const server = createServer((client) => {
      const proxy = box.proxy!;
      if (proxy.refusing) {
        client.destroy();
        return;
      }
      const upstream = connect(targetPort, "127.0.0.1");
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on("close", () => proxy.sockets.delete(s));
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    box.proxy = new Proxy(server, (server.address() as AddressInfo).port);
    return box.proxy;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  cut(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  refuse(): void {
    this.refusing = true;
    this.cut();
  }

  accept(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((ok) => this.server.close(ok));
  }
}

/** Poll `cond` every 20 ms until it is true, or fail after `ms` with `what`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}
