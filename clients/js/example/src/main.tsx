import { createRoot } from "react-dom/client";
import { StockfeedClient } from "@stockfeed/client";
import { StockfeedProvider, useConnection, useQuote } from "@stockfeed/client/react";

const client = new StockfeedClient("ws://localhost:8000/ws", { tickers: ["AAPL"] });
client.connect().catch((err) => console.error(err));

function Price() {
  const quote = useQuote("AAPL");
  const { state } = useConnection();
  return <p>AAPL <b data-seq={quote?.seq}>{quote?.data.price.toFixed(2) ?? "…"}</b> ({state})</p>;
}

createRoot(document.getElementById("root")!).render(
  <StockfeedProvider client={client}><Price /></StockfeedProvider>,
);
