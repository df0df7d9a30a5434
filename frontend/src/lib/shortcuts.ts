// The keyboard shortcuts (the help overlay lists SHORTCUTS; `?` opens it). A key typed into
// a text field, a select or with Ctrl/Cmd/Alt held is the field's or the browser's, not ours.

export type ShortcutAction = "search" | "next" | "prev" | "interval-down" | "interval-up" | "theme" | "help" | "panels";

export const SHORTCUTS: { keys: string[]; action: ShortcutAction; text: string }[] = [
  { keys: ["/"], action: "search", text: "Search symbols to add" },
  { keys: ["j"], action: "next", text: "Next watchlist row" },
  { keys: ["k"], action: "prev", text: "Previous watchlist row" },
  { keys: ["["], action: "interval-down", text: "Shorter bar interval" },
  { keys: ["]"], action: "interval-up", text: "Longer bar interval" },
  { keys: ["p"], action: "panels", text: "Fold or unfold the side panels" },
  { keys: ["t"], action: "theme", text: "Switch light / dark theme" },
  { keys: ["?"], action: "help", text: "Show or hide this help" },
];

const BY_KEY = new Map(SHORTCUTS.flatMap((s) => s.keys.map((k) => [k, s.action] as const)));

export interface KeyLike {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  target: EventTarget | null;
}

function typingIn(target: EventTarget | null): boolean {
  if (!target || typeof (target as Element).tagName !== "string") return false;
  const el = target as HTMLElement;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return true;
  if (tag !== "INPUT") return false;
  const type = (el as HTMLInputElement).type;
  return !["button", "checkbox", "radio", "submit", "reset", "range"].includes(type);
}

export function shortcutFor(e: KeyLike): ShortcutAction | null {
  if (e.ctrlKey || e.metaKey || e.altKey || typingIn(e.target)) return null;
  return BY_KEY.get(e.key) ?? null;
}

/** The next item of `list` after (delta 1) or before (-1) `current`, stopping at the ends. */
export function step<T>(list: readonly T[], current: T, delta: number): T | null {
  if (list.length === 0) return null;
  const i = list.indexOf(current);
  if (i < 0) return list[0] ?? null;
  return list[Math.min(list.length - 1, Math.max(0, i + delta))] ?? null;
}
