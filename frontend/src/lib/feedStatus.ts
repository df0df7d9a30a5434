// What the dashboard says about its feed, in one place: the connection chip, the toolbar's
// mode label, the metrics panel and the spoken announcement all read this view, so they can
// never disagree (the toolbar once said "Real-time" in green for 16 s after the server died).
//
//   kind            data-state     colour   when
//   live            connected      green    the socket is open
//   connecting      connecting     yellow   first connection in progress
//   reconnecting    reconnecting   yellow   the socket dropped; attempt k of n under way
//   polling-auto    polling        orange   the socket gave up; REST polls get through
//   polling-manual  polling        blue     the user turned real-time off; polls get through
//   unreachable     disconnected   red      neither the socket nor REST gets through
//   paused          paused         grey     the user paused updates
//
// `data-state` keeps DESIGN.md's names (plus `paused`); `kind` and the colour tell the two
// pollings and the dead server apart.

export type FeedKind =
  | "live"
  | "connecting"
  | "reconnecting"
  | "polling-auto"
  | "polling-manual"
  | "unreachable"
  | "paused";

export type FeedColor = "green" | "yellow" | "orange" | "blue" | "red" | "grey";
export type FeedDataState = "connected" | "connecting" | "reconnecting" | "polling" | "disconnected" | "paused";

export interface FeedStatusInput {
  paused: boolean;
  realtimeEnabled: boolean;
  /** The socket's state: connecting | connected | reconnecting | closed | error. */
  wsState: string;
  attempt: number;
  maxAttempts: number;
  /** Polling because the socket gave up (not by choice). */
  fallback: boolean;
  /** The last REST probe: true answered, false failed, null none yet (or not probing). */
  restReachable: boolean | null;
  pollSeconds: number;
  probeSeconds: number;
}

export interface FeedStatusView {
  kind: FeedKind;
  state: FeedDataState;
  color: FeedColor;
  /** Next to the dot: "Live", "Reconnecting 2/3", "Server unreachable". */
  title: string;
  /** A full sentence: tooltip, aria-label and the announcement. */
  detail: string;
  /** The chart toolbar's label: how prices arrive right now. */
  mode: string;
  /** Whether the numbers on screen are arriving right now. */
  flowing: boolean;
}

const DATA_STATE: Record<FeedKind, FeedDataState> = {
  live: "connected",
  connecting: "connecting",
  reconnecting: "reconnecting",
  "polling-auto": "polling",
  "polling-manual": "polling",
  unreachable: "disconnected",
  paused: "paused",
};

const COLOR: Record<FeedKind, FeedColor> = {
  live: "green",
  connecting: "yellow",
  reconnecting: "yellow",
  "polling-auto": "orange",
  "polling-manual": "blue",
  unreachable: "red",
  paused: "grey",
};

export function feedKind(i: FeedStatusInput): FeedKind {
  if (i.paused) return "paused";
  if (!i.realtimeEnabled) return i.restReachable === false ? "unreachable" : "polling-manual";
  if (i.wsState === "connected") return "live";
  // "polling" as a socket state: a client that folds the fallback into its state.
  if (i.fallback || i.wsState === "error" || i.wsState === "polling") return i.restReachable === false ? "unreachable" : "polling-auto";
  if (i.wsState === "reconnecting") return "reconnecting";
  return "connecting";
}

export function feedStatus(i: FeedStatusInput): FeedStatusView {
  const kind = feedKind(i);
  let title: string;
  let detail: string;
  let mode: string;
  switch (kind) {
    case "live":
      title = "Live";
      detail = "Live: prices stream over WebSocket.";
      mode = "Real-time · WebSocket";
      break;
    case "connecting":
      title = "Connecting";
      detail = "Connecting to the live feed.";
      mode = "Connecting…";
      break;
    case "reconnecting":
      title = `Reconnecting ${i.attempt}/${i.maxAttempts}`;
      detail = `Reconnecting: the live feed dropped; attempt ${i.attempt} of ${i.maxAttempts}. Prices on screen are not updating.`;
      mode = "Reconnecting…";
      break;
    case "polling-auto":
      title = "Polling (automatic)";
      detail = `Polling every ${i.pollSeconds} s: WebSocket is down, retried every ${i.probeSeconds} s; real time resumes by itself.`;
      mode = `Polling · every ${i.pollSeconds} s (WebSocket down)`;
      break;
    case "polling-manual":
      title = "Polling (real-time off)";
      detail = `Polling every ${i.pollSeconds} s, as chosen: real-time is off.`;
      mode = `Polling · every ${i.pollSeconds} s`;
      break;
    case "unreachable":
      title = "Server unreachable";
      detail = i.realtimeEnabled
        ? `Server unreachable: neither WebSocket nor polling gets through. Retrying every ${i.probeSeconds} s.`
        : `Server unreachable: polling fails. Retrying every ${i.pollSeconds} s.`;
      mode = "No data · server unreachable";
      break;
    case "paused":
      title = "Paused";
      detail = "Paused by you: prices on screen are frozen until you resume.";
      mode = "Paused";
      break;
  }
  return {
    kind,
    state: DATA_STATE[kind],
    color: COLOR[kind],
    title,
    detail,
    mode,
    flowing: kind === "live" || kind === "polling-auto" || kind === "polling-manual",
  };
}
