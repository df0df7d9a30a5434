import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ChartToolbar } from "../src/components/ChartToolbar";
import { usePersistentState } from "../src/hooks/usePersistentState";
import { readToken } from "../src/lib/api";
import { feedStatus } from "../src/lib/feedStatus";
import { isBool } from "../src/lib/storage";

function Toolbar() {
  const [realtime, setRealtime] = usePersistentState("realtime", true, isBool);
  return (
    <ChartToolbar
      ticker="AAPL"
      interval="5m"
      onInterval={() => {}}
      preset="5D"
      onPreset={() => {}}
      compareChoices={[]}
      compare={null}
      onCompare={() => {}}
      realtime={realtime}
      onRealtime={setRealtime}
      status={feedStatus({
        paused: false,
        realtimeEnabled: realtime,
        wsState: realtime ? "connected" : "closed",
        attempt: 0,
        maxAttempts: 3,
        fallback: false,
        restReachable: null,
        pollSeconds: 60,
        probeSeconds: 10,
      })}
      paused={false}
      onPaused={() => {}}
      zoneChoice="exchange"
      onZoneChoice={() => {}}
      exchangeLabel="ET"
      localLabel="CET"
    />
  );
}

describe("the real-time toggle", () => {
  it("defaults to real time and survives a reload when turned off", () => {
    const first = render(<Toolbar />);
    const toggle = screen.getByTestId("realtime-toggle");
    expect(toggle.getAttribute("aria-checked")).toBe("true");
    expect(screen.getByTestId("mode-label").textContent).toMatch(/Real-time/);
    fireEvent.click(toggle);
    expect(toggle.getAttribute("aria-checked")).toBe("false");
    expect(screen.getByTestId("mode-label").textContent).toBe("Polling · every 60 s");
    expect(localStorage.getItem("stockfeed.realtime")).toBe("false");
    first.unmount(); // a page reload: state comes back from localStorage only

    render(<Toolbar />);
    expect(screen.getByTestId("realtime-toggle").getAttribute("aria-checked")).toBe("false");
    fireEvent.click(screen.getByTestId("realtime-toggle"));
    expect(localStorage.getItem("stockfeed.realtime")).toBe("true");
  });

  it("ignores a stored value of the wrong type", () => {
    localStorage.setItem("stockfeed.realtime", '"yes"');
    render(<Toolbar />);
    expect(screen.getByTestId("realtime-toggle").getAttribute("aria-checked")).toBe("true");
  });
});

describe("the access token", () => {
  it("is taken from ?token=, kept, and removed from the address bar", () => {
    window.history.replaceState(null, "", "/?token=abc123&poll=5");
    expect(readToken()).toBe("abc123");
    expect(window.location.search).toBe("?poll=5");
    expect(localStorage.getItem("stockfeed.token")).toBe("abc123");
    expect(readToken()).toBe("abc123"); // next load: from storage
  });
});
