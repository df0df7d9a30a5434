// One source for the protocol's types: the TypeScript message shapes (src/messages.ts,
// FIELDS) against the server's AsyncAPI document, and against the generated vocabulary
// (src/protocol.ts, from backend/src/stockfeed/protocol/codes.py; the Python suite checks
// that file is up to date). A message the server documents that the client does not know,
// a field required on one side only, or an example the parser refuses fails here.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { FIELDS, parseMessage } from "../src/messages.js";
import { MessageType, Session } from "../src/protocol.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const spec = parse(readFileSync(resolve(repo, "backend/src/stockfeed/spec/asyncapi.yaml"), "utf8")) as {
  components: {
    schemas: Record<string, { required?: string[]; properties?: Record<string, { const?: string }> }>;
    messages: Record<string, { name: string; payload: { $ref: string }; examples?: { payload: unknown }[] }>;
  };
};
const serverTypes = new Set<string>(Object.values(MessageType));
/** v1.1 messages the client knows before the document does (DESIGN.md, "Bars on the wire"). */
const AHEAD = new Set(["bars", "bar"]);

const schemaOf = (type: string) =>
  Object.values(spec.components.schemas).find((s) => s.properties?.type?.const === type);
const fields = (type: string) => (FIELDS as Record<string, Record<string, string>>)[type]!;

describe("the message types agree with the AsyncAPI document", () => {
  it("every server message type has fields here, and the document knows every one here", () => {
    for (const type of serverTypes) expect(Object.keys(FIELDS), type).toContain(type);
    const documented = new Set(Object.keys(FIELDS).filter((t) => schemaOf(t)));
    const missing = Object.keys(FIELDS).filter((t) => !documented.has(t) && !AHEAD.has(t));
    expect(missing, "types here the document lacks").toEqual([]);
  });

  for (const type of Object.keys(FIELDS)) {
    it.skipIf(!schemaOf(type))(`${type}: the same required fields, and no field the client does not know`, () => {
      const schema = schemaOf(type)!;
      const mine = fields(type);
      const required = Object.keys(mine).filter((k) => !mine[k]!.endsWith("?"));
      expect(new Set(required)).toEqual(new Set((schema.required ?? []).filter((k) => k !== "type")));
      const documented = Object.keys(schema.properties ?? {}).filter((k) => k !== "type");
      expect(Object.keys(mine)).toEqual(expect.arrayContaining(documented));
    });
  }

  it("the parser takes every example of the document", () => {
    let n = 0;
    for (const msg of Object.values(spec.components.messages)) {
      if (!serverTypes.has(msg.name)) continue; // client -> server
      for (const ex of msg.examples ?? []) {
        const parsed = parseMessage(JSON.stringify(ex.payload));
        expect(parsed.known, msg.name).toBe(true);
        n += 1;
      }
    }
    expect(n).toBeGreaterThan(5);
  });
});

describe("v1.2 provenance in a quote", () => {
  const update = (data: Record<string, unknown>) =>
    JSON.stringify({ type: "price_update", ticker: "AAPL", seq: 1, timestamp: 1, data: { price: 1, change: null, change_percent: null, volume: null, open: null, high: null, low: null, prev_close: null, market_time: null, ...data } });

  it("takes a feed that is null, absent or a string, and refuses another type", () => {
    expect(parseMessage(update({ source: "coinbase", feed: null, delayed: 0 })).known).toBe(true);
    expect(parseMessage(update({})).known).toBe(true);
    expect(parseMessage(update({ source: "alpaca", feed: "iex", delayed: 900 })).known).toBe(true);
    expect(() => parseMessage(update({ feed: 5 }))).toThrow(/feed must be string or null/);
    expect(() => parseMessage(update({ delayed: "0" }))).toThrow(/delayed must be integer/);
  });

  it("takes the session-true figures: a session and, after the close, the regular close", () => {
    const parsed = parseMessage(update({ prev_close: 253.1, session: "post", regular_close: 254.5 }));
    expect(parsed.known).toBe(true);
    if (parsed.known && parsed.message.type === "price_update") {
      expect(parsed.message.data.session).toBe(Session.post);
      expect(parsed.message.data.regular_close).toBe(254.5);
    }
    expect(parseMessage(update({ session: "pre" })).known).toBe(true);
    expect(() => parseMessage(update({ regular_close: "254.5" }))).toThrow(/regular_close must be number/);
  });
});
