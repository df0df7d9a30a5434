// The chart's own controls, in a strip over it (inside the box that goes full screen): how
// the bars are drawn (candles, line, area), the studies (SMA, EMA, VWAP), a log scale, the
// extended hours, and full screen. Every toggle says its state (aria-pressed); a control
// that does not apply (VWAP on daily bars, extended hours where a market has none) is
// disabled and says why in its title. On a phone the strip is folded away behind one
// button (the chart keeps its height); open, it lies over the chart's top.

import { memo, useId, useState } from "react";
import type { ChartDisplay } from "../lib/chart/ChartController";
import { STUDIES, STUDY_IDS, type StudyId } from "../lib/chart/studies";
import type { ChartStyle } from "../lib/chart/surface";

const STYLES: { id: ChartStyle; label: string; words: string }[] = [
  { id: "candles", label: "Candles", words: "Candlesticks" },
  { id: "line", label: "Line", words: "Line of closes" },
  { id: "area", label: "Area", words: "Area under the closes" },
];

interface Props {
  display: ChartDisplay;
  onDisplay: (d: ChartDisplay) => void;
  daily: boolean;
  /** The market has pre- and post-market hours (XNYS). */
  hasExtended: boolean;
  comparing: boolean;
  fullscreen: boolean;
  onFullscreen: () => void;
}

/** Memoised: the page renders on every quote; the strip only when its props change. */
export const ChartTools = memo(function ChartTools({ display, onDisplay, daily, hasExtended, comparing, fullscreen, onFullscreen }: Props) {
  const toggleStudy = (id: StudyId) =>
    onDisplay({ ...display, studies: display.studies.includes(id) ? display.studies.filter((s) => s !== id) : [...display.studies, id] });
  const extUsable = hasExtended && !daily;
  const [open, setOpen] = useState(false);
  const id = useId();
  return (
    <>
      <button
        type="button"
        className={`chart-tools-toggle${open ? " on" : ""}`}
        aria-expanded={open}
        aria-controls={id}
        aria-label="Chart options"
        data-testid="chart-tools-toggle"
        title="Chart type, studies, scale, hours, full screen"
        onClick={() => setOpen(!open)}
      >
        ⚙
      </button>
      <div id={id} className={`chart-tools${open ? " open" : ""}`} data-testid="chart-tools">
        <div className="seg" role="group" aria-label="Chart type">
          {STYLES.map((s) => (
            <button
              key={s.id}
              type="button"
              className={display.style === s.id ? "on" : ""}
              aria-pressed={display.style === s.id}
              data-testid={`style-${s.id}`}
              title={s.words}
              onClick={() => onDisplay({ ...display, style: s.id })}
            >
              {s.label}
            </button>
          ))}
        </div>
        <div className="seg" role="group" aria-label="Studies">
          {STUDY_IDS.map((id) => {
            const off = STUDIES[id].intraday && daily;
            return (
              <button
                key={id}
                type="button"
                className={display.studies.includes(id) && !off ? "on" : ""}
                aria-pressed={display.studies.includes(id) && !off}
                disabled={off}
                data-testid={`study-${id}`}
                title={off ? `${STUDIES[id].title}: intraday bars only` : STUDIES[id].title}
                onClick={() => toggleStudy(id)}
              >
                {STUDIES[id].label}
              </button>
            );
          })}
        </div>
        <div className="seg" role="group" aria-label="Scale and hours">
          <button
            type="button"
            className={display.log ? "on" : ""}
            aria-pressed={display.log}
            data-testid="scale-log"
            title={comparing ? "Logarithmic price scale (after the comparison's % scale)" : "Logarithmic price scale"}
            onClick={() => onDisplay({ ...display, log: !display.log })}
          >
            Log
          </button>
          <button
            type="button"
            className={display.extended && extUsable ? "on" : ""}
            aria-pressed={display.extended && extUsable}
            disabled={!extUsable}
            data-testid="extended-hours"
            title={extUsable ? "Pre- and post-market bars" : daily ? "Extended hours: daily bars hold the regular session only" : "Extended hours: this market has one session"}
            onClick={() => onDisplay({ ...display, extended: !display.extended })}
          >
            Ext hrs
          </button>
          <button
            type="button"
            className={fullscreen ? "on" : ""}
            aria-pressed={fullscreen}
            data-testid="chart-fullscreen"
            aria-label="Full screen chart"
            title={fullscreen ? "Leave full screen (Escape)" : "Full screen chart"}
            onClick={onFullscreen}
          >
            {fullscreen ? "⤡" : "⤢"}
          </button>
        </div>
      </div>
    </>
  );
});
