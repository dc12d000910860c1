import { useState } from "react";
import { type Fetcher, fetchCsv, type PostPage } from "./api";
import { currentKey } from "./credentials";
import { formatCount, formatTime, percent } from "./format";
import { EmotionBadge, SentimentBadge } from "./SentimentBadge";
import { Empty, ErrorMessage, Loading } from "./StatusMessage";

interface Props {
  page: PostPage | null;
  loading?: boolean;
  error?: string | null;
  onPage: (offset: number) => void;
  exportHref: string;
  fetcher?: Fetcher;
}

/** Hands `blob` to the browser as a file download. */
function saveBlob(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * The CSV export link. A link cannot send the API key, so with a key the click fetches the
 * file with it instead; without one (public reads) the link is followed as it is.
 */
function ExportLink({ href, fetcher }: { href: string; fetcher?: Fetcher }) {
  const [state, setState] = useState<{ busy: boolean; error: string | null }>({ busy: false, error: null });
  const onClick = async (e: React.MouseEvent<HTMLAnchorElement>) => {
    if (currentKey() === null) return;
    e.preventDefault();
    if (state.busy) return;
    setState({ busy: true, error: null });
    try {
      saveBlob(await fetchCsv(href, fetcher), "pulse-posts.csv");
      setState({ busy: false, error: null });
    } catch (err) {
      setState({ busy: false, error: err instanceof Error ? err.message : String(err) });
    }
  };
  return (
    <>
      <a className="button" href={href} download="pulse-posts.csv" aria-busy={state.busy} onClick={onClick}>
        Export CSV
      </a>
      {state.error && (
        <p className="state error export-error" role="alert">
          Cannot export: {state.error}
        </p>
      )}
    </>
  );
}

/** The posts matching the filters, a page at a time, with CSV export of them all. */
export function PostsTable({ page, loading = false, error = null, onPage, exportHref, fetcher }: Props) {
  let body: React.ReactNode;
  if (!page) {
    body = error ? <ErrorMessage what="posts" message={error} /> : <Loading what="posts" />;
  } else if (page.posts.length === 0) {
    body = <Empty>No posts match these filters.</Empty>;
  } else {
    body = (
      <div className="table-scroll" tabIndex={0} role="region" aria-label="Posts table, scrollable">
        <table aria-label="Posts" aria-busy={loading}>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Source</th>
              <th scope="col">Author</th>
              <th scope="col">Post</th>
              <th scope="col">Sentiment</th>
              <th scope="col">Emotion</th>
              <th scope="col">Confidence</th>
            </tr>
          </thead>
          <tbody>
            {page.posts.map((p) => (
              <tr key={p.post_id} data-testid="posts-row">
                <td className="nowrap">{formatTime(p.created_at, true)}</td>
                <td>{p.source}</td>
                <td>{p.author}</td>
                <td className="content">{p.content}</td>
                <td>
                  <SentimentBadge label={p.sentiment_label} />
                </td>
                <td>{p.emotion ? <EmotionBadge label={p.emotion} /> : "–"}</td>
                <td className="num">{percent(p.confidence_score)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    );
  }
  const pages = page ? Math.max(1, Math.ceil(page.total / page.limit)) : 1;
  const current = page ? Math.floor(page.offset / page.limit) + 1 : 1;
  return (
    <section className="panel posts-panel" aria-labelledby="posts-title">
      <div className="panel-head">
        <h2 id="posts-title">Posts</h2>
        <ExportLink href={exportHref} fetcher={fetcher} />
      </div>
      {page && error && <ErrorMessage what="posts" message={error} />}
      {body}
      {page && page.total > 0 && (
        <nav className="pager" aria-label="Posts pages">
          <button type="button" disabled={page.offset === 0 || loading} onClick={() => onPage(Math.max(0, page.offset - page.limit))}>
            Previous
          </button>
          <span data-testid="page-info">
            Page {current} of {pages}
            {page.totalIsLowerBound ? "+" : ""} · {formatCount(page.total)}
            {page.totalIsLowerBound ? "+" : ""} posts
          </span>
          <button
            type="button"
            disabled={page.offset + page.limit >= page.total || loading}
            onClick={() => onPage(page.offset + page.limit)}
          >
            Next
          </button>
        </nav>
      )}
    </section>
  );
}
