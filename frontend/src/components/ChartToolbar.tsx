// Over the chart: the ticker, the range presets and the bar size, how prices arrive now (the
// feed status's words), the time-zone choice, pause, and the real-time switch (WebSocket vs
// polling).

import "../chart.css";
import { INTERVALS, type Interval } from "../lib/candles";
import { RANGE_PRESETS, type RangePreset } from "../lib/ranges";
import type { FeedStatusView } from "../lib/feedStatus";
import type { ZoneChoice } from "../lib/timezone";

const RANGE_WORDS: Record<RangePreset, string> = { "1D": "day", "5D": "5 days", "1M": "month", "6M": "6 months", "1Y": "year" };

interface Props {
  ticker: string;
  interval: Interval;
  onInterval: (i: Interval) => void;
  preset: RangePreset;
  onPreset: (p: RangePreset) => void;
  /** The tickers the chart can be compared with (the watchlist's others). */
  compareChoices: string[];
  compare: string | null;
  onCompare: (t: string | null) => void;
  realtime: boolean;
  onRealtime: (on: boolean) => void;
  status: FeedStatusView;
  paused: boolean;
  onPaused: (on: boolean) => void;
  zoneChoice: ZoneChoice;
  onZoneChoice: (z: ZoneChoice) => void;
  exchangeLabel: string;
  localLabel: string;
}

export function ChartToolbar(p: Props) {
  return (
    <div className="toolbar" data-testid="chart-toolbar">
      <span className="tb-ticker" data-testid="chart-ticker">
        {p.ticker}
      </span>
      <div className="seg" role="group" aria-label="Range" data-label="Range">
        {RANGE_PRESETS.map((r) => (
          <button
            key={r}
            type="button"
            className={r === p.preset ? "on" : ""}
            aria-pressed={r === p.preset}
            data-testid={`range-${r}`}
            onClick={() => p.onPreset(r)}
            title={`The last ${RANGE_WORDS[r]}`}
          >
            {r}
          </button>
        ))}
      </div>
      <div className="seg" role="group" aria-label="Bar size" data-label="Bars">
        {INTERVALS.map((i) => (
          <button
            key={i}
            type="button"
            className={i === p.interval ? "on" : ""}
            aria-pressed={i === p.interval}
            data-testid={`interval-${i}`}
            onClick={() => p.onInterval(i)}
            aria-label={`${i === "1d" ? "Daily" : i} bars`}
          >
            {i === "1d" ? "D" : i}
          </button>
        ))}
      </div>
      <span className={`mode-label mode-${p.status.color}`} data-testid="mode-label" data-kind={p.status.kind}>
        {p.status.mode}
      </span>
      <div className="tb-controls">
        <label className="compare">
          <span>Compare</span>
          <select value={p.compare ?? ""} onChange={(e) => p.onCompare(e.target.value || null)} data-testid="compare-select">
            <option value="">No comparison</option>
            {p.compareChoices.map((t) => (
              <option key={t} value={t}>
                {t} (%)
              </option>
            ))}
          </select>
        </label>
        <label className="tz">
          <span>Times</span>
          <select
            value={p.zoneChoice}
            onChange={(e) => p.onZoneChoice(e.target.value === "local" ? "local" : "exchange")}
            data-testid="tz-select"
          >
            <option value="exchange">Exchange ({p.exchangeLabel})</option>
            <option value="local">Local ({p.localLabel})</option>
          </select>
        </label>
        <button
          type="button"
          className={`pause ${p.paused ? "on" : ""}`}
          aria-pressed={p.paused}
          data-testid="pause-toggle"
          onClick={() => p.onPaused(!p.paused)}
          title={p.paused ? "Resume live updates" : "Freeze the prices on screen"}
        >
          {p.paused ? "▶ Resume" : "❚❚ Pause"}
        </button>
        <div className="switch">
          <button
            type="button"
            role="switch"
            aria-checked={p.realtime}
            aria-labelledby="rt-label"
            data-testid="realtime-toggle"
            data-checked={p.realtime}
            className={`sw ${p.realtime ? "on" : ""}`}
            onClick={() => p.onRealtime(!p.realtime)}
            title="Real-time over WebSocket, or poll the REST API"
          >
            <span className="track" aria-hidden="true">
              <span className="knob" />
            </span>
          </button>
          <span id="rt-label" className="sw-label">
            Real-time
          </span>
        </div>
      </div>
    </div>
  );
}
