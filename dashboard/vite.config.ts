/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// In development, /api and /ws go to a gateway on :8080 (GATEWAY_URL overrides).
const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    rolldownOptions: {
      // Charts and React in their own files: they change less often than the app, and no
      // single file passes the 500 kB warning.
      output: {
        codeSplitting: {
          groups: [
            { name: "react", test: /node_modules[\\/](react|react-dom|scheduler|react-redux|react-is|use-sync-external-store)[\\/]/, priority: 2 },
            { name: "charts", test: /node_modules[\\/](recharts|d3-|victory-vendor|@reduxjs|redux|immer|reselect|decimal\.js|es-toolkit)/, priority: 1 },
          ],
        },
      },
    },
  },
  server: {
    proxy: {
      "/api": gateway,
      "/ws": { target: gateway.replace(/^http/, "ws"), ws: true },
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["src/test-setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
