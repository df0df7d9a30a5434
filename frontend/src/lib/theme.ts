// Light or dark: the system's choice (`prefers-color-scheme`) unless the user picked one.
// The page's colours are CSS variables switched by `<html data-theme>` (styles.css); index.html
// sets it before the first paint from the same stored choice, so a light page never flashes
// dark.

export type ThemeChoice = "system" | "light" | "dark";
export type Theme = "light" | "dark";

export const THEME_CHOICES: ThemeChoice[] = ["system", "light", "dark"];
export const isThemeChoice = (v: unknown): v is ThemeChoice => typeof v === "string" && (THEME_CHOICES as string[]).includes(v);

export function effectiveTheme(choice: ThemeChoice, systemPrefersLight: boolean): Theme {
  if (choice === "system") return systemPrefersLight ? "light" : "dark";
  return choice;
}

/** The `t` shortcut: the other theme than the one shown, as an explicit choice. */
export function toggledTheme(shown: Theme): ThemeChoice {
  return shown === "dark" ? "light" : "dark";
}
