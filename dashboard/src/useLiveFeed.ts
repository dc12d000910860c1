// The live feed: one WebSocket to /ws/sentiment with automatic reconnection (exponential backoff
// with jitter) and a catch-up fetch of recent posts on every (re)connection, so that what the feed
// shows is never stale. The post list is bounded. Every attempt first asks the gateway for a
// single-use ticket (a browser cannot send its key on a WebSocket) and opens `?ticket=...`.
import { useCallback, useEffect, useRef, useState } from "react";
import { type Alert, type ApiError, isAuthError, liveFeedTicket, liveFeedUrl, parseLiveMessage, type Post, withTicket } from "./api";

/** `unauthorized`: the gateway refused the ticket (no usable key, or one without the read scope). */
export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "disconnected" | "unauthorized";

/** The part of WebSocket the hook uses (so tests can pass a fake). */
export interface SocketLike {
  readyState: number;
  onopen: ((ev: Event) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface LiveFeedOptions {
  /** Fetches the newest posts matching the live filters (used on every connection). */
  catchUp: () => Promise<Post[]>;
  /** Posts kept (default 50). */
  maxPosts?: number;
  /** Server-side (subscribe message) and client-side filters of the feed. */
  source?: string;
  sentiment?: string;
  /** Client-side only: posts must mention this text, whatever the case (the server has no text filter). */
  term?: string;
  onAlert?: (alert: Alert) => void;
  /** A post or a metrics update arrived (the caller may refresh its aggregates). */
  onActivity?: () => void;
  /** The socket came back after a loss (the caller should re-fetch whatever it shows). */
  onReconnected?: () => void;
  url?: string;
  createSocket?: (url: string) => SocketLike;
  /**
   * The ticket for one connection attempt (null: connect without one); an ApiError of 401 or
   * 403 stops the retries until `identity` changes or `reconnectNow`. Default: `POST /api/ws-ticket`.
   */
  ticket?: (signal: AbortSignal) => Promise<string | null>;
  /** Who connects (e.g. the API key); a change reconnects with a fresh ticket. */
  identity?: string;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Share of each delay randomised (0–1), so many dashboards do not reconnect in lockstep. */
  jitter?: number;
  random?: () => number;
  /** Consecutive failed attempts after which the status reads "disconnected" (retries go on). */
  attemptsBeforeDisconnected?: number;
}

export interface LiveFeed {
  posts: Post[];
  status: ConnectionStatus;
  /** Delay of the pending reconnection attempt, in ms (null when none is pending). */
  retryInMs: number | null;
  /** Error of the last catch-up fetch, if it failed. */
  catchUpError: string | null;
  /** Why the gateway refused the live feed (status `unauthorized`), else null. */
  authError: ApiError | null;
  /** Reconnects now, skipping the pending backoff delay. */
  reconnectNow: () => void;
}

/** Delay before attempt `attempt` (0-based): initial · 2^attempt, capped, ± jitter. */
export function backoffDelay(attempt: number, initial: number, max: number, jitter = 0, random = Math.random): number {
  const base = Math.min(max, initial * 2 ** attempt);
  if (jitter <= 0) return base;
  return Math.round(base * (1 - jitter + 2 * jitter * random()));
}

function postTime(p: Post): number {
  const t = Date.parse(p.ingested_at ?? p.created_at ?? "");
  return Number.isNaN(t) ? 0 : t;
}

/** `incoming` merged into `current`: one entry per post id, newest first, at most `max`. */
export function mergePosts(current: Post[], incoming: Post[], max: number): Post[] {
  const byId = new Map<string, Post>();
  for (const p of [...incoming, ...current]) if (!byId.has(p.post_id)) byId.set(p.post_id, p);
  return [...byId.values()].sort((a, b) => postTime(b) - postTime(a)).slice(0, max);
}

/**
 * Whether `content` mentions `term`: a case-insensitive substring, as the posts table's search
 * (an ILIKE) matches, so the feed and the table agree. An empty term matches everything.
 */
export function mentions(content: string, term: string | undefined): boolean {
  const needle = term?.trim().toLowerCase();
  return !needle || content.toLowerCase().includes(needle);
}

function matches(post: Post, source?: string, sentiment?: string, term?: string): boolean {
  return (!source || post.source === source) && (!sentiment || post.sentiment_label === sentiment) && mentions(post.content, term);
}

const OPEN = 1;

export function useLiveFeed(options: LiveFeedOptions): LiveFeed {
  const {
    maxPosts = 50,
    source = "",
    sentiment = "",
    term = "",
    initialDelayMs = 500,
    maxDelayMs = 15_000,
    jitter = 0.2,
    attemptsBeforeDisconnected = 6,
    identity = "",
  } = options;
  const [posts, setPosts] = useState<Post[]>([]);
  const [status, setStatus] = useState<ConnectionStatus>("connecting");
  const [retryInMs, setRetryInMs] = useState<number | null>(null);
  const [catchUpError, setCatchUpError] = useState<string | null>(null);
  const [authError, setAuthError] = useState<ApiError | null>(null);
  const [generation, setGeneration] = useState(0);

  // The latest options, read by the long-lived socket handlers.
  const latest = useRef(options);
  latest.current = options;
  const filters = useRef({ source, sentiment, term, maxPosts });
  filters.current = { source, sentiment, term, maxPosts };
  const socketRef = useRef<SocketLike | null>(null);

  const runCatchUp = useCallback(() => {
    const { source: s, sentiment: se, term: t, maxPosts: max } = filters.current;
    return latest.current
      .catchUp()
      .then((fetched) => {
        // Keep live posts that arrived meanwhile, drop anything outside the filters.
        setPosts((current) => mergePosts(current, fetched, max).filter((p) => matches(p, s, se, t)));
        setCatchUpError(null);
      })
      .catch((e: unknown) => setCatchUpError(e instanceof Error ? e.message : String(e)));
  }, []);

  useEffect(() => {
    let disposed = false;
    let attempt = 0;
    let everConnected = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ticketRequests = new AbortController();
    const {
      url = liveFeedUrl(),
      createSocket = (u: string) => new WebSocket(u) as SocketLike,
      ticket = (signal: AbortSignal) => liveFeedTicket(fetch, signal),
    } = latest.current;

    const connect = async () => {
      if (disposed) return;
      setRetryInMs(null);
      let granted: string | null;
      try {
        granted = await ticket(ticketRequests.signal);
      } catch (e) {
        if (disposed) return;
        if (isAuthError(e)) {
          // A new ticket will not change the answer; a new key (or "reconnect now") will.
          setAuthError(e);
          setStatus("unauthorized");
          return;
        }
        scheduleRetry();
        return;
      }
      if (disposed) return;
      setAuthError(null);
      let socket: SocketLike;
      try {
        socket = createSocket(withTicket(url, granted));
      } catch {
        scheduleRetry();
        return;
      }
      socketRef.current = socket;
      socket.onopen = () => {
        if (disposed) return;
        const wasReconnect = everConnected;
        everConnected = true;
        attempt = 0;
        setStatus("connected");
        const { source: s, sentiment: se } = filters.current;
        socket.send(JSON.stringify({ type: "subscribe", source: s || null, sentiment: se || null }));
        void runCatchUp();
        if (wasReconnect) latest.current.onReconnected?.();
      };
      socket.onmessage = (event) => {
        const message = parseLiveMessage(event.data);
        if (!message || disposed) return;
        switch (message.type) {
          case "new_post": {
            const { source: s, sentiment: se, term: t, maxPosts: max } = filters.current;
            if (matches(message.data, s, se, t)) setPosts((current) => mergePosts(current, [message.data], max));
            latest.current.onActivity?.();
            break;
          }
          case "metrics_update":
            latest.current.onActivity?.();
            break;
          case "alert":
            latest.current.onAlert?.(message.data);
            break;
          case "lagged":
            // Some events were skipped: fetch what was missed.
            void runCatchUp();
            break;
          default:
            break;
        }
      };
      socket.onerror = () => {
        // onclose follows and schedules the retry.
      };
      socket.onclose = () => {
        if (disposed || socketRef.current !== socket) return;
        socketRef.current = null;
        scheduleRetry();
      };
    };

    const scheduleRetry = () => {
      const { random = Math.random } = latest.current;
      const delay = backoffDelay(attempt, initialDelayMs, maxDelayMs, jitter, random);
      attempt += 1;
      setStatus(attempt > attemptsBeforeDisconnected ? "disconnected" : everConnected ? "reconnecting" : "connecting");
      setRetryInMs(delay);
      timer = setTimeout(() => void connect(), delay);
    };

    setStatus("connecting");
    void connect();
    return () => {
      disposed = true;
      ticketRequests.abort();
      clearTimeout(timer);
      const socket = socketRef.current;
      socketRef.current = null;
      if (socket) {
        socket.onclose = null;
        socket.onmessage = null;
        socket.close();
      }
    };
  }, [generation, identity, initialDelayMs, maxDelayMs, jitter, attemptsBeforeDisconnected, runCatchUp]);

  // New filters: tell the server, and replace the list with a fresh catch-up.
  const firstFilters = useRef(true);
  useEffect(() => {
    if (firstFilters.current) {
      firstFilters.current = false;
      return;
    }
    setPosts((current) => current.filter((p) => matches(p, source, sentiment, term)));
    const socket = socketRef.current;
    if (socket && socket.readyState === OPEN) {
      // Re-subscribing with unchanged server filters (only the term changed) is harmless.
      socket.send(JSON.stringify({ type: "subscribe", source: source || null, sentiment: sentiment || null }));
      void runCatchUp();
    }
  }, [source, sentiment, term, runCatchUp]);

  const reconnectNow = useCallback(() => setGeneration((g) => g + 1), []);

  return { posts, status, retryInMs, catchUpError, authError, reconnectNow };
}
