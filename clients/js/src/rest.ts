// The REST half of the API, as far as a feed needs it (the polling fallback) and as a
// helper for callers: GET a JSON endpoint with the token, errors as ApiError carrying the
// server's error code (docs/protocol.md, "REST API").

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type FetchLike = (input: string, init?: { headers?: Record<string, string>; signal?: AbortSignal }) => Promise<{
  ok: boolean;
  status: number;
  statusText: string;
  json(): Promise<unknown>;
}>;

/** GET `url` as JSON, with `Authorization: Bearer <token>` when there is a token. */
export async function getJson<T>(
  url: string,
  token: string | null,
  signal?: AbortSignal,
  fetchImpl: FetchLike = (input, init) => globalThis.fetch(input, init),
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetchImpl(url, signal ? { headers, signal } : { headers });
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
