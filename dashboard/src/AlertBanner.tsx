import type { Alert } from "./api";
import { describeAlert } from "./AlertsPanel";

interface Props {
  alert: Alert | null;
  onDismiss: () => void;
}

/** A banner for an alert that just arrived over the live feed. */
export function AlertBanner({ alert, onDismiss }: Props) {
  if (!alert) return null;
  return (
    <div className="alert-banner" role="alert">
      <span aria-hidden="true">⚠ </span>
      <strong>New alert</strong> — {describeAlert(alert)}
      <button type="button" onClick={onDismiss} aria-label="Dismiss alert">
        ×
      </button>
    </div>
  );
}
