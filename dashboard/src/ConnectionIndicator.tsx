import type { ConnectionStatus } from "./useLiveFeed";

const TEXT: Record<ConnectionStatus, string> = {
  connecting: "connecting",
  connected: "connected",
  reconnecting: "reconnecting",
  disconnected: "disconnected",
  unauthorized: "no access",
};

const GLYPH: Record<ConnectionStatus, string> = {
  connecting: "◌",
  connected: "●",
  reconnecting: "◐",
  disconnected: "○",
  unauthorized: "⊘",
};

interface Props {
  status: ConnectionStatus;
  retryInMs: number | null;
  onReconnect: () => void;
}

/** The live feed's connection state, with a "reconnect now" button while it is down. */
export function ConnectionIndicator({ status, retryInMs, onReconnect }: Props) {
  const down = status === "reconnecting" || status === "disconnected";
  return (
    <div className="connection-box">
      <span className={`connection ${status}`} role="status" aria-label="Connection status" data-status={status}>
        <span aria-hidden="true">{GLYPH[status]} </span>
        {TEXT[status]}
        {down && retryInMs !== null && <span className="retry"> (retry in {Math.ceil(retryInMs / 1000)} s)</span>}
      </span>
      {down && (
        <button type="button" className="link" onClick={onReconnect}>
          Reconnect now
        </button>
      )}
    </div>
  );
}
