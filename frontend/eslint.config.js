// Flat config: typescript-eslint's recommended type-aware rules plus the React hooks rules,
// and the dashboard's layer rules.
import js from "@eslint/js";
import globals from "globals";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist", "node_modules", "test-results"] },
  {
    files: ["**/*.{ts,tsx}"],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: { globals: globals.browser },
    plugins: { "react-hooks": reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  // The layers, bottom up: lib/ (plain TypeScript: no React, no JSX, nothing of the layers
  // above), hooks/ (React state, no components), components/ and App. A lower layer that
  // reaches up fails the lint.
  {
    files: ["src/lib/**/*.{ts,tsx}"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["react", "react/*", "react-dom", "react-dom/*", "@stockfeed/client/react"], message: "lib/ is plain TypeScript: no React (put React code in hooks/ or components/)." },
            { group: ["**/components", "**/components/*", "**/hooks", "**/hooks/*", "**/App"], message: "lib/ imports nothing from hooks/, components/ or App." },
          ],
        },
      ],
      "no-restricted-syntax": ["error", { selector: "JSXElement, JSXFragment", message: "lib/ is plain TypeScript: no JSX." }],
    },
  },
  {
    files: ["src/hooks/**/*.{ts,tsx}"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["**/components", "**/components/*", "**/App"], message: "hooks/ import no components." }] },
      ],
    },
  },
  {
    // Node-side: the browser tests and their config.
    files: ["e2e/**/*.ts", "playwright.config.ts"],
    languageOptions: { globals: globals.node },
  },
  {
    files: ["eslint.config.js"],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },
);
