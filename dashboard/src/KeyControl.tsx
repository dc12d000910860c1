import { useId, useState } from "react";
import type { ApiError } from "./api";
import { isKey, keyId, setKey, useCredentials } from "./credentials";

/** A field to paste a key into; a key that does not look like one is refused before any request. */
export function KeyForm({ onDone, autoFocus = false }: { onDone?: () => void; autoFocus?: boolean }) {
  const id = useId();
  const [text, setText] = useState("");
  const [invalid, setInvalid] = useState(false);
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const key = text.trim();
    if (!isKey(key)) {
      setInvalid(true);
      return;
    }
    setKey(key);
    setText("");
    setInvalid(false);
    onDone?.();
  };
  return (
    <form className="key-form" onSubmit={submit} aria-label="API key">
      <label htmlFor={`${id}-key`}>API key</label>
      <input
        id={`${id}-key`}
        type="password"
        autoComplete="off"
        spellCheck={false}
        placeholder="pk_…"
        value={text}
        autoFocus={autoFocus}
        aria-invalid={invalid}
        aria-describedby={invalid ? `${id}-key-error` : undefined}
        onChange={(e) => {
          setText(e.target.value);
          setInvalid(false);
        }}
      />
      <button type="submit" disabled={text.trim() === ""}>
        Use key
      </button>
      {onDone && (
        <button type="button" className="secondary" onClick={onDone}>
          Cancel
        </button>
      )}
      {invalid && (
        <p id={`${id}-key-error`} className="state error" role="alert">
          That is not an API key: keys read pk_, 12 hex digits, _, 64 hex digits.
        </p>
      )}
    </form>
  );
}

/** The header's key control: which key is in use, and a way to paste another or forget it. */
export function KeyControl() {
  const { key } = useCredentials();
  const [editing, setEditing] = useState(false);
  if (editing) {
    return (
      <div className="key-box">
        <KeyForm onDone={() => setEditing(false)} autoFocus />
      </div>
    );
  }
  return (
    <div className="key-box">
      {key ? (
        <>
          <span className="key-id" data-testid="key-id" title="The API key this dashboard sends">
            Key {keyId(key)}
          </span>
          <button type="button" className="link" onClick={() => setEditing(true)}>
            Change key
          </button>
          <button type="button" className="link" onClick={() => setKey(null)}>
            Forget key
          </button>
        </>
      ) : (
        <button type="button" className="link" onClick={() => setEditing(true)}>
          Set API key
        </button>
      )}
    </div>
  );
}

/**
 * What the dashboard shows instead of its panels when the gateway turns it away: no key, a key
 * it does not accept (401), or one without the read scope (403).
 */
export function AuthPrompt({ refusal }: { refusal: ApiError | null }) {
  const { key } = useCredentials();
  const id = useId();
  const lacksScope = refusal?.status === 403;
  let reason: string;
  if (lacksScope && key) reason = `The key ${keyId(key)} lacks the read scope, which the dashboard needs.`;
  else if (key) reason = `The gateway does not accept the key ${keyId(key)}: it is unknown, revoked or expired.`;
  else reason = "This gateway shows its data only to callers with an API key.";
  return (
    <section className="panel auth-prompt" aria-labelledby={`${id}-title`} data-testid="auth-prompt">
      <h2 id={`${id}-title`}>{lacksScope ? "This key cannot read the dashboard" : "An API key is needed"}</h2>
      <p role="alert">{reason}</p>
      <p>
        Paste a key with the <strong>read</strong> scope below, or open the dashboard from a link ending in{" "}
        <code>#key=pk_…</code> (the key stays in this browser and leaves the address bar).
      </p>
      <KeyForm />
      {key && (
        <button type="button" className="link dark" onClick={() => setKey(null)}>
          Forget key {keyId(key)}
        </button>
      )}
    </section>
  );
}
