import type { Post } from "./api";
import { formatTime, percent } from "./format";
import { EmotionBadge, SentimentBadge } from "./SentimentBadge";
import { Empty } from "./StatusMessage";

interface Props {
  posts: Post[];
  /** Most posts shown; the list never grows past it. */
  max?: number;
  /** The text posts are filtered by, if any (for the empty state). */
  term?: string;
}

/** The newest analysed posts, newest first; new ones animate in. */
export function LiveFeed({ posts, max = 50, term = "" }: Props) {
  if (posts.length === 0) {
    return <Empty>{term.trim() ? `Waiting for posts mentioning “${term.trim()}”…` : "Waiting for posts…"}</Empty>;
  }
  return (
    <ul className="feed" aria-label="Live feed" aria-live="polite" aria-relevant="additions">
      {posts.slice(0, max).map((post) => (
        <li key={post.post_id} className={`post ${post.sentiment_label ?? ""}`} data-testid="feed-post">
          <div className="post-meta">
            <SentimentBadge label={post.sentiment_label} />
            <EmotionBadge label={post.emotion} />
            {post.confidence_score !== null && (
              <span className="confidence" title="confidence">
                {percent(post.confidence_score)}
              </span>
            )}
            <span className="source">{post.source}</span>
            <time className="time" dateTime={post.created_at ?? undefined}>
              {formatTime(post.ingested_at ?? post.created_at)}
            </time>
          </div>
          <p className="content">{post.content}</p>
        </li>
      ))}
    </ul>
  );
}
