// Before any browser test: Chromium present (a failure under CI, a loud skip elsewhere),
// the server installed, the dashboard built.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromiumMissing, chromiumPath, dist, frontend, inCI, results, skipReason, stockfeedBin } from "./env";

export default function globalSetup(): void {
  if (chromiumMissing) {
    if (inCI) throw new Error(`no Chromium at ${chromiumPath}; CI must have it (.ci/run installs the chromium package)`);
    const bar = "!".repeat(78);
    console.error(`${bar}\ne2e: SKIPPED: ${skipReason}.\n${bar}`);
    return;
  }
  if (!existsSync(stockfeedBin)) throw new Error(`no stockfeed at ${stockfeedBin} (run make setup)`);
  if (!existsSync(join(dist, "index.html"))) {
    console.log("e2e: dist/ is not built: building it");
    const r = spawnSync("npm", ["run", "build"], { cwd: frontend, stdio: "inherit" });
    if (r.status !== 0) throw new Error("npm run build failed");
  }
  mkdirSync(results, { recursive: true });
}
