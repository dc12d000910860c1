import { useEffect, useState } from "react";
import { type Distribution, type Post, getJson, liveFeedUrl } from "./api";
import { LiveFeed } from "./LiveFeed";
import { MetricsCards } from "./MetricsCards";

/** Posts kept in the live feed. */
const FEED_LENGTH = 50;

type Connection = "connecting" | "connected" | "reconnecting";

export function App() {
  const [distribution, setDistribution] = useState<Distribution | null>(null);
  const [posts, setPosts] = useState<Post[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [connection, setConnection] = useState<Connection>("connecting");

  useEffect(() => {
    const load = () =>
      Promise.all([getJson<Distribution>("/api/sentiment/distribution"), getJson<Post[]>(`/api/posts?limit=${FEED_LENGTH}`)])
        .then(([d, p]) => {
          setDistribution(d.data);
          setPosts(p.data);
          setError(null);
        })
        .catch((e: Error) => setError(e.message));
    load();
    const timer = setInterval(load, 30_000);
    return () => clearInterval(timer);
  }, []);

  useEffect(() => {
    let socket: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let delay = 500;
    let closed = false;
    const connect = () => {
      socket = new WebSocket(liveFeedUrl());
      socket.onopen = () => {
        delay = 500;
        setConnection("connected");
      };
      socket.onmessage = (message) => {
        const event = JSON.parse(message.data);
        if (event.type === "new_post") {
          setPosts((current) => [event.data as Post, ...current].slice(0, FEED_LENGTH));
        } else if (event.type === "metrics_update") {
          setDistribution(event.data as Distribution);
        }
      };
      socket.onclose = () => {
        if (closed) return;
        setConnection("reconnecting");
        retry = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10_000);
      };
    };
    connect();
    return () => {
      closed = true;
      clearTimeout(retry);
      socket?.close();
    };
  }, []);

  return (
    <main>
      <header>
        <h1>Pulse</h1>
        <span className={`connection ${connection}`} role="status" aria-label="Connection status">
          {connection}
        </span>
      </header>
      {error && <p role="alert">Cannot load data: {error}</p>}
      <MetricsCards distribution={distribution} />
      <h2>Live feed</h2>
      <LiveFeed posts={posts} />
    </main>
  );
}
