import { type Entities, type EntitySentiment, SENTIMENTS, type Sentiment } from "./api";
import { isActiveTerm } from "./DriversPanel";
import { formatCount, formatSpan, percent, sharePoints } from "./format";
import { sentimentColor } from "./palette";
import { Empty, ErrorMessage, Loading } from "./StatusMessage";

/** Which way is good news for a column: more positive, less negative; volume and neutral are neither. */
const GOOD: Record<string, "up" | "down" | undefined> = { positive: "up", negative: "down" };

/** An arrow for a change, with what it means in words for screen readers. */
function Change({ value, label, unit, good }: { value: number | null; label: string; unit: "points" | "%"; good?: "up" | "down" }) {
  if (value === null) {
    return (
      <span className="change none" role="img" aria-label={`${label}: no baseline to compare`}>
        new
      </span>
    );
  }
  const amount = Math.abs(value);
  const text = unit === "points" ? `${amount} ${amount === 1 ? "point" : "points"}` : `${amount}%`;
  if (value === 0) {
    return (
      <span className="change flat" role="img" aria-label={`${label} unchanged`}>
        ±0
      </span>
    );
  }
  const up = value > 0;
  const tone = good === undefined ? "" : (up ? "up" : "down") === good ? " good" : " bad";
  return (
    <span className={`change ${up ? "up" : "down"}${tone}`} role="img" aria-label={`${label} ${up ? "up" : "down"} ${text}`}>
      {up ? "▲" : "▼"} {unit === "points" ? amount : `${amount}%`}
    </span>
  );
}

/** Relative change in volume, as a whole percentage. */
function volumeChange(change: number | null): number | null {
  if (change === null || !Number.isFinite(change)) return null;
  return Math.round(change * 100) + 0;
}

function share(row: EntitySentiment, s: Sentiment): number {
  return row.posts > 0 ? row[s] / row.posts : 0;
}

function Row({ row, active, onTerm }: { row: EntitySentiment; active: boolean; onTerm: (term: string) => void }) {
  return (
    <tr data-testid="entity-row" className={active ? "active" : undefined}>
      <th scope="row">
        <button
          type="button"
          className="linkish"
          aria-pressed={active}
          aria-label={active ? `Stop filtering posts by “${row.entity}”` : `Filter posts by “${row.entity}”`}
          onClick={() => onTerm(active ? "" : row.entity)}
        >
          {row.entity}
        </button>
        {row.kind === "hashtag" && <span className="kind hashtag">hashtag</span>}
      </th>
      <td className="num">
        {formatCount(row.posts)} <Change value={volumeChange(row.change.posts)} label="volume" unit="%" />
      </td>
      <td className="mix-cell">
        {/* The shares as a bar; the cells after it say the same in numbers. */}
        <span className="mix" aria-hidden="true">
          {SENTIMENTS.map((s) => (
            <span key={s} style={{ width: `${share(row, s) * 100}%`, background: sentimentColor(s) }} />
          ))}
        </span>
      </td>
      {SENTIMENTS.map((s) => (
        <td key={s} className="num">
          {percent(share(row, s))} <Change value={sharePoints(row.change[s])} label={`${s} share`} unit="points" good={GOOD[s]} />
        </td>
      ))}
    </tr>
  );
}

interface Props {
  entities: Entities | null;
  error?: string | null;
  loading?: boolean;
  /** The term the posts are filtered by ("" for none). */
  activeTerm?: string;
  /** Filters the posts by an entity's name; "" removes the filter. */
  onTerm?: (term: string) => void;
}

/** Volume and sentiment shares per product (and hashtag), with their change against the period before. */
export function EntitiesPanel({ entities, error = null, loading = false, activeTerm = "", onTerm = () => {} }: Props) {
  let body: React.ReactNode;
  if (!entities) {
    body = error ? <ErrorMessage what="the entities" message={error} /> : <Loading what="the entities" />;
  } else if (entities.entities.length === 0) {
    body = <Empty>No products or hashtags mentioned in this range yet.</Empty>;
  } else {
    const span = Date.parse(entities.baseline.to) - Date.parse(entities.baseline.from);
    body = (
      <>
        <p className="meta">
          Changes against the {Number.isFinite(span) ? formatSpan(span) : "period"} before: volume in %, shares in points.
        </p>
        <div className="table-scroll entities-scroll" tabIndex={0} role="region" aria-label="Sentiment by entity, scrollable">
          <table aria-label="Sentiment by entity" aria-busy={loading}>
            <thead>
              <tr>
                <th scope="col">Entity</th>
                <th scope="col" className="num">
                  Posts
                </th>
                <th scope="col">
                  <span className="sr-only">Sentiment mix</span>
                </th>
                {SENTIMENTS.map((s) => (
                  <th key={s} scope="col" className="num">
                    {s[0].toUpperCase() + s.slice(1)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {entities.entities.map((row) => (
                <Row key={`${row.kind}:${row.entity}`} row={row} active={isActiveTerm(row.entity, activeTerm)} onTerm={onTerm} />
              ))}
            </tbody>
          </table>
        </div>
      </>
    );
  }
  return (
    <section className="panel entities-panel" aria-labelledby="entities-title">
      <h2 id="entities-title">Sentiment by product</h2>
      {entities && error && <ErrorMessage what="the entities" message={error} />}
      {body}
    </section>
  );
}
