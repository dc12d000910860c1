// Small display helpers shared by the components.

export function percent(fraction: number | null | undefined, digits = 0): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return "–";
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function formatTime(iso: string | null | undefined, withDate = false): string {
  if (!iso) return "–";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return "–";
  return withDate
    ? t.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })
    : t.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A change in share (a fraction) as whole percentage points, e.g. 0.45 → 45; null stays null. */
export function sharePoints(change: number | null | undefined): number | null {
  if (change === null || change === undefined || !Number.isFinite(change)) return null;
  // `+ 0` turns -0 into 0, so a tiny fall does not read "-0".
  return Math.round(change * 100) + 0;
}

/** A duration in words, coarse: "15 min", "1 h", "1.5 h", "7 days". */
export function formatSpan(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = minutes / 60;
  if (hours < 48) return Number.isInteger(hours) ? `${hours} h` : `${hours.toFixed(1)} h`;
  const days = Math.round(hours) / 24;
  return Number.isInteger(days) ? `${days} days` : `${days.toFixed(1)} days`;
}
