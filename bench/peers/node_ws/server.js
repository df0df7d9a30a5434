// Baseline peer: Node `ws` + ioredis, relaying Redis `market:{T}` to `/ws/stocks/{T}` clients.
// One Redis subscription per ticker, shared by every local client of that ticker; each message
// goes out as the same text it arrived with. The usual Node recipe, nothing tuned.
//
//   node server.js --port 8101 [--redis redis://127.0.0.1:6379/0] [--backlog 8192]
"use strict";

const http = require("http");
const Redis = require("ioredis");
const { WebSocketServer } = require("ws");

function parseArgs(argv) {
  const args = { port: 8101, redis: "redis://127.0.0.1:6379/0", host: "127.0.0.1", backlog: 8192 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in args)) throw new Error(`unknown flag ${argv[i]}`);
    args[key] = typeof args[key] === "number" ? Number(argv[i + 1]) : argv[i + 1];
  }
  return args;
}

const TICKER = /^[A-Z0-9.\-=^]{1,15}$/;
const PATH = /^\/ws\/stocks\/([^/?]+)$/;

const args = parseArgs(process.argv.slice(2));
// No ready check: after a reconnect ioredis would send INFO on a connection that is back
// in subscriber mode and crash (seen here when Redis dropped the lagging subscriber).
const sub = new Redis(args.redis, { enableReadyCheck: false });
sub.on("error", (err) => console.error(`redis: ${err.message}`));
const clients = new Map(); // ticker -> Set<WebSocket>

sub.on("message", (channel, message) => {
  const set = clients.get(channel.slice("market:".length));
  if (set === undefined) return;
  for (const ws of set) ws.send(message);
});

const server = http.createServer((req, res) => {
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ noServer: true });

server.on("upgrade", (req, socket, head) => {
  const match = PATH.exec(req.url || "");
  const ticker = match ? decodeURIComponent(match[1]).toUpperCase() : "";
  if (!TICKER.test(ticker)) {
    socket.end("HTTP/1.1 404 Not Found\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    let set = clients.get(ticker);
    if (set === undefined) {
      set = new Set();
      clients.set(ticker, set);
      sub.subscribe(`market:${ticker}`);
    }
    set.add(ws);
    ws.on("error", () => {});
    ws.on("close", () => {
      set.delete(ws);
      if (set.size === 0 && clients.get(ticker) === set) {
        clients.delete(ticker);
        sub.unsubscribe(`market:${ticker}`);
      }
    });
  });
});

server.listen(args.port, args.host, args.backlog, () => {
  console.log(`node_ws listening on ${args.host}:${args.port}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    for (const ws of wss.clients) ws.terminate();
    sub.disconnect();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
