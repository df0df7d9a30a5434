// Where the browser tests find their tools, shared by the config, the global setup and the
// fixtures. CHROMIUM_PATH and STOCKFEED_BIN override the defaults.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

export const frontend = resolve(import.meta.dirname, "..");
export const repo = resolve(frontend, "..");
/** Screenshots and server logs (Playwright's outputDir: emptied at the start of a run). */
export const results = join(frontend, "test-results");
export const dist = join(frontend, "dist");
export const stockfeedBin = process.env.STOCKFEED_BIN ?? join(repo, ".venv", "bin", "stockfeed");
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const inCI = /^(1|true|yes)$/i.test(process.env.CI ?? "");
/** Chromium missing: under CI the run fails (global setup); elsewhere the tests skip. */
export const chromiumMissing = !existsSync(chromiumPath);
export const skipReason = `no Chromium at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH) to run the browser tests`;
