import { alertDrivers, analyzeText, ApiError, fetchCsv, fetchDrivers, fetchEntities, fetchPosts, fetchWsTicket, liveFeedTicket, withTicket } from "./api";
import { credentials, setKey } from "./credentials";
import { alert, drivers, entities, jsonFetch } from "./fixtures";
import { DEFAULT_FILTERS, resolveRange } from "./range";

const NOW = Date.parse("2026-11-30T10:00:00Z");
const envelope = (data: unknown) => ({ data, metadata: { returned: 2 }, filters: {}, timestamp: "2026-11-30T10:00:00Z" });

describe("fetchDrivers", () => {
  it("asks for the controls' range and the chosen sentiment, and returns the data", async () => {
    const { fetcher, calls } = jsonFetch(envelope(drivers));
    const data = await fetchDrivers(resolveRange(DEFAULT_FILTERS, NOW), "negative", fetcher);
    expect(calls[0].url).toBe("/api/insights/drivers?from=2026-11-30T09%3A00%3A00.000Z&sentiment=negative");
    expect(data.drivers[0].term).toBe("battery drains");
  });

  it("passes a custom range's both ends, a baseline and a limit", async () => {
    const { fetcher, calls } = jsonFetch(envelope(drivers));
    const range = resolveRange({ ...DEFAULT_FILTERS, range: "custom", customFrom: "2026-11-30T09:00:00Z", customTo: "2026-11-30T10:00:00Z" });
    await fetchDrivers(range, "positive", fetcher, undefined, { baseline: "24h", limit: 5 });
    expect(calls[0].url).toBe(
      "/api/insights/drivers?from=2026-11-30T09%3A00%3A00Z&to=2026-11-30T10%3A00%3A00Z&sentiment=positive&baseline=24h&limit=5",
    );
  });

  it("ignores the post filters the endpoint does not take", async () => {
    const { fetcher, calls } = jsonFetch(envelope(drivers));
    await fetchDrivers({ from: "2026-11-30T09:00:00Z", source: "reddit", search: "x" } as never, "negative", fetcher);
    expect(calls[0].url).toBe("/api/insights/drivers?from=2026-11-30T09%3A00%3A00Z&sentiment=negative");
  });

  it("throws the gateway's error", async () => {
    const { fetcher } = jsonFetch({ error: "baseline must be a duration", code: "INVALID_PARAMETER", timestamp: "t" }, 400);
    const failure = fetchDrivers({}, "negative", fetcher);
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    await expect(failure).rejects.toMatchObject({ status: 400, code: "INVALID_PARAMETER", message: "baseline must be a duration" });
  });
});

describe("fetchEntities", () => {
  it("asks for the range only, and returns the data", async () => {
    const { fetcher, calls } = jsonFetch(envelope(entities));
    const data = await fetchEntities(resolveRange({ ...DEFAULT_FILTERS, range: "24h" }, NOW), fetcher);
    expect(calls[0].url).toBe("/api/insights/entities?from=2026-11-29T10%3A00%3A00.000Z");
    expect(data.entities.map((e) => e.entity)).toEqual(["Pixel 9", "#launch"]);
  });

  it("passes a baseline and a limit, and nothing for an empty range", async () => {
    const { fetcher, calls } = jsonFetch(envelope(entities));
    await fetchEntities({}, fetcher, undefined, { baseline: "7d", limit: 100 });
    expect(calls[0].url).toBe("/api/insights/entities?baseline=7d&limit=100");
  });
});

describe("alertDrivers", () => {
  it("reads the drivers of an alert's details", () => {
    const a = alert(1, {
      details: {
        drivers: [
          { term: "Pixel 9", kind: "entity", score: 5.1, count: 40, baseline_count: 3, share: 0.2, baseline_share: 0.02 },
          { term: "battery drains", kind: "phrase", score: "4.2", count: 12 },
        ],
      },
    });
    expect(alertDrivers(a)).toEqual([
      { term: "Pixel 9", kind: "entity", score: 5.1, count: 40, baseline_count: 3, share: 0.2, baseline_share: 0.02 },
      { term: "battery drains", kind: "phrase", score: 4.2, count: 12, baseline_count: null, share: null, baseline_share: null },
    ]);
  });

  it("is empty when details or their drivers are missing or malformed", () => {
    for (const details of [null, undefined, "text", 3, [], {}, { drivers: null }, { drivers: "Pixel 9" }, { drivers: [] }, { window: 5 }]) {
      expect(alertDrivers(alert(1, { details }))).toEqual([]);
    }
  });

  it("skips entries without a term", () => {
    const details = { drivers: [null, 7, { kind: "word" }, { term: "" }, { term: "overheating" }] };
    expect(alertDrivers(alert(1, { details })).map((d) => d.term)).toEqual(["overheating"]);
  });
});

const KEY = `pk_0123456789ab_${"a".repeat(64)}`;
const headersOf = (init?: RequestInit) => new Headers(init?.headers);

describe("the API key", () => {
  it("is sent as a bearer token on every request once set", async () => {
    setKey(KEY);
    const { fetcher, calls } = jsonFetch(envelope([]));
    await fetchPosts({}, { limit: 5 }, fetcher);
    const analyze = jsonFetch(envelope({ sentiment: { label: "positive", score: 0.9 } }));
    await analyzeText("hello", analyze.fetcher);
    await fetchCsv("/api/posts/export.csv", fetcher);
    expect(headersOf(calls[0].init).get("authorization")).toBe(`Bearer ${KEY}`);
    expect(headersOf(analyze.calls[0].init).get("authorization")).toBe(`Bearer ${KEY}`);
    expect(headersOf(analyze.calls[0].init).get("content-type")).toBe("application/json");
    expect(calls[1].url).toBe("/api/posts/export.csv");
    expect(headersOf(calls[1].init).get("authorization")).toBe(`Bearer ${KEY}`);
  });

  it("is not sent without a key (public reads)", async () => {
    const { fetcher, calls } = jsonFetch(envelope([]));
    await fetchPosts({}, { limit: 5 }, fetcher);
    expect(headersOf(calls[0].init).has("authorization")).toBe(false);
  });

  it("is marked rejected when the gateway answers 401, and the error says so", async () => {
    setKey(KEY);
    const { fetcher } = jsonFetch({ error: "unknown key", code: "UNAUTHENTICATED", timestamp: "t" }, 401);
    await expect(fetchPosts({}, { limit: 5 }, fetcher)).rejects.toMatchObject({ status: 401, code: "UNAUTHENTICATED" });
    expect(credentials().rejected).toBe(true);
  });

  it("is not marked rejected by a missing scope (403)", async () => {
    setKey(KEY);
    const { fetcher } = jsonFetch({ error: "key pk_0123456789ab lacks the analyze scope", code: "INSUFFICIENT_SCOPE", timestamp: "t" }, 403);
    await expect(analyzeText("hi", fetcher)).rejects.toMatchObject({ status: 403, code: "INSUFFICIENT_SCOPE" });
    expect(credentials().rejected).toBe(false);
  });
});

describe("live feed tickets", () => {
  const ticketAnswer = envelope({ ticket: "0123456789abcdef0123456789abcdef", expires_in_seconds: 30 });

  it("are asked for with POST /api/ws-ticket and the key", async () => {
    setKey(KEY);
    const { fetcher, calls } = jsonFetch(ticketAnswer);
    expect(await fetchWsTicket(fetcher)).toBe("0123456789abcdef0123456789abcdef");
    expect(calls[0].url).toBe("/api/ws-ticket");
    expect(calls[0].init?.method).toBe("POST");
    expect(headersOf(calls[0].init).get("authorization")).toBe(`Bearer ${KEY}`);
  });

  it("go into the socket's query", () => {
    expect(withTicket("ws://h/ws/sentiment", "abc")).toBe("ws://h/ws/sentiment?ticket=abc");
    expect(withTicket("ws://h/ws/sentiment", null)).toBe("ws://h/ws/sentiment");
  });

  it("without a key, fall back to no ticket when tickets are unavailable, but not when refused", async () => {
    const unavailable = jsonFetch({ error: "retry shortly", code: "TICKETS_UNAVAILABLE", timestamp: "t" }, 503);
    expect(await liveFeedTicket(unavailable.fetcher)).toBeNull();
    const refused = jsonFetch({ error: "a key is needed", code: "UNAUTHENTICATED", timestamp: "t" }, 401);
    await expect(liveFeedTicket(refused.fetcher)).rejects.toMatchObject({ status: 401 });
  });

  it("with a key, are required", async () => {
    setKey(KEY);
    const unavailable = jsonFetch({ error: "retry shortly", code: "TICKETS_UNAVAILABLE", timestamp: "t" }, 503);
    await expect(liveFeedTicket(unavailable.fetcher)).rejects.toMatchObject({ status: 503 });
  });
});
