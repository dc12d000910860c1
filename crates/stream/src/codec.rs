//! The stream entry of a post: flat string fields, versioned, with the trace context.
//!
//! Flat fields (rather than one JSON blob) keep entries readable with `redis-cli XRANGE` and
//! let the dead-letter stream copy them unchanged.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pulse_domain::{Post, PostError};
use redis::Value;

/// Version of the entry layout, written in field `v`.
pub const ENTRY_VERSION: &str = "1";

/// A post as carried by the work stream.
#[derive(Debug, Clone, PartialEq)]
pub struct PostEntry {
    pub post: Post,
    /// W3C trace context of the publisher, when a trace was active.
    pub traceparent: Option<String>,
}

/// Why a stream entry is not a valid post.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("field {0} is missing")]
    MissingField(&'static str),
    #[error("field {0} is not UTF-8 text")]
    NotText(&'static str),
    #[error("unsupported entry version {0:?}")]
    Version(String),
    #[error("created_at is not an RFC 3339 timestamp: {0}")]
    Timestamp(String),
    #[error("invalid post: {0}")]
    Invalid(#[from] PostError),
}

impl PostEntry {
    /// Field-value pairs for XADD.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("v", ENTRY_VERSION.to_owned()),
            ("post_id", self.post.post_id.clone()),
            ("source", self.post.source.clone()),
            ("author", self.post.author.clone()),
            ("content", self.post.content.clone()),
            (
                "created_at",
                self.post
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
        ];
        if let Some(traceparent) = &self.traceparent {
            fields.push(("traceparent", traceparent.clone()));
        }
        fields
    }

    /// Decodes and validates an entry read from the stream.
    pub fn decode(
        fields: &HashMap<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Self, DecodeError> {
        let version = text(fields, "v")?;
        if version != ENTRY_VERSION {
            return Err(DecodeError::Version(version));
        }
        let created_at = text(fields, "created_at")?;
        let created_at = DateTime::parse_from_rfc3339(&created_at)
            .map_err(|_| DecodeError::Timestamp(created_at))?
            .with_timezone(&Utc);
        let post = Post {
            post_id: text(fields, "post_id")?,
            source: text(fields, "source")?,
            author: text(fields, "author")?,
            content: text(fields, "content")?,
            created_at,
        };
        post.validate(now)?;
        let traceparent = match fields.get("traceparent") {
            Some(_) => Some(text(fields, "traceparent")?),
            None => None,
        };
        Ok(PostEntry { post, traceparent })
    }
}

fn text(fields: &HashMap<String, Value>, name: &'static str) -> Result<String, DecodeError> {
    match fields.get(name) {
        Some(Value::BulkString(bytes)) => {
            String::from_utf8(bytes.clone()).map_err(|_| DecodeError::NotText(name))
        }
        Some(Value::SimpleString(s)) => Ok(s.clone()),
        Some(_) => Err(DecodeError::NotText(name)),
        None => Err(DecodeError::MissingField(name)),
    }
}

/// Every field of an entry as text (lossy), for copying it into the dead-letter stream.
pub fn raw_fields(fields: &HashMap<String, Value>) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fields
        .iter()
        .map(|(k, v)| {
            let bytes = match v {
                Value::BulkString(bytes) => bytes.clone(),
                Value::SimpleString(s) => s.clone().into_bytes(),
                other => format!("{other:?}").into_bytes(),
            };
            (k.clone(), bytes)
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> PostEntry {
        PostEntry {
            post: Post {
                post_id: "p-1".into(),
                source: "reddit".into(),
                author: "ada".into(),
                content: "ünïcode ok".into(),
                created_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default(),
            },
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        }
    }

    fn as_stream_fields(entry: &PostEntry) -> HashMap<String, Value> {
        entry
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::BulkString(v.into_bytes())))
            .collect()
    }

    #[test]
    fn round_trip() {
        let original = entry();
        let decoded = PostEntry::decode(&as_stream_fields(&original), Utc::now());
        assert_eq!(decoded, Ok(original));
    }

    #[test]
    fn malformed_entries_say_why() {
        let now = Utc::now();
        let mut fields = as_stream_fields(&entry());
        fields.remove("content");
        assert_eq!(
            PostEntry::decode(&fields, now),
            Err(DecodeError::MissingField("content"))
        );
        let mut fields = as_stream_fields(&entry());
        fields.insert(
            "created_at".into(),
            Value::BulkString(b"yesterday".to_vec()),
        );
        assert!(matches!(
            PostEntry::decode(&fields, now),
            Err(DecodeError::Timestamp(_))
        ));
        let mut fields = as_stream_fields(&entry());
        fields.insert("author".into(), Value::BulkString(vec![0xff, 0xfe]));
        assert_eq!(
            PostEntry::decode(&fields, now),
            Err(DecodeError::NotText("author"))
        );
        let mut fields = as_stream_fields(&entry());
        fields.insert("v".into(), Value::BulkString(b"9".to_vec()));
        assert!(matches!(
            PostEntry::decode(&fields, now),
            Err(DecodeError::Version(_))
        ));
        let mut fields = as_stream_fields(&entry());
        fields.insert("source".into(), Value::BulkString(b"Bad Source".to_vec()));
        assert!(matches!(
            PostEntry::decode(&fields, now),
            Err(DecodeError::Invalid(_))
        ));
    }
}
