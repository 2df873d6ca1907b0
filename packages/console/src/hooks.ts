import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";
import { navigate } from "./router";

export interface Loaded<T> {
  data?: T;
  error?: ApiError;
  loading: boolean;
  reload(): void;
}

/**
 * Load `load()` now and, with `everyMs`, again after each answer (polling never overlaps itself).
 * The last data stays shown while a refresh runs; an expired or revoked key goes back to login.
 */
export function usePoll<T>(load: () => Promise<T>, everyMs: number | null, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    setState((s) => ({ ...s, loading: true }));
    const run = async () => {
      try {
        const data = await loader.current();
        if (live) setState({ data, loading: false });
      } catch (err) {
        const error = err instanceof ApiError ? err : new ApiError(0, (err as Error).message);
        if (error.status === 401) return navigate("/ui/login");
        if (live) setState((s) => ({ ...s, error, loading: false }));
        // Not found, forbidden or refused: asking again will not change the answer.
        if ([400, 403, 404].includes(error.status)) return;
      }
      if (live && everyMs) timer = setTimeout(run, everyMs);
    };
    void run();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick, everyMs]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}
