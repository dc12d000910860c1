import { useEffect, useId, useRef, useState } from "react";
import { SENTIMENTS } from "./api";
import { type DashboardFilters, RANGE_OPTIONS, type RangePreset } from "./range";

export const SOURCES = ["twitter", "reddit", "facebook", "instagram"] as const;

/** `datetime-local` value (local time) of an RFC 3339 time, and back. */
function toLocalInput(iso: string | undefined): string {
  if (!iso) return "";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return "";
  return new Date(t.getTime() - t.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

function fromLocalInput(value: string): string | undefined {
  if (!value) return undefined;
  const t = new Date(value);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

interface Props {
  value: DashboardFilters;
  onChange: (next: DashboardFilters) => void;
  /** Milliseconds the search box waits after the last keystroke. */
  searchDelayMs?: number;
  sources?: readonly string[];
}

/** Time range, source, sentiment and text search. */
export function Controls({ value, onChange, searchDelayMs = 350, sources = SOURCES }: Props) {
  const id = useId();
  const [search, setSearch] = useState(value.search);
  const latest = useRef({ value, onChange });
  latest.current = { value, onChange };

  // The search last committed here, to tell a search set elsewhere (a driver's term) apart.
  const committed = useRef(value.search);

  // Commit the search text once typing pauses.
  useEffect(() => {
    if (search === latest.current.value.search) return;
    const timer = setTimeout(() => {
      committed.current = search;
      latest.current.onChange({ ...latest.current.value, search });
    }, searchDelayMs);
    return () => clearTimeout(timer);
  }, [search, searchDelayMs]);

  // A search set from outside shows in the box (without undoing what is being typed).
  useEffect(() => {
    if (value.search === committed.current) return;
    committed.current = value.search;
    setSearch(value.search);
  }, [value.search]);

  const set = (patch: Partial<DashboardFilters>) => onChange({ ...value, ...patch });
  const customInvalid =
    value.range === "custom" &&
    !!value.customFrom &&
    !!value.customTo &&
    Date.parse(value.customFrom) >= Date.parse(value.customTo);

  return (
    <form className="controls" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
      <div className="field">
        <label htmlFor={`${id}-range`}>Time range</label>
        <select
          id={`${id}-range`}
          value={value.range}
          onChange={(e) => {
            const range = e.target.value as RangePreset;
            if (range === "custom" && !value.customFrom) {
              const now = Date.now();
              set({ range, customFrom: new Date(now - 3_600_000).toISOString(), customTo: undefined });
            } else set({ range });
          }}
        >
          {RANGE_OPTIONS.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      </div>
      {value.range === "custom" && (
        <>
          <div className="field">
            <label htmlFor={`${id}-from`}>From</label>
            <input
              id={`${id}-from`}
              type="datetime-local"
              value={toLocalInput(value.customFrom)}
              onChange={(e) => set({ customFrom: fromLocalInput(e.target.value) })}
            />
          </div>
          <div className="field">
            <label htmlFor={`${id}-to`}>To</label>
            <input
              id={`${id}-to`}
              type="datetime-local"
              value={toLocalInput(value.customTo)}
              aria-invalid={customInvalid}
              aria-describedby={customInvalid ? `${id}-range-error` : undefined}
              onChange={(e) => set({ customTo: fromLocalInput(e.target.value) })}
            />
          </div>
        </>
      )}
      <div className="field">
        <label htmlFor={`${id}-source`}>Source</label>
        <select id={`${id}-source`} value={value.source} onChange={(e) => set({ source: e.target.value })}>
          <option value="">All sources</option>
          {sources.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor={`${id}-sentiment`}>Sentiment</label>
        <select id={`${id}-sentiment`} value={value.sentiment} onChange={(e) => set({ sentiment: e.target.value })}>
          <option value="">All sentiments</option>
          {SENTIMENTS.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div className="field grow">
        <label htmlFor={`${id}-search`}>Search posts</label>
        <input
          id={`${id}-search`}
          type="search"
          placeholder="words in the post"
          maxLength={200}
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
      </div>
      {customInvalid && (
        <p id={`${id}-range-error`} className="state error" role="alert">
          “From” must be before “To”.
        </p>
      )}
    </form>
  );
}
