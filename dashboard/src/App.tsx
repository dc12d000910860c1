import { useCallback, useEffect, useRef, useState } from "react";
import {
  type Alert,
  exportCsvUrl,
  fetchAggregate,
  fetchAlerts,
  fetchDistribution,
  fetchDrivers,
  fetchEntities,
  fetchPosts,
  type Sentiment,
} from "./api";
import { AlertBanner } from "./AlertBanner";
import { AlertsPanel } from "./AlertsPanel";
import { AnalyzeBox } from "./AnalyzeBox";
import { ConnectionIndicator } from "./ConnectionIndicator";
import { Controls } from "./Controls";
import { useCredentials } from "./credentials";
import { DistributionChart } from "./DistributionChart";
import { DriversPanel, TermFilter } from "./DriversPanel";
import { EntitiesPanel } from "./EntitiesPanel";
import { AuthPrompt, KeyControl } from "./KeyControl";
import { LiveFeed } from "./LiveFeed";
import { MetricsCards } from "./MetricsCards";
import { PostsTable } from "./PostsTable";
import { bucketFor, DEFAULT_FILTERS, type DashboardFilters, resolveRange, toPostFilters } from "./range";
import { SentimentChart } from "./SentimentChart";
import { useLiveFeed } from "./useLiveFeed";
import { useResource } from "./useResource";

/** Posts kept in the live feed. */
const FEED_LENGTH = 50;
/** Rows per page of the posts table. */
const PAGE_SIZE = 20;
/** Alerts kept (fetched and live together). */
const ALERTS_KEPT = 20;
/** Live activity refreshes the aggregates at most this often. */
const ACTIVITY_REFRESH_MS = 5_000;
/** Preset ranges slide forward this often even without activity. */
const CLOCK_REFRESH_MS = 30_000;

export function App() {
  const [filters, setFilters] = useState<DashboardFilters>(DEFAULT_FILTERS);
  const [offset, setOffset] = useState(0);
  const [tick, setTick] = useState(0);
  const [liveAlerts, setLiveAlerts] = useState<Alert[]>([]);
  const [banner, setBanner] = useState<Alert | null>(null);
  const [driversSentiment, setDriversSentiment] = useState<Sentiment>("negative");
  const credentials = useCredentials();

  const refresh = useCallback(() => setTick((t) => t + 1), []);
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const onActivity = useCallback(() => {
    if (pending.current !== undefined) return;
    pending.current = setTimeout(() => {
      pending.current = undefined;
      refresh();
    }, ACTIVITY_REFRESH_MS);
  }, [refresh]);
  useEffect(() => {
    const timer = setInterval(refresh, CLOCK_REFRESH_MS);
    return () => {
      clearInterval(timer);
      clearTimeout(pending.current);
    };
  }, [refresh]);

  const onAlert = useCallback((alert: Alert) => {
    setLiveAlerts((current) => [alert, ...current.filter((a) => a.id !== alert.id)].slice(0, ALERTS_KEPT));
    setBanner(alert);
  }, []);

  const live = useLiveFeed({
    catchUp: () =>
      fetchPosts({ source: filters.source, sentiment: filters.sentiment, search: filters.search }, { limit: FEED_LENGTH }).then(
        (p) => p.posts,
      ),
    maxPosts: FEED_LENGTH,
    source: filters.source,
    sentiment: filters.sentiment,
    term: filters.search,
    onAlert,
    onActivity,
    onReconnected: refresh,
    // A new key (or none) reconnects with a ticket of its own.
    identity: credentials.key ?? "",
  });

  // Reads came back (reads made public, or the key accepted again): the feed may try again.
  const { status: liveStatus, authError: liveRefusal, reconnectNow } = live;
  useEffect(() => {
    if (!credentials.rejected && liveStatus === "unauthorized" && liveRefusal?.status === 401) reconnectNow();
  }, [credentials.rejected, liveStatus, liveRefusal, reconnectNow]);

  // Everything is fetched again with a new key.
  const key = `${JSON.stringify(filters)}#${tick}#${credentials.key ?? ""}`;
  const bucket = bucketFor(filters);
  const distribution = useResource((signal) => fetchDistribution(toPostFilters(filters), fetch, signal), key);
  const aggregate = useResource((signal) => fetchAggregate(toPostFilters(filters), bucket, fetch, signal), `${key}#${bucket}`);
  const posts = useResource(
    (signal) => fetchPosts(toPostFilters(filters), { limit: PAGE_SIZE, offset }, fetch, signal),
    `${key}#${offset}`,
  );
  const alerts = useResource((signal) => fetchAlerts(ALERTS_KEPT, fetch, signal), `alerts#${tick}#${credentials.key ?? ""}`);
  // Insights take only the range (the baseline is the same length before it, the gateway's default).
  const drivers = useResource(
    (signal) => fetchDrivers(resolveRange(filters), driversSentiment, fetch, signal),
    `${key}#${driversSentiment}`,
  );
  const entities = useResource((signal) => fetchEntities(resolveRange(filters), fetch, signal), key);

  const shownAlerts = alerts.data
    ? [...liveAlerts, ...alerts.data.filter((a) => !liveAlerts.some((l) => l.id === a.id))].slice(0, ALERTS_KEPT)
    : liveAlerts.length > 0
      ? liveAlerts
      : null;

  const changeFilters = (next: DashboardFilters) => {
    setFilters(next);
    setOffset(0);
  };
  // A driver or entity filters the posts table and the live feed through the search filter.
  const filterByTerm = (term: string) => changeFilters({ ...filters, search: term });
  // Turned away (no usable key, or one that cannot read): one clear message instead of a
  // dashboard of failed panels.
  const refused = credentials.rejected || live.status === "unauthorized";

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <h1>
          Pulse <span className="subtitle">live sentiment</span>
        </h1>
        <div className="header-controls">
          <KeyControl />
          <ConnectionIndicator status={live.status} retryInMs={live.retryInMs} onReconnect={live.reconnectNow} />
        </div>
      </header>
      <AlertBanner alert={banner} onDismiss={() => setBanner(null)} />
      {refused ? (
        <main id="main">
          <AuthPrompt refusal={credentials.rejected ? null : live.authError} />
        </main>
      ) : (
        <main id="main">
          <Controls value={filters} onChange={changeFilters} />
          <MetricsCards distribution={distribution.data} error={distribution.error} />
          <div className="grid two">
            <section className="panel" aria-labelledby="timeline-title">
              <h2 id="timeline-title">Over time</h2>
              <SentimentChart buckets={aggregate.data} bucket={bucket} error={aggregate.error} />
            </section>
            <section className="panel feed-panel" aria-labelledby="feed-title">
              <h2 id="feed-title">Live feed</h2>
              {live.catchUpError && (
                <p className="state error" role="alert">
                  Cannot catch up on recent posts: {live.catchUpError}
                </p>
              )}
              <TermFilter term={filters.search} onClear={() => filterByTerm("")} />
              <LiveFeed posts={live.posts} max={FEED_LENGTH} term={filters.search} />
            </section>
          </div>
          <div className="grid halves">
            <DriversPanel
              drivers={drivers.data}
              error={drivers.error}
              loading={drivers.loading}
              sentiment={driversSentiment}
              onSentiment={setDriversSentiment}
              activeTerm={filters.search}
              onTerm={filterByTerm}
            />
            <EntitiesPanel
              entities={entities.data}
              error={entities.error}
              loading={entities.loading}
              activeTerm={filters.search}
              onTerm={filterByTerm}
            />
          </div>
          <div className="grid two">
            <section className="panel" aria-labelledby="distribution-title">
              <h2 id="distribution-title">Distribution</h2>
              <DistributionChart distribution={distribution.data} error={distribution.error} />
            </section>
            <AlertsPanel alerts={shownAlerts} error={alerts.error} max={ALERTS_KEPT} />
          </div>
          <PostsTable
            page={posts.data}
            loading={posts.loading}
            error={posts.error}
            onPage={setOffset}
            exportHref={exportCsvUrl(toPostFilters(filters))}
          />
          <AnalyzeBox />
        </main>
      )}
    </>
  );
}
