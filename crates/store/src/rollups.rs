//! Which part of a time range is counted from which table.
//!
//! The rollups (`sentiment_minutes`, `sentiment_hours`, `arrival_minutes`, kept by
//! [`crate::posts::insert_analysed`]) hold whole minutes and hours. A range rarely starts or ends
//! on a minute, so a range is cut into up to five segments: the seconds before its first whole
//! minute and after its last are read from the posts themselves (at most two minutes of rows),
//! the minutes up to the first whole hour and after the last from `*_minutes`, and the hours in
//! between from `sentiment_hours`. The sum is exact, and its cost follows the length of the range
//! in hours, not the number of posts in it, except for those two minutes of posts.
//!
//! The alert windows take that exact cut ([`Plan::new`]); they run once per interval. Charts
//! and distributions, asked for on every dashboard refresh, count whole minutes instead
//! ([`Plan::in_whole_minutes`]): their range is widened to the minute, and no post is read.
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

/// The segments of one range, by table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Read from the posts: before the first whole minute, after the last.
    pub rows: [Segment; 2],
    /// Read from the minute rollup: up to the first whole hour, after the last.
    pub minutes: [Segment; 2],
    /// Read from the hour rollup.
    pub hours: Segment,
}

fn floor(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    t.duration_trunc(unit).unwrap_or(t)
}

fn ceil(t: DateTime<Utc>, unit: TimeDelta) -> DateTime<Utc> {
    let down = floor(t, unit);
    if down == t { t } else { down + unit }
}

impl Plan {
    /// Cuts `[from, to)`; with `hours` false the hour rollup is not used (minute buckets).
    pub fn new(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, hours: bool) -> Self {
        let minute = TimeDelta::minutes(1);
        let hour = TimeDelta::hours(1);
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Self::nothing();
            }
            // No whole minute inside: the range is all rows.
            if ceil(f, minute) >= floor(t, minute) {
                return Plan {
                    rows: [Segment::new(from, to), Segment::EMPTY],
                    ..Self::nothing()
                };
            }
        }
        let first_minute = from.map(|f| ceil(f, minute));
        let last_minute = to.map(|t| floor(t, minute));
        let rows = [
            from.map_or(Segment::EMPTY, |f| Segment::new(Some(f), first_minute)),
            to.map_or(Segment::EMPTY, |t| Segment::new(last_minute, Some(t))),
        ];
        let whole_hours = hours
            && match (first_minute, last_minute) {
                (Some(f), Some(t)) => ceil(f, hour) < floor(t, hour),
                _ => true,
            };
        if !whole_hours {
            return Plan {
                rows,
                minutes: [Segment::new(first_minute, last_minute), Segment::EMPTY],
                hours: Segment::EMPTY,
            };
        }
        let first_hour = first_minute.map(|f| ceil(f, hour));
        let last_hour = last_minute.map(|t| floor(t, hour));
        Plan {
            rows,
            minutes: [
                first_minute.map_or(Segment::EMPTY, |f| Segment::new(Some(f), first_hour)),
                last_minute.map_or(Segment::EMPTY, |t| Segment::new(last_hour, Some(t))),
            ],
            hours: Segment::new(first_hour, last_hour),
        }
    }

    /// Cuts `[from, to)` widened to whole minutes (`from` down, `to` up), so that no segment
    /// reads posts: what a chart or a distribution wants, at a cost that no ingest rate changes.
    pub fn in_whole_minutes(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        hours: bool,
    ) -> Self {
        let minute = TimeDelta::minutes(1);
        Self::new(
            from.map(|f| floor(f, minute)),
            to.map(|t| ceil(t, minute)),
            hours,
        )
    }

    /// The whole range from the posts: for filters the rollups do not keep (text, author).
    pub fn rows_only(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Self {
        Plan {
            rows: [Segment::new(from, to), Segment::EMPTY],
            ..Self::nothing()
        }
    }

    fn nothing() -> Self {
        Plan {
            rows: [Segment::EMPTY; 2],
            minutes: [Segment::EMPTY; 2],
            hours: Segment::EMPTY,
        }
    }

    /// Bounds in the order of the query parameters: rows, minutes, hours (from, to each).
    pub fn bounds(&self) -> [Option<DateTime<Utc>>; 10] {
        let [r1, r2] = self.rows;
        let [m1, m2] = self.minutes;
        let h = self.hours;
        [
            r1.from, r1.to, r2.from, r2.to, m1.from, m1.to, m2.from, m2.to, h.from, h.to,
        ]
    }
}

/// Rollup keys whose counts differ from a recount of the stored posts, per table; all zero when
/// every post is counted once under its latest analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drift {
    pub minutes: u64,
    pub hours: u64,
    pub arrivals: u64,
}

/// Recounts the rollups from the posts and compares: the check behind "counted exactly once".
/// It reads every stored post, so it is for tests and audits, not for a request path.
pub async fn drift(client: &Client) -> Result<Drift, StoreError> {
    let row = client
        .query_one(
            "WITH latest AS MATERIALIZED (
                 SELECT p.source, p.created_at, p.ingested_at, a.sentiment_label AS sentiment,
                        coalesce(a.emotion, '') AS emotion, a.confidence_score::float8 AS confidence
                 FROM social_media_posts p
                 JOIN LATERAL (
                     SELECT s.sentiment_label, s.emotion, s.confidence_score
                     FROM sentiment_analysis s
                     WHERE s.post_id = p.post_id AND s.ingested_at = p.ingested_at
                     ORDER BY s.analyzed_at DESC, s.id DESC LIMIT 1
                 ) a ON TRUE
             ),
             minutes AS (
                 SELECT date_trunc('minute', created_at, 'UTC') AS at, source, sentiment, emotion,
                        count(*) AS posts, sum(confidence) AS confidence_sum
                 FROM latest GROUP BY 1, 2, 3, 4
             ),
             hours AS (
                 SELECT date_trunc('hour', created_at, 'UTC') AS at, source, sentiment, emotion,
                        count(*) AS posts, sum(confidence) AS confidence_sum
                 FROM latest GROUP BY 1, 2, 3, 4
             ),
             arrivals AS (
                 SELECT date_trunc('minute', ingested_at, 'UTC') AS at, source, sentiment,
                        count(*) AS posts
                 FROM latest GROUP BY 1, 2, 3
             )
             SELECT
               (SELECT count(*) FROM minutes e
                FULL JOIN (SELECT * FROM sentiment_minutes WHERE posts <> 0) r
                  ON (r.minute, r.source, r.sentiment, r.emotion)
                   = (e.at, e.source, e.sentiment, e.emotion)
                WHERE e.posts IS DISTINCT FROM r.posts
                   OR abs(coalesce(e.confidence_sum, 0) - coalesce(r.confidence_sum, 0)) > 1e-3),
               (SELECT count(*) FROM hours e
                FULL JOIN (SELECT * FROM sentiment_hours WHERE posts <> 0) r
                  ON (r.hour, r.source, r.sentiment, r.emotion)
                   = (e.at, e.source, e.sentiment, e.emotion)
                WHERE e.posts IS DISTINCT FROM r.posts
                   OR abs(coalesce(e.confidence_sum, 0) - coalesce(r.confidence_sum, 0)) > 1e-3),
               (SELECT count(*) FROM arrivals e
                FULL JOIN (SELECT * FROM arrival_minutes WHERE posts <> 0) r
                  ON (r.minute, r.source, r.sentiment) = (e.at, e.source, e.sentiment)
                WHERE e.posts IS DISTINCT FROM r.posts)",
            &[],
        )
        .await?;
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or_default();
    Ok(Drift {
        minutes: count(0),
        hours: count(1),
        arrivals: count(2),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, s)
            .single()
            .expect("valid time")
    }

    fn seg(from: DateTime<Utc>, to: DateTime<Utc>) -> Segment {
        Segment {
            from: Some(from),
            to: Some(to),
        }
    }

    /// Every instant of the range is in exactly one segment, and nothing outside it is (checked
    /// every 7 s over the day).
    fn covers_exactly(plan: &Plan, from: DateTime<Utc>, to: DateTime<Utc>) {
        covers_exactly_open(plan, Some(from), Some(to));
    }

    fn covers_exactly_open(plan: &Plan, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) {
        let segments = [
            plan.rows[0],
            plan.rows[1],
            plan.minutes[0],
            plan.minutes[1],
            plan.hours,
        ];
        let mut instant = t(0, 0, 0);
        while instant < t(23, 59, 59) {
            let inside = segments
                .iter()
                .filter(|s| s.from.is_none_or(|f| instant >= f) && s.to.is_none_or(|t| instant < t))
                .count();
            let expected =
                usize::from(from.is_none_or(|f| instant >= f) && to.is_none_or(|t| instant < t));
            assert_eq!(inside, expected, "at {instant}");
            instant += TimeDelta::seconds(7);
        }
    }

    #[test]
    fn a_range_of_hours_reads_rows_only_at_its_ragged_ends() {
        let (from, to) = (t(9, 12, 30), t(13, 40, 10));
        let plan = Plan::new(Some(from), Some(to), true);
        assert_eq!(plan.rows, [seg(from, t(9, 13, 0)), seg(t(13, 40, 0), to)]);
        assert_eq!(
            plan.minutes,
            [
                seg(t(9, 13, 0), t(10, 0, 0)),
                seg(t(13, 0, 0), t(13, 40, 0))
            ]
        );
        assert_eq!(plan.hours, seg(t(10, 0, 0), t(13, 0, 0)));
        covers_exactly(&plan, from, to);
    }

    #[test]
    fn aligned_ranges_read_no_rows() {
        let plan = Plan::new(Some(t(10, 0, 0)), Some(t(12, 0, 0)), true);
        assert!(plan.rows.iter().all(Segment::is_empty));
        assert!(plan.minutes.iter().all(Segment::is_empty));
        assert_eq!(plan.hours, seg(t(10, 0, 0), t(12, 0, 0)));
    }

    #[test]
    fn short_ranges_fall_back_to_minutes_then_rows() {
        let (from, to) = (t(9, 50, 30), t(10, 20, 10));
        let plan = Plan::new(Some(from), Some(to), true);
        assert!(plan.hours.is_empty());
        covers_exactly(&plan, from, to);

        let (from, to) = (t(9, 50, 30), t(9, 51, 10));
        let plan = Plan::new(Some(from), Some(to), true);
        assert_eq!(plan.rows[0], seg(from, to));
        covers_exactly(&plan, from, to);

        assert_eq!(
            Plan::new(Some(to), Some(from), true),
            Plan::new(Some(from), Some(from), true)
        );
    }

    #[test]
    fn minute_buckets_never_read_hours() {
        let (from, to) = (t(6, 0, 0), t(13, 40, 10));
        let plan = Plan::new(Some(from), Some(to), false);
        assert!(plan.hours.is_empty());
        assert_eq!(plan.minutes[0], seg(from, t(13, 40, 0)));
        covers_exactly(&plan, from, to);
    }

    #[test]
    fn whole_minutes_never_read_rows() {
        let plan = Plan::in_whole_minutes(Some(t(9, 12, 30)), Some(t(13, 40, 10)), true);
        assert!(plan.rows.iter().all(Segment::is_empty));
        covers_exactly(&plan, t(9, 12, 0), t(13, 41, 0));
        let short = Plan::in_whole_minutes(Some(t(9, 12, 30)), Some(t(9, 12, 40)), true);
        assert!(short.rows.iter().all(Segment::is_empty));
        assert_eq!(short.minutes[0], seg(t(9, 12, 0), t(9, 13, 0)));
    }

    #[test]
    fn open_ends_are_served_by_the_coarsest_table() {
        let all = Plan::new(None, None, true);
        assert_eq!(
            all.hours,
            Segment {
                from: None,
                to: None
            }
        );
        assert!(all.rows.iter().chain(&all.minutes).all(Segment::is_empty));

        let since = Plan::new(Some(t(9, 12, 30)), None, true);
        assert_eq!(
            since.hours,
            Segment {
                from: Some(t(10, 0, 0)),
                to: None
            }
        );
        covers_exactly_open(&since, Some(t(9, 12, 30)), None);
        let until = Plan::new(None, Some(t(13, 40, 10)), false);
        covers_exactly_open(&until, None, Some(t(13, 40, 10)));
    }
}
