// Which of the three layouts the window calls for. The same names drive the CSS (a class on
// the app) and what is rendered (tabs exist only on a phone), so the two never disagree.
//   phone:   narrower than 700 px, or lower than 500 px (a phone held sideways)
//   tablet:  up to 1099 px wide
//   desktop: the rest

import { useSyncExternalStore } from "react";

export type Layout = "phone" | "tablet" | "desktop";

const PHONE = "(max-width: 699px), (max-height: 499px)";
const TABLET = "(max-width: 1099px)";

function current(): Layout {
  if (typeof window === "undefined" || !window.matchMedia) return "desktop";
  if (window.matchMedia(PHONE).matches) return "phone";
  if (window.matchMedia(TABLET).matches) return "tablet";
  return "desktop";
}

function subscribe(onChange: () => void): () => void {
  if (typeof window === "undefined" || !window.matchMedia) return () => {};
  const lists = [window.matchMedia(PHONE), window.matchMedia(TABLET)];
  for (const l of lists) l.addEventListener("change", onChange);
  return () => {
    for (const l of lists) l.removeEventListener("change", onChange);
  };
}

export function useLayout(): Layout {
  return useSyncExternalStore(subscribe, current, () => "desktop");
}
