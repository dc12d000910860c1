// Loads one thing from the API whenever `key` changes, keeping the last good value while a reload
// is in flight, and aborting requests that are no longer wanted.
import { useEffect, useState } from "react";
import { errorMessage } from "./format";

export interface Resource<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
}

export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, key: string): Resource<T> {
  const [state, setState] = useState<Resource<T>>({ data: null, error: null, loading: true });
  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setState({ data, error: null, loading: false });
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setState((s) => ({ data: s.data, error: errorMessage(e), loading: false }));
      },
    );
    return () => controller.abort();
    // `load` is rebuilt on each render; `key` names what it loads.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return state;
}
