import { type Alert, alertDrivers } from "./api";
import { formatTime } from "./format";
import { Empty, ErrorMessage, Loading } from "./StatusMessage";

export function describeAlert(alert: Alert): string {
  const kind = alert.alert_type.replace(/_/g, " ");
  const actual = Number.isFinite(alert.actual_value) ? alert.actual_value.toFixed(2) : "?";
  const threshold = Number.isFinite(alert.threshold_value) ? alert.threshold_value.toFixed(2) : "?";
  const drivers = alertDrivers(alert).map((d) => d.term);
  // Older alerts carry no drivers: then the alert reads as it always did.
  const driven = drivers.length > 0 ? ` — driven by ${drivers.join(", ")}` : "";
  return `${kind}: ${actual} (threshold ${threshold}) over ${alert.post_count} posts${driven}`;
}

interface Props {
  alerts: Alert[] | null;
  error?: string | null;
  max?: number;
}

/** The most recent alerts, newest first. */
export function AlertsPanel({ alerts, error = null, max = 20 }: Props) {
  let body: React.ReactNode;
  if (!alerts) {
    body = error ? <ErrorMessage what="alerts" message={error} /> : <Loading what="alerts" />;
  } else if (alerts.length === 0) {
    body = <Empty>No alerts. All quiet.</Empty>;
  } else {
    body = (
      <ul className="alerts" aria-label="Recent alerts">
        {alerts.slice(0, max).map((alert) => (
          <li key={alert.id} className="alert-item">
            <time dateTime={alert.triggered_at ?? undefined}>{formatTime(alert.triggered_at, true)}</time>
            <span>{describeAlert(alert)}</span>
          </li>
        ))}
      </ul>
    );
  }
  return (
    <section className="panel alerts-panel" aria-labelledby="alerts-title">
      <h2 id="alerts-title">Alerts</h2>
      {body}
    </section>
  );
}
