/// <reference types="vitest/config" />
// Vite builds the dashboard into dist/ (served by stockfeed at /); vitest runs the unit
// tests in jsdom. `npm run dev` proxies the API and the socket to a local server.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const backend = process.env.STOCKFEED_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  // @stockfeed/client is linked from ../clients/js, which has its own React (for its tests):
  // one copy of React for the page, whichever package imports it.
  resolve: { dedupe: ["react", "react-dom"] },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: {
    proxy: {
      "/api": backend,
      "/ws": { target: backend.replace(/^http/, "ws"), ws: true },
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["test/**/*.test.{ts,tsx}"],
    setupFiles: ["test/setup.ts"],
    restoreMocks: true,
  },
});
