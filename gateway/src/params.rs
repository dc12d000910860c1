//! Query-string validation: every parameter is known, well-formed and in range, or the request
//! is refused with 400 and a code naming the problem.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use pulse_domain::datetime_to_timestamp;
use pulse_proto::v1::PostFilter;
use serde_json::{Map, Value};

use crate::envelope::ApiError;

/// A time range's ends, each optional.
pub type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Longest accepted text parameter.
pub const MAX_TEXT_PARAM: usize = 200;

/// Longest accepted page cursor; the ones the API writes are shorter.
pub const MAX_CURSOR_PARAM: usize = 256;

/// Sentiment labels a filter may name.
pub const SENTIMENTS: &[&str] = &["positive", "neutral", "negative"];

/// The filter parameters shared by the post endpoints.
pub const FILTER_PARAMS: &[&str] = &[
    "source",
    "sentiment",
    "emotion",
    "search",
    "author",
    "from",
    "to",
];

/// A validated query string.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    /// Accepts `values` when every key is one of `allowed`.
    pub fn new(values: HashMap<String, String>, allowed: &[&[&str]]) -> Result<Self, ApiError> {
        let mut unknown: Vec<&str> = values
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.iter().any(|set| set.contains(k)))
            .collect();
        unknown.sort_unstable();
        if let Some(first) = unknown.first() {
            return Err(ApiError::bad_request(
                "UNKNOWN_PARAMETER",
                format!("unknown query parameter {first:?}"),
            ));
        }
        Ok(Self { values })
    }

    /// A trimmed text value; empty counts as absent.
    pub fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        let Some(value) = self.values.get(name).map(|v| v.trim()) else {
            return Ok(None);
        };
        if value.is_empty() {
            return Ok(None);
        }
        if value.chars().count() > MAX_TEXT_PARAM {
            return Err(ApiError::bad_request(
                "PARAMETER_TOO_LONG",
                format!("{name} is longer than {MAX_TEXT_PARAM} characters"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "INVALID_PARAMETER",
                format!("{name} contains control characters"),
            ));
        }
        Ok(Some(value.to_owned()))
    }

    /// One of `allowed` (case-insensitive), lower-cased.
    pub fn choice(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.text(name)? {
            None => Ok(None),
            Some(v) => {
                let v = v.to_lowercase();
                if allowed.contains(&v.as_str()) {
                    Ok(Some(v))
                } else {
                    Err(ApiError::bad_request(
                        "INVALID_PARAMETER",
                        format!("{name} must be one of {}", allowed.join(", ")),
                    ))
                }
            }
        }
    }

    /// An integer in `min..=max`, or `default` when absent.
    pub fn integer(&self, name: &str, default: u32, min: u32, max: u32) -> Result<u32, ApiError> {
        let Some(raw) = self.text(name)? else {
            return Ok(default);
        };
        let out_of_range = || {
            ApiError::bad_request(
                "OUT_OF_RANGE",
                format!("{name} must be an integer from {min} to {max}"),
            )
        };
        let value: u64 = raw.parse().map_err(|_| out_of_range())?;
        u32::try_from(value)
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(out_of_range)
    }

    /// A page cursor handed out by the API (URL-safe base64); empty counts as absent.
    ///
    /// Only its shape is checked here, the service that wrote it reads it; anything malformed
    /// is `INVALID_ARGUMENT` naming the parameter, as the service's own refusal is.
    pub fn cursor(&self, name: &str) -> Result<Option<String>, ApiError> {
        let Some(value) = self.values.get(name).map(|v| v.trim()) else {
            return Ok(None);
        };
        if value.is_empty() {
            return Ok(None);
        }
        if value.len() > MAX_CURSOR_PARAM
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ApiError::bad_request(
                "INVALID_ARGUMENT",
                format!("{name} is not a valid page cursor: pass back a next_cursor unchanged"),
            ));
        }
        Ok(Some(value.to_owned()))
    }

    /// `true`/`false`/`1`/`0`, or false when absent.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.text(name)?.as_deref() {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(_) => Err(ApiError::bad_request(
                "INVALID_PARAMETER",
                format!("{name} must be true or false"),
            )),
        }
    }

    /// An RFC 3339 time (`2026-01-02T03:04:05Z`).
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.text(name)?
            .map(|raw| {
                DateTime::parse_from_rfc3339(&raw)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::bad_request(
                            "INVALID_DATE",
                            format!("{name} must be an RFC 3339 time such as 2026-01-02T03:04:05Z"),
                        )
                    })
            })
            .transpose()
    }

    /// A duration: whole seconds, or a number with `m`, `h` or `d` (`30m`, `24h`, `7d`),
    /// from one minute to `max_days` days.
    pub fn duration(&self, name: &str, max_days: i64) -> Result<Option<TimeDelta>, ApiError> {
        let invalid = || {
            ApiError::bad_request(
                "INVALID_PARAMETER",
                format!(
                    "{name} must be a duration such as 30m, 24h or 7d (or seconds), from 1 minute to {max_days} days"
                ),
            )
        };
        let Some(raw) = self.text(name)? else {
            return Ok(None);
        };
        let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
            Some(at) => raw.split_at(at),
            None => (raw.as_str(), "s"),
        };
        let amount: i64 = number.parse().map_err(|_| invalid())?;
        let seconds = match unit {
            "s" => Some(amount),
            "m" => amount.checked_mul(60),
            "h" => amount.checked_mul(3_600),
            "d" => amount.checked_mul(86_400),
            _ => None,
        }
        .ok_or_else(invalid)?;
        if !(60..=max_days * 86_400).contains(&seconds) {
            return Err(invalid());
        }
        Ok(Some(TimeDelta::seconds(seconds)))
    }

    /// `from` and `to`, each optional; refused when `from` is not before `to`.
    pub fn range(&self) -> Result<Range, ApiError> {
        let from = self.time("from")?;
        let to = self.time("to")?;
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(ApiError::bad_request(
                "INVALID_RANGE",
                "from must be before to",
            ));
        }
        Ok((from, to))
    }

    /// The post filter, and its echo for the envelope's `filters`.
    pub fn post_filter(&self) -> Result<(PostFilter, Value), ApiError> {
        let (from, to) = self.range()?;
        let filter = PostFilter {
            source: self.text("source")?.unwrap_or_default(),
            sentiment: self.choice("sentiment", SENTIMENTS)?.unwrap_or_default(),
            emotion: self
                .text("emotion")?
                .map(|e| e.to_lowercase())
                .unwrap_or_default(),
            search: self.text("search")?.unwrap_or_default(),
            author: self.text("author")?.unwrap_or_default(),
            from: from.map(datetime_to_timestamp),
            to: to.map(datetime_to_timestamp),
        };
        let mut echo = Map::new();
        for (name, value) in [
            ("source", &filter.source),
            ("sentiment", &filter.sentiment),
            ("emotion", &filter.emotion),
            ("search", &filter.search),
            ("author", &filter.author),
        ] {
            if !value.is_empty() {
                echo.insert(name.into(), Value::String(value.clone()));
            }
        }
        for (name, value) in [("from", from), ("to", to)] {
            if let Some(t) = value {
                echo.insert(name.into(), Value::String(t.to_rfc3339()));
            }
        }
        Ok((filter, Value::Object(echo)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_are_bounded() {
        let parse = |raw: &str| {
            Params::new(
                HashMap::from([("baseline".to_owned(), raw.to_owned())]),
                &[&["baseline"]],
            )
            .and_then(|p| p.duration("baseline", 31))
        };
        assert_eq!(parse("30m").ok().flatten(), Some(TimeDelta::minutes(30)));
        assert_eq!(parse("24h").ok().flatten(), Some(TimeDelta::hours(24)));
        assert_eq!(parse("7d").ok().flatten(), Some(TimeDelta::days(7)));
        assert_eq!(parse("3600").ok().flatten(), Some(TimeDelta::hours(1)));
        for bad in ["59", "32d", "1w", "h", "-5m", "99999999999999999999d"] {
            assert_eq!(
                parse(bad).err().map(|e| e.code),
                Some("INVALID_PARAMETER"),
                "{bad}"
            );
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Result<Params, ApiError> {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            &[FILTER_PARAMS, &["limit"]],
        )
    }

    #[test]
    fn unknown_and_malformed_parameters_are_refused_with_a_code() {
        assert_eq!(
            params(&[("nope", "1")]).err().map(|e| e.code),
            Some("UNKNOWN_PARAMETER")
        );
        let p = params(&[
            ("limit", "0"),
            ("from", "yesterday"),
            ("sentiment", "angry"),
        ])
        .expect("known");
        assert_eq!(
            p.integer("limit", 50, 1, 500).err().map(|e| e.code),
            Some("OUT_OF_RANGE")
        );
        assert_eq!(p.time("from").err().map(|e| e.code), Some("INVALID_DATE"));
        assert_eq!(p.post_filter().err().map(|e| e.code), Some("INVALID_DATE"));
        let p = params(&[("limit", "99999999999999999999")]).expect("known");
        assert_eq!(
            p.integer("limit", 50, 1, 500).err().map(|e| e.code),
            Some("OUT_OF_RANGE")
        );
        let p = params(&[("sentiment", "Angry")]).expect("known");
        assert_eq!(
            p.post_filter().err().map(|e| e.code),
            Some("INVALID_PARAMETER")
        );
        let p = params(&[
            ("from", "2026-01-02T00:00:00Z"),
            ("to", "2026-01-01T00:00:00Z"),
        ])
        .expect("known");
        assert_eq!(p.post_filter().err().map(|e| e.code), Some("INVALID_RANGE"));
        let long = "x".repeat(201);
        let p = params(&[("search", long.as_str())]).expect("known");
        assert_eq!(
            p.post_filter().err().map(|e| e.code),
            Some("PARAMETER_TOO_LONG")
        );
    }

    #[test]
    fn cursors_are_url_safe_base64_or_refused() {
        let cursor = |value: &str| {
            Params::new(
                [("cursor".to_owned(), value.to_owned())].into(),
                &[&["cursor"]],
            )
            .and_then(|p| p.cursor("cursor"))
        };
        assert_eq!(cursor("AQAB-_x9").ok(), Some(Some("AQAB-_x9".to_owned())));
        assert_eq!(cursor(" ").ok(), Some(None));
        for bad in [
            "a+b",
            "a/b",
            "a=",
            "a b",
            "a\u{0}b",
            &"A".repeat(MAX_CURSOR_PARAM + 1),
        ] {
            let error = cursor(bad).expect_err(bad);
            assert_eq!(error.code, "INVALID_ARGUMENT", "{bad}");
            assert!(error.message.starts_with("cursor "), "{}", error.message);
        }
    }

    #[test]
    fn valid_filters_are_echoed() {
        let p = params(&[
            ("sentiment", "NEGATIVE"),
            ("source", "reddit"),
            ("limit", "20"),
        ])
        .expect("known");
        let (filter, echo) = p.post_filter().expect("valid");
        assert_eq!(filter.sentiment, "negative");
        assert_eq!(echo["source"], "reddit");
        assert_eq!(p.integer("limit", 50, 1, 500).ok(), Some(20));
    }
}
