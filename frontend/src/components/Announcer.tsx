// The page's one polite live region: it speaks status changes (the feed's state, the market
// opening or closing) and nothing else — not the clock, not prices, not toasts.

export function Announcer({ message }: { message: string }) {
  return (
    <div className="sr-only" role="status" aria-live="polite" aria-atomic="true" data-testid="announcer">
      {message}
    </div>
  );
}
