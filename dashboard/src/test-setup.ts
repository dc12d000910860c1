import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";
import { resetCredentials } from "./credentials";

// jsdom has no ResizeObserver; Recharts' ResponsiveContainer needs one.
class ResizeObserverStub {
  observe() {}
  unobserve() {}
  disconnect() {}
}
globalThis.ResizeObserver ??= ResizeObserverStub as unknown as typeof ResizeObserver;

afterEach(() => {
  cleanup();
  // The key is module state and localStorage: no test sees another's.
  resetCredentials();
  localStorage.clear();
});
