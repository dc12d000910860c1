import type { Distribution } from "./api";

const ORDER = ["positive", "neutral", "negative"] as const;

/** Total and per-sentiment counts with their shares. */
export function MetricsCards({ distribution }: { distribution: Distribution | null }) {
  if (!distribution) {
    return <p role="status">Loading metrics…</p>;
  }
  const byLabel = new Map(distribution.sentiment.map((c) => [c.label, c]));
  return (
    <section className="cards" aria-label="Sentiment metrics">
      <article className="card">
        <h2>Total</h2>
        <p className="value" data-testid="metric-total">
          {distribution.total}
        </p>
      </article>
      {ORDER.map((label) => {
        const count = byLabel.get(label);
        return (
          <article className={`card ${label}`} key={label}>
            <h2>{label}</h2>
            <p className="value" data-testid={`metric-${label}`}>
              {count?.count ?? 0}
            </p>
            <p className="share">{(count?.percentage ?? 0).toFixed(1)}%</p>
          </article>
        );
      })}
    </section>
  );
}
