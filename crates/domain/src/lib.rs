//! The domain model: a post, its validation, the analysis stored for it, and their protobuf
//! conversions. Pure data and rules, no I/O, so every crate can depend on it cheaply.
//!
//! Validation lives here because every entry point (the generator, `IngestService.Publish`,
//! replay, and the worker decoding stream entries) must agree on what a valid post is.

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulse_proto::v1;

/// Longest accepted post id, in bytes.
pub const MAX_POST_ID_LEN: usize = 128;
/// Longest accepted source name, in bytes.
pub const MAX_SOURCE_LEN: usize = 50;
/// Longest accepted author name, in characters.
pub const MAX_AUTHOR_CHARS: usize = 255;
/// Longest accepted content, in characters.
pub const MAX_CONTENT_CHARS: usize = 5_000;
/// How far in the future a post's timestamp may lie (clock skew between sources).
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// A social-media post.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Post {
    pub post_id: String,
    pub source: String,
    pub author: String,
    pub content: String,
    pub created_at: DateTime<Utc>,
}

/// Why a post was refused. The message names the field so a publisher can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field} is too long: {len} > {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} contains characters outside {allowed}")]
    BadCharacters {
        field: &'static str,
        allowed: &'static str,
    },
    #[error("created_at is invalid: {0}")]
    BadTimestamp(String),
}

impl PostError {
    /// A stable machine-readable code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            PostError::Missing { .. } => "MISSING_FIELD",
            PostError::TooLong { .. } => "FIELD_TOO_LONG",
            PostError::BadCharacters { .. } => "INVALID_CHARACTERS",
            PostError::BadTimestamp(_) => "INVALID_TIMESTAMP",
        }
    }
}

impl Post {
    /// Checks every field against the platform's limits, relative to `now`.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), PostError> {
        check_identifier("post_id", &self.post_id, MAX_POST_ID_LEN, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
        })
        .map_err(|e| match e {
            PostError::BadCharacters { field, .. } => PostError::BadCharacters {
                field,
                allowed: "[A-Za-z0-9._:-]",
            },
            other => other,
        })?;
        check_identifier("source", &self.source, MAX_SOURCE_LEN, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
        })?;
        if self.author.trim().is_empty() {
            return Err(PostError::Missing { field: "author" });
        }
        check_chars("author", &self.author, MAX_AUTHOR_CHARS)?;
        if self.content.trim().is_empty() {
            return Err(PostError::Missing { field: "content" });
        }
        check_chars("content", &self.content, MAX_CONTENT_CHARS)?;
        if self.author.contains('\0') || self.content.contains('\0') {
            return Err(PostError::BadCharacters {
                field: "content",
                allowed: "text without NUL bytes",
            });
        }
        let earliest = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if earliest.is_some_and(|earliest| self.created_at < earliest) {
            return Err(PostError::BadTimestamp("before 2000-01-01".into()));
        }
        if self.created_at > now + MAX_CLOCK_SKEW {
            return Err(PostError::BadTimestamp(format!(
                "{} is in the future",
                self.created_at.to_rfc3339()
            )));
        }
        Ok(())
    }
}

fn check_identifier(
    field: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), PostError> {
    if value.is_empty() {
        return Err(PostError::Missing { field });
    }
    if value.len() > max {
        return Err(PostError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    if !value.chars().all(allowed) {
        return Err(PostError::BadCharacters {
            field,
            allowed: "[a-z0-9._-]",
        });
    }
    Ok(())
}

fn check_chars(field: &'static str, value: &str, max: usize) -> Result<(), PostError> {
    let len = value.chars().count();
    if len > max {
        return Err(PostError::TooLong { field, len, max });
    }
    Ok(())
}

/// The analysis of one post, as the worker stores it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Analysis {
    pub post_id: String,
    /// Model that produced the sentiment.
    pub model_name: String,
    pub sentiment_label: String,
    pub confidence_score: f32,
    pub emotion: Option<String>,
    pub emotion_score: Option<f32>,
    pub emotion_model: Option<String>,
    pub analyzed_at: DateTime<Utc>,
}

/// Converts a protobuf timestamp; `None` when absent or out of range.
pub fn timestamp_to_datetime(ts: &pulse_proto::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos).ok()?;
    DateTime::from_timestamp(ts.seconds, nanos)
}

pub fn datetime_to_timestamp(at: DateTime<Utc>) -> pulse_proto::Timestamp {
    pulse_proto::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

impl TryFrom<v1::Post> for Post {
    type Error = PostError;

    fn try_from(post: v1::Post) -> Result<Self, Self::Error> {
        let created_at = post
            .created_at
            .as_ref()
            .ok_or(PostError::Missing {
                field: "created_at",
            })
            .and_then(|ts| {
                timestamp_to_datetime(ts)
                    .ok_or_else(|| PostError::BadTimestamp("out of range".into()))
            })?;
        Ok(Post {
            post_id: post.post_id,
            source: post.source,
            author: post.author,
            content: post.content,
            created_at,
        })
    }
}

impl From<Post> for v1::Post {
    fn from(post: Post) -> Self {
        v1::Post {
            post_id: post.post_id,
            source: post.source,
            author: post.author,
            content: post.content,
            created_at: Some(datetime_to_timestamp(post.created_at)),
        }
    }
}

impl From<Analysis> for v1::PostAnalysis {
    fn from(a: Analysis) -> Self {
        v1::PostAnalysis {
            model_name: a.model_name,
            sentiment_label: a.sentiment_label,
            confidence_score: a.confidence_score,
            emotion: a.emotion.unwrap_or_default(),
            emotion_score: a.emotion_score.unwrap_or_default(),
            analyzed_at: Some(datetime_to_timestamp(a.analyzed_at)),
            emotion_model: a.emotion_model.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post() -> Post {
        Post {
            post_id: "tw-1".into(),
            source: "twitter".into(),
            author: "ada".into(),
            content: "Loving the new phone".into(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_complete_post_is_valid() {
        assert_eq!(post().validate(Utc::now()), Ok(()));
    }

    #[test]
    fn each_rule_names_its_field() {
        let now = Utc::now();
        let cases: Vec<(Post, &str)> = vec![
            (
                Post {
                    post_id: String::new(),
                    ..post()
                },
                "MISSING_FIELD",
            ),
            (
                Post {
                    post_id: "a b".into(),
                    ..post()
                },
                "INVALID_CHARACTERS",
            ),
            (
                Post {
                    post_id: "x".repeat(129),
                    ..post()
                },
                "FIELD_TOO_LONG",
            ),
            (
                Post {
                    source: "Twitter".into(),
                    ..post()
                },
                "INVALID_CHARACTERS",
            ),
            (
                Post {
                    author: "  ".into(),
                    ..post()
                },
                "MISSING_FIELD",
            ),
            (
                Post {
                    content: "\n".into(),
                    ..post()
                },
                "MISSING_FIELD",
            ),
            (
                Post {
                    content: "é".repeat(5_001),
                    ..post()
                },
                "FIELD_TOO_LONG",
            ),
            (
                Post {
                    content: "a\0b".into(),
                    ..post()
                },
                "INVALID_CHARACTERS",
            ),
            (
                Post {
                    created_at: now + Duration::hours(1),
                    ..post()
                },
                "INVALID_TIMESTAMP",
            ),
        ];
        for (post, code) in cases {
            let err = post.validate(now).expect_err("must be refused");
            assert_eq!(err.code(), code, "{err}");
        }
        // Multi-byte characters count as characters, not bytes.
        assert!(
            Post {
                content: "é".repeat(5_000),
                ..post()
            }
            .validate(now)
            .is_ok()
        );
    }

    #[test]
    fn proto_round_trip_keeps_every_field() {
        let original = post();
        let wire: v1::Post = original.clone().into();
        assert_eq!(Post::try_from(wire), Ok(original));
        let missing = v1::Post {
            created_at: None,
            ..post().into()
        };
        assert_eq!(
            Post::try_from(missing),
            Err(PostError::Missing {
                field: "created_at"
            })
        );
    }
}
