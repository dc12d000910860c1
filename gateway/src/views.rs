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
