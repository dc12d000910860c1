import type { Post } from "./api";

/** The newest analysed posts, newest first. */
export function LiveFeed({ posts }: { posts: Post[] }) {
  if (posts.length === 0) {
    return <p role="status">Waiting for posts…</p>;
  }
  return (
    <ul className="feed" aria-label="Live feed">
      {posts.map((post) => (
        <li key={post.post_id} className={`post ${post.sentiment_label ?? ""}`}>
          <span className={`badge ${post.sentiment_label ?? ""}`}>{post.sentiment_label ?? "pending"}</span>
          {post.confidence_score !== null && (
            <span className="confidence">{Math.round(post.confidence_score * 100)}%</span>
          )}
          <span className="source">{post.source}</span>
          <p>{post.content}</p>
        </li>
      ))}
    </ul>
  );
}
