//! The alert monitor: every interval, evaluate the rules over a sliding window and raise an
//! alert when one of them starts to hold.
//!
//! Rules: `high_negative_sentiment` (the negative share of the window's posts is over the
//! threshold) and `volume_spike` (the window's post count is more than k standard deviations
//! over the mean of the preceding windows). Both need at least `min_posts` posts in the window.
//! Every alert stores in its details the terms and entities that drove it (see
//! [`crate::insights`]), against the preceding windows.
//!
//! An alert is raised when its condition starts, not on every evaluation while it lasts; it
//! may be raised again once the condition has ended and starts anew. Only one instance
//! evaluates: the one holding a PostgreSQL advisory lock on a dedicated session (see
//! [`pulse_store::leader`]). A new leader treats an alert raised within the last window as
//! the same ongoing condition, so a failover does not repeat it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pulse_settings::ConnectionUrl;
use pulse_store::{
    alerts::{NewAlert, StoredAlert},
    leader::{Client, LeaderSession},
    windows,
};
use pulse_stream::{Event, EventFeed};
use serde_json::{Value, json};

use crate::metrics::AnalyticsMetrics;

/// Key of the advisory lock that elects the monitor ("pulse_al").
pub const LEADER_LOCK_KEY: i64 = 0x7075_6c73_655f_616c;
/// Type of the negative-share alert (the seed's "high negative sentiment").
pub const NEGATIVE_SENTIMENT: &str = "high_negative_sentiment";
/// Type of the volume alert.
pub const VOLUME_SPIKE: &str = "volume_spike";
/// Negative posts quoted in an alert's details.
const TOP_NEGATIVE: i64 = 5;

/// The rules' settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub window: chrono::Duration,
    pub min_posts: u64,
    /// Share 0..1.
    pub negative_threshold: f64,
    pub spike_stddevs: f64,
    pub baseline_windows: u32,
}

/// A rule that holds now, with what it measured.
#[derive(Debug, Clone, PartialEq)]
struct Finding {
    alert_type: &'static str,
    threshold: f64,
    actual: f64,
    details: Value,
}

/// Counts as f64; exact far below 2^52.
#[allow(clippy::cast_precision_loss)]
fn float(n: u64) -> f64 {
    n as f64
}

/// The negative-share rule over the window's counts.
fn negative_share(rules: &Rules, counts: &windows::WindowCounts) -> Option<Finding> {
    if counts.total == 0 || counts.total < rules.min_posts {
        return None;
    }
    let share = float(counts.negative) / float(counts.total);
    (share > rules.negative_threshold).then(|| Finding {
        alert_type: NEGATIVE_SENTIMENT,
        threshold: rules.negative_threshold,
        actual: share,
        details: json!({
            "rule": "negative share over threshold",
            "negative_posts": counts.negative,
        }),
    })
}

/// The volume rule: `current` against the mean and standard deviation of `baseline`.
///
/// The deviation has a floor of √mean (Poisson noise) and 1, so a perfectly steady baseline
/// does not make every extra post a spike; a baseline without any posts (a fresh platform)
/// gives no spike at all.
fn volume_spike(rules: &Rules, current: u64, baseline: &[u64]) -> Option<Finding> {
    let sum: u64 = baseline.iter().sum();
    if baseline.is_empty() || sum == 0 || current < rules.min_posts.max(1) {
        return None;
    }
    let n = float(baseline.len() as u64);
    let mean = float(sum) / n;
    let variance = baseline
        .iter()
        .map(|&c| (float(c) - mean).powi(2))
        .sum::<f64>()
        / n;
    let stddev = variance.sqrt();
    let threshold = mean + rules.spike_stddevs * stddev.max(mean.sqrt()).max(1.0);
    (float(current) > threshold).then(|| Finding {
        alert_type: VOLUME_SPIKE,
        threshold,
        actual: float(current),
        details: json!({
            "rule": "posts per window over the baseline",
            "baseline_mean": mean,
            "baseline_stddev": stddev,
            "stddevs": rules.spike_stddevs,
            "baseline_counts": baseline,
        }),
    })
}

/// The monitor's state while it is leader: which conditions are ongoing.
#[derive(Debug, Default)]
struct Ongoing {
    negative: bool,
    volume: bool,
}

impl Ongoing {
    fn flag(&mut self, alert_type: &str) -> &mut bool {
        if alert_type == NEGATIVE_SENTIMENT {
            &mut self.negative
        } else {
            &mut self.volume
        }
    }
}

pub struct AlertMonitor {
    database_url: ConnectionUrl,
    events: EventFeed,
    rules: Rules,
    interval: Duration,
    metrics: AnalyticsMetrics,
}

impl AlertMonitor {
    pub fn new(
        database_url: ConnectionUrl,
        events: EventFeed,
        rules: Rules,
        interval: Duration,
        metrics: AnalyticsMetrics,
    ) -> Self {
        Self {
            database_url,
            events,
            rules,
            interval,
            metrics,
        }
    }

    /// Runs until the task is aborted: competes for leadership, evaluates while leader.
    pub async fn run(self) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut session: Option<LeaderSession> = None;
        let mut ongoing: Option<Ongoing> = None;
        loop {
            ticker.tick().await;
            if session.as_ref().is_none_or(LeaderSession::is_closed) {
                ongoing = None;
                session = match LeaderSession::connect(self.database_url.expose()).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(error = %e, "alert monitor cannot reach the database");
                        None
                    }
                };
            }
            let Some(current) = session.as_ref() else {
                self.metrics.alert_leader.set(0);
                continue;
            };
            let result = match ongoing.as_mut() {
                Some(state) => self.evaluate(current.client(), state).await,
                None => match current.try_lock(LEADER_LOCK_KEY).await {
                    Ok(true) => match self.restore(current.client()).await {
                        Ok(state) => {
                            tracing::info!("this instance now runs the alert monitor");
                            self.metrics.alert_leader.set(1);
                            let state = ongoing.insert(state);
                            self.evaluate(current.client(), state).await
                        }
                        Err(e) => Err(e),
                    },
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                // Dropping the session releases the lock; the next tick starts over.
                tracing::warn!(error = %e, "alert evaluation failed; giving up leadership");
                self.metrics.alert_leader.set(0);
                session = None;
                ongoing = None;
            }
        }
    }

    /// What a new leader knows: an alert raised within the last window is still ongoing.
    async fn restore(&self, client: &Client) -> Result<Ongoing, pulse_store::StoreError> {
        let since = Utc::now() - self.rules.window;
        let recent = |alert: Option<StoredAlert>| alert.is_some_and(|a| a.triggered_at >= since);
        Ok(Ongoing {
            negative: recent(
                pulse_store::alerts::latest_of_type(client, NEGATIVE_SENTIMENT).await?,
            ),
            volume: recent(pulse_store::alerts::latest_of_type(client, VOLUME_SPIKE).await?),
        })
    }

    /// One evaluation of every rule over the window ending now.
    async fn evaluate(
        &self,
        client: &Client,
        ongoing: &mut Ongoing,
    ) -> Result<(), pulse_store::StoreError> {
        let end = Utc::now();
        let start = end - self.rules.window;
        let counts = windows::counts(client, start, end).await?;
        let baseline = if self.rules.baseline_windows == 0 {
            Vec::new()
        } else {
            windows::volume_history(
                client,
                start,
                self.rules.window,
                self.rules.baseline_windows,
            )
            .await?
        };
        let findings = [
            (NEGATIVE_SENTIMENT, negative_share(&self.rules, &counts)),
            (
                VOLUME_SPIKE,
                volume_spike(&self.rules, counts.total, &baseline),
            ),
        ];
        for (alert_type, finding) in findings {
            let flag = ongoing.flag(alert_type);
            let was = *flag;
            *flag = finding.is_some();
            if let Some(finding) = finding.filter(|_| !was) {
                self.raise(client, finding, counts.total, start, end)
                    .await?;
            }
        }
        Ok(())
    }

    /// What drove the alert: for the negative-share rule, the terms that rose among negative
    /// posts; for a volume spike, among all posts. The baseline is the windows before, as many
    /// as the volume rule compares with (at least one).
    async fn drivers(
        &self,
        client: &Client,
        finding: &Finding,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<pulse_proto::v1::GetDriversResponse, pulse_store::StoreError> {
        let sentiment = if finding.alert_type == NEGATIVE_SENTIMENT {
            "negative"
        } else {
            "all"
        };
        let windows_before = i32::try_from(self.rules.baseline_windows.max(1)).unwrap_or(1);
        let baseline_from = start - self.rules.window * windows_before;
        let compared = crate::insights::Windows::aligned(start, end, Some((baseline_from, start)));
        crate::insights::drivers(client, &compared, sentiment, crate::insights::ALERT_DRIVERS).await
    }

    async fn raise(
        &self,
        client: &Client,
        finding: Finding,
        post_count: u64,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<(), pulse_store::StoreError> {
        let top = windows::top_negative(client, start, end, TOP_NEGATIVE).await?;
        let sources = windows::sources(client, start, end).await?;
        let drivers = self.drivers(client, &finding, start, end).await?;
        let mut details = finding.details;
        if let Some(object) = details.as_object_mut() {
            if let Value::Object(found) = crate::insights::alert_details(&drivers) {
                object.extend(found);
            }
            object.insert(
                "window_seconds".into(),
                json!(self.rules.window.num_seconds()),
            );
            object.insert("total_posts".into(), json!(post_count));
            object.insert("min_posts".into(), json!(self.rules.min_posts));
            object.insert(
                "top_negative_posts".into(),
                top.iter()
                    .map(|p| {
                        json!({
                            "post_id": p.post_id,
                            "source": p.source,
                            "author": p.author,
                            "content": p.content,
                            "confidence": p.confidence,
                        })
                    })
                    .collect(),
            );
            object.insert(
                "sources".into(),
                sources
                    .iter()
                    .map(|s| json!({"source": s.source, "total": s.total, "negative": s.negative}))
                    .collect(),
            );
        }
        let alert = pulse_store::alerts::insert(
            client,
            &NewAlert {
                alert_type: finding.alert_type.to_owned(),
                threshold_value: finding.threshold,
                actual_value: finding.actual,
                window_start: start,
                window_end: end,
                post_count: i32::try_from(post_count).unwrap_or(i32::MAX),
                details,
            },
        )
        .await?;
        self.metrics
            .alerts_raised
            .with_label_values(&[finding.alert_type])
            .inc();
        tracing::info!(
            id = alert.id,
            alert_type = finding.alert_type,
            actual = finding.actual,
            threshold = finding.threshold,
            "alert raised"
        );
        // The row is the record; the event only tells live clients. Redis being down loses
        // the live notification, never the alert.
        if let Err(e) = self
            .events
            .publish(&[(Event::Alert { alert_id: alert.id }, None)])
            .await
        {
            tracing::warn!(error = %e, id = alert.id, "cannot publish the alert event");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            window: chrono::Duration::minutes(5),
            min_posts: 10,
            negative_threshold: 0.5,
            spike_stddevs: 3.0,
            baseline_windows: 12,
        }
    }

    fn counts(total: u64, negative: u64) -> windows::WindowCounts {
        windows::WindowCounts { total, negative }
    }

    #[test]
    fn negative_share_needs_enough_posts_and_a_share_strictly_over_the_threshold() {
        assert!(negative_share(&rules(), &counts(9, 9)).is_none());
        assert!(negative_share(&rules(), &counts(10, 5)).is_none());
        let finding = negative_share(&rules(), &counts(10, 6)).expect("60% > 50%");
        assert_eq!(finding.alert_type, NEGATIVE_SENTIMENT);
        assert!((finding.actual - 0.6).abs() < 1e-9);
        assert!(negative_share(&rules(), &counts(0, 0)).is_none());
    }

    #[test]
    fn volume_spikes_are_measured_against_the_baseline() {
        let steady = [20, 22, 19, 21, 20, 18, 20, 22, 21, 19, 20, 20];
        assert!(volume_spike(&rules(), 25, &steady).is_none());
        let finding = volume_spike(&rules(), 60, &steady).expect("a spike");
        assert_eq!(finding.alert_type, VOLUME_SPIKE);
        // No history: nothing to compare with.
        assert!(volume_spike(&rules(), 500, &[0; 12]).is_none());
        // Too few posts to matter, however quiet the baseline.
        assert!(volume_spike(&rules(), 5, &[0, 0, 1]).is_none());
    }
}
