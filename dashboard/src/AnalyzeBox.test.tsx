import { fireEvent, render, screen, within } from "@testing-library/react";
import { AnalyzeBox } from "./AnalyzeBox";
import { jsonFetch } from "./fixtures";

const answer = {
  // The gateway's shape: results keyed by task, scores as a label → score map.
  data: {
    sentiment: {
      label: "positive",
      score: 0.97,
      scores: { negative: 0.01, neutral: 0.02, positive: 0.97 },
      model: "pulse-minilm-sentiment@1.0.0",
      backend: "local",
      timings: { tokenization_us: 500, queue_us: 300, inference_us: 1200 },
    },
    emotion: {
      label: "joy",
      score: 0.8,
      scores: { joy: 0.8, sadness: 0.2 },
      model: "pulse-emotion@1.0.0",
      backend: "local",
      timings: { tokenization_us: 0, queue_us: 0, inference_us: 900 },
    },
    truncated: false,
  },
  metadata: {},
  filters: {},
  timestamp: "2026-11-28T21:00:00.000Z",
};

function typeAndSubmit(text: string) {
  fireEvent.change(screen.getByLabelText("Text to analyse"), { target: { value: text } });
  fireEvent.click(screen.getByRole("button", { name: "Analyse" }));
}

describe("AnalyzeBox", () => {
  it("posts the text and shows both tasks' label scores", async () => {
    const { fetcher, calls } = jsonFetch(answer);
    render(<AnalyzeBox fetcher={fetcher} />);
    expect((screen.getByRole("button", { name: "Analyse" }) as HTMLButtonElement).disabled).toBe(true);
    typeAndSubmit("  I love it  ");
    expect(await screen.findByTestId("analyze-results")).toBeTruthy();
    expect(calls[0].url).toBe("/api/analyze");
    expect(calls[0].init?.method).toBe("POST");
    expect(JSON.parse(String(calls[0].init?.body))).toEqual({ text: "I love it" });
    expect(screen.getByTestId("analyze-sentiment-label").textContent).toBe("positive");
    expect(screen.getByTestId("analyze-emotion-label").textContent).toBe("joy");
    const sentimentScores = within(screen.getByRole("list", { name: "sentiment scores" })).getAllByRole("listitem");
    expect(sentimentScores.map((li) => li.textContent)).toEqual(["positive97.0%", "neutral2.0%", "negative1.0%"]);
    expect(screen.getByText("pulse-minilm-sentiment@1.0.0 · local · 2.0 ms")).toBeTruthy();
  });

  it("reads the inference service's own shape too (analysis.results, TASK_ enums, camelCase timings)", async () => {
    const { fetcher } = jsonFetch({
      ...answer,
      data: {
        analysis: {
          results: [{ task: "TASK_SENTIMENT", label: "negative", score: 0.9, scores: [{ label: "negative", score: 0.9 }], backend: "BACKEND_LOCAL", timings: { inferenceUs: "1500" } }],
        },
      },
    });
    render(<AnalyzeBox fetcher={fetcher} />);
    typeAndSubmit("awful");
    expect((await screen.findByTestId("analyze-sentiment-label")).textContent).toBe("negative");
    expect(screen.getByText(/no emotion model/)).toBeTruthy();
    expect(screen.getByText("local · 1.5 ms")).toBeTruthy();
  });

  it("shows the gateway's error", async () => {
    const { fetcher } = jsonFetch({ error: "text is longer than 5000 characters", code: "INVALID_ARGUMENT", timestamp: "t" }, 400);
    render(<AnalyzeBox fetcher={fetcher} />);
    typeAndSubmit("x");
    expect((await screen.findByRole("alert")).textContent).toBe("Analysis failed: text is longer than 5000 characters");
  });

  it("says when the gateway cannot be reached", async () => {
    const fetcher = (() => Promise.reject(new TypeError("Failed to fetch"))) as typeof fetch;
    render(<AnalyzeBox fetcher={fetcher} />);
    typeAndSubmit("hello");
    expect((await screen.findByRole("alert")).textContent).toContain("the gateway cannot be reached");
  });

  it("says the key lacks the analyze scope instead of a result", async () => {
    const { fetcher } = jsonFetch({ error: "key pk_0123456789ab lacks the analyze scope", code: "INSUFFICIENT_SCOPE", timestamp: "t" }, 403);
    render(<AnalyzeBox fetcher={fetcher} />);
    typeAndSubmit("hello");
    expect((await screen.findByRole("alert")).textContent).toBe(
      "This API key lacks the analyze scope: analysing a text needs a key with that scope.",
    );
    expect(screen.queryByTestId("analyze-results")).toBeNull();
  });

  it("says a key is needed when there is none (401)", async () => {
    const { fetcher } = jsonFetch({ error: "an API key with the analyze scope is needed", code: "UNAUTHENTICATED", timestamp: "t" }, 401);
    render(<AnalyzeBox fetcher={fetcher} />);
    typeAndSubmit("hello");
    expect((await screen.findByRole("alert")).textContent).toBe("Analysing a text needs an API key with the analyze scope.");
  });
});
