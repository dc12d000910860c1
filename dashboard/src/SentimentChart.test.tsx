import { render, screen } from "@testing-library/react";
import { buckets } from "./fixtures";
import { bucketFor, DEFAULT_FILTERS, type DashboardFilters, toPostFilters } from "./range";
import { SentimentChart } from "./SentimentChart";

const NOW = Date.parse("2026-11-28T21:00:00Z");
const range = (patch: Partial<DashboardFilters>): DashboardFilters => ({ ...DEFAULT_FILTERS, ...patch });

describe("bucket choice", () => {
  it("uses minutes for short ranges, hours up to two weeks, days beyond", () => {
    expect(bucketFor(range({ range: "15m" }), NOW)).toBe("minute");
    expect(bucketFor(range({ range: "1h" }), NOW)).toBe("minute");
    expect(bucketFor(range({ range: "24h" }), NOW)).toBe("hour");
    expect(bucketFor(range({ range: "7d" }), NOW)).toBe("hour");
    expect(
      bucketFor(range({ range: "custom", customFrom: "2026-10-01T00:00:00Z", customTo: "2026-11-01T00:00:00Z" }), NOW),
    ).toBe("day");
    expect(bucketFor(range({ range: "custom", customFrom: "2026-11-28T18:00:00Z" }), NOW)).toBe("minute");
  });

  it("turns presets into an open-ended `from`", () => {
    expect(toPostFilters(range({ range: "15m", source: "reddit" }), NOW)).toEqual({
      source: "reddit",
      sentiment: "",
      search: "",
      from: "2026-11-28T20:45:00.000Z",
    });
  });
});

describe("SentimentChart", () => {
  it("draws a stacked area per sentiment", () => {
    const { container } = render(<SentimentChart buckets={buckets} bucket="minute" fixedWidth={600} />);
    expect(screen.getByTestId("timeline-caption").textContent).toBe("Sentiment over time, posts per minute");
    expect(screen.getByRole("img", { name: "10 posts in 2 minute buckets" })).toBeTruthy();
    const areas = [...container.querySelectorAll(".recharts-area-area")].map((a) => a.getAttribute("fill"));
    expect(areas).toEqual(["#009e73", "#0072b2", "#d55e00"]);
  });

  it("has an empty state", () => {
    render(<SentimentChart buckets={[]} bucket="hour" />);
    expect(screen.getByRole("status").textContent).toContain("No posts in this range");
    expect(screen.getByRole("figure", { name: "Sentiment over time, posts per hour" })).toBeTruthy();
  });

  it("has loading and error states", () => {
    const { rerender } = render(<SentimentChart buckets={null} bucket="hour" />);
    expect(screen.getByRole("status").textContent).toContain("Loading");
    rerender(<SentimentChart buckets={null} bucket="hour" error="502" />);
    expect(screen.getByRole("alert").textContent).toContain("502");
  });
});
