import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { loadKey } from "./credentials";
import "./styles.css";

// Before the first request: a `#key=` link's key is stored and taken out of the address bar.
loadKey();

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
