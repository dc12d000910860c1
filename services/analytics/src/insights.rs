//! What drives a sentiment, and how each entity fares: `GetDrivers`, `GetEntities`, and the
//! drivers an alert stores in its details.
//!
//! Both read the term rollups of two windows: the one looked at and a baseline (by default the
//! same length just before it). Windows are aligned to whole minutes, the rollups' finest unit
//! (whole hours for windows of six hours or more), and the baseline is cut where the window
//! starts, so no minute is counted in both. A driver is
//! a term whose share among the window's posts of the sentiment rose against the baseline's by
//! more than chance explains (`pulse_insights::drivers`).

use chrono::{DateTime, TimeDelta, Utc};
use pulse_domain::{datetime_to_timestamp, timestamp_to_datetime};
use pulse_insights::{
    drivers::{self, Settings},
    log_odds::Counts,
    terms::Kind,
};
use pulse_proto::v1;
use pulse_store::{
    StoreError,
    rollups::{ceil, floor},
    terms::{self, Counted, Example, SentimentCounts, TermCount, TermKind},
};
use serde_json::{Value, json};
use tokio_postgres::Client;
use tonic::Status;

/// Longest window or baseline.
pub const MAX_SPAN: TimeDelta = TimeDelta::days(31);
/// The window when none is given: the last hour.
const DEFAULT_SPAN: TimeDelta = TimeDelta::hours(1);
/// Drivers answered when the caller gives no limit, and at most.
pub const DEFAULT_DRIVERS: u32 = 10;
pub const MAX_DRIVERS: u32 = 50;
/// Entities answered when the caller gives no limit, and at most.
pub const DEFAULT_ENTITIES: u32 = 20;
pub const MAX_ENTITIES: u32 = 100;
/// Example posts per driver.
const EXAMPLES: usize = 2;
/// Drivers an alert names in its details.
pub const ALERT_DRIVERS: usize = 8;

/// The sentiments drivers can be asked for; "all" counts every post.
const SENTIMENTS: [&str; 4] = ["negative", "positive", "neutral", "all"];

/// A window and its baseline, aligned to whole minutes and not overlapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub baseline_from: DateTime<Utc>,
    pub baseline_to: DateTime<Utc>,
}

/// Windows at least this long are counted in whole hours: a day then reads 24 hour rows per
/// term rather than up to two hours of minute rows at its ends, which is most of the cost once
/// the vocabulary is large.
pub const HOURLY_FROM: TimeDelta = TimeDelta::hours(6);

impl Windows {
    /// The window `[from, to)` and its baseline, as counted: the window widened to whole
    /// minutes (whole hours from [`HOURLY_FROM`] on), the baseline `[baseline_from,
    /// baseline_to)` (by default the window's length just before it) widened to the same unit
    /// but ending no later than the window starts.
    pub fn aligned(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        baseline: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Self {
        let unit = if to - from >= HOURLY_FROM {
            TimeDelta::hours(1)
        } else {
            TimeDelta::minutes(1)
        };
        let (from, to) = (floor(from, unit), ceil(to, unit));
        let (baseline_from, baseline_to) = baseline.unwrap_or((from - (to - from), from));
        let baseline_to = ceil(baseline_to, unit).min(from);
        let baseline_from = floor(baseline_from, unit).min(baseline_to);
        Windows {
            from,
            to,
            baseline_from,
            baseline_to,
        }
    }

    /// The windows of a request, validated: defaults filled in, bounds checked.
    pub fn from_wire(
        window: Option<v1::TimeWindow>,
        baseline: Option<v1::TimeWindow>,
        now: DateTime<Utc>,
    ) -> Result<Self, Status> {
        let (from, to) = bounds("window", window.as_ref())?;
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - DEFAULT_SPAN);
        check_span("window", from, to)?;
        let baseline = match baseline.as_ref() {
            None => None,
            Some(b) => {
                let (b_from, b_to) = bounds("baseline", Some(b))?;
                let b_to = b_to.unwrap_or(from);
                let b_from = b_from.unwrap_or(b_to - (to - from));
                check_span("baseline", b_from, b_to)?;
                if b_to > from {
                    return Err(Status::invalid_argument(
                        "the baseline must end where the window starts, or before",
                    ));
                }
                Some((b_from, b_to))
            }
        };
        Ok(Self::aligned(from, to, baseline))
    }
}

/// The ends of a wire window, each optional.
type Ends = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn bounds(name: &str, window: Option<&v1::TimeWindow>) -> Result<Ends, Status> {
    let at = |ts: Option<&pulse_proto::Timestamp>, end: &str| {
        ts.map(|ts| {
            timestamp_to_datetime(ts).ok_or_else(|| {
                Status::invalid_argument(format!("{name}.{end} is not a valid time"))
            })
        })
        .transpose()
    };
    Ok(match window {
        None => (None, None),
        Some(w) => (at(w.from.as_ref(), "from")?, at(w.to.as_ref(), "to")?),
    })
}

fn check_span(name: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), Status> {
    if from >= to {
        return Err(Status::invalid_argument(format!(
            "the {name} must start before it ends"
        )));
    }
    if to - from > MAX_SPAN {
        return Err(Status::invalid_argument(format!(
            "the {name} spans more than {} days",
            MAX_SPAN.num_days()
        )));
    }
    Ok(())
}

/// The sentiment of a request: one of [`SENTIMENTS`], negative when empty.
pub fn sentiment(raw: &str) -> Result<&'static str, Status> {
    if raw.is_empty() {
        return Ok("negative");
    }
    SENTIMENTS
        .iter()
        .copied()
        .find(|s| *s == raw)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "sentiment must be one of {}",
                SENTIMENTS.join(", ")
            ))
        })
}

fn posts_of(counts: &SentimentCounts, sentiment: &str) -> u64 {
    if sentiment == "all" {
        counts.total()
    } else {
        counts.of(sentiment)
    }
}

/// The wire kind of a counted text.
fn kind_to_wire(kind: TermKind, term: &str) -> v1::TermKind {
    match kind {
        TermKind::Entity if term.starts_with('#') => v1::TermKind::Hashtag,
        TermKind::Entity => v1::TermKind::Entity,
        TermKind::Term => match Kind::of(term) {
            Kind::Word => v1::TermKind::Word,
            Kind::Phrase => v1::TermKind::Phrase,
            Kind::Hashtag => v1::TermKind::Hashtag,
            Kind::Mention => v1::TermKind::Mention,
        },
    }
}

fn counts_to_wire(c: &SentimentCounts) -> v1::SentimentCounts {
    v1::SentimentCounts {
        positive: c.positive,
        neutral: c.neutral,
        negative: c.negative,
    }
}

fn windows_to_wire(w: &Windows) -> (v1::TimeWindow, v1::TimeWindow) {
    (
        v1::TimeWindow {
            from: Some(datetime_to_timestamp(w.from)),
            to: Some(datetime_to_timestamp(w.to)),
        },
        v1::TimeWindow {
            from: Some(datetime_to_timestamp(w.baseline_from)),
            to: Some(datetime_to_timestamp(w.baseline_to)),
        },
    )
}

fn share(count: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        count as f64 / of as f64
    }
}

/// The counts of the window and the baseline, read together.
async fn both_counts(
    client: &Client,
    w: &Windows,
    counted: Counted,
) -> Result<(Vec<TermCount>, Vec<TermCount>), StoreError> {
    futures::try_join!(
        terms::counts(client, w.from, w.to, counted),
        terms::counts(client, w.baseline_from, w.baseline_to, counted),
    )
}

/// Every term of either window with its counts in both, matched by kind and text.
fn paired(focus: Vec<TermCount>, baseline: Vec<TermCount>) -> Vec<(TermCount, SentimentCounts)> {
    let mut before: std::collections::HashMap<(TermKind, String), SentimentCounts> = baseline
        .into_iter()
        .map(|c| ((c.kind, c.term), c.posts))
        .collect();
    let mut pairs: Vec<(TermCount, SentimentCounts)> = focus
        .into_iter()
        .map(|c| {
            let b = before.remove(&(c.kind, c.term.clone())).unwrap_or_default();
            (c, b)
        })
        .collect();
    pairs.extend(before.into_iter().map(|((kind, term), b)| {
        (
            TermCount {
                kind,
                term,
                posts: SentimentCounts::default(),
            },
            b,
        )
    }));
    pairs
}

/// The drivers of `sentiment` in the window against the baseline, at most `limit`, each with
/// up to two example posts.
pub async fn drivers(
    client: &Client,
    windows: &Windows,
    sentiment: &str,
    limit: usize,
) -> Result<v1::GetDriversResponse, StoreError> {
    let ((focus, baseline), (posts, baseline_posts)) =
        futures::try_join!(both_counts(client, windows, Counted::All), async {
            futures::try_join!(
                terms::posts(client, windows.from, windows.to),
                terms::posts(client, windows.baseline_from, windows.baseline_to),
            )
        })?;
    let pairs = paired(focus, baseline);
    let candidates: Vec<((TermKind, String), Counts)> = pairs
        .iter()
        .map(|(now, before)| {
            (
                (now.kind, now.term.clone()),
                Counts {
                    focus: posts_of(&now.posts, sentiment),
                    baseline: posts_of(before, sentiment),
                },
            )
        })
        .collect();
    let found = drivers::find(&candidates, &Settings::default());
    let top: Vec<_> = found.drivers.into_iter().take(limit).collect();
    let wanted: Vec<(TermKind, String)> = top.iter().map(|d| d.term.clone()).collect();
    let mut examples = if sentiment == "all" {
        std::collections::HashMap::new()
    } else {
        terms::examples(
            client,
            sentiment,
            &wanted,
            windows.from,
            windows.to,
            EXAMPLES,
        )
        .await?
    };
    let split = |key: &(TermKind, String)| {
        pairs
            .iter()
            .find(|(now, _)| now.kind == key.0 && now.term == key.1)
            .map(|(now, _)| now.posts)
            .unwrap_or_default()
    };
    let (n_focus, n_baseline) = (
        posts_of(&posts, sentiment),
        posts_of(&baseline_posts, sentiment),
    );
    let (window, baseline_window) = windows_to_wire(windows);
    Ok(v1::GetDriversResponse {
        window: Some(window),
        baseline: Some(baseline_window),
        sentiment: sentiment.to_owned(),
        posts: n_focus,
        baseline_posts: n_baseline,
        threshold: found.threshold,
        terms_tested: u32::try_from(found.tested).unwrap_or(u32::MAX),
        drivers: top
            .iter()
            .map(|d| v1::Driver {
                term: d.term.1.clone(),
                kind: kind_to_wire(d.term.0, &d.term.1).into(),
                score: d.z,
                log_odds: d.delta,
                count: d.counts.focus,
                baseline_count: d.counts.baseline,
                share: share(d.counts.focus, n_focus),
                baseline_share: share(d.counts.baseline, n_baseline),
                sentiment_split: Some(counts_to_wire(&split(&d.term))),
                examples: examples
                    .remove(&d.term)
                    .unwrap_or_default()
                    .into_iter()
                    .map(example_to_wire)
                    .collect(),
            })
            .collect(),
    })
}

fn example_to_wire(e: Example) -> v1::DriverExample {
    v1::DriverExample {
        post: Some(v1::Post {
            post_id: e.post_id,
            source: e.source,
            author: e.author,
            content: e.content,
            created_at: Some(datetime_to_timestamp(e.created_at)),
        }),
        sentiment_label: e.sentiment,
    }
}

/// Volume and sentiment per entity in the window and the baseline, the `limit` most mentioned
/// in the window first.
pub async fn entities(
    client: &Client,
    windows: &Windows,
    limit: usize,
) -> Result<v1::GetEntitiesResponse, StoreError> {
    let (focus, baseline) = both_counts(client, windows, Counted::Entities).await?;
    let mut pairs: Vec<(TermCount, SentimentCounts)> = paired(focus, baseline)
        .into_iter()
        .filter(|(c, _)| c.posts.total() > 0)
        .collect();
    pairs.sort_by(|(a, _), (b, _)| {
        b.posts
            .total()
            .cmp(&a.posts.total())
            .then_with(|| a.term.cmp(&b.term))
    });
    pairs.truncate(limit);
    let (window, baseline_window) = windows_to_wire(windows);
    Ok(v1::GetEntitiesResponse {
        window: Some(window),
        baseline: Some(baseline_window),
        entities: pairs
            .into_iter()
            .map(|(now, before)| v1::EntitySentiment {
                kind: kind_to_wire(now.kind, &now.term).into(),
                entity: now.term,
                posts: Some(counts_to_wire(&now.posts)),
                baseline_posts: Some(counts_to_wire(&before)),
            })
            .collect(),
    })
}

/// The drivers an alert stores in its details: the top [`ALERT_DRIVERS`] with their counts,
/// and the windows compared.
pub fn alert_details(answer: &v1::GetDriversResponse) -> Value {
    let time = |w: Option<&v1::TimeWindow>,
                end: fn(&v1::TimeWindow) -> Option<&pulse_proto::Timestamp>| {
        w.and_then(end)
            .and_then(timestamp_to_datetime)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    json!({
        "drivers": answer.drivers.iter().take(ALERT_DRIVERS).map(|d| json!({
            "term": d.term,
            "kind": kind_name(d.kind),
            "score": d.score,
            "count": d.count,
            "baseline_count": d.baseline_count,
            "share": d.share,
            "baseline_share": d.baseline_share,
        })).collect::<Vec<_>>(),
        "drivers_sentiment": answer.sentiment,
        "drivers_window": {
            "from": time(answer.window.as_ref(), |w| w.from.as_ref()),
            "to": time(answer.window.as_ref(), |w| w.to.as_ref()),
        },
        "drivers_baseline": {
            "from": time(answer.baseline.as_ref(), |w| w.from.as_ref()),
            "to": time(answer.baseline.as_ref(), |w| w.to.as_ref()),
        },
    })
}

/// The REST name of a wire kind: `word`, `phrase`, `hashtag`, `mention`, `entity`.
pub fn kind_name(kind: i32) -> String {
    v1::TermKind::try_from(kind)
        .map_or("TERM_KIND_UNSPECIFIED", |k| k.as_str_name())
        .trim_start_matches("TERM_KIND_")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, h, m, s)
            .single()
            .expect("valid time")
    }

    #[test]
    fn windows_are_whole_minutes_and_the_baseline_never_overlaps() {
        let w = Windows::aligned(t(10, 3, 27), t(10, 8, 27), None);
        assert_eq!((w.from, w.to), (t(10, 3, 0), t(10, 9, 0)));
        assert_eq!((w.baseline_from, w.baseline_to), (t(9, 57, 0), t(10, 3, 0)));
        let w = Windows::aligned(
            t(10, 3, 27),
            t(10, 8, 27),
            Some((t(9, 3, 27), t(10, 3, 27))),
        );
        assert_eq!(w.baseline_to, t(10, 3, 0), "cut where the window starts");
        assert_eq!(w.baseline_from, t(9, 3, 0));
        let day = Windows::aligned(t(10, 3, 27) - TimeDelta::hours(24), t(10, 3, 27), None);
        assert_eq!(
            (day.from, day.to),
            (t(10, 0, 0) - TimeDelta::hours(24), t(11, 0, 0)),
            "whole hours for a long window"
        );
        assert_eq!(day.baseline_to, day.from);
        assert_eq!(day.baseline_to - day.baseline_from, TimeDelta::hours(25));
    }

    fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> v1::TimeWindow {
        v1::TimeWindow {
            from: Some(datetime_to_timestamp(from)),
            to: Some(datetime_to_timestamp(to)),
        }
    }

    #[test]
    fn requests_get_defaults_and_bad_windows_are_refused() {
        let now = t(12, 0, 0);
        let w = Windows::from_wire(None, None, now).expect("defaults");
        assert_eq!((w.from, w.to), (t(11, 0, 0), t(12, 0, 0)));
        assert_eq!((w.baseline_from, w.baseline_to), (t(10, 0, 0), t(11, 0, 0)));
        let backwards = Windows::from_wire(Some(window(t(11, 0, 0), t(10, 0, 0))), None, now);
        assert_eq!(
            backwards.err().map(|s| s.code()),
            Some(tonic::Code::InvalidArgument)
        );
        let long = Windows::from_wire(
            Some(window(t(11, 0, 0) - TimeDelta::days(40), t(11, 0, 0))),
            None,
            now,
        );
        assert!(long.is_err());
        let overlapping = Windows::from_wire(
            Some(window(t(10, 0, 0), t(11, 0, 0))),
            Some(window(t(9, 30, 0), t(10, 30, 0))),
            now,
        );
        assert!(
            overlapping
                .err()
                .is_some_and(|s| s.message().contains("baseline"))
        );
        let day = Windows::from_wire(
            Some(window(t(10, 0, 0), t(11, 0, 0))),
            Some(v1::TimeWindow {
                from: Some(datetime_to_timestamp(t(10, 0, 0) - TimeDelta::hours(24))),
                to: None,
            }),
            now,
        )
        .expect("a day of baseline");
        assert_eq!(w.to - w.from, TimeDelta::hours(1));
        assert_eq!(day.baseline_to - day.baseline_from, TimeDelta::hours(24));
    }

    #[test]
    fn sentiments_default_to_negative_and_unknown_ones_are_refused() {
        assert_eq!(sentiment("").ok(), Some("negative"));
        assert_eq!(sentiment("all").ok(), Some("all"));
        assert!(sentiment("angry").is_err());
    }

    #[test]
    fn kinds_follow_the_form_of_the_text() {
        assert_eq!(
            kind_to_wire(TermKind::Entity, "Pixel 9"),
            v1::TermKind::Entity
        );
        assert_eq!(
            kind_to_wire(TermKind::Entity, "#fail"),
            v1::TermKind::Hashtag
        );
        assert_eq!(
            kind_to_wire(TermKind::Term, "battery drains"),
            v1::TermKind::Phrase
        );
        assert_eq!(
            kind_to_wire(TermKind::Term, "@support"),
            v1::TermKind::Mention
        );
        assert_eq!(kind_name(v1::TermKind::Phrase.into()), "phrase");
    }
}
