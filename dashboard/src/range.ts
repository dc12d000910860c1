// Time ranges of the controls, and the aggregate bucket width that suits each.
import type { BucketWidth, PostFilters } from "./api";

export type RangePreset = "15m" | "1h" | "24h" | "7d" | "custom";

export const RANGE_OPTIONS: readonly { value: RangePreset; label: string }[] = [
  { value: "15m", label: "Last 15 minutes" },
  { value: "1h", label: "Last hour" },
  { value: "24h", label: "Last 24 hours" },
  { value: "7d", label: "Last 7 days" },
  { value: "custom", label: "Custom range" },
];

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const PRESET_MS: Record<Exclude<RangePreset, "custom">, number> = {
  "15m": 15 * MINUTE,
  "1h": HOUR,
  "24h": DAY,
  "7d": 7 * DAY,
};

/** What the user chose in the controls. */
export interface DashboardFilters {
  range: RangePreset;
  /** Custom range bounds, as RFC 3339 times (only with `range: "custom"`). */
  customFrom?: string;
  customTo?: string;
  source: string;
  sentiment: string;
  search: string;
}

export const DEFAULT_FILTERS: DashboardFilters = { range: "1h", source: "", sentiment: "", search: "" };

/** The `from`/`to` of a range at time `now`; presets end "now" (open-ended, so live posts count). */
export function resolveRange(filters: DashboardFilters, now: number = Date.now()): { from?: string; to?: string } {
  if (filters.range === "custom") {
    return { from: filters.customFrom || undefined, to: filters.customTo || undefined };
  }
  return { from: new Date(now - PRESET_MS[filters.range]).toISOString() };
}

/** The API filters of the controls' state at time `now`. */
export function toPostFilters(filters: DashboardFilters, now: number = Date.now()): PostFilters {
  return {
    source: filters.source,
    sentiment: filters.sentiment,
    search: filters.search,
    ...resolveRange(filters, now),
  };
}

/** Length of the range in milliseconds (an open custom range counts up to `now`). */
export function rangeSpan(filters: DashboardFilters, now: number = Date.now()): number {
  const { from, to } = resolveRange(filters, now);
  const start = from ? Date.parse(from) : now - 30 * DAY;
  const end = to ? Date.parse(to) : now;
  return Math.max(0, end - start);
}

/** Minute buckets up to 6 h (≤ 360 points), hour buckets up to 14 days (≤ 336), day buckets beyond. */
export function bucketFor(filters: DashboardFilters, now: number = Date.now()): BucketWidth {
  const span = rangeSpan(filters, now);
  if (span <= 6 * HOUR) return "minute";
  if (span <= 14 * DAY) return "hour";
  return "day";
}
