import { credentials, currentKey, isKey, keyId, loadKey, recordAnswer, setKey, STORAGE_KEY } from "./credentials";

const KEY = `pk_0123456789ab_${"f".repeat(64)}`;
const OTHER = `pk_ba9876543210_${"0".repeat(64)}`;

/** Puts the page at `url` (same origin), as a link would. */
function visit(url: string) {
  window.history.replaceState(null, "", url);
}

describe("loadKey", () => {
  it("reads a key from the fragment, stores it and takes it out of the address bar", () => {
    visit(`/?range=1h#key=${KEY}`);
    expect(loadKey()).toBe(KEY);
    expect(currentKey()).toBe(KEY);
    expect(localStorage.getItem(STORAGE_KEY)).toBe(KEY);
    expect(window.location.href).not.toContain(KEY);
    expect(window.location.hash).toBe("");
    expect(window.location.pathname + window.location.search).toBe("/?range=1h");
  });

  it("keeps the rest of the fragment", () => {
    visit(`/#key=${KEY}&panel=feed`);
    loadKey();
    expect(window.location.hash).toBe("#panel=feed");
    expect(currentKey()).toBe(KEY);
  });

  it("prefers the fragment's key to the stored one", () => {
    localStorage.setItem(STORAGE_KEY, OTHER);
    visit(`/#key=${KEY}`);
    expect(loadKey()).toBe(KEY);
    expect(localStorage.getItem(STORAGE_KEY)).toBe(KEY);
  });

  it("uses the stored key when the address has none, and nothing without one", () => {
    visit("/");
    expect(loadKey()).toBeNull();
    localStorage.setItem(STORAGE_KEY, OTHER);
    expect(loadKey()).toBe(OTHER);
    expect(window.location.pathname).toBe("/");
  });

  it("strips an empty key parameter without storing anything", () => {
    visit("/#key=");
    expect(loadKey()).toBeNull();
    expect(window.location.hash).toBe("");
    expect(localStorage.getItem(STORAGE_KEY)).toBeNull();
  });
});

describe("setKey and recordAnswer", () => {
  it("forgets a key from memory and storage", () => {
    setKey(KEY);
    setKey(null);
    expect(currentKey()).toBeNull();
    expect(localStorage.getItem(STORAGE_KEY)).toBeNull();
  });

  it("marks the key rejected on 401, and accepted again on a success", () => {
    setKey(KEY);
    recordAnswer(KEY, 403);
    expect(credentials().rejected).toBe(false);
    recordAnswer(KEY, 401);
    expect(credentials().rejected).toBe(true);
    recordAnswer(KEY, 200);
    expect(credentials().rejected).toBe(false);
  });

  it("ignores a late 401 to a request made with an older key", () => {
    setKey(OTHER);
    setKey(KEY);
    recordAnswer(OTHER, 401);
    expect(credentials().rejected).toBe(false);
  });

  it("a new key clears the rejection", () => {
    setKey(OTHER);
    recordAnswer(OTHER, 401);
    setKey(KEY);
    expect(credentials()).toEqual({ key: KEY, rejected: false });
  });
});

describe("key shape", () => {
  it("accepts what pulse-store prints and names a key by its id", () => {
    expect(isKey(KEY)).toBe(true);
    expect(isKey(KEY.toUpperCase())).toBe(false);
    expect(isKey(`${KEY}0`)).toBe(false);
    expect(isKey("pk_0123456789ab")).toBe(false);
    expect(keyId(KEY)).toBe("pk_0123456789ab");
  });
});
