//! The analytics service's Prometheus metrics (registered on the admin endpoint's registry).

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct AnalyticsMetrics {
    /// Distribution requests answered from Redis.
    pub cache_hits: IntCounter,
    /// Distribution requests that went to PostgreSQL (miss, or Redis unreachable).
    pub cache_misses: IntCounter,
    /// Cache reads or writes that failed because Redis could not be used.
    pub cache_errors: IntCounter,
    /// Alerts raised, by type.
    pub alerts_raised: IntCounterVec,
    /// 1 while this instance holds the alert monitor's leadership.
    pub alert_leader: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl AnalyticsMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let alerts_raised = IntCounterVec::new(
            Opts::new("pulse_alerts_raised_total", "Alerts raised, by type"),
            &["alert_type"],
        )?;
        registry.register(Box::new(alerts_raised.clone()))?;
        let alert_leader = IntGauge::new(
            "pulse_alert_monitor_leader",
            "1 while this instance runs the alert monitor",
        )?;
        registry.register(Box::new(alert_leader.clone()))?;
        Ok(Self {
            cache_hits: counter(
                registry,
                "pulse_distribution_cache_hits_total",
                "Distribution requests served from the Redis cache",
            )?,
            cache_misses: counter(
                registry,
                "pulse_distribution_cache_misses_total",
                "Distribution requests computed in PostgreSQL",
            )?,
            cache_errors: counter(
                registry,
                "pulse_distribution_cache_errors_total",
                "Cache reads and writes that failed because Redis was unusable",
            )?,
            alerts_raised,
            alert_leader,
        })
    }
}
