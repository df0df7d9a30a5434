// Keeps the address bar and the chart's state in step (lib/urlState.ts): a change the user
// makes is a new history entry (the first write only replaces, so opening the page adds
// none); the back and forward buttons hand the state they come to back to the page.

import { useEffect, useRef } from "react";
import { readUrlState, sameUrlState, writeUrlState, type UrlState } from "../lib/urlState";

export function useUrlState(state: UrlState, ready: boolean, onNavigate: (s: UrlState) => void): void {
  const written = useRef(false);
  const navigate = useRef(onNavigate);
  useEffect(() => {
    navigate.current = onNavigate;
  });

  const { ticker, interval, range } = state;
  useEffect(() => {
    if (!ready) return;
    const next = { ticker, interval, range };
    if (sameUrlState(readUrlState(window.location.search), next)) {
      written.current = true;
      return;
    }
    const url = `${window.location.pathname}${writeUrlState(window.location.search, next)}${window.location.hash}`;
    if (written.current) window.history.pushState(null, "", url);
    else window.history.replaceState(null, "", url);
    written.current = true;
  }, [ready, ticker, interval, range]);

  useEffect(() => {
    const onPop = () => navigate.current(readUrlState(window.location.search));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
}
