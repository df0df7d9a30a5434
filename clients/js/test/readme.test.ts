// The README's "Use it in your app" shows the example project's page line for line
// (frontend/e2e/example-app.spec.ts builds that project from the packed tarball), and the
// package ships what the README and the example import.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const here = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const readme = readFileSync(resolve(here, "..", "..", "README.md"), "utf8");
const main = readFileSync(resolve(here, "example", "src", "main.tsx"), "utf8");

describe("the README's example", () => {
  it("is the example project's src/main.tsx, and about 15 lines", () => {
    const section = readme.split("## Use it in your app\n")[1]?.split("\n## ")[0] ?? "";
    const block = /```tsx\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block, "a tsx block in README's 'Use it in your app'").toBe(main);
    expect(main.trim().split("\n").length).toBeLessThanOrEqual(16);
  });

  it("imports what the package exports", () => {
    const pkg = JSON.parse(readFileSync(resolve(here, "package.json"), "utf8")) as { exports: Record<string, unknown> };
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining([".", "./react"]));
    expect(main).toContain('from "@stockfeed/client"');
    expect(main).toContain('from "@stockfeed/client/react"');
  });
});
