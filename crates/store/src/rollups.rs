//! Which part of a time range is counted from which table.
//!
//! The rollups (`sentiment_minutes`, `sentiment_hours`, `sentiment_days` and `arrival_minutes`,
//! kept by [`crate::posts::insert_analysed`]) hold whole minutes, hours and days. A range rarely
//! starts or ends on any of them, so it is cut into segments, each served by the coarsest table
//! that holds it whole: the seconds before the first whole minute and after the last from the
//! posts themselves, the minutes up to the first whole hour and after the last from the minute
//! rollup, then hours up to the first whole day from the hour rollup, and the days in between
//! from the day rollup. The sum is exact, and its cost follows the length of the range in days
//! (plus at most two hours of minutes and two days of hours), not the number of posts in it,
//! except for the two minutes of posts at its ends.
//!
//! The alert windows and `ListPosts` totals take that exact cut ([`Tier::Rows`] as the finest
//! tier); the alert monitor runs once per interval and totals are cached. Distributions and
//! charts, asked for on every dashboard refresh, start at a coarser tier: their range is widened
//! to whole minutes, or to whole buckets for a chart, and no post is read.
//!
//! An open end (`None`) is unbounded, and is served by the coarsest table allowed.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio_postgres::Client;

use crate::StoreError;

/// A half-open range `[from, to)`; `None` is unbounded on that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Segment {
    /// A segment that selects nothing, for a slot of the query that this range does not use.
    pub const EMPTY: Segment = Segment {
        from: Some(DateTime::<Utc>::UNIX_EPOCH),
        to: Some(DateTime::<Utc>::UNIX_EPOCH),
    };

    fn new(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Self {
        match (from, to) {
            (Some(f), Some(t)) if f >= t => Self::EMPTY,
            _ => Segment { from, to },
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!((self.from, self.to), (Some(f), Some(t)) if f >= t)
    }
}

/// Where counts come from, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Rows,
    Minutes,
    Hours,
    Days,
}

impl Tier {
    const ALL: [Tier; 4] = [Tier::Rows, Tier::Minutes, Tier::Hours, Tier::Days];

    /// The width of one rollup row; `None` for posts.
    fn unit(self) -> Option<TimeDelta> {
        match self {
            Tier::Rows => None,
            Tier::Minutes => Some(TimeDelta::minutes(1)),
            Tier::Hours => Some(TimeDelta::hours(1)),
            Tier::Days => Some(TimeDelta::days(1)),
        }
    }
}

/// The segments of one range, two per tier (the ragged ends; the coarsest tier used holds the
/// middle in its first slot), in the order of [`Tier::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub segments: [[Segment; 2]; 4],
}

/// `t` rounded down to a whole `unit` (UTC).
pub fn floor(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    t.duration_trunc(unit).unwrap_or(t)
}

/// `t` rounded up to a whole `unit` (UTC).
pub fn ceil(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    let down = floor(t, unit);
    if down == t { t } else { down + unit }
}

impl Plan {
    /// Cuts `[from, to)` over the tiers from `finest` to `coarsest`. A `finest` coarser than
    /// rows widens the range to its unit first (`from` down, `to` up).
    pub fn new(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        finest: Tier,
        coarsest: Tier,
    ) -> Self {
        let mut plan = Plan {
            segments: [[Segment::EMPTY; 2]; 4],
        };
        let (mut lo, mut hi) = match finest.unit() {
            Some(unit) => (from.map(|f| floor(f, unit)), to.map(|t| ceil(t, unit))),
            None => (from, to),
        };
        if matches!((lo, hi), (Some(f), Some(t)) if f >= t) {
            return plan;
        }
        let mut current = finest;
        for next in Tier::ALL
            .into_iter()
            .filter(|t| *t > finest && *t <= coarsest)
        {
            let Some(unit) = next.unit() else { break };
            let (inner_lo, inner_hi) = (lo.map(|f| ceil(f, unit)), hi.map(|t| floor(t, unit)));
            if matches!((inner_lo, inner_hi), (Some(f), Some(t)) if f >= t) {
                break;
            }
            plan.segments[current as usize] = [
                lo.map_or(Segment::EMPTY, |f| Segment::new(Some(f), inner_lo)),
                hi.map_or(Segment::EMPTY, |t| Segment::new(inner_hi, Some(t))),
            ];
            (lo, hi, current) = (inner_lo, inner_hi, next);
        }
        plan.segments[current as usize] = [Segment::new(lo, hi), Segment::EMPTY];
        plan
    }

    /// Bounds in the order of the query parameters: per tier, two segments of (from, to).
    pub fn bounds(&self) -> [Option<DateTime<Utc>>; 16] {
        let mut bounds = [None; 16];
        for (i, segment) in self.segments.iter().flatten().enumerate() {
            bounds[2 * i] = segment.from;
            bounds[2 * i + 1] = segment.to;
        }
        bounds
    }

    /// The two segments of `tier`.
    pub fn tier(&self, tier: Tier) -> [Segment; 2] {
        self.segments[tier as usize]
    }
}

/// The upserts of every rollup from `changes`, a relation of `post_id`, `source`, `created_at`,
/// `ingested_at`, `sentiment_label`, `emotion` ('' for none), `posts` (+1 or -1),
/// `confidence` (`posts` times the score), and the post's `terms` and `entities`, as
/// data-modifying CTEs to follow it in a `WITH`.
///
/// Keys are grouped, so each is touched once, and upserted in key order, so that concurrent
/// writers lock rollup rows in the same order and cannot deadlock. The hour rows of terms keep
/// the two newest posts counted into them as examples.
pub(crate) fn upserts(changes: &str) -> String {
    let by_labels = |name: &str, table: &str, column: &str, unit: &str| {
        format!(
            "{name} AS (
    INSERT INTO {table} AS r ({column}, source, sentiment, emotion, posts, confidence_sum)
    SELECT date_trunc('{unit}', created_at, 'UTC'), source, sentiment_label, emotion,
           sum(posts), sum(confidence)
    FROM {changes} GROUP BY 1, 2, 3, 4 HAVING sum(posts) <> 0 OR sum(confidence) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT ({column}, source, sentiment, emotion) DO UPDATE
        SET posts = r.posts + excluded.posts,
            confidence_sum = r.confidence_sum + excluded.confidence_sum
)"
        )
    };
    [
        by_labels("minutes", "sentiment_minutes", "minute", "minute"),
        by_labels("hours", "sentiment_hours", "hour", "hour"),
        by_labels("days", "sentiment_days", "day", "day"),
        format!(
            "arrivals AS (
    INSERT INTO arrival_minutes AS r (minute, source, sentiment, posts)
    SELECT date_trunc('minute', ingested_at, 'UTC'), source, sentiment_label, sum(posts)
    FROM {changes} GROUP BY 1, 2, 3 HAVING sum(posts) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (minute, source, sentiment) DO UPDATE SET posts = r.posts + excluded.posts
)"
        ),
        format!(
            "term_changes AS (
    SELECT post_id, created_at, sentiment_label, 't'::char AS kind, term, posts
    FROM {changes}, unnest(terms) AS term
    UNION ALL
    SELECT post_id, created_at, sentiment_label, 'e'::char, term, posts
    FROM {changes}, unnest(entities) AS term
),
term_minute_counts AS (
    INSERT INTO term_minutes AS r (minute, sentiment, kind, term, posts)
    SELECT date_trunc('minute', created_at, 'UTC'), sentiment_label, kind, term, sum(posts)
    FROM term_changes GROUP BY 1, 2, 3, 4 HAVING sum(posts) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (minute, sentiment, kind, term) DO UPDATE SET posts = r.posts + excluded.posts
),
term_hour_counts AS (
    INSERT INTO term_hours AS r (hour, sentiment, kind, term, posts, examples)
    SELECT date_trunc('hour', created_at, 'UTC'), sentiment_label, kind, term, sum(posts),
           coalesce((array_agg(post_id::text ORDER BY created_at DESC)
                     FILTER (WHERE posts > 0))[1:2], '{{}}')
    FROM term_changes GROUP BY 1, 2, 3, 4 HAVING sum(posts) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (hour, sentiment, kind, term) DO UPDATE
        SET posts = r.posts + excluded.posts,
            examples = (excluded.examples || r.examples)[1:2]
)"
        ),
    ]
    .join(
        ",
",
    )
}

/// Rollup keys whose counts differ from a recount of the stored posts, per table; all zero when
/// every post is counted once under its latest analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drift {
    pub minutes: u64,
    pub hours: u64,
    pub days: u64,
    pub arrivals: u64,
    pub term_minutes: u64,
    pub term_hours: u64,
}

/// Recounts the rollups from the posts and compares: the check behind "counted exactly once".
/// It reads every stored post, so it is for tests and audits, not for a request path.
pub async fn drift(client: &Client) -> Result<Drift, StoreError> {
    // Keys of `expected` and of `table` (rows with a count) whose counts, or confidence sums,
    // differ.
    let differing = |expected: &str, table: &str, column: &str, labelled: bool| {
        let (emotion, confidence) = if labelled {
            (
                ", r.emotion",
                " OR abs(coalesce(e.confidence_sum, 0) - coalesce(r.confidence_sum, 0)) > 1e-3",
            )
        } else {
            ("", "")
        };
        let expected_emotion = if labelled { ", e.emotion" } else { "" };
        format!(
            "(SELECT count(*) FROM {expected} e
              FULL JOIN (SELECT * FROM {table} WHERE posts <> 0) r
                ON (r.{column}, r.source, r.sentiment{emotion})
                 = (e.at, e.source, e.sentiment{expected_emotion})
              WHERE e.posts IS DISTINCT FROM r.posts{confidence})"
        )
    };
    // What the rollup `name` should hold, per `unit` of created_at.
    let recount = |name: &str, unit: &str| {
        format!(
            "{name} AS (
                 SELECT date_trunc('{unit}', created_at, 'UTC') AS at, source, sentiment,
                        emotion, count(*) AS posts, sum(confidence) AS confidence_sum
                 FROM latest GROUP BY 1, 2, 3, 4
             )"
        )
    };
    // The same for the term rollups, keyed by sentiment, kind and term.
    let term_recount = |name: &str, unit: &str| {
        format!(
            "{name} AS (
                 SELECT date_trunc('{unit}', created_at, 'UTC') AS at, sentiment, kind, term,
                        count(*) AS posts
                 FROM mentions GROUP BY 1, 2, 3, 4
             )"
        )
    };
    let term_differing = |expected: &str, table: &str, column: &str| {
        format!(
            "(SELECT count(*) FROM {expected} e
              FULL JOIN (SELECT * FROM {table} WHERE posts <> 0) r
                ON (r.{column}, r.sentiment, r.kind, r.term) = (e.at, e.sentiment, e.kind, e.term)
              WHERE e.posts IS DISTINCT FROM r.posts)"
        )
    };
    let row = client
        .query_one(
            &format!(
                "WITH latest AS MATERIALIZED (
                 SELECT p.source, p.created_at, p.ingested_at, a.sentiment_label AS sentiment,
                        coalesce(a.emotion, '') AS emotion, a.confidence_score::float8 AS confidence,
                        p.terms, p.entities
                 FROM social_media_posts p
                 JOIN LATERAL (
                     SELECT s.sentiment_label, s.emotion, s.confidence_score
                     FROM sentiment_analysis s
                     WHERE s.post_id = p.post_id AND s.ingested_at = p.ingested_at
                     ORDER BY s.analyzed_at DESC, s.id DESC LIMIT 1
                 ) a ON TRUE
             ),
             {}, {}, {},
             arrivals AS (
                 SELECT date_trunc('minute', ingested_at, 'UTC') AS at, source, sentiment,
                        count(*) AS posts
                 FROM latest GROUP BY 1, 2, 3
             ),
             mentions AS (
                 SELECT created_at, sentiment, 't' AS kind, term FROM latest, unnest(terms) term
                 UNION ALL
                 SELECT created_at, sentiment, 'e', term FROM latest, unnest(entities) term
             ),
             {}, {}
             SELECT {}, {}, {}, {}, {}, {}",
                recount("minutes", "minute"),
                recount("hours", "hour"),
                recount("days", "day"),
                term_recount("term_minutes_expected", "minute"),
                term_recount("term_hours_expected", "hour"),
                differing("minutes", "sentiment_minutes", "minute", true),
                differing("hours", "sentiment_hours", "hour", true),
                differing("days", "sentiment_days", "day", true),
                differing("arrivals", "arrival_minutes", "minute", false),
                term_differing("term_minutes_expected", "term_minutes", "minute"),
                term_differing("term_hours_expected", "term_hours", "hour"),
            ),
            &[],
        )
        .await?;
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or_default();
    Ok(Drift {
        minutes: count(0),
        hours: count(1),
        days: count(2),
        arrivals: count(3),
        term_minutes: count(4),
        term_hours: count(5),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(d: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, s)
            .single()
            .expect("valid time")
    }

    fn seg(from: DateTime<Utc>, to: DateTime<Utc>) -> Segment {
        Segment {
            from: Some(from),
            to: Some(to),
        }
    }

    /// Every instant is in exactly as many segments as it is in the range (one or none),
    /// checked every 7 s over three days.
    fn covers_exactly(plan: &Plan, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) {
        let segments: Vec<Segment> = plan.segments.iter().flatten().copied().collect();
        let mut instant = t(27, 0, 0, 0);
        while instant < t(30, 0, 0, 0) {
            let inside = segments
                .iter()
                .filter(|s| s.from.is_none_or(|f| instant >= f) && s.to.is_none_or(|t| instant < t))
                .count();
            let expected =
                usize::from(from.is_none_or(|f| instant >= f) && to.is_none_or(|t| instant < t));
            assert_eq!(inside, expected, "at {instant}: {plan:#?}");
            instant += TimeDelta::seconds(7);
        }
    }

    fn exact(from: DateTime<Utc>, to: DateTime<Utc>, coarsest: Tier) -> Plan {
        let plan = Plan::new(Some(from), Some(to), Tier::Rows, coarsest);
        covers_exactly(&plan, Some(from), Some(to));
        plan
    }

    #[test]
    fn a_range_of_days_reads_rows_only_at_its_ragged_ends() {
        let (from, to) = (t(27, 9, 12, 30), t(29, 13, 40, 10));
        let plan = exact(from, to, Tier::Days);
        assert_eq!(
            plan.tier(Tier::Rows),
            [seg(from, t(27, 9, 13, 0)), seg(t(29, 13, 40, 0), to)]
        );
        assert_eq!(
            plan.tier(Tier::Minutes),
            [
                seg(t(27, 9, 13, 0), t(27, 10, 0, 0)),
                seg(t(29, 13, 0, 0), t(29, 13, 40, 0))
            ]
        );
        assert_eq!(
            plan.tier(Tier::Hours),
            [
                seg(t(27, 10, 0, 0), t(28, 0, 0, 0)),
                seg(t(29, 0, 0, 0), t(29, 13, 0, 0))
            ]
        );
        assert_eq!(
            plan.tier(Tier::Days),
            [seg(t(28, 0, 0, 0), t(29, 0, 0, 0)), Segment::EMPTY]
        );
    }

    #[test]
    fn aligned_ranges_read_only_the_coarsest_table() {
        let plan = exact(t(27, 0, 0, 0), t(29, 0, 0, 0), Tier::Days);
        assert_eq!(
            plan.tier(Tier::Days)[0],
            seg(t(27, 0, 0, 0), t(29, 0, 0, 0))
        );
        assert!(plan.segments[..3].iter().flatten().all(Segment::is_empty));
    }

    #[test]
    fn short_ranges_stop_at_the_tier_that_holds_them() {
        let plan = exact(t(28, 9, 50, 30), t(28, 10, 20, 10), Tier::Days);
        assert!(plan.segments[2..].iter().flatten().all(Segment::is_empty));
        let plan = exact(t(28, 9, 50, 30), t(28, 9, 51, 10), Tier::Days);
        assert_eq!(
            plan.tier(Tier::Rows)[0],
            seg(t(28, 9, 50, 30), t(28, 9, 51, 10))
        );
        let backwards = Plan::new(
            Some(t(28, 2, 0, 0)),
            Some(t(28, 1, 0, 0)),
            Tier::Rows,
            Tier::Days,
        );
        assert!(backwards.segments.iter().flatten().all(Segment::is_empty));
    }

    #[test]
    fn the_coarsest_tier_bounds_the_cut() {
        let plan = exact(t(27, 6, 0, 0), t(29, 13, 40, 10), Tier::Minutes);
        assert!(plan.segments[2..].iter().flatten().all(Segment::is_empty));
        assert_eq!(
            plan.tier(Tier::Minutes)[0],
            seg(t(27, 6, 0, 0), t(29, 13, 40, 0))
        );
        let plan = exact(t(27, 6, 0, 0), t(29, 13, 40, 10), Tier::Hours);
        assert!(plan.tier(Tier::Days).iter().all(Segment::is_empty));
    }

    #[test]
    fn a_coarser_finest_tier_widens_the_range_and_reads_no_rows() {
        let (from, to) = (t(28, 9, 12, 30), t(28, 13, 40, 10));
        let plan = Plan::new(Some(from), Some(to), Tier::Minutes, Tier::Days);
        assert!(plan.tier(Tier::Rows).iter().all(Segment::is_empty));
        covers_exactly(&plan, Some(t(28, 9, 12, 0)), Some(t(28, 13, 41, 0)));
        let hourly = Plan::new(Some(from), Some(to), Tier::Hours, Tier::Hours);
        assert_eq!(
            hourly.tier(Tier::Hours)[0],
            seg(t(28, 9, 0, 0), t(28, 14, 0, 0)),
            "whole buckets of an hourly chart"
        );
        assert!(hourly.segments[..2].iter().flatten().all(Segment::is_empty));
    }

    #[test]
    fn open_ends_are_served_by_the_coarsest_table() {
        let all = Plan::new(None, None, Tier::Rows, Tier::Days);
        assert_eq!(
            all.tier(Tier::Days)[0],
            Segment {
                from: None,
                to: None
            }
        );
        assert!(all.segments[..3].iter().flatten().all(Segment::is_empty));
        let since = Plan::new(Some(t(28, 9, 12, 30)), None, Tier::Rows, Tier::Days);
        assert_eq!(
            since.tier(Tier::Days)[0],
            Segment {
                from: Some(t(29, 0, 0, 0)),
                to: None
            }
        );
        covers_exactly(&since, Some(t(28, 9, 12, 30)), None);
        let until = Plan::new(None, Some(t(28, 13, 40, 10)), Tier::Rows, Tier::Minutes);
        covers_exactly(&until, None, Some(t(28, 13, 40, 10)));
    }
}
