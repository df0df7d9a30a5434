// One closing line, `e2e: N passed, N failed[, N skipped]`, as the hand-written runner
// printed it (CI logs are read for such a line); Playwright's list reporter does the rest.
import type { FullResult, Reporter, Suite } from "@playwright/test/reporter";

export default class SummaryReporter implements Reporter {
  private suite: Suite | null = null;

  onBegin(_config: unknown, suite: Suite): void {
    this.suite = suite;
  }

  onEnd(result: FullResult): void {
    const tests = this.suite?.allTests() ?? [];
    if (result.status === "passed" && tests.every((t) => t.results.length === 0)) return; // --list
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const t of tests) {
      const outcome = t.outcome();
      if (outcome === "expected" || outcome === "flaky") counts.passed += 1;
      else if (outcome === "skipped") counts.skipped += 1;
      else counts.failed += 1;
    }
    // A failure outside any test (global setup, a worker's fixture) fails the run too.
    if (result.status !== "passed" && counts.failed === 0) counts.failed = 1;
    const skipped = counts.skipped > 0 ? `, ${counts.skipped} skipped` : "";
    console.log(`e2e: ${counts.passed} passed, ${counts.failed} failed${skipped}`);
  }

  printsToStdio(): boolean {
    return false;
  }
}
