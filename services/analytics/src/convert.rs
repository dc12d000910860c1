//! Stored rows and events to wire types, and wire filters to store queries.

use pulse_domain::{datetime_to_timestamp, timestamp_to_datetime};
use pulse_proto::v1;
use pulse_store::{PostQuery, alerts::StoredAlert, posts::StoredPost, stats::Distribution};
use tonic::Status;

/// Longest accepted value of a text filter.
const MAX_FILTER_LEN: usize = 200;

pub fn post_to_wire(stored: StoredPost) -> v1::AnalyzedPost {
    v1::AnalyzedPost {
        post: Some(stored.post.into()),
        analyses: stored.analyses.into_iter().map(Into::into).collect(),
        ingested_at: Some(datetime_to_timestamp(stored.ingested_at)),
    }
}

pub fn alert_to_wire(alert: StoredAlert) -> v1::Alert {
    v1::Alert {
        id: alert.id,
        alert_type: alert.alert_type,
        threshold_value: alert.threshold_value,
        actual_value: alert.actual_value,
        window_start: Some(datetime_to_timestamp(alert.window_start)),
        window_end: Some(datetime_to_timestamp(alert.window_end)),
        post_count: u32::try_from(alert.post_count).unwrap_or_default(),
        triggered_at: Some(datetime_to_timestamp(alert.triggered_at)),
        details_json: alert.details.to_string(),
    }
}

fn label_counts(counts: Vec<(String, u64)>, total: u64) -> Vec<v1::LabelCount> {
    counts
        .into_iter()
        .map(|(label, count)| v1::LabelCount {
            label,
            count,
            percentage: if total == 0 {
                0.0
            } else {
                // Counts are far below 2^52, so the conversion is exact.
                #[allow(clippy::cast_precision_loss)]
                let share = count as f64 * 100.0 / total as f64;
                share
            },
        })
        .collect()
}

pub fn distribution_to_wire(
    distribution: Distribution,
    by_source: Vec<(String, Vec<(String, u64)>)>,
) -> v1::GetDistributionResponse {
    let total = distribution.total;
    let emotion_total = distribution.emotion.iter().map(|(_, c)| c).sum();
    v1::GetDistributionResponse {
        total,
        sentiment: label_counts(distribution.sentiment, total),
        emotion: label_counts(distribution.emotion, emotion_total),
        sources: by_source
            .into_iter()
            .map(|(source, counts)| {
                let total = counts.iter().map(|(_, c)| c).sum();
                v1::SourceDistribution {
                    source,
                    total,
                    sentiment: label_counts(counts, total),
                }
            })
            .collect(),
        cached: false,
    }
}

fn text_filter(name: &str, value: String) -> Result<Option<String>, Status> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_FILTER_LEN {
        return Err(Status::invalid_argument(format!(
            "filter {name} is longer than {MAX_FILTER_LEN} characters"
        )));
    }
    Ok(Some(value))
}

fn time_filter(
    name: &str,
    ts: Option<pulse_proto::Timestamp>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Status> {
    ts.map(|ts| {
        timestamp_to_datetime(&ts)
            .ok_or_else(|| Status::invalid_argument(format!("filter {name} is not a valid time")))
    })
    .transpose()
}

/// Validates a wire filter into a store query.
pub fn filter_to_query(filter: Option<v1::PostFilter>) -> Result<PostQuery, Status> {
    let filter = filter.unwrap_or_default();
    let query = PostQuery {
        source: text_filter("source", filter.source)?,
        sentiment: text_filter("sentiment", filter.sentiment)?.map(|s| s.to_lowercase()),
        emotion: text_filter("emotion", filter.emotion)?.map(|s| s.to_lowercase()),
        search: text_filter("search", filter.search)?,
        author: text_filter("author", filter.author)?,
        from: time_filter("from", filter.from)?,
        to: time_filter("to", filter.to)?,
    };
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Err(Status::invalid_argument("filter from must be before to"));
    }
    Ok(query)
}
