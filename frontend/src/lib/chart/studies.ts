// The studies the chart offers over its bars (lib/indicators.ts computes them): which, their
// periods, colours and names, and their points for the chart (bars without a value left out).

import { ema, sma, vwap, type Series } from "../indicators";
import { sessionDay, type SessionCalendar } from "../sessions";
import type { Bar } from "../types";

export type StudyId = "sma" | "ema" | "vwap";

export const STUDY_IDS: readonly StudyId[] = ["sma", "ema", "vwap"];

export interface StudySpec {
  /** On the button and the price axis. */
  label: string;
  /** Spoken: what it is. */
  title: string;
  color: string;
  /** Intraday only (VWAP starts again each session: on daily bars it is each bar's typical price). */
  intraday: boolean;
}

export const SMA_PERIOD = 20;
export const EMA_PERIOD = 50;

export const STUDIES: Record<StudyId, StudySpec> = {
  sma: { label: `SMA ${SMA_PERIOD}`, title: `Simple moving average of ${SMA_PERIOD} closes`, color: "#f5a623", intraday: false },
  ema: { label: `EMA ${EMA_PERIOD}`, title: `Exponential moving average of ${EMA_PERIOD} closes`, color: "#c678dd", intraday: false },
  vwap: { label: "VWAP", title: "Volume-weighted average price, from each session's first bar", color: "#56b6c2", intraday: true },
};

export const isStudyId = (v: unknown): v is StudyId => typeof v === "string" && (STUDY_IDS as string[]).includes(v);

/** The study's value per bar. */
export function studyValues(id: StudyId, bars: readonly Bar[], cal: SessionCalendar): Series {
  switch (id) {
    case "sma":
      return sma(
        bars.map((b) => b.close),
        SMA_PERIOD,
      );
    case "ema":
      return ema(
        bars.map((b) => b.close),
        EMA_PERIOD,
      );
    case "vwap":
      return vwap(bars, (t) => sessionDay(t, cal));
  }
}

/** The chart's points: one per bar with a value. */
export function studyPoints(bars: readonly Bar[], values: Series): { time: number; value: number }[] {
  const out: { time: number; value: number }[] = [];
  for (let i = 0; i < bars.length; i += 1) {
    const v = values[i];
    if (v !== null && v !== undefined && Number.isFinite(v)) out.push({ time: bars[i]!.time, value: v });
  }
  return out;
}
