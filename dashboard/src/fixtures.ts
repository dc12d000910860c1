// Sample API data for the component tests, in the gateway's exact shapes.
import type { AggregateBucket, Alert, Distribution, Drivers, Entities, Post } from "./api";

export function post(id: number, patch: Partial<Post> = {}): Post {
  const t = new Date(Date.UTC(2026, 10, 28, 20, 0, id)).toISOString();
  return {
    post_id: `p${id}`,
    source: "twitter",
    author: `user${id}`,
    content: `post number ${id}`,
    created_at: t,
    ingested_at: t,
    sentiment_label: "positive",
    confidence_score: 0.91,
    emotion: "joy",
    model_name: "pulse-minilm-sentiment@1.0.0",
    analyzed_at: t,
    ...patch,
  };
}

export const distribution: Distribution = {
  total: 10,
  sentiment: [
    { label: "positive", count: 5, percentage: 50 },
    { label: "neutral", count: 3, percentage: 30 },
    { label: "negative", count: 2, percentage: 20 },
  ],
  emotion: [
    { label: "joy", count: 6, percentage: 60 },
    { label: "anger", count: 4, percentage: 40 },
  ],
  sources: [],
};

export const buckets: AggregateBucket[] = [
  { start: "2026-11-28T20:00:00.000Z", total: 4, positive: 2, neutral: 1, negative: 1, average_confidence: 0.8 },
  { start: "2026-11-28T20:01:00.000Z", total: 6, positive: 3, neutral: 2, negative: 1, average_confidence: 0.85 },
];

export function alert(id: number, patch: Partial<Alert> = {}): Alert {
  return {
    id,
    alert_type: "negative_spike",
    threshold_value: 0.5,
    actual_value: 0.72,
    window_start: "2026-11-28T20:00:00.000Z",
    window_end: "2026-11-28T20:05:00.000Z",
    post_count: 40,
    triggered_at: "2026-11-28T20:05:00.000Z",
    details: null,
    ...patch,
  };
}

/** A fetch that answers with `body` and `status`, recording the calls. */
export function jsonFetch(body: unknown, status = 200) {
  const calls: { url: string; init?: RequestInit }[] = [];
  const fetcher = (async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), init });
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  }) as typeof fetch;
  return { fetcher, calls };
}

export const drivers: Drivers = {
  window: { from: "2026-11-30T09:00:00Z", to: "2026-11-30T10:00:00Z" },
  baseline: { from: "2026-11-30T08:00:00Z", to: "2026-11-30T09:00:00Z" },
  sentiment: "negative",
  posts: 420,
  baseline_posts: 380,
  threshold: 3.9,
  terms_tested: 310,
  drivers: [
    {
      term: "battery drains",
      kind: "phrase",
      score: 6.2,
      log_odds: 1.4,
      count: 60,
      baseline_count: 2,
      share: 0.143,
      baseline_share: 0.005,
      sentiment_split: { positive: 1, neutral: 0, negative: 60 },
      examples: [
        {
          post_id: "p900",
          source: "reddit",
          author: "annoyed_owner",
          content: "My battery drains in two hours since the update",
          created_at: "2026-11-30T09:30:00Z",
          sentiment_label: "negative",
        },
      ],
    },
    {
      term: "Pixel 9",
      kind: "entity",
      score: 4.8,
      log_odds: 0.9,
      count: 90,
      baseline_count: 30,
      share: 0.214,
      baseline_share: 0.079,
      sentiment_split: { positive: 10, neutral: 20, negative: 90 },
      examples: [],
    },
  ],
};

export const entities: Entities = {
  window: drivers.window,
  baseline: drivers.baseline,
  entities: [
    {
      entity: "Pixel 9",
      kind: "entity",
      posts: 120,
      positive: 10,
      neutral: 20,
      negative: 90,
      baseline_posts: 100,
      baseline_positive: 40,
      baseline_neutral: 30,
      baseline_negative: 30,
      change: { posts: 0.2, positive: -0.317, neutral: -0.133, negative: 0.45 },
    },
    {
      entity: "#launch",
      kind: "hashtag",
      posts: 5,
      positive: 5,
      neutral: 0,
      negative: 0,
      baseline_posts: 0,
      baseline_positive: 0,
      baseline_neutral: 0,
      baseline_negative: 0,
      change: { posts: null, positive: null, neutral: null, negative: null },
    },
  ],
};
