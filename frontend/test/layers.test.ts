// The layer rules of eslint.config.js, checked by linting small sources as if they sat in
// each folder: lib/ takes no React, no JSX and nothing from the layers above; hooks/ take
// no components. (`npm run lint` applies them to the real files.)
import { resolve } from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");
const eslint = new ESLint({ cwd: root, overrideConfigFile: resolve(root, "eslint.config.js") });

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId?.startsWith("no-restricted")).map((m) => m.message);
}

describe("layer rules", () => {
  it("lib/ imports no React and nothing from hooks/ or components/, and has no JSX", async () => {
    expect(await problems("src/lib/chart/x.ts", 'import { useState } from "react";\nexport const f = useState;\n')).toEqual([
      expect.stringMatching(/lib\/ is plain TypeScript: no React/),
    ]);
    expect(await problems("src/lib/x.ts", 'import { useQuote } from "@stockfeed/client/react";\nexport const f = useQuote;\n')).toHaveLength(1);
    expect(await problems("src/lib/chart/x.ts", 'import type { Sparks } from "../../hooks/useSparklines";\nexport type S = Sparks;\n')).toHaveLength(1);
    expect(await problems("src/lib/x.ts", 'import { Tabs } from "../components/Tabs";\nexport const t = Tabs;\n')).toHaveLength(1);
    expect(await problems("src/lib/x.tsx", "export const f = () => <p />;\n")).toEqual([expect.stringMatching(/no JSX/)]);
    expect(await problems("src/lib/x.ts", 'import { StockfeedClient } from "@stockfeed/client";\nexport const c = StockfeedClient;\n')).toEqual([]);
  });

  it("hooks/ import no components; components may import hooks and lib", async () => {
    expect(await problems("src/hooks/x.ts", 'import { Tabs } from "../components/Tabs";\nexport const t = Tabs;\n')).toEqual([expect.stringMatching(/hooks\/ import no components/)]);
    expect(await problems("src/hooks/x.ts", 'import { useState } from "react";\nimport { getJson } from "../lib/api";\nexport const f = [useState, getJson];\n')).toEqual([]);
    expect(await problems("src/components/X.tsx", 'import { useNow } from "../hooks/useNow";\nimport { formatAge } from "../lib/format";\nexport const f = [useNow, formatAge];\n')).toEqual([]);
  });
});
