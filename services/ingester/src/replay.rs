//! `pulse-ingester replay FILE`: publishes a JSONL file of real posts.
//!
//! Each line is `{"post_id", "source", "author", "content", "created_at"}` (created_at in
//! RFC 3339; other keys are ignored) and is validated like a published post. Invalid lines are
//! reported with their number and skipped. Valid posts go out in chunks (one atomic pipeline
//! each) at `--rate` posts per second, or as fast as backpressure allows; a chunk that Redis does
//! not take is retried with backoff, never skipped, so every post is published at least once
//! (the worker's idempotent writes make a re-sent chunk harmless). Only the chunk being sent is
//! held in memory.

use std::{
    future::Future,
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use pulse_domain::Post;
use pulse_stream::{PostEntry, Producer};
use tokio::io::AsyncBufReadExt;

use crate::{
    backpressure::Backpressure,
    metrics::IngesterMetrics,
    publish::{MAX_CHUNK, Origin, publish_chunk},
};

/// One line of the file.
#[derive(Debug, serde::Deserialize)]
struct Line {
    post_id: String,
    source: String,
    author: String,
    content: String,
    created_at: String,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplaySummary {
    /// Lines read, blank ones included.
    pub lines: u64,
    pub published: u64,
    /// Lines skipped because they are not a valid post.
    pub invalid: u64,
    pub blank: u64,
    pub seconds: f64,
    /// Set when a shutdown stopped the replay: the first line not published.
    pub stopped_at_line: Option<u64>,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = if self.seconds > 0.0 {
            self.published as f64 / self.seconds
        } else {
            0.0
        };
        write!(
            f,
            "{} lines: {} posts published, {} invalid lines skipped, {} blank; {:.1} s ({rate:.0} posts/s)",
            self.lines, self.published, self.invalid, self.blank, self.seconds
        )?;
        if let Some(line) = self.stopped_at_line {
            write!(
                f,
                "; stopped before line {line}, which was not published, nor anything after it"
            )?;
        }
        Ok(())
    }
}

/// Parses and validates one line.
pub fn parse_line(line: &str, now: DateTime<Utc>) -> Result<Post, String> {
    let line: Line = serde_json::from_str(line).map_err(|e| format!("not a post: {e}"))?;
    let created_at = DateTime::parse_from_rfc3339(&line.created_at)
        .map_err(|e| format!("INVALID_TIMESTAMP: created_at {:?}: {e}", line.created_at))?
        .with_timezone(&Utc);
    let post = Post {
        post_id: line.post_id,
        source: line.source,
        author: line.author,
        content: line.content,
        created_at,
    };
    post.validate(now)
        .map_err(|e| format!("{}: {e}", e.code()))?;
    Ok(post)
}

/// Posts per chunk: about a tenth of a second's worth at `rate`, at most [`MAX_CHUNK`].
fn chunk_size(rate: Option<f64>) -> usize {
    match rate {
        Some(rate) if rate > 0.0 => ((rate / 10.0) as usize).clamp(1, MAX_CHUNK),
        _ => MAX_CHUNK,
    }
}

/// Replays `file` through `producer`, pausing while `gate` is closed; invalid lines are
/// written to `report`. Stops early (and says where) when `shutdown` resolves.
pub async fn replay(
    producer: &Producer,
    gate: &Backpressure,
    metrics: &IngesterMetrics,
    file: &Path,
    rate: Option<f64>,
    shutdown: impl Future<Output = ()>,
    report: &mut impl Write,
) -> anyhow::Result<ReplaySummary> {
    let started = Instant::now();
    let reader = tokio::fs::File::open(file)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
    let mut lines = tokio::io::BufReader::new(reader).lines();
    let mut summary = ReplaySummary::default();
    let mut chunk: Vec<PostEntry> = Vec::new();
    let mut chunk_first_line = 0;
    let chunk_size = chunk_size(rate);
    tokio::pin!(shutdown);
    loop {
        let next = lines.next_line().await?;
        let at_end = next.is_none();
        if let Some(line) = next {
            summary.lines += 1;
            if line.trim().is_empty() {
                summary.blank += 1;
            } else {
                match parse_line(&line, Utc::now()) {
                    Ok(post) => {
                        if chunk.is_empty() {
                            chunk_first_line = summary.lines;
                        }
                        chunk.push(PostEntry {
                            post,
                            traceparent: None,
                        });
                    }
                    Err(e) => {
                        summary.invalid += 1;
                        writeln!(report, "line {}: {e}", summary.lines)?;
                    }
                }
            }
        }
        if chunk.len() >= chunk_size || (at_end && !chunk.is_empty()) {
            if let Some(rate) = rate.filter(|r| *r > 0.0) {
                // The chunk's first post is due at published / rate seconds after the start.
                let due = started + Duration::from_secs_f64(summary.published as f64 / rate);
                tokio::select! {
                    () = &mut shutdown => {
                        summary.stopped_at_line = Some(chunk_first_line);
                        break;
                    }
                    () = tokio::time::sleep_until(due.into()) => {}
                }
            }
            if !publish_chunk(
                producer,
                gate,
                metrics,
                Origin::Replay,
                &mut chunk,
                &mut shutdown,
            )
            .await?
            {
                summary.stopped_at_line = Some(chunk_first_line);
                break;
            }
            summary.published += chunk.len() as u64;
            chunk.clear();
        }
        if at_end {
            break;
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_validated_like_published_posts() {
        let now = Utc::now();
        let post = parse_line(
            r#"{"post_id":"r-1","source":"reddit","author":"ada","content":"Lovely","created_at":"2026-01-02T03:04:05Z","extra":1}"#,
            now,
        )
        .expect("valid");
        assert_eq!(post.post_id, "r-1");
        assert!(parse_line("{not json", now).is_err_and(|e| e.starts_with("not a post")));
        assert!(parse_line(
            r#"{"post_id":"r-2","source":"reddit","author":"ada","content":"x","created_at":"yesterday"}"#,
            now
        )
        .is_err_and(|e| e.starts_with("INVALID_TIMESTAMP")));
        assert!(parse_line(
            r#"{"post_id":"bad id","source":"reddit","author":"ada","content":"x","created_at":"2026-01-02T03:04:05Z"}"#,
            now
        )
        .is_err_and(|e| e.starts_with("INVALID_CHARACTERS")));
        assert!(
            parse_line(r#"{"post_id":"r-3"}"#, now).is_err_and(|e| e.contains("missing field"))
        );
    }

    #[test]
    fn chunks_hold_a_tenth_of_a_second() {
        assert_eq!(chunk_size(None), 100);
        assert_eq!(chunk_size(Some(50.0)), 5);
        assert_eq!(chunk_size(Some(5.0)), 1);
        assert_eq!(chunk_size(Some(1e6)), 100);
    }
}
