//! `GET /api/posts/export.csv`: the posts a filter selects, as CSV, streamed.
//!
//! The gateway pages through `ListPosts` and writes each page as it arrives, so neither the
//! gateway nor analytics ever holds the whole result; a bounded channel makes a slow download
//! slow the paging down instead of buffering. The end of the range is pinned to the time of the
//! request, so posts arriving during the download do not shift the pages (and duplicate rows).
//! A failure after the first page aborts the body, so the client sees a broken transfer rather
//! than a silently short file. Pages follow each other by cursor (keyset), never by offset, and
//! an export holds at most `EXPORT_MAX_ROWS` rows, announced in `X-Export-Row-Cap`. Each export
//! holds one of `EXPORT_MAX_CONCURRENT` permits while it streams: an export keeps a database
//! busy for its whole length, so a few clients must not be able to run dozens.

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use pulse_domain::{datetime_to_timestamp, timestamp_to_datetime};
use pulse_proto::v1::{AnalyzedPost, ListPostsRequest, PostFilter};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use warp::{
    Reply,
    http::{HeaderValue, header},
    reply::Response,
};

use crate::{clients::Clients, envelope::ApiError};

/// Posts per ListPosts call.
pub const PAGE_SIZE: u32 = 500;

/// Response header: how many posts match the filter (rows beyond the cap included).
pub const TOTAL_COUNT: &str = "x-total-count";
/// Sent as `true` when [`TOTAL_COUNT`] is a lower bound (a text search stops counting at
/// `pulse_store::posts::SEARCH_COUNT_CAP`).
pub const TOTAL_COUNT_IS_LOWER_BOUND: &str = "x-total-count-is-lower-bound";
/// Response header: the most rows this export holds (`EXPORT_MAX_ROWS`, or a lower `limit`).
pub const ROW_CAP: &str = "x-export-row-cap";

const COLUMNS: &[&str] = &[
    "post_id",
    "source",
    "author",
    "created_at",
    "ingested_at",
    "sentiment_label",
    "confidence_score",
    "emotion",
    "model_name",
    "analyzed_at",
    "content",
];

/// First characters that make a spreadsheet read a cell as a formula (`=HYPERLINK(...)`,
/// `+cmd|...`, `-2+3`, `@SUM(...)`, and tab or carriage return before any of them).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One CSV field, quoted when it holds a separator, a quote or a line break (RFC 4180).
///
/// Posts are written by anyone, and an export is opened in a spreadsheet: a cell that would
/// start a formula gets a leading `'`, which spreadsheets show as text (the OWASP advice on
/// CSV injection). No exported number is negative, so no real value is changed.
pub fn field(value: &str) -> String {
    let neutralised;
    let value = if value.starts_with(FORMULA_STARTS) {
        neutralised = format!("'{value}");
        neutralised.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn time(ts: Option<&pulse_proto::Timestamp>) -> String {
    ts.and_then(timestamp_to_datetime)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// One post as a CSV line (with its latest analysis).
pub fn row(p: &AnalyzedPost) -> String {
    let post = p.post.clone().unwrap_or_default();
    let latest = p.analyses.first();
    let fields = [
        post.post_id,
        post.source,
        post.author,
        time(post.created_at.as_ref()),
        time(p.ingested_at.as_ref()),
        latest
            .map(|a| a.sentiment_label.clone())
            .unwrap_or_default(),
        latest
            .map(|a| format!("{:.4}", a.confidence_score))
            .unwrap_or_default(),
        latest.map(|a| a.emotion.clone()).unwrap_or_default(),
        latest.map(|a| a.model_name.clone()).unwrap_or_default(),
        time(latest.and_then(|a| a.analyzed_at.as_ref())),
        post.content,
    ];
    let mut line = fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn page_text(posts: &[AnalyzedPost]) -> Bytes {
    Bytes::from(posts.iter().map(row).collect::<String>())
}

/// Posts to ask for next: a full page, or what is left under the row cap.
fn next_page_size(written: u64, max_rows: u32) -> u32 {
    let left = u64::from(max_rows).saturating_sub(written);
    u32::try_from(left.min(u64::from(PAGE_SIZE))).unwrap_or(PAGE_SIZE)
}

/// Starts an export of at most `max_rows` rows; errors before the first page are ordinary API
/// errors.
///
/// Each page after the first continues from the previous page's `next_cursor`, so every call
/// is a seek on the page-order index and costs what the first does. The stream ends after
/// `max_rows` rows; the `X-Export-Row-Cap` header announces the cap before the body starts
/// (headers cannot follow a streamed body), so a file with that many rows while
/// `X-Total-Count` is larger was cut at the cap.
pub async fn export(
    clients: Clients,
    mut filter: PostFilter,
    max_rows: u32,
    permit: OwnedSemaphorePermit,
) -> Result<Response, ApiError> {
    let started = Utc::now();
    if filter.to.is_none() {
        filter.to = Some(datetime_to_timestamp(started));
    }
    let mut analytics = clients.analytics.clone();
    let request = move |cursor: String, limit: u32| ListPostsRequest {
        filter: Some(filter.clone()),
        limit,
        offset: 0,
        cursor,
    };
    let first = analytics
        .list_posts(request(String::new(), next_page_size(0, max_rows)))
        .await?
        .into_inner();
    let (total, total_is_lower_bound) = (first.total, first.total_is_lower_bound);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let mut header_line = COLUMNS.join(",");
    header_line.push_str("\r\n");
    tokio::spawn(async move {
        // Held until the last page is written or the download is abandoned.
        let _permit = permit;
        if tx.send(Ok(Bytes::from(header_line))).await.is_err() {
            return;
        }
        let mut written: u64 = 0;
        let mut page = first;
        loop {
            if page.posts.is_empty() || tx.send(Ok(page_text(&page.posts))).await.is_err() {
                return;
            }
            written += page.posts.len() as u64;
            let limit = next_page_size(written, max_rows);
            if page.next_cursor.is_empty() || limit == 0 {
                return;
            }
            match analytics
                .list_posts(request(std::mem::take(&mut page.next_cursor), limit))
                .await
            {
                Ok(next) => page = next.into_inner(),
                Err(status) => {
                    tracing::warn!(%status, "CSV export interrupted");
                    let _ = tx
                        .send(Err(std::io::Error::other(format!(
                            "export interrupted: {}",
                            status.message()
                        ))))
                        .await;
                    return;
                }
            }
        }
    });
    let filename = format!("pulse-posts-{}.csv", started.format("%Y%m%dT%H%M%SZ"));
    let reply = warp::reply::stream(ReceiverStream::new(rx));
    let reply = warp::reply::with_header(reply, header::CONTENT_TYPE, "text/csv; charset=utf-8");
    let reply = warp::reply::with_header(
        reply,
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{filename}\""),
    );
    let mut response = reply.into_response();
    let headers = response.headers_mut();
    headers.insert(TOTAL_COUNT, HeaderValue::from(total));
    if total_is_lower_bound {
        headers.insert(TOTAL_COUNT_IS_LOWER_BOUND, HeaderValue::from_static("true"));
    }
    headers.insert(ROW_CAP, HeaderValue::from(max_rows));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_never_reach_past_the_row_cap() {
        assert_eq!(next_page_size(0, 100_000), PAGE_SIZE);
        assert_eq!(next_page_size(0, 7), 7);
        assert_eq!(next_page_size(1_000, 1_200), 200);
        assert_eq!(next_page_size(1_200, 1_200), 0);
        assert_eq!(next_page_size(1_300, 1_200), 0);
    }

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn cells_that_would_start_a_formula_are_text() {
        assert_eq!(
            field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\t=1"), "'\t=1");
        assert_eq!(field("\r=1"), "\"'\r=1\"");
        assert_eq!(field("a=b"), "a=b");
        assert_eq!(field("0.93"), "0.93");
        assert_eq!(field(""), "");
    }
}
