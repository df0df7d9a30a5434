// `test` with a `server` fixture: one stockfeed server per worker, on a free port, stopped
// when the worker ends (whatever the tests did to it in between).
import { test as base } from "@playwright/test";
import { StockfeedServer, freePort } from "./server";

export const test = base.extend<object, { server: StockfeedServer }>({
  server: [
    // eslint-disable-next-line no-empty-pattern -- Playwright reads fixture deps from the pattern
    async ({}, provide) => {
      const server = new StockfeedServer(await freePort());
      await server.start();
      try {
        await provide(server);
      } finally {
        await server.stop();
      }
    },
    { scope: "worker", timeout: 60_000 },
  ],
});

export { expect } from "@playwright/test";
