import { act, renderHook } from "@testing-library/react";
import { ApiError, type Post } from "./api";
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

async function setup(overrides: Partial<LiveFeedOptions> = {}) {
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
    ticket: () => Promise.resolve(null),
    ...overrides,
  };
  const hook = renderHook((props: LiveFeedOptions) => useLiveFeed(props), { initialProps: options });
  // The first attempt waits for its ticket before it opens a socket.
  await flush();
  return { hook, catchUp, options, setCatchUp: (p: Post[]) => (catchUpResult = p) };
}

/** Runs pending promise callbacks (the ticket, the catch-up fetch) inside act. */
const flush = () => act(async () => {});
/** Advances the fake clock, running the promise callbacks of what its timers start. */
const advance = (ms: number) => act(() => vi.advanceTimersByTimeAsync(ms));

beforeEach(() => {
  MockSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("backoffDelay", () => {
  it("doubles from the initial delay up to the cap, with bounded jitter", async () => {
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, 500, 4_000))).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    expect(backoffDelay(1, 500, 4_000, 0.2, () => 0)).toBe(800);
    expect(backoffDelay(1, 500, 4_000, 0.2, () => 1)).toBe(1200);
  });
});

describe("useLiveFeed", () => {
  it("connects, subscribes, catches up and prepends live posts, bounded", async () => {
    const { hook, catchUp } = await setup();
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
    const { hook, catchUp, setCatchUp } = await setup({ onReconnected });
    act(() => last().open());
    await flush();

    act(() => last().fail());
    expect(hook.result.current.status).toBe("reconnecting");
    expect(hook.result.current.retryInMs).toBe(500);
    expect(MockSocket.all).toHaveLength(1);
    await advance(499);
    expect(MockSocket.all).toHaveLength(1);
    await advance(1);
    expect(MockSocket.all).toHaveLength(2);

    act(() => last().fail());
    expect(hook.result.current.retryInMs).toBe(1000);
    await advance(1000);
    expect(MockSocket.all).toHaveLength(3);
    act(() => last().fail());
    expect(hook.result.current.retryInMs).toBe(2000);
    await advance(2000);
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

  it("reads disconnected after repeated failures but keeps retrying at the capped delay", async () => {
    const { hook } = await setup({ attemptsBeforeDisconnected: 3 });
    for (let i = 0; i < 3; i++) {
      act(() => last().fail());
      expect(hook.result.current.status).toBe("connecting");
      await advance(hook.result.current.retryInMs ?? 0);
    }
    act(() => last().fail());
    expect(hook.result.current.status).toBe("disconnected");
    expect(hook.result.current.retryInMs).toBe(4000);
    await advance(4000);
    expect(MockSocket.all).toHaveLength(5);
  });

  it("passes alerts and activity on, and catches up after a lag notice", async () => {
    const onAlert = vi.fn();
    const onActivity = vi.fn();
    const { catchUp } = await setup({ onAlert, onActivity });
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
    const { hook, options, catchUp } = await setup({ maxPosts: 10 });
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
    const { hook, options, catchUp, setCatchUp } = await setup({ maxPosts: 10 });
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

  it("asks for a fresh ticket before every attempt and opens the socket with it", async () => {
    let issued = 0;
    const ticket = vi.fn(() => Promise.resolve(`t${++issued}`));
    const { hook } = await setup({ ticket });
    expect(ticket).toHaveBeenCalledTimes(1);
    expect(MockSocket.all.map((s) => s.url)).toEqual(["ws://test/ws/sentiment?ticket=t1"]);
    act(() => last().open());
    await flush();
    expect(hook.result.current.status).toBe("connected");

    act(() => last().fail());
    expect(ticket).toHaveBeenCalledTimes(1);
    await advance(500);
    expect(ticket).toHaveBeenCalledTimes(2);
    expect(last().url).toBe("ws://test/ws/sentiment?ticket=t2");
  });

  it("does not open a socket before its ticket arrives", async () => {
    let grant: (t: string) => void = () => {};
    const { hook } = await setup({ ticket: () => new Promise<string>((resolve) => (grant = resolve)) });
    expect(MockSocket.all).toHaveLength(0);
    expect(hook.result.current.status).toBe("connecting");
    await act(async () => grant("abc"));
    expect(MockSocket.all.map((s) => s.url)).toEqual(["ws://test/ws/sentiment?ticket=abc"]);
  });

  it("connects without a ticket when none is needed", async () => {
    await setup({ ticket: () => Promise.resolve(null) });
    expect(last().url).toBe("ws://test/ws/sentiment");
  });

  it("retries with backoff while the ticket cannot be had (the gateway is down)", async () => {
    const ticket = vi.fn(() => Promise.reject(new ApiError(0, "NETWORK_ERROR", "the gateway cannot be reached")));
    const { hook } = await setup({ ticket });
    expect(MockSocket.all).toHaveLength(0);
    expect(hook.result.current.status).toBe("connecting");
    expect(hook.result.current.retryInMs).toBe(500);
    await advance(500);
    expect(ticket).toHaveBeenCalledTimes(2);
    expect(hook.result.current.retryInMs).toBe(1000);
  });

  it("stops on a refused ticket until the identity changes", async () => {
    let refuse = true;
    const ticket = vi.fn(() =>
      refuse ? Promise.reject(new ApiError(401, "UNAUTHENTICATED", "an API key with the read scope is needed")) : Promise.resolve("ok"),
    );
    const { hook, options } = await setup({ ticket, identity: "" });
    expect(hook.result.current.status).toBe("unauthorized");
    expect(hook.result.current.authError?.code).toBe("UNAUTHENTICATED");
    expect(hook.result.current.retryInMs).toBeNull();
    await advance(60_000);
    expect(ticket).toHaveBeenCalledTimes(1);
    expect(MockSocket.all).toHaveLength(0);

    // A key is pasted: a new ticket, with it, and the socket opens.
    refuse = false;
    hook.rerender({ ...options, ticket, identity: "pk_0123456789ab" });
    await flush();
    expect(ticket).toHaveBeenCalledTimes(2);
    expect(last().url).toBe("ws://test/ws/sentiment?ticket=ok");
    act(() => last().open());
    await flush();
    expect(hook.result.current.status).toBe("connected");
    expect(hook.result.current.authError).toBeNull();
  });

  it("closes the socket and stops retrying on unmount", async () => {
    const { hook } = await setup();
    act(() => last().fail());
    hook.unmount();
    await advance(60_000);
    expect(MockSocket.all).toHaveLength(1);
  });
});
