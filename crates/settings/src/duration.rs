//! Durations in settings.
//!
//! Existing deployments set `BLOCK_MS=200` or `ALERT_INTERVAL_SECS=60`, so a bare number keeps
//! meaning the unit the setting is named in; a value may also carry its unit (`250ms`, `2s`,
//! `5m`, `1h`), which reads better and cannot be misread. Each flag picks its unit's parser:
//!
//! ```
//! use std::time::Duration;
//! #[derive(clap::Parser)]
//! struct Config {
//!     #[arg(long, env = "BLOCK_MS", default_value = "1000", value_parser = pulse_settings::duration::millis)]
//!     block_ms: Duration,
//! }
//! # use clap::Parser;
//! assert_eq!(Config::parse_from(["x", "--block-ms", "200"]).block_ms, Duration::from_millis(200));
//! assert_eq!(Config::parse_from(["x", "--block-ms", "2s"]).block_ms, Duration::from_secs(2));
//! ```

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration: write a whole number, optionally with a unit (us, ms, s, m, h)")]
pub struct DurationError(String);

/// A bare number in microseconds, or a number with a unit.
pub fn micros(text: &str) -> Result<Duration, DurationError> {
    parse(text, Duration::from_micros)
}

/// A bare number in milliseconds, or a number with a unit.
pub fn millis(text: &str) -> Result<Duration, DurationError> {
    parse(text, Duration::from_millis)
}

/// A bare number in seconds, or a number with a unit.
pub fn secs(text: &str) -> Result<Duration, DurationError> {
    parse(text, Duration::from_secs)
}

/// A bare number in hours, or a number with a unit.
pub fn hours(text: &str) -> Result<Duration, DurationError> {
    parse(text, |h| Duration::from_secs(h.saturating_mul(3_600)))
}

fn parse(text: &str, bare: fn(u64) -> Duration) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let error = || DurationError(text.to_owned());
    let value: u64 = number.parse().map_err(|_| error())?;
    let of = |factor: u64| {
        value
            .checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(error)
    };
    match unit.trim() {
        "" => Ok(bare(value)),
        "us" => Ok(Duration::from_micros(value)),
        "ms" => Ok(Duration::from_millis(value)),
        "s" => of(1),
        "m" => of(60),
        "h" => of(3_600),
        _ => Err(error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_keep_the_unit_of_the_setting() {
        assert_eq!(millis("200"), Ok(Duration::from_millis(200)));
        assert_eq!(secs("60"), Ok(Duration::from_secs(60)));
        assert_eq!(micros("1000"), Ok(Duration::from_millis(1)));
        assert_eq!(secs("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn units_may_be_spelled_out() {
        assert_eq!(secs("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(millis("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(millis("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(secs("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(millis(" 3 s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn anything_else_is_refused_with_the_value() {
        for bad in ["", "-1", "1.5s", "10 days", "s", "99999999999999999999"] {
            let error = millis(bad).expect_err(bad);
            assert!(error.to_string().contains(&format!("`{bad}`")), "{error}");
        }
        assert!(secs("18446744073709551615h").is_err());
    }
}
