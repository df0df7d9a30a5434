// Registers vitest-websocket-mock's matchers (toReceiveMessage, …) and resets state.
import "vitest-websocket-mock";
import { afterEach, vi } from "vitest";
import WS from "vitest-websocket-mock";

afterEach(() => {
  WS.clean();
  vi.useRealTimers();
  localStorage.clear();
});
