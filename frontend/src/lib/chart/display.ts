// The chart's display choices as kept across page loads (lib/storage.ts): read back
// defensively, anything unknown dropped.

import type { ChartDisplay } from "./ChartController";
import { isStudyId } from "./studies";
import type { ChartStyle } from "./surface";

export const CHART_STYLES: readonly ChartStyle[] = ["candles", "line", "area"];

export const isChartDisplay = (v: unknown): v is ChartDisplay => {
  if (typeof v !== "object" || v === null) return false;
  const d = v as Record<string, unknown>;
  return (
    CHART_STYLES.includes(d.style as ChartStyle) &&
    Array.isArray(d.studies) &&
    d.studies.every(isStudyId) &&
    new Set(d.studies).size === d.studies.length &&
    typeof d.log === "boolean" &&
    typeof d.extended === "boolean"
  );
};
