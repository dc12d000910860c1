// The API key the dashboard sends (`Authorization: Bearer <key>`), and whether the gateway has
// turned the dashboard away. A key arrives in the URL fragment (`#key=pk_...`: fragments never
// reach servers, proxies or access logs), is kept in localStorage so a reload keeps it, and is
// taken out of the address bar at once so it does not end up in bookmarks, history or screenshots.
import { useSyncExternalStore } from "react";

/** `pk_<12 hex id>_<64 hex secret>`, as `pulse-store keys create` prints it. */
export const KEY_PATTERN = /^pk_[0-9a-f]{12}_[0-9a-f]{64}$/;
export const STORAGE_KEY = "pulse.apiKey";
/** The fragment parameter a key link carries. */
const FRAGMENT_PARAM = "key";

export interface CredentialsState {
  /** The key sent with every request; null: none (the gateway may serve public reads). */
  key: string | null;
  /** The gateway answered 401 to a request made with the current key (or without one). */
  rejected: boolean;
}

let state: CredentialsState = { key: null, rejected: false };
const listeners = new Set<() => void>();

function update(next: CredentialsState) {
  if (next.key === state.key && next.rejected === state.rejected) return;
  state = next;
  for (const listener of listeners) listener();
}

function storage(): Storage | null {
  // Storage can be switched off (private modes, sandboxed frames): the key then lasts the page.
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null;
  }
}

export function isKey(text: string): boolean {
  return KEY_PATTERN.test(text);
}

/** The key part that names it without revealing it (`pk_<id>`), for display. */
export function keyId(key: string): string {
  return key.split("_").slice(0, 2).join("_");
}

export function currentKey(): string | null {
  return state.key;
}

export function credentials(): CredentialsState {
  return state;
}

/** Uses `key` from now on (null forgets it), remembered across reloads. */
export function setKey(key: string | null) {
  const store = storage();
  try {
    if (key) store?.setItem(STORAGE_KEY, key);
    else store?.removeItem(STORAGE_KEY);
  } catch {
    // Quota or a disabled store: the key still works for this page.
  }
  update({ key, rejected: false });
}

/**
 * Records the gateway's verdict on a request made with `keyUsed`. A late answer to a request
 * sent with an older key says nothing about the current one, so it is ignored.
 */
export function recordAnswer(keyUsed: string | null, status: number) {
  if (keyUsed !== state.key) return;
  if (status === 401) update({ ...state, rejected: true });
  else if (status >= 200 && status < 300) update({ ...state, rejected: false });
}

/**
 * Loads the key at start-up: a `#key=` fragment wins (and is stripped from the address bar,
 * keeping any other fragment), else the stored one. Returns the key in use.
 */
export function loadKey(location: Location = window.location, history: History = window.history): string | null {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromFragment = fragment.get(FRAGMENT_PARAM);
  if (fromFragment !== null) {
    fragment.delete(FRAGMENT_PARAM);
    const rest = fragment.toString();
    history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
    const key = fromFragment.trim();
    if (key) {
      setKey(key);
      return key;
    }
  }
  let stored: string | null = null;
  try {
    stored = storage()?.getItem(STORAGE_KEY) ?? null;
  } catch {
    stored = null;
  }
  update({ key: stored, rejected: false });
  return stored;
}

function subscribe(listener: () => void) {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

/** The credentials, re-rendering when the key changes or the gateway turns it away. */
export function useCredentials(): CredentialsState {
  return useSyncExternalStore(subscribe, credentials, credentials);
}

/** For tests: back to no key and no verdict. */
export function resetCredentials() {
  state = { key: null, rejected: false };
  for (const listener of listeners) listener();
}
