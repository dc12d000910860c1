//! Wire types to the JSON the REST API and the WebSocket send.

use pulse_domain::timestamp_to_datetime;
use pulse_proto::v1;
use serde_json::{Value, json};

fn time(ts: Option<&pulse_proto::Timestamp>) -> Value {
    ts.and_then(timestamp_to_datetime).map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

fn analysis(a: &v1::PostAnalysis) -> Value {
    json!({
        "model_name": a.model_name,
        "sentiment_label": a.sentiment_label,
        "confidence_score": a.confidence_score,
        "emotion": if a.emotion.is_empty() { Value::Null } else { Value::String(a.emotion.clone()) },
        "emotion_score": if a.emotion.is_empty() { Value::Null } else { json!(a.emotion_score) },
        "emotion_model": if a.emotion_model.is_empty() { Value::Null } else { Value::String(a.emotion_model.clone()) },
        "analyzed_at": time(a.analyzed_at.as_ref()),
    })
}

/// A post with its latest analysis flattened in (the seed's shape) and every analysis listed.
pub fn post(p: &v1::AnalyzedPost) -> Value {
    let post = p.post.clone().unwrap_or_default();
    let latest = p.analyses.first();
    json!({
        "post_id": post.post_id,
        "source": post.source,
        "author": post.author,
        "content": post.content,
        "created_at": time(post.created_at.as_ref()),
        "ingested_at": time(p.ingested_at.as_ref()),
        "sentiment_label": latest.map(|a| a.sentiment_label.clone()),
        "confidence_score": latest.map(|a| a.confidence_score),
        "emotion": latest.and_then(|a| (!a.emotion.is_empty()).then(|| a.emotion.clone())),
        "model_name": latest.map(|a| a.model_name.clone()),
        "analyzed_at": latest.map_or(Value::Null, |a| time(a.analyzed_at.as_ref())),
        "analyses": p.analyses.iter().map(analysis).collect::<Vec<_>>(),
    })
}

fn label_counts(counts: &[v1::LabelCount]) -> Value {
    Value::Array(
        counts
            .iter()
            .map(|c| json!({"label": c.label, "count": c.count, "percentage": c.percentage}))
            .collect(),
    )
}

pub fn distribution(d: &v1::GetDistributionResponse) -> Value {
    json!({
        "total": d.total,
        "sentiment": label_counts(&d.sentiment),
        "emotion": label_counts(&d.emotion),
        "sources": d.sources.iter().map(|s| json!({
            "source": s.source,
            "total": s.total,
            "sentiment": label_counts(&s.sentiment),
        })).collect::<Vec<_>>(),
    })
}

pub fn bucket(b: &v1::AggregateBucket) -> Value {
    json!({
        "start": time(b.start.as_ref()),
        "total": b.total,
        "positive": b.positive,
        "neutral": b.neutral,
        "negative": b.negative,
        "average_confidence": b.average_confidence,
    })
}

pub fn alert(a: &v1::Alert) -> Value {
    json!({
        "id": a.id,
        "alert_type": a.alert_type,
        "threshold_value": a.threshold_value,
        "actual_value": a.actual_value,
        "window_start": time(a.window_start.as_ref()),
        "window_end": time(a.window_end.as_ref()),
        "post_count": a.post_count,
        "triggered_at": time(a.triggered_at.as_ref()),
        "details": serde_json::from_str::<Value>(&a.details_json).unwrap_or(Value::Null),
    })
}

/// The REST name of a term kind: `word`, `phrase`, `hashtag`, `mention`, `entity`.
fn term_kind(kind: i32) -> String {
    v1::TermKind::try_from(kind)
        .map_or("TERM_KIND_UNSPECIFIED", |k| k.as_str_name())
        .trim_start_matches("TERM_KIND_")
        .to_ascii_lowercase()
}

fn window(w: Option<&v1::TimeWindow>) -> Value {
    json!({
        "from": time(w.and_then(|w| w.from.as_ref())),
        "to": time(w.and_then(|w| w.to.as_ref())),
    })
}

fn sentiment_counts(c: Option<&v1::SentimentCounts>) -> Value {
    let c = c.copied().unwrap_or_default();
    json!({"positive": c.positive, "neutral": c.neutral, "negative": c.negative})
}

pub fn drivers(d: &v1::GetDriversResponse) -> Value {
    json!({
        "window": window(d.window.as_ref()),
        "baseline": window(d.baseline.as_ref()),
        "sentiment": d.sentiment,
        "posts": d.posts,
        "baseline_posts": d.baseline_posts,
        "threshold": d.threshold,
        "terms_tested": d.terms_tested,
        "drivers": d.drivers.iter().map(|driver| json!({
            "term": driver.term,
            "kind": term_kind(driver.kind),
            "score": driver.score,
            "log_odds": driver.log_odds,
            "count": driver.count,
            "baseline_count": driver.baseline_count,
            "share": driver.share,
            "baseline_share": driver.baseline_share,
            "sentiment_split": sentiment_counts(driver.sentiment_split.as_ref()),
            "examples": driver.examples.iter().map(|e| {
                let post = e.post.clone().unwrap_or_default();
                json!({
                    "post_id": post.post_id,
                    "source": post.source,
                    "author": post.author,
                    "content": post.content,
                    "created_at": time(post.created_at.as_ref()),
                    "sentiment_label": e.sentiment_label,
                })
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Share of `part` in `whole`; `None` without a whole.
fn share_of(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

pub fn entities(e: &v1::GetEntitiesResponse) -> Value {
    json!({
        "window": window(e.window.as_ref()),
        "baseline": window(e.baseline.as_ref()),
        "entities": e.entities.iter().map(|entity| {
            let now = entity.posts.unwrap_or_default();
            let before = entity.baseline_posts.unwrap_or_default();
            let (total, base) = (
                now.positive + now.neutral + now.negative,
                before.positive + before.neutral + before.negative,
            );
            let change = |a: u64, b: u64| {
                share_of(a, total)
                    .zip(share_of(b, base))
                    .map(|(now, before)| now - before)
            };
            json!({
                "entity": entity.entity,
                "kind": term_kind(entity.kind),
                "posts": total,
                "positive": now.positive,
                "neutral": now.neutral,
                "negative": now.negative,
                "baseline_posts": base,
                "baseline_positive": before.positive,
                "baseline_neutral": before.neutral,
                "baseline_negative": before.negative,
                "change": {
                    "posts": (base > 0).then(|| (total as f64 - base as f64) / base as f64),
                    "positive": change(now.positive, before.positive),
                    "neutral": change(now.neutral, before.neutral),
                    "negative": change(now.negative, before.negative),
                },
            })
        }).collect::<Vec<_>>(),
    })
}
