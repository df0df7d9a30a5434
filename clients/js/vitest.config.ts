// The package's tests: in Node (the `ws` package as the WebSocket), against real
// `stockfeed serve` processes (test/server.ts) where the server's behaviour is the point;
// the React hooks' file runs in jsdom (its own `@vitest-environment` line).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "node",
    include: ["test/**/*.test.{ts,tsx}"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    restoreMocks: true,
  },
});
