// The chart's colours from the page's CSS variables (--panel, --muted, --line, --rule), so a
// theme that switches those switches the canvas too; the dark look where one is not set.

export interface ChartPalette {
  background: string;
  text: string;
  grid: string;
  border: string;
}

export const DARK: ChartPalette = { background: "#0f1318", text: "#9aa5b3", grid: "#1a2029", border: "#262e3a" };

/** `read(name)`: a CSS variable's value ("" when not set). */
export function paletteFrom(read: (name: string) => string): ChartPalette {
  const v = (name: string, fallback: string) => read(name).trim() || fallback;
  return { background: v("--panel", DARK.background), text: v("--muted", DARK.text), grid: v("--rule", DARK.grid), border: v("--line", DARK.border) };
}

export const samePalette = (a: ChartPalette | null, b: ChartPalette): boolean =>
  a !== null && a.background === b.background && a.text === b.text && a.grid === b.grid && a.border === b.border;
