import type { Distribution } from "./api";
import { formatCount } from "./format";
import { SENTIMENT_GLYPHS } from "./palette";
import { ErrorMessage, Loading } from "./StatusMessage";

const ORDER = ["positive", "neutral", "negative"] as const;

interface Props {
  distribution: Distribution | null;
  error?: string | null;
}

/** Total and per-sentiment counts with their shares, for the selected range and filters. */
export function MetricsCards({ distribution, error = null }: Props) {
  if (!distribution) {
    return error ? <ErrorMessage what="metrics" message={error} /> : <Loading what="metrics" />;
  }
  const byLabel = new Map(distribution.sentiment.map((c) => [c.label, c]));
  return (
    <section className="cards" aria-label="Sentiment metrics">
      <article className="card total">
        <h2>Total</h2>
        <p className="value" data-testid="metric-total">
          {formatCount(distribution.total)}
        </p>
        <p className="share">posts in range</p>
      </article>
      {ORDER.map((label) => {
        const count = byLabel.get(label);
        return (
          <article className={`card ${label}`} key={label}>
            <h2>
              <span aria-hidden="true">{SENTIMENT_GLYPHS[label]} </span>
              {label}
            </h2>
            <p className="value" data-testid={`metric-${label}`}>
              {formatCount(count?.count ?? 0)}
            </p>
            <p className="share" data-testid={`share-${label}`}>
              {(count?.percentage ?? 0).toFixed(1)}%
            </p>
          </article>
        );
      })}
    </section>
  );
}
