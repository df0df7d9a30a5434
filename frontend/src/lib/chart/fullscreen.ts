// The chart full screen: the Fullscreen API on the chart's box where the browser has it for
// elements (not iOS Safari on a phone), else a fallback that the shell lays over the page
// (position: fixed) until Escape or the button again. `onChange` says which is on now.

export type FullscreenMode = "off" | "api" | "fallback";

export interface FullscreenDoc {
  fullscreenElement: Element | null;
  exitFullscreen?: () => Promise<void>;
  addEventListener(type: "fullscreenchange" | "keydown", fn: (e: Event) => void): void;
  removeEventListener(type: "fullscreenchange" | "keydown", fn: (e: Event) => void): void;
}

export class Fullscreen {
  /** The fallback is on (no Fullscreen API, or it refused). */
  private fallback = false;
  private readonly onDocChange = () => this.o.onChange(this.mode);
  private readonly onKey = (e: Event) => {
    if (this.fallback && (e as KeyboardEvent).key === "Escape") this.setFallback(false);
  };

  constructor(
    private readonly el: HTMLElement,
    private readonly o: { onChange: (mode: FullscreenMode) => void; doc?: FullscreenDoc },
  ) {
    this.doc.addEventListener("fullscreenchange", this.onDocChange);
    this.doc.addEventListener("keydown", this.onKey);
  }

  private get doc(): FullscreenDoc {
    return this.o.doc ?? document;
  }

  get active(): boolean {
    return this.mode !== "off";
  }

  get mode(): FullscreenMode {
    return this.fallback ? "fallback" : this.doc.fullscreenElement === this.el ? "api" : "off";
  }

  async toggle(): Promise<void> {
    if (this.active) {
      if (this.fallback) this.setFallback(false);
      else await this.doc.exitFullscreen?.().catch(() => undefined);
      return;
    }
    const request = (this.el as HTMLElement & { requestFullscreen?: () => Promise<void> }).requestFullscreen;
    if (typeof request === "function") {
      try {
        await request.call(this.el);
        return;
      } catch {
        /* refused (an iframe without allowfullscreen, no user gesture): the fallback */
      }
    }
    this.setFallback(true);
  }

  dispose(): void {
    this.doc.removeEventListener("fullscreenchange", this.onDocChange);
    this.doc.removeEventListener("keydown", this.onKey);
    if (this.fallback) this.setFallback(false);
  }

  private setFallback(on: boolean): void {
    this.fallback = on;
    this.o.onChange(this.mode);
  }
}
