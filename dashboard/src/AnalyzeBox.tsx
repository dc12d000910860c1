import { useId, useState } from "react";
import { ApiError, analyzeText, type Fetcher, type TaskResult } from "./api";
import { errorMessage, percent } from "./format";
import { emotionColor, sentimentColor } from "./palette";

const MAX_CHARS = 5_000;

function TaskCard({ result }: { result: TaskResult }) {
  const color = (label: string, i: number) => (result.task === "sentiment" ? sentimentColor(label) : emotionColor(label, i));
  return (
    <article className="task-result" aria-label={`${result.task} result`}>
      <h3>
        {result.task}: <strong data-testid={`analyze-${result.task}-label`}>{result.label}</strong> ({percent(result.score, 1)})
      </h3>
      <ul className="scores" aria-label={`${result.task} scores`}>
        {result.scores.map((s, i) => (
          <li key={s.label}>
            <span className="score-label">{s.label}</span>
            <span className="score-bar" aria-hidden="true">
              <span style={{ width: `${Math.max(0, Math.min(1, s.score)) * 100}%`, background: color(s.label, i) }} />
            </span>
            <span className="score-value">{percent(s.score, 1)}</span>
          </li>
        ))}
      </ul>
      <p className="meta">
        {[result.model, result.backend, result.totalUs !== null ? `${(result.totalUs / 1000).toFixed(1)} ms` : null]
          .filter(Boolean)
          .join(" · ")}
      </p>
    </article>
  );
}

type State =
  | { kind: "idle" }
  | { kind: "loading" }
  | { kind: "done"; results: TaskResult[] }
  | { kind: "error"; message: string }
  | { kind: "refused"; message: string };

/** Why the gateway refused to analyse, in words, when it was the key (401, 403); else null. */
function refusalMessage(err: unknown): string | null {
  if (!(err instanceof ApiError)) return null;
  if (err.status === 403) return "This API key lacks the analyze scope: analysing a text needs a key with that scope.";
  if (err.status === 401) return "Analysing a text needs an API key with the analyze scope.";
  return null;
}

/** Analyses a text typed by the user with every task the inference service has. */
export function AnalyzeBox({ fetcher }: { fetcher?: Fetcher }) {
  const id = useId();
  const [text, setText] = useState("");
  const [state, setState] = useState<State>({ kind: "idle" });
  const trimmed = text.trim();

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!trimmed || state.kind === "loading") return;
    setState({ kind: "loading" });
    try {
      setState({ kind: "done", results: await analyzeText(trimmed, fetcher) });
    } catch (err) {
      const refused = refusalMessage(err);
      setState(refused ? { kind: "refused", message: refused } : { kind: "error", message: errorMessage(err) });
    }
  };

  const hasEmotion = state.kind === "done" && state.results.some((r) => r.task === "emotion");
  return (
    <section className="panel analyze" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Analyse a text</h2>
      <form onSubmit={submit}>
        <label htmlFor={`${id}-text`}>Text to analyse</label>
        <textarea
          id={`${id}-text`}
          rows={3}
          maxLength={MAX_CHARS}
          value={text}
          placeholder="e.g. The new update is fantastic, everything feels faster"
          onChange={(e) => setText(e.target.value)}
        />
        <button type="submit" disabled={!trimmed || state.kind === "loading"}>
          {state.kind === "loading" ? "Analysing…" : "Analyse"}
        </button>
      </form>
      <div aria-live="polite">
        {state.kind === "loading" && <p role="status">Analysing…</p>}
        {state.kind === "error" && (
          <p className="state error" role="alert">
            Analysis failed: {state.message}
          </p>
        )}
        {state.kind === "refused" && (
          <p className="state error" role="alert" data-testid="analyze-refused">
            {state.message}
          </p>
        )}
        {state.kind === "done" && (
          <div className="task-results" data-testid="analyze-results">
            {state.results.map((r) => (
              <TaskCard key={r.task} result={r} />
            ))}
            {!hasEmotion && <p className="state empty">No emotion result: the inference service has no emotion model.</p>}
          </div>
        )}
      </div>
    </section>
  );
}
