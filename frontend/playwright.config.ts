// Browser tests (e2e/*.spec.ts): Debian's Chromium (Playwright's own builds cannot be
// downloaded here). Two workers, one file each at a time, the tests of a file in order
// against the worker's own real server (e2e/fixtures.ts); the performance spec runs last
// and alone, so that another browser does not share the cores it measures. `npm run e2e`;
// `make test` runs it through `make frontend-check`.
import { defineConfig } from "@playwright/test";
import { chromiumPath, inCI, results } from "./e2e/env";

export default defineConfig({
  testDir: "e2e",
  testMatch: "*.spec.ts",
  outputDir: results,
  globalSetup: "./e2e/global-setup.ts",
  workers: 2,
  fullyParallel: false,
  retries: 0,
  forbidOnly: inCI,
  timeout: 60_000,
  reporter: [["list"], ["./e2e/summary-reporter.ts"]],
  projects: [
    { name: "browser", testIgnore: "perf.spec.ts" },
    { name: "perf", testMatch: "perf.spec.ts", dependencies: ["browser"] },
  ],
  use: {
    browserName: "chromium",
    launchOptions: {
      executablePath: chromiumPath,
      args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    },
  },
});
