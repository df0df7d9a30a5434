// REST and WebSocket addresses, and the optional access token.
//
// A token arrives once as `?token=` in the page URL; it is kept in localStorage (and
// removed from the address bar, so it is not bookmarked or shared by accident). With a
// token, REST calls carry `Authorization: Bearer …` and the socket URL `access_token=…`
// (browsers cannot set headers on a WebSocket handshake).

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

export function wsUrl(token: string | null, loc: Location = window.location): string {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  const base = `${scheme}//${loc.host}/ws`;
  return token ? `${base}?access_token=${encodeURIComponent(token)}` : base;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** GET a JSON endpoint; errors become ApiError with the server's code and message. */
export async function getJson<T>(
  path: string,
  token: string | null,
  signal?: AbortSignal,
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { headers, signal });
  if (!res.ok) {
    let code = "http_error";
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: { code?: string; message?: string } };
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message);
  }
  return (await res.json()) as T;
}
