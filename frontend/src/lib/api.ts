// The optional access token, and REST calls with it.
//
// A token arrives once as `?token=` in the page URL; it is kept in localStorage (and
// removed from the address bar, so it is not bookmarked or shared by accident). With a
// token, REST calls carry `Authorization: Bearer …` and the socket (@stockfeed/client) the
// `bearer, <token>` subprotocol (browsers cannot set headers on a WebSocket handshake).

import { ApiError, getJson as getJsonFrom } from "@stockfeed/client";

export { ApiError };

const TOKEN_KEY = "stockfeed.token";

export function readToken(loc: Location = window.location): string | null {
  const params = new URLSearchParams(loc.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    try {
      localStorage.setItem(TOKEN_KEY, fromUrl);
    } catch {
      /* storage disabled: the token still works for this page */
    }
    params.delete("token");
    const rest = params.toString();
    try {
      window.history.replaceState(null, "", loc.pathname + (rest ? `?${rest}` : "") + loc.hash);
    } catch {
      /* not fatal */
    }
    return fromUrl;
  }
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** GET a same-origin JSON endpoint; errors become ApiError with the server's code and message. */
export function getJson<T>(path: string, token: string | null, signal?: AbortSignal): Promise<T> {
  return getJsonFrom<T>(path, token, signal);
}
