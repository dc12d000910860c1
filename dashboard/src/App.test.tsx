import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { App } from "./App";
import { currentKey, setKey, STORAGE_KEY } from "./credentials";

const KEY = `pk_0123456789ab_${"c".repeat(64)}`;
const refusal = { error: "an API key with the read scope is needed", code: "UNAUTHENTICATED", timestamp: "t" };

/** A gateway that answers 401 unless the request carries `accepted`'s key; records every request. */
function gateway(accepted: string | null) {
  const calls: { url: string; authorization: string | null }[] = [];
  const fetcher = vi.fn(async (url: RequestInfo | URL, init?: RequestInit) => {
    const authorization = new Headers(init?.headers).get("authorization");
    calls.push({ url: String(url), authorization });
    if (accepted === null || authorization !== `Bearer ${accepted}`) {
      return new Response(JSON.stringify(refusal), { status: 401, headers: { "www-authenticate": "Bearer" } });
    }
    // Accepted: every read stays pending, the panels just show they are loading.
    return new Promise<Response>(() => {});
  });
  return { fetcher, calls };
}

/** A WebSocket that never opens (no test here gets that far). */
class IdleSocket {
  static opened: string[] = [];
  readyState = 0;
  onopen = null;
  onclose = null;
  onerror = null;
  onmessage = null;
  constructor(url: string) {
    IdleSocket.opened.push(url);
  }
  send() {}
  close() {}
}

beforeEach(() => {
  IdleSocket.opened = [];
  vi.stubGlobal("WebSocket", IdleSocket);
});
afterEach(() => vi.unstubAllGlobals());

describe("App without a usable key", () => {
  it("asks for a key instead of showing broken panels, and opens no socket", async () => {
    const { fetcher } = gateway(null);
    vi.stubGlobal("fetch", fetcher);
    render(<App />);
    expect(await screen.findByRole("heading", { name: "An API key is needed" })).toBeTruthy();
    expect(screen.getByText("This gateway shows its data only to callers with an API key.")).toBeTruthy();
    expect(screen.queryByRole("form", { name: "Filters" })).toBeNull();
    expect(screen.queryByText(/Cannot load/)).toBeNull();
    expect(screen.getByRole("status", { name: "Connection status" }).getAttribute("data-status")).toBe("unauthorized");
    expect(IdleSocket.opened).toEqual([]);
  });

  it("names the key the gateway turned away, and can forget it", async () => {
    setKey(`pk_ba9876543210_${"d".repeat(64)}`);
    vi.stubGlobal("fetch", gateway(KEY).fetcher);
    render(<App />);
    expect(await screen.findByText(/does not accept the key pk_ba9876543210/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Forget key pk_ba9876543210" }));
    expect(currentKey()).toBeNull();
    expect(localStorage.getItem(STORAGE_KEY)).toBeNull();
  });

  it("sends a pasted key with every request and shows the dashboard", async () => {
    const { fetcher, calls } = gateway(KEY);
    vi.stubGlobal("fetch", fetcher);
    render(<App />);
    const prompt = await screen.findByTestId("auth-prompt");
    const field = prompt.querySelector("input") as HTMLInputElement;
    fireEvent.change(field, { target: { value: "not a key" } });
    fireEvent.submit(field.form as HTMLFormElement);
    expect(screen.getByText(/That is not an API key/)).toBeTruthy();
    expect(currentKey()).toBeNull();

    const before = calls.length;
    fireEvent.change(field, { target: { value: KEY } });
    await act(async () => fireEvent.submit(field.form as HTMLFormElement));
    expect(localStorage.getItem(STORAGE_KEY)).toBe(KEY);
    await waitFor(() => expect(screen.queryByTestId("auth-prompt")).toBeNull());
    expect(screen.getByRole("form", { name: "Filters" })).toBeTruthy();
    expect(screen.getByTestId("key-id").textContent).toBe("Key pk_0123456789ab");
    const after = calls.slice(before);
    expect(after.map((c) => c.url)).toEqual(expect.arrayContaining(["/api/ws-ticket", "/api/alerts?limit=20"]));
    expect(after.every((c) => c.authorization === `Bearer ${KEY}`)).toBe(true);
  });
});
