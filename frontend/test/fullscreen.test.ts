// Full screen: the Fullscreen API where the element has it, the fallback where it has not or
// refuses; Escape leaves the fallback.
import { describe, expect, it } from "vitest";
import { Fullscreen, type FullscreenDoc, type FullscreenMode } from "../src/lib/chart/fullscreen";

class FakeDoc implements FullscreenDoc {
  fullscreenElement: Element | null = null;
  private fns = new Map<string, Set<(e: Event) => void>>();
  exitFullscreen = async () => {
    this.fullscreenElement = null;
    this.fire("fullscreenchange", new Event("fullscreenchange"));
  };
  addEventListener(type: string, fn: (e: Event) => void): void {
    if (!this.fns.has(type)) this.fns.set(type, new Set());
    this.fns.get(type)!.add(fn);
  }
  removeEventListener(type: string, fn: (e: Event) => void): void {
    this.fns.get(type)?.delete(fn);
  }
  fire(type: string, e: Event): void {
    for (const fn of this.fns.get(type) ?? []) fn(e);
  }
  get listeners(): number {
    return [...this.fns.values()].reduce((n, s) => n + s.size, 0);
  }
}

describe("full screen", () => {
  it("uses the Fullscreen API when the element has it", async () => {
    const doc = new FakeDoc();
    const el = document.createElement("div");
    const modes: FullscreenMode[] = [];
    (el as unknown as { requestFullscreen: () => Promise<void> }).requestFullscreen = async () => {
      doc.fullscreenElement = el;
      doc.fire("fullscreenchange", new Event("fullscreenchange"));
    };
    const fs = new Fullscreen(el, { onChange: (m) => modes.push(m), doc });
    await fs.toggle();
    expect(fs.mode).toBe("api");
    await fs.toggle();
    expect(modes).toEqual(["api", "off"]);
    fs.dispose();
    expect(doc.listeners).toBe(0);
  });

  it("falls back (no API, or it refuses) and leaves on Escape", async () => {
    const doc = new FakeDoc();
    const el = document.createElement("div");
    (el as unknown as { requestFullscreen: () => Promise<void> }).requestFullscreen = () => Promise.reject(new Error("not allowed"));
    const modes: FullscreenMode[] = [];
    const fs = new Fullscreen(el, { onChange: (m) => modes.push(m), doc });
    await fs.toggle();
    expect(fs.mode).toBe("fallback");
    doc.fire("keydown", new KeyboardEvent("keydown", { key: "Enter" }));
    expect(fs.mode).toBe("fallback");
    doc.fire("keydown", new KeyboardEvent("keydown", { key: "Escape" }));
    expect(modes).toEqual(["fallback", "off"]);
  });
});
