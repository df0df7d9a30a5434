// Browser tests (e2e/*.spec.ts): Debian's Chromium (Playwright's own builds cannot be
// downloaded here), one worker, the tests of a file in order against one real server.
// `npm run e2e`; `make test` runs it through `make frontend-check`.
import { defineConfig } from "@playwright/test";
import { chromiumPath, inCI, results } from "./e2e/env";

export default defineConfig({
  testDir: "e2e",
  testMatch: "*.spec.ts",
  outputDir: results,
  globalSetup: "./e2e/global-setup.ts",
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: inCI,
  timeout: 60_000,
  reporter: [["list"], ["./e2e/summary-reporter.ts"]],
  use: {
    browserName: "chromium",
    launchOptions: {
      executablePath: chromiumPath,
      args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    },
  },
});
