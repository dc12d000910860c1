import { act, renderHook } from "@testing-library/react";
import type { Post } from "./api";
import { alert, post } from "./fixtures";
import { backoffDelay, type LiveFeedOptions, mentions, type SocketLike, useLiveFeed } from "./useLiveFeed";

class MockSocket implements SocketLike {
  static all: MockSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  onopen: ((ev: Event) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  constructor(readonly url: string) {
    MockSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }
  fail() {
    this.readyState = 3;
    this.onerror?.(new Event("error"));
    this.onclose?.(new CloseEvent("close"));
  }
  message(type: string, data: unknown) {
    this.onmessage?.(new MessageEvent("message", { data: JSON.stringify({ type, data, timestamp: "t" }) }));
  }
}

const last = () => MockSocket.all[MockSocket.all.length - 1];

function setup(overrides: Partial<LiveFeedOptions> = {}) {
  let catchUpResult: Post[] = [post(1)];
  const catchUp = vi.fn(() => Promise.resolve(catchUpResult));
  const options: LiveFeedOptions = {
    catchUp,
    url: "ws://test/ws/sentiment",
    createSocket: (url) => new MockSocket(url),
    initialDelayMs: 500,
    maxDelayMs: 4_000,
    jitter: 0,
    maxPosts: 3,
    ...overrides,
  };
  const hook = renderHook((props: LiveFeedOptions) => useLiveFeed(props), { initialProps: options });
  return { hook, catchUp, options, setCatchUp: (p: Post[]) => (catchUpResult = p) };
}

/** Runs pending promise callbacks (the catch-up fetch) inside act. */
const flush = () => act(async () => {});

beforeEach(() => {
  MockSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("backoffDelay", () => {
  it("doubles from the initial delay up to the cap, with bounded jitter", () => {
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, 500, 4_000))).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    expect(backoffDelay(1, 500, 4_000, 0.2, () => 0)).toBe(800);
    expect(backoffDelay(1, 500, 4_000, 0.2, () => 1)).toBe(1200);
  });
});

describe("useLiveFeed", () => {
  it("connects, subscribes, catches up and prepends live posts, bounded", async () => {
    const { hook, catchUp } = setup();
    expect(hook.result.current.status).toBe("connecting");
    act(() => last().open());
    await flush();
    expect(hook.result.current.status).toBe("connected");
    expect(JSON.parse(last().sent[0])).toEqual({ type: "subscribe", source: null, sentiment: null });
    expect(catchUp).toHaveBeenCalledTimes(1);
    expect(hook.result.current.posts.map((p) => p.post_id)).toEqual(["p1"]);
    act(() => {
      for (const i of [2, 3, 4, 5]) last().message("new_post", post(i));
    });
    expect(hook.result.current.posts.map((p) => p.post_id)).toEqual(["p5", "p4", "p3"]);
  });

  it("reconnects with exponential backoff, then catches up and reports the reconnection", async () => {
    const onReconnected = vi.fn();
    const { hook, catchUp, setCatchUp } = setup({ onReconnected });
    act(() => last().open());
    await flush();

    act(() => last().fail());
    expect(hook.result.current.status).toBe("reconnecting");
    expect(hook.result.current.retryInMs).toBe(500);
    expect(MockSocket.all).toHaveLength(1);
    act(() => vi.advanceTimersByTime(499));
    expect(MockSocket.all).toHaveLength(1);
    act(() => vi.advanceTimersByTime(1));
    expect(MockSocket.all).toHaveLength(2);

    act(() => last().fail());
    expect(hook.result.current.retryInMs).toBe(1000);
    act(() => vi.advanceTimersByTime(1000));
    expect(MockSocket.all).toHaveLength(3);
    act(() => last().fail());
    expect(hook.result.current.retryInMs).toBe(2000);
    act(() => vi.advanceTimersByTime(2000));
    expect(MockSocket.all).toHaveLength(4);

    // Back: posts published while it was down come from the catch-up fetch.
    setCatchUp([post(9), post(1)]);
    act(() => last().open());
    await flush();
    expect(hook.result.current.status).toBe("connected");
    expect(hook.result.current.retryInMs).toBeNull();
    expect(catchUp).toHaveBeenCalledTimes(2);
    expect(onReconnected).toHaveBeenCalledTimes(1);
    expect(hook.result.current.posts.map((p) => p.post_id)).toEqual(["p9", "p1"]);

    // The delay starts again from the initial one.
    act(() => last().fail());
    expect(hook.result.current.retryInMs).toBe(500);
  });

  it("reads disconnected after repeated failures but keeps retrying at the capped delay", () => {
    const { hook } = setup({ attemptsBeforeDisconnected: 3 });
    for (let i = 0; i < 3; i++) {
      act(() => last().fail());
      expect(hook.result.current.status).toBe("connecting");
      act(() => vi.advanceTimersByTime(hook.result.current.retryInMs ?? 0));
    }
    act(() => last().fail());
    expect(hook.result.current.status).toBe("disconnected");
    expect(hook.result.current.retryInMs).toBe(4000);
    act(() => vi.advanceTimersByTime(4000));
    expect(MockSocket.all).toHaveLength(5);
  });

  it("passes alerts and activity on, and catches up after a lag notice", async () => {
    const onAlert = vi.fn();
    const onActivity = vi.fn();
    const { catchUp } = setup({ onAlert, onActivity });
    act(() => last().open());
    await flush();
    act(() => last().message("alert", alert(7)));
    expect(onAlert).toHaveBeenCalledWith(expect.objectContaining({ id: 7 }));
    act(() => last().message("metrics_update", null));
    expect(onActivity).toHaveBeenCalledTimes(1);
    act(() => last().message("lagged", { skipped: 12 }));
    await flush();
    expect(catchUp).toHaveBeenCalledTimes(2);
    // Garbage is ignored.
    act(() => last().onmessage?.(new MessageEvent("message", { data: "not json" })));
  });

  it("filters live posts and re-subscribes when the filters change", async () => {
    const { hook, options, catchUp } = setup({ maxPosts: 10 });
    act(() => last().open());
    await flush();
    hook.rerender({ ...options, maxPosts: 10, sentiment: "negative" });
    await flush();
    expect(JSON.parse(last().sent[1])).toEqual({ type: "subscribe", source: null, sentiment: "negative" });
    expect(catchUp).toHaveBeenCalledTimes(2);
    act(() => {
      last().message("new_post", post(2, { sentiment_label: "positive" }));
      last().message("new_post", post(3, { sentiment_label: "negative" }));
    });
    expect(hook.result.current.posts.map((p) => p.post_id)).toEqual(["p3"]);
  });

  it("keeps only posts mentioning the term, whatever the case, and catches up for it", async () => {
    const { hook, options, catchUp, setCatchUp } = setup({ maxPosts: 10 });
    act(() => last().open());
    await flush();
    act(() => last().message("new_post", post(2, { content: "my Pixel 9 is great" })));
    expect(hook.result.current.posts.map((p) => p.post_id)).toEqual(["p2", "p1"]);

    setCatchUp([post(5, { content: "PIXEL 9 overheats" }), post(4, { content: "nothing to see" })]);
    hook.rerender({ ...options, maxPosts: 10, term: "pixel 9" });
    await flush();
    expect(catchUp).toHaveBeenCalledTimes(2);
    expect(hook.result.current.posts.map((p) => p.post_id)).toEqual(["p5", "p2"]);
    act(() => {
      last().message("new_post", post(6, { content: "battery drains fast" }));
      last().message("new_post", post(7, { content: "the pixel 9 battery drains" }));
    });
    expect(hook.result.current.posts.map((p) => p.post_id)).toEqual(["p7", "p5", "p2"]);

    // Without the term, everything shows again.
    setCatchUp([post(8, { content: "anything" })]);
    hook.rerender({ ...options, maxPosts: 10, term: "" });
    await flush();
    expect(hook.result.current.posts.map((p) => p.post_id)).toEqual(["p8", "p7", "p5", "p2"]);
  });

  it("matches a term as a case-insensitive substring", () => {
    expect(mentions("My Pixel 9 died", "pixel 9")).toBe(true);
    expect(mentions("#Pixel launch", "#pixel")).toBe(true);
    expect(mentions("ask @Support", "@support")).toBe(true);
    expect(mentions("iPhone 16", "pixel")).toBe(false);
    expect(mentions("anything", "")).toBe(true);
    expect(mentions("anything", "  ")).toBe(true);
  });

  it("closes the socket and stops retrying on unmount", () => {
    const { hook } = setup();
    act(() => last().fail());
    hook.unmount();
    act(() => vi.advanceTimersByTime(60_000));
    expect(MockSocket.all).toHaveLength(1);
  });
});
