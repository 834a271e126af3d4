import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, loadSession, refreshSession } from "./api";

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  /** HTTP status of the last failure (null after a success). */
  status: number | null;
  loading: boolean;
  reload: () => void;
}

/** GET `path` on mount (and whenever it changes); `reload()` fetches again. */
export function useApi<T>(path: string | null): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<number | null>(null);
  const [loading, setLoading] = useState(path !== null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setLoading(true);
    api
      .get<T>(path)
      .then((d) => {
        if (!live) return;
        setData(d);
        setError(null);
        setStatus(null);
      })
      .catch((e: Error) => {
        if (!live) return;
        setError(e.message);
        setStatus(e instanceof ApiError ? e.status : null);
      })
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, status, loading, reload };
}

export interface LiveMessage {
  channel: string;
  data: unknown;
}

export type WsState = "connecting" | "open" | "closed";

/**
 * One WebSocket to /ws for the signed-in user; reconnects with backoff. Every message
 * `{channel, data}` is handed to `onMessage`.
 */
export function useLive(token: string | null, onMessage: (m: LiveMessage) => void): WsState {
  const [state, setState] = useState<WsState>("connecting");
  const handler = useRef(onMessage);
  handler.current = onMessage;
  useEffect(() => {
    if (!token) return;
    let socket: WebSocket | null = null;
    let stopped = false;
    let retry = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connect = async () => {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      setState("connecting");
      // Reconnects use the freshest token (the first one may have expired and been refreshed).
      let current = loadSession();
      if (current?.expiresAt && new Date(current.expiresAt).getTime() <= Date.now())
        current = await refreshSession();
      if (stopped) return;
      const bearer = current?.token ?? token;
      // The token travels as a subprotocol, not in the URL (which proxies log).
      socket = new WebSocket(`${proto}//${location.host}/ws`, ["bearer", bearer]);
      socket.onopen = () => {
        retry = 0;
        setState("open");
      };
      socket.onmessage = (ev) => {
        try {
          const msg = JSON.parse(String(ev.data)) as LiveMessage;
          if (msg && typeof msg.channel === "string") handler.current(msg);
        } catch {
          /* ignore non-JSON frames */
        }
      };
      socket.onclose = () => {
        setState("closed");
        if (stopped) return;
        retry = Math.min(retry + 1, 6);
        timer = setTimeout(() => void connect(), 500 * 2 ** (retry - 1));
      };
    };
    void connect();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      socket?.close();
    };
  }, [token]);
  return state;
}

/** Call `fn` every `ms` milliseconds while mounted (and the page is visible). */
export function useEvery(fn: () => void, ms: number): void {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    const id = setInterval(() => {
      if (document.visibilityState !== "hidden") saved.current();
    }, ms);
    return () => clearInterval(id);
  }, [ms]);
}
