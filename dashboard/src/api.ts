// Types and fetchers for the gateway's REST API (the `{data, metadata, filters, timestamp}` envelope)
// and its WebSocket messages (`{type, data, timestamp}`). Every request carries the dashboard's
// API key, when it has one (credentials.ts).
import { currentKey, recordAnswer } from "./credentials";

export interface Envelope<T> {
  data: T;
  metadata: Record<string, unknown>;
  filters: Record<string, unknown>;
  timestamp: string;
}

export interface ApiErrorBody {
  error: string;
  code: string;
  timestamp: string;
}

export type Sentiment = "positive" | "neutral" | "negative";
export const SENTIMENTS: readonly Sentiment[] = ["positive", "neutral", "negative"];

export interface Post {
  post_id: string;
  source: string;
  author: string;
  content: string;
  created_at: string | null;
  ingested_at?: string | null;
  sentiment_label: string | null;
  confidence_score: number | null;
  emotion: string | null;
  model_name: string | null;
  analyzed_at?: string | null;
}

export interface LabelCount {
  label: string;
  count: number;
  percentage: number;
}

export interface SourceDistribution {
  source: string;
  total: number;
  sentiment: LabelCount[];
}

export interface Distribution {
  total: number;
  sentiment: LabelCount[];
  emotion: LabelCount[];
  sources?: SourceDistribution[];
}

export type BucketWidth = "minute" | "hour" | "day";

export interface AggregateBucket {
  start: string;
  total: number;
  positive: number;
  neutral: number;
  negative: number;
  average_confidence: number;
}

export interface Alert {
  id: number | string;
  alert_type: string;
  threshold_value: number;
  actual_value: number;
  window_start: string | null;
  window_end: string | null;
  post_count: number;
  triggered_at: string | null;
  details: unknown;
}

/** The filters every post endpoint understands. Empty strings mean "no filter". */
export interface PostFilters {
  source?: string;
  sentiment?: string;
  emotion?: string;
  search?: string;
  author?: string;
  from?: string;
  to?: string;
}

export interface PostPage {
  posts: Post[];
  total: number;
  /** `total` is a lower bound: a text search stops counting past 10,000 matches. */
  totalIsLowerBound: boolean;
  limit: number;
  offset: number;
}

/** One task's answer from `POST /api/analyze`, normalised. */
export interface TaskResult {
  task: string;
  label: string;
  score: number;
  scores: { label: string; score: number }[];
  model: string | null;
  backend: string | null;
  /** Tokenization + queue + inference, in microseconds, when the gateway reports timings. */
  totalUs: number | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export type Fetcher = typeof fetch;

/** The query string (without `?`) of `filters` plus `extra`, skipping empty values. */
export function toQuery(filters: PostFilters, extra: Record<string, string | number | undefined> = {}): string {
  const params = new URLSearchParams();
  const keys: (keyof PostFilters)[] = ["source", "sentiment", "emotion", "search", "author", "from", "to"];
  for (const key of keys) {
    const value = filters[key]?.trim();
    if (value) params.set(key, value);
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value !== undefined && value !== "") params.set(key, String(value));
  }
  return params.toString();
}

function withQuery(path: string, query: string): string {
  return query ? `${path}?${query}` : path;
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `Authorization` for `key`, or nothing without one. */
export function authHeaders(key: string | null = currentKey()): Record<string, string> {
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** The ApiError of a refused response, from the gateway's `{error, code}` envelope when it sent one. */
async function refusal(response: Response): Promise<ApiError> {
  const body = await readBody(response);
  const err = isRecord(body) ? (body as Partial<ApiErrorBody>) : {};
  return new ApiError(
    response.status,
    typeof err.code === "string" ? err.code : "HTTP_ERROR",
    typeof err.error === "string" ? err.error : `${response.status} ${response.statusText}`.trim(),
  );
}

/** `fetcher(path)` with the key, telling the credentials what the gateway thought of it. */
async function send(path: string, init: RequestInit, fetcher: Fetcher, accept: string): Promise<Response> {
  const key = currentKey();
  let response: Response;
  try {
    response = await fetcher(path, { ...init, headers: { accept, ...authHeaders(key), ...(init.headers ?? {}) } });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "NETWORK_ERROR", "the gateway cannot be reached");
  }
  recordAnswer(key, response.status);
  if (!response.ok) throw await refusal(response);
  return response;
}

async function request<T>(path: string, init: RequestInit, fetcher: Fetcher): Promise<Envelope<T>> {
  const response = await send(path, init, fetcher, "application/json");
  const body = await readBody(response);
  if (!isRecord(body) || !("data" in body)) {
    throw new ApiError(response.status, "BAD_RESPONSE", "the gateway sent an unexpected answer");
  }
  return body as unknown as Envelope<T>;
}

export function getJson<T>(path: string, fetcher: Fetcher = fetch, signal?: AbortSignal): Promise<Envelope<T>> {
  return request<T>(path, { signal }, fetcher);
}

export async function fetchPosts(
  filters: PostFilters,
  page: { limit: number; offset?: number },
  fetcher: Fetcher = fetch,
  signal?: AbortSignal,
): Promise<PostPage> {
  const offset = page.offset ?? 0;
  const body = await getJson<Post[]>(
    withQuery("/api/posts", toQuery(filters, { limit: page.limit, offset: offset || undefined })),
    fetcher,
    signal,
  );
  const total = typeof body.metadata.total === "number" ? body.metadata.total : body.data.length;
  const totalIsLowerBound = body.metadata.total_is_lower_bound === true;
  return { posts: body.data, total, totalIsLowerBound, limit: page.limit, offset };
}

export async function fetchDistribution(filters: PostFilters, fetcher: Fetcher = fetch, signal?: AbortSignal) {
  return (await getJson<Distribution>(withQuery("/api/sentiment/distribution", toQuery(filters)), fetcher, signal)).data;
}

export async function fetchAggregate(
  filters: PostFilters,
  bucket: BucketWidth,
  fetcher: Fetcher = fetch,
  signal?: AbortSignal,
): Promise<AggregateBucket[]> {
  const path = withQuery("/api/sentiment/aggregate", toQuery(filters, { bucket }));
  return (await getJson<AggregateBucket[]>(path, fetcher, signal)).data;
}

export async function fetchAlerts(limit: number, fetcher: Fetcher = fetch, signal?: AbortSignal): Promise<Alert[]> {
  return (await getJson<Alert[]>(`/api/alerts?limit=${limit}`, fetcher, signal)).data;
}

/** URL of the CSV export of every post matching `filters`. */
export function exportCsvUrl(filters: PostFilters): string {
  return withQuery("/api/posts/export.csv", toQuery(filters));
}

/**
 * The CSV export at `url`, fetched with the key (a plain link cannot send one), as a Blob to
 * hand to the browser's download.
 */
export async function fetchCsv(url: string, fetcher: Fetcher = fetch, signal?: AbortSignal): Promise<Blob> {
  const response = await send(url, { signal }, fetcher, "text/csv");
  return response.blob();
}

/** Whether an error is the gateway refusing the caller: no usable key (401) or a missing scope (403). */
export function isAuthError(e: unknown): e is ApiError {
  return e instanceof ApiError && (e.status === 401 || e.status === 403);
}

/**
 * A single-use ticket for the live feed (`POST /api/ws-ticket`, with the key: a browser cannot
 * set headers on a WebSocket). Without a key the gateway gives an anonymous ticket where reads
 * are public. Throws ApiError (401 without a usable key).
 */
export async function fetchWsTicket(fetcher: Fetcher = fetch, signal?: AbortSignal): Promise<string> {
  const body = await request<{ ticket?: unknown }>("/api/ws-ticket", { method: "POST", signal }, fetcher);
  const ticket = isRecord(body.data) ? body.data.ticket : undefined;
  if (typeof ticket !== "string" || ticket === "") throw new ApiError(200, "BAD_RESPONSE", "the gateway sent no ticket");
  return ticket;
}

/**
 * The ticket to open the live feed with; null: open it without one. That is the fallback of a
 * dashboard without a key when tickets cannot be issued (a gateway with public reads admits
 * such a socket anyway); with a key, or when the gateway refuses the caller, it throws.
 */
export async function liveFeedTicket(fetcher: Fetcher = fetch, signal?: AbortSignal): Promise<string | null> {
  try {
    return await fetchWsTicket(fetcher, signal);
  } catch (e) {
    const unreachable = e instanceof ApiError && e.status === 0;
    if (currentKey() === null && e instanceof ApiError && !isAuthError(e) && !unreachable) return null;
    throw e;
  }
}

function toNumber(value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  return null;
}

function taskName(raw: unknown, fallback: string): string {
  if (typeof raw === "number") return raw === 2 ? "emotion" : raw === 1 ? "sentiment" : fallback;
  if (typeof raw !== "string" || raw === "") return fallback;
  return raw.replace(/^TASK_/i, "").toLowerCase();
}

function normaliseScores(raw: unknown): { label: string; score: number }[] {
  const out: { label: string; score: number }[] = [];
  if (Array.isArray(raw)) {
    for (const item of raw) {
      if (isRecord(item) && typeof item.label === "string") {
        out.push({ label: item.label, score: toNumber(item.score) ?? 0 });
      }
    }
  } else if (isRecord(raw)) {
    for (const [label, score] of Object.entries(raw)) out.push({ label, score: toNumber(score) ?? 0 });
  }
  return out.sort((a, b) => b.score - a.score);
}

function totalMicros(raw: unknown): number | null {
  if (!isRecord(raw)) return null;
  const parts = [
    raw.tokenization_us ?? raw.tokenizationUs,
    raw.queue_us ?? raw.queueUs,
    raw.inference_us ?? raw.inferenceUs,
  ].map(toNumber);
  const total = raw.total_us ?? raw.totalUs;
  if (toNumber(total) !== null) return toNumber(total);
  return parts.some((p) => p !== null) ? parts.reduce<number>((sum, p) => sum + (p ?? 0), 0) : null;
}

function normaliseTask(raw: unknown, fallbackTask: string): TaskResult | null {
  if (!isRecord(raw)) return null;
  const scores = normaliseScores(raw.scores);
  const label = typeof raw.label === "string" ? raw.label : (scores[0]?.label ?? null);
  if (label === null) return null;
  const score = toNumber(raw.score) ?? scores.find((s) => s.label === label)?.score ?? 0;
  return {
    task: taskName(raw.task, fallbackTask),
    label,
    score,
    scores: scores.length > 0 ? scores : [{ label, score }],
    model: typeof raw.model === "string" && raw.model ? raw.model : null,
    backend: typeof raw.backend === "string" && raw.backend ? raw.backend.replace(/^BACKEND_/i, "").toLowerCase() : null,
    totalUs: totalMicros(raw.timings),
  };
}

/**
 * Reads the `data` of a `POST /api/analyze` answer. The gateway sends an object keyed by task
 * (`{sentiment: {label, score, scores: {label: score}, model, backend, timings}, emotion: ...,
 * truncated}`); a list of task results, `{results: [...]}` or `{analysis: {results: [...]}}`
 * (the inference service's own shape) are read too.
 */
export function normaliseAnalysis(data: unknown): TaskResult[] {
  let list: unknown[] | null = null;
  if (Array.isArray(data)) list = data;
  else if (isRecord(data)) {
    const inner = isRecord(data.analysis) ? data.analysis : data;
    for (const key of ["results", "tasks"]) {
      if (Array.isArray(inner[key])) list = inner[key] as unknown[];
    }
    if (!list) {
      const keyed = isRecord(inner.tasks) ? inner.tasks : inner;
      return Object.entries(keyed)
        .map(([task, value]) => normaliseTask(value, task))
        .filter((t): t is TaskResult => t !== null);
    }
  }
  return (list ?? [])
    .map((item, i) => normaliseTask(item, i === 0 ? "sentiment" : `task ${i + 1}`))
    .filter((t): t is TaskResult => t !== null);
}

/**
 * Analyses one text with every task the inference service has a model for (naming the tasks
 * would make the gateway refuse the request when, say, no emotion model is loaded); throws
 * ApiError on refusal.
 */
export async function analyzeText(text: string, fetcher: Fetcher = fetch, signal?: AbortSignal): Promise<TaskResult[]> {
  const body = await request<unknown>(
    "/api/analyze",
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text }),
      signal,
    },
    fetcher,
  );
  const results = normaliseAnalysis(body.data);
  if (results.length === 0) throw new ApiError(200, "BAD_RESPONSE", "the analysis came back empty");
  return results;
}

// --- insights: what drives a sentiment, and how each entity is talked about --------------------

export type DriverKind = "word" | "phrase" | "hashtag" | "mention" | "entity";

/** A time window of an insights answer (RFC 3339 bounds). */
export interface TimeWindow {
  from: string;
  to: string;
}

/** The `from`/`to` the insights endpoints take; either may be absent (the gateway defaults them). */
export interface TimeRange {
  from?: string;
  to?: string;
}

export interface DriverExample {
  post_id: string;
  source: string;
  author: string;
  content: string;
  created_at: string | null;
  sentiment_label: string | null;
}

export interface Driver {
  /** Display text: entities keep their catalogue name ("Pixel 9"), hashtags "#pixel", mentions "@support". */
  term: string;
  kind: DriverKind;
  /** z of the weighted log-odds ratio (what drivers are ranked by). */
  score: number;
  log_odds: number;
  count: number;
  baseline_count: number;
  share: number;
  baseline_share: number;
  sentiment_split: Record<Sentiment, number>;
  examples: DriverExample[];
}

export interface Drivers {
  window: TimeWindow;
  baseline: TimeWindow;
  sentiment: Sentiment;
  posts: number;
  baseline_posts: number;
  threshold: number;
  terms_tested: number;
  drivers: Driver[];
}

export interface EntitySentiment {
  entity: string;
  kind: "entity" | "hashtag";
  posts: number;
  positive: number;
  neutral: number;
  negative: number;
  baseline_posts: number;
  baseline_positive: number;
  baseline_neutral: number;
  baseline_negative: number;
  /** Relative change in volume, and change in each sentiment's share (fraction points); null without a baseline. */
  change: { posts: number | null; positive: number | null; neutral: number | null; negative: number | null };
}

export interface Entities {
  window: TimeWindow;
  baseline: TimeWindow;
  entities: EntitySentiment[];
}

/** A driver as an alert's `details.drivers` names it. */
export interface AlertDriver {
  term: string;
  kind: string;
  score: number | null;
  count: number | null;
  baseline_count: number | null;
  share: number | null;
  baseline_share: number | null;
}

export interface InsightOptions {
  /** Length of the baseline window (`30m`, `1h`, `24h`, `7d` or seconds); the gateway's default is the window's own length. */
  baseline?: string;
  limit?: number;
}

/** The query string of an insights request: only the range of `range` (other post filters do not apply). */
function insightsQuery(range: TimeRange, extra: Record<string, string | number | undefined>): string {
  return toQuery({ from: range.from, to: range.to }, extra);
}

/** The terms that rose most in `sentiment` posts of the range against the baseline before it. */
export async function fetchDrivers(
  range: TimeRange,
  sentiment: Sentiment = "negative",
  fetcher: Fetcher = fetch,
  signal?: AbortSignal,
  options: InsightOptions = {},
): Promise<Drivers> {
  const query = insightsQuery(range, { sentiment, baseline: options.baseline, limit: options.limit });
  return (await getJson<Drivers>(withQuery("/api/insights/drivers", query), fetcher, signal)).data;
}

/** Volume and sentiment per entity in the range, against the baseline before it. */
export async function fetchEntities(
  range: TimeRange,
  fetcher: Fetcher = fetch,
  signal?: AbortSignal,
  options: InsightOptions = {},
): Promise<Entities> {
  const query = insightsQuery(range, { baseline: options.baseline, limit: options.limit });
  return (await getJson<Entities>(withQuery("/api/insights/entities", query), fetcher, signal)).data;
}

/**
 * The drivers an alert names in `details.drivers`. Older alerts have none, and `details` is
 * whatever the service stored, so anything unexpected is skipped rather than trusted.
 */
export function alertDrivers(alert: Pick<Alert, "details">): AlertDriver[] {
  const details = alert.details;
  if (!isRecord(details) || !Array.isArray(details.drivers)) return [];
  const out: AlertDriver[] = [];
  for (const item of details.drivers) {
    if (!isRecord(item) || typeof item.term !== "string" || item.term.trim() === "") continue;
    out.push({
      term: item.term,
      kind: typeof item.kind === "string" ? item.kind : "word",
      score: toNumber(item.score),
      count: toNumber(item.count),
      baseline_count: toNumber(item.baseline_count),
      share: toNumber(item.share),
      baseline_share: toNumber(item.baseline_share),
    });
  }
  return out;
}

/** A message of the live feed. */
export type LiveMessage =
  | { type: "connected"; data: unknown; timestamp?: string }
  | { type: "new_post"; data: Post; timestamp?: string }
  | { type: "metrics_update"; data: Distribution | null; timestamp?: string }
  | { type: "alert"; data: Alert; timestamp?: string }
  | { type: "lagged"; data: { skipped?: number }; timestamp?: string };

/** Parses one WebSocket text; null for anything that is not a known message. */
export function parseLiveMessage(text: unknown): LiveMessage | null {
  if (typeof text !== "string") return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(value) || typeof value.type !== "string") return null;
  switch (value.type) {
    case "new_post":
      return isRecord(value.data) && typeof value.data.post_id === "string" ? (value as LiveMessage) : null;
    case "alert":
      return isRecord(value.data) ? (value as LiveMessage) : null;
    case "connected":
    case "metrics_update":
    case "lagged":
      return value as LiveMessage;
    default:
      return null;
  }
}

/** WebSocket URL of the live feed, relative to the page. */
export function liveFeedUrl(location: Location = window.location): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/sentiment`;
}

/** `url` with `ticket` in its query (null: unchanged). */
export function withTicket(url: string, ticket: string | null): string {
  if (!ticket) return url;
  return `${url}${url.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(ticket)}`;
}
