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
