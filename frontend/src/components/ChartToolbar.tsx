// Interval selector and the real-time toggle (WebSocket vs polling), with its mode label.

import { INTERVALS, type Interval } from "../lib/candles";
import type { Mode } from "../hooks/useMarketData";

interface Props {
  ticker: string;
  interval: Interval;
  onInterval: (i: Interval) => void;
  realtime: boolean;
  onRealtime: (on: boolean) => void;
  mode: Mode;
  pollSeconds: number;
}

export function ChartToolbar({ ticker, interval, onInterval, realtime, onRealtime, mode, pollSeconds }: Props) {
  const modeLabel = mode === "realtime" ? "Real-time · WebSocket" : `Polling · every ${pollSeconds} s`;
  return (
    <div className="toolbar" data-testid="chart-toolbar">
      <span className="tb-ticker">{ticker}</span>
      <div className="seg" role="group" aria-label="Interval">
        {INTERVALS.map((i) => (
          <button
            key={i}
            type="button"
            className={i === interval ? "on" : ""}
            aria-pressed={i === interval}
            data-testid={`interval-${i}`}
            onClick={() => onInterval(i)}
          >
            {i === "1d" ? "1D" : i}
          </button>
        ))}
      </div>
      <div className="tb-spacer" />
      <span className={`mode-label mode-${mode}`} data-testid="mode-label">
        {modeLabel}
      </span>
      <label className="switch" title="Real-time over WebSocket, or poll the REST API">
        <button
          type="button"
          role="switch"
          aria-checked={realtime}
          aria-label="Real-time updates"
          data-testid="realtime-toggle"
          data-checked={realtime}
          className={realtime ? "on" : ""}
          onClick={() => onRealtime(!realtime)}
        >
          <span className="knob" />
        </button>
        <span>Real-time</span>
      </label>
    </div>
  );
}
