// Types and fetchers for the gateway's REST API (the `{data, metadata, filters, timestamp}` envelope).

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

export interface Post {
  post_id: string;
  source: string;
  author: string;
  content: string;
  created_at: string | null;
  sentiment_label: string | null;
  confidence_score: number | null;
  emotion: string | null;
  model_name: string | null;
}

export interface LabelCount {
  label: string;
  count: number;
  percentage: number;
}

export interface Distribution {
  total: number;
  sentiment: LabelCount[];
  emotion: LabelCount[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function getJson<T>(path: string, fetcher: typeof fetch = fetch): Promise<Envelope<T>> {
  const response = await fetcher(path, { headers: { accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) {
    const err = body as ApiErrorBody;
    throw new ApiError(response.status, err.code ?? "HTTP_ERROR", err.error ?? response.statusText);
  }
  return body as Envelope<T>;
}

/** WebSocket URL of the live feed, relative to the page. */
export function liveFeedUrl(location: Location = window.location): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/sentiment`;
}
