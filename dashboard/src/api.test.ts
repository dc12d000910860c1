import { alertDrivers, ApiError, fetchDrivers, fetchEntities } from "./api";
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
