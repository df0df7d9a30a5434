// The theme shown: the stored choice (lib/theme.ts), following the system while the choice
// is "system" (a change of the system's setting applies at once), written to <html>.

import { useEffect, useState } from "react";
import { isString } from "../lib/storage";
import { effectiveTheme, isThemeChoice, type Theme, type ThemeChoice } from "../lib/theme";
import { usePersistentState } from "./usePersistentState";

const QUERY = "(prefers-color-scheme: light)";

function systemLight(): boolean {
  return typeof window.matchMedia === "function" && window.matchMedia(QUERY).matches;
}

export function useTheme(): { choice: ThemeChoice; theme: Theme; setChoice: (c: ThemeChoice) => void } {
  const [stored, setChoice] = usePersistentState<string>("theme", "system", isString);
  const choice: ThemeChoice = isThemeChoice(stored) ? stored : "system";
  const [light, setLight] = useState(systemLight);
  useEffect(() => {
    if (typeof window.matchMedia !== "function") return;
    const mq = window.matchMedia(QUERY);
    const on = () => setLight(mq.matches);
    mq.addEventListener("change", on);
    return () => mq.removeEventListener("change", on);
  }, []);
  const theme = effectiveTheme(choice, light);
  useEffect(() => {
    const root = document.documentElement;
    root.dataset.theme = theme;
    document.querySelector('meta[name="color-scheme"]')?.setAttribute("content", theme);
    document.querySelector('meta[name="theme-color"]')?.setAttribute("content", theme === "light" ? "#f6f8fa" : "#0f1318");
  }, [theme]);
  return { choice, theme, setChoice };
}
