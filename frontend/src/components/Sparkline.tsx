// A ticker's latest session as a tiny line (one SVG polyline, redrawn only when its closes
// change), coloured by the day's direction against the previous close (a dashed line when
// that falls inside the range). Until today has a few bars it is the previous session's,
// drawn muted with the previous close's line (its last close) and said so. Its text
// alternative says the same in words.

import { memo, useMemo } from "react";
import { formatPrice } from "../lib/format";
import { sparkGeometry, type SparkCloses } from "../lib/sparkline";

const W = 60;
const H = 20;

interface Props {
  ticker: string;
  values: SparkCloses | undefined;
  prevClose: number | null;
  decimals: number | null;
}

export const Sparkline = memo(function Sparkline({ ticker, values, prevClose, decimals }: Props) {
  const geo = useMemo(() => sparkGeometry(values ?? [], W, H, prevClose), [values, prevClose]);
  if (!values || values.length === 0) {
    return (
      <span className="spark-none" data-testid={`spark-${ticker}`} data-points="0">
        <span className="sr-only">{ticker}: no intraday bars yet</span>
      </span>
    );
  }
  const first = values[0]!;
  const last = values[values.length - 1]!;
  const previous = values.previous === true;
  const base = prevClose ?? first;
  const dir = previous ? "prev" : last > base ? "up" : last < base ? "down" : "flat";
  const when = previous ? "previous session" : "today";
  const label = `${ticker} ${when}, ${values.length} five-minute closes: from ${formatPrice(first, decimals)} to ${formatPrice(last, decimals)}`;
  return (
    <svg
      className={`spark ${dir}`}
      viewBox={`0 0 ${W} ${H}`}
      width={W}
      height={H}
      role="img"
      aria-label={label}
      data-testid={`spark-${ticker}`}
      data-points={values.length}
      data-session={previous ? "previous" : "latest"}
      preserveAspectRatio="none"
    >
      {geo.refY !== null && <line className="spark-ref" x1={0} x2={W} y1={geo.refY} y2={geo.refY} />}
      <polyline points={geo.points} />
    </svg>
  );
});
