// Session shading as a lightweight-charts series primitive: one tinted band, the chart's full
// height, behind each run of pre- or post-market bars (lib/sessions.ts says which). Runs, not
// bars: a band per run keeps it solid at any zoom, and the drawing walks only the bars in view.
//
// Attached to the candle series, so a bar's logical index is its index in `sessions`.

import type { IPrimitivePaneRenderer, IPrimitivePaneView, ISeriesPrimitive, PrimitivePaneViewZOrder, SeriesAttachedParameter, Time } from "lightweight-charts";
import type { Session } from "../sessions";

type Target = Parameters<IPrimitivePaneRenderer["draw"]>[0];

export const SESSION_TINT: Record<"pre" | "post", string> = {
  pre: "rgba(86, 132, 210, 0.13)",
  post: "rgba(156, 110, 210, 0.13)",
};

interface Band {
  from: number;
  to: number;
  color: string;
}

export class SessionShading implements ISeriesPrimitive<Time> {
  /** Per bar (same index as the series' data): its session, null when not shaded. */
  private sessions: (Session | null)[] = [];
  private bands: Band[] = [];
  private host: SeriesAttachedParameter<Time> | null = null;
  private readonly views: readonly IPrimitivePaneView[];

  constructor() {
    const renderer: IPrimitivePaneRenderer = {
      draw: () => {},
      drawBackground: (target: Target) => this.draw(target),
    };
    this.views = [{ zOrder: (): PrimitivePaneViewZOrder => "bottom", renderer: () => renderer }];
  }

  attached(param: SeriesAttachedParameter<Time>): void {
    this.host = param;
  }

  detached(): void {
    this.host = null;
  }

  paneViews(): readonly IPrimitivePaneView[] {
    return this.views;
  }

  updateAllViews(): void {
    const host = this.host;
    this.bands = [];
    if (!host) return;
    const ts = host.chart.timeScale();
    const vis = ts.getVisibleLogicalRange();
    if (!vis || this.sessions.length === 0) return;
    const first = Math.max(0, Math.floor(vis.from) - 1);
    const last = Math.min(this.sessions.length - 1, Math.ceil(vis.to) + 1);
    const half = ts.options().barSpacing / 2;
    for (let i = first; i <= last; i += 1) {
      const s = this.sessions[i];
      if (s !== "pre" && s !== "post") continue;
      let j = i;
      while (j + 1 <= last && this.sessions[j + 1] === s) j += 1;
      const x1 = ts.logicalToCoordinate(i as never);
      const x2 = ts.logicalToCoordinate(j as never);
      if (x1 !== null && x2 !== null) this.bands.push({ from: x1 - half, to: x2 + half, color: SESSION_TINT[s] });
      i = j;
    }
  }

  /** The sessions of the bars on screen, oldest first (all of them, or none to clear). */
  set(sessions: (Session | null)[]): void {
    this.sessions = sessions;
    this.host?.requestUpdate();
  }

  /** Bar `index`'s session (the newest bar changed, or one was added). */
  put(index: number, session: Session | null): void {
    if (index > this.sessions.length) return;
    this.sessions[index] = session;
    this.host?.requestUpdate();
  }

  /** How many bars are shaded (for the browser tests). */
  get shaded(): number {
    return this.sessions.filter((s) => s === "pre" || s === "post").length;
  }

  private draw(target: Target): void {
    const bands = this.bands;
    if (bands.length === 0) return;
    target.useBitmapCoordinateSpace(({ context, bitmapSize, horizontalPixelRatio: r }) => {
      for (const b of bands) {
        const x1 = Math.max(0, Math.round(b.from * r));
        const x2 = Math.min(bitmapSize.width, Math.round(b.to * r));
        if (x2 <= x1) continue;
        context.fillStyle = b.color;
        context.fillRect(x1, 0, x2 - x1, bitmapSize.height);
      }
    });
  }
}
