// useState that survives page loads (localStorage), e.g. the real-time toggle.

import { useCallback, useState } from "react";
import { load, save } from "../lib/storage";

export function usePersistentState<T>(
  key: string,
  fallback: T,
  valid: (v: unknown) => v is T,
): [T, (next: T) => void] {
  const [value, setValue] = useState<T>(() => load(key, fallback, valid));
  const set = useCallback(
    (next: T) => {
      save(key, next);
      setValue(next);
    },
    [key],
  );
  return [value, set];
}
