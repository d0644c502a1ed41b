// A selector that re-renders at most once per animation frame, for views that bursts would flood.
import { useEffect, useState } from "react";
import { useAppStore } from "../app/hooks";
import type { RootState } from "../app/store";

export function useFrameSelector<T>(select: (state: RootState) => T): T {
  const store = useAppStore();
  const [value, setValue] = useState(() => select(store.getState()));
  useEffect(() => {
    let frame: number | null = null;
    let last = select(store.getState());
    setValue(last);
    const unsubscribe = store.subscribe(() => {
      if (frame !== null) return;
      frame = requestAnimationFrame(() => {
        frame = null;
        const next = select(store.getState());
        if (next !== last) {
          last = next;
          setValue(next);
        }
      });
    });
    return () => {
      unsubscribe();
      if (frame !== null) cancelAnimationFrame(frame);
    };
  }, [store, select]);
  return value;
}
