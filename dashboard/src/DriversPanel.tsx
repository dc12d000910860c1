import { useId } from "react";
import type { Driver, Drivers, Sentiment } from "./api";
import { formatCount, formatSpan, percent, sharePoints } from "./format";
import { SENTIMENT_GLYPHS } from "./palette";
import { Empty, ErrorMessage, Loading } from "./StatusMessage";

/** The sentiments the panel explains: what people complain about, and what they praise. */
const CHOICES: readonly Sentiment[] = ["negative", "positive"];

const KIND_LABELS: Record<string, string> = {
  word: "word",
  phrase: "phrase",
  hashtag: "hashtag",
  mention: "mention",
  entity: "product",
};

/** Whether the posts filter is this term (the search box is case-insensitive, so is this). */
export function isActiveTerm(term: string, active: string | undefined): boolean {
  return !!active && active.trim().toLowerCase() === term.trim().toLowerCase();
}

/** The term the posts are filtered by, and a button that removes it. */
export function TermFilter({ term, onClear }: { term: string; onClear: () => void }) {
  if (!term.trim()) return null;
  return (
    <p className="term-filter">
      <span>
        Showing posts mentioning <mark>{term}</mark>
      </span>
      <button type="button" className="small" onClick={onClear} aria-label={`Clear the filter by “${term}”`}>
        Clear
      </button>
    </p>
  );
}

function shareChange(driver: Driver, sentiment: Sentiment): string {
  const points = sharePoints(driver.share - driver.baseline_share);
  const now = `${percent(driver.share, 1)} of ${sentiment} posts`;
  if (points === null) return now;
  if (points === 0) return `${now}, about as before (${percent(driver.baseline_share, 1)})`;
  return `${now}, ${points > 0 ? "up" : "down"} ${Math.abs(points)} points from ${percent(driver.baseline_share, 1)}`;
}

function DriverItem({
  driver,
  sentiment,
  active,
  onTerm,
}: {
  driver: Driver;
  sentiment: Sentiment;
  active: boolean;
  onTerm: (term: string) => void;
}) {
  const id = useId();
  const example = driver.examples[0];
  // Bars of the share now and before, on a scale where the larger fills the track.
  const scale = Math.max(driver.share, driver.baseline_share) || 1;
  return (
    <li className={`driver${active ? " active" : ""}`} data-testid="driver">
      <button
        type="button"
        className="driver-button"
        aria-pressed={active}
        aria-label={active ? `Stop filtering posts by “${driver.term}”` : `Filter posts by “${driver.term}”`}
        aria-describedby={`${id}-stats`}
        onClick={() => onTerm(active ? "" : driver.term)}
      >
        <span className="driver-head">
          <span className="driver-term">{driver.term}</span>
          <span className={`kind ${driver.kind}`}>{KIND_LABELS[driver.kind] ?? driver.kind}</span>
        </span>
        <span id={`${id}-stats`} className="driver-stats">
          <span className="driver-counts">
            {formatCount(driver.count)} posts now · {formatCount(driver.baseline_count)} before
          </span>
          <span className="driver-share">{shareChange(driver, sentiment)}</span>
        </span>
        <span className="share-bars" aria-hidden="true">
          <span className={`bar now ${sentiment}`} style={{ width: `${(driver.share / scale) * 100}%` }} />
          <span className="bar before" style={{ width: `${(driver.baseline_share / scale) * 100}%` }} />
        </span>
      </button>
      {example && (
        <blockquote className="driver-example">
          <p>{example.content}</p>
          <footer>
            — {example.author}, {example.source}
          </footer>
        </blockquote>
      )}
    </li>
  );
}

interface Props {
  drivers: Drivers | null;
  error?: string | null;
  loading?: boolean;
  sentiment: Sentiment;
  onSentiment: (sentiment: Sentiment) => void;
  /** The term the posts are filtered by ("" for none). */
  activeTerm: string;
  /** Filters the posts by a term; "" removes the filter. */
  onTerm: (term: string) => void;
}

/** The terms that rose most in negative (or positive) posts against the period before. */
export function DriversPanel({ drivers, error = null, loading = false, sentiment, onSentiment, activeTerm, onTerm }: Props) {
  let body: React.ReactNode;
  // A reload for another sentiment keeps the last answer; do not show it under the new choice.
  const current = drivers && drivers.sentiment === sentiment ? drivers : null;
  if (!current) {
    body = error ? <ErrorMessage what="the drivers" message={error} /> : <Loading what="the drivers" />;
  } else if (current.posts === 0) {
    body = <Empty>No {sentiment} posts in this range.</Empty>;
  } else if (current.drivers.length === 0) {
    body = (
      <Empty>
        Nothing stands out against the baseline: no term rose significantly in {sentiment} posts.
      </Empty>
    );
  } else {
    body = (
      <ol className="drivers" aria-label={`Drivers of ${sentiment} posts`} aria-busy={loading}>
        {current.drivers.map((d) => (
          <DriverItem
            key={`${d.kind}:${d.term}`}
            driver={d}
            sentiment={sentiment}
            active={isActiveTerm(d.term, activeTerm)}
            onTerm={onTerm}
          />
        ))}
      </ol>
    );
  }
  const span = current ? Date.parse(current.baseline.to) - Date.parse(current.baseline.from) : NaN;
  return (
    <section className="panel drivers-panel" aria-labelledby="drivers-title">
      <div className="panel-head">
        <h2 id="drivers-title">What’s driving it</h2>
        <div className="toggle" role="group" aria-label="Sentiment to explain">
          {CHOICES.map((s) => (
            <button key={s} type="button" aria-pressed={s === sentiment} onClick={() => onSentiment(s)}>
              <span aria-hidden="true">{SENTIMENT_GLYPHS[s]} </span>
              {s}
            </button>
          ))}
        </div>
      </div>
      {current && error && <ErrorMessage what="the drivers" message={error} />}
      {current && current.posts > 0 && (
        <p className="meta" data-testid="drivers-summary">
          {formatCount(current.posts)} {sentiment} posts in this range against {formatCount(current.baseline_posts)} in the{" "}
          {Number.isFinite(span) ? formatSpan(span) : "period"} before · {formatCount(current.terms_tested)} terms tested
        </p>
      )}
      <TermFilter term={activeTerm} onClear={() => onTerm("")} />
      {body}
    </section>
  );
}
