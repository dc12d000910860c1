//! `pulse-ingester scenario`: a scripted stream that shows what the insights explain.
//!
//! Phase "normal" plays the generator's mix ([`generator::generate`]) at `--rate` posts per
//! second for `--normal-seconds`. Phase "burst" keeps that mix going at the same rate for
//! `--burst-seconds` and adds complaints about one `--product` ([`generator::complaint`]: its
//! battery drains, it is overheating) at `--burst-rate`, so the sentiment of that product drops
//! and the insights should name those terms as the cause.
//!
//! Each stream of posts is paced by the wall clock: at rate r its post i is due i/r seconds after
//! the phase started, and every [`TICK`] the posts due before the next tick go out, through the
//! same path as replay ([`crate::publish`]: backpressure, backoff, never skipped). A phase lasts
//! its full length; posts that backpressure held back go out as soon as the gate opens, so a
//! phase of s seconds publishes exactly ⌈s·r⌉ posts of each stream. Shutdown (SIGTERM, ctrl-c)
//! stops either phase.
//!
//! Every post gets a fresh `scn-<uuid v7>` id and is created now; `--seed` makes the draws
//! (templates, products, authors, sources) repeat, not the ids or timestamps, so a repeated run
//! is stored again rather than deduplicated. Lines on stdout, each flushed at once:
//!
//! ```text
//! phase normal started_at=2026-11-30T08:00:00.000Z rate=20 seconds=60
//! phase burst started_at=2026-11-30T08:01:00.000Z product="Pixel 9" rate=20 burst_rate=20 seconds=30
//! scenario done normal=1200 burst_normal=600 complaints=600 seconds=90.0
//! ```
//!
//! After a shutdown the last line is `scenario stopped phase=<phase> normal=...` instead.

use std::{fmt, future::Future, io::Write, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};
use pulse_stream::{PostEntry, Producer};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::time::Instant;

use crate::{
    backpressure::Backpressure,
    config::ScenarioArgs,
    generator,
    metrics::IngesterMetrics,
    publish::{MAX_CHUNK, Origin, publish_chunk},
};

/// How often due posts are sent: about a tenth of a second's worth per chunk, as replay does.
pub const TICK: Duration = Duration::from_millis(100);

/// Longest phase: a scenario is a demonstration, not a load generator left running.
pub const MAX_SECONDS: f64 = 86_400.0;

/// Highest rate of a stream, so one tick's posts stay a few chunks.
pub const MAX_RATE: f64 = 10_000.0;

/// Slack for rates times durations that should be whole numbers but are not quite, in floats.
const EPSILON: f64 = 1e-6;

/// Arguments that cannot make a scenario.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    #[error("unknown product {given:?}: --product must be one of {allowed}")]
    UnknownProduct { given: String, allowed: String },
    #[error("--{flag} must be a number of seconds from 0 to {MAX_SECONDS}, not {value}")]
    Seconds { flag: &'static str, value: f64 },
    #[error(
        "--{flag} must be a number of posts per second above 0 and at most {MAX_RATE}, not {value}"
    )]
    Rate { flag: &'static str, value: f64 },
}

/// The product of the insights' default catalogue named `given` (case aside), so the burst is
/// about something the insights know.
pub fn product(given: &str) -> Result<&'static str, ScenarioError> {
    let products = pulse_insights::entities::DEFAULT_PRODUCTS;
    products
        .iter()
        .copied()
        .find(|name| name.eq_ignore_ascii_case(given.trim()))
        .ok_or_else(|| ScenarioError::UnknownProduct {
            given: given.to_owned(),
            allowed: products
                .iter()
                .map(|name| format!("{name:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn seconds(flag: &'static str, value: f64) -> Result<Duration, ScenarioError> {
    if !(0.0..=MAX_SECONDS).contains(&value) {
        return Err(ScenarioError::Seconds { flag, value });
    }
    Duration::try_from_secs_f64(value).map_err(|_| ScenarioError::Seconds { flag, value })
}

fn rate(flag: &'static str, value: f64) -> Result<f64, ScenarioError> {
    if value > 0.0 && value <= MAX_RATE {
        Ok(value)
    } else {
        Err(ScenarioError::Rate { flag, value })
    }
}

/// Which phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseName {
    Normal,
    Burst,
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhaseName::Normal => "normal",
            PhaseName::Burst => "burst",
        })
    }
}

/// One phase: the generator's mix at `rate` and complaints at `complaint_rate` (0: none).
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: PhaseName,
    pub length: Duration,
    pub rate: f64,
    pub complaint_rate: f64,
}

/// What goes out at one tick of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Since the phase started.
    pub at: Duration,
    pub normal: u64,
    pub complaints: u64,
}

/// Posts of a stream at `rate` due before `elapsed`: one at each multiple of 1/rate.
fn due_before(rate: f64, elapsed: Duration) -> u64 {
    let posts = rate * elapsed.as_secs_f64();
    if posts > 0.0 {
        (posts - EPSILON).ceil().max(0.0) as u64
    } else {
        0
    }
}

impl Phase {
    /// Posts of the generator's mix in the whole phase.
    pub fn normal_posts(&self) -> u64 {
        due_before(self.rate, self.length)
    }

    /// Complaints in the whole phase.
    pub fn complaints(&self) -> u64 {
        due_before(self.complaint_rate, self.length)
    }

    /// The phase's schedule: at each multiple of [`TICK`] from its start, the posts due before
    /// the next one (so the last posts are not held past the phase's end). Ticks with nothing
    /// due are left out.
    pub fn ticks(&self) -> impl Iterator<Item = Tick> + '_ {
        let mut sent = (0, 0);
        (0u32..)
            .map(|k| TICK * k)
            .take_while(|at| *at < self.length)
            .filter_map(move |at| {
                let until = (at + TICK).min(self.length);
                let due = (
                    due_before(self.rate, until),
                    due_before(self.complaint_rate, until),
                );
                let tick = Tick {
                    at,
                    normal: due.0 - sent.0,
                    complaints: due.1 - sent.1,
                };
                sent = due;
                (tick.normal + tick.complaints > 0).then_some(tick)
            })
    }
}

/// A checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub normal: Phase,
    pub burst: Phase,
    pub product: &'static str,
    pub seed: Option<u64>,
}

impl Plan {
    pub fn new(args: &ScenarioArgs) -> Result<Self, ScenarioError> {
        let product = product(&args.product)?;
        let normal_rate = rate("rate", args.rate)?;
        let burst_rate = rate("burst-rate", args.burst_rate)?;
        Ok(Plan {
            normal: Phase {
                name: PhaseName::Normal,
                length: seconds("normal-seconds", args.normal_seconds)?,
                rate: normal_rate,
                complaint_rate: 0.0,
            },
            burst: Phase {
                name: PhaseName::Burst,
                length: seconds("burst-seconds", args.burst_seconds)?,
                rate: normal_rate,
                complaint_rate: burst_rate,
            },
            product,
            seed: args.seed,
        })
    }

    /// The line printed when `phase` starts at `now`.
    pub fn phase_line(&self, phase: &Phase, now: DateTime<Utc>) -> String {
        let started_at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let seconds = phase.length.as_secs_f64();
        match phase.name {
            PhaseName::Normal => format!(
                "phase normal started_at={started_at} rate={} seconds={seconds}",
                phase.rate
            ),
            PhaseName::Burst => format!(
                "phase burst started_at={started_at} product={:?} rate={} burst_rate={} seconds={seconds}",
                self.product, phase.rate, phase.complaint_rate
            ),
        }
    }
}

/// A post of the scenario: a fresh `scn-` id, whatever the generator drew.
fn entry(mut post: pulse_domain::Post) -> PostEntry {
    post.post_id = format!("scn-{}", uuid::Uuid::now_v7());
    PostEntry {
        post,
        traceparent: None,
    }
}

/// The posts of `tick`: its share of the generator's mix, then its complaints about `product`.
pub fn tick_posts(
    tick: &Tick,
    product: &str,
    rng: &mut impl Rng,
) -> (Vec<PostEntry>, Vec<PostEntry>) {
    let normal = (0..tick.normal)
        .map(|_| entry(generator::generate(rng).0))
        .collect();
    let complaints = (0..tick.complaints)
        .map(|_| entry(generator::complaint(rng, product)))
        .collect();
    (normal, complaints)
}

/// What a scenario published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScenarioSummary {
    /// Posts of the mix in the normal phase.
    pub normal: u64,
    /// Posts of the mix in the burst phase.
    pub burst_normal: u64,
    pub complaints: u64,
    pub seconds: f64,
    /// Set when a shutdown stopped the scenario.
    pub stopped_in: Option<PhaseName>,
}

impl ScenarioSummary {
    fn add(&mut self, phase: PhaseName, complaints: bool, count: usize) {
        let count = count as u64;
        match (phase, complaints) {
            (_, true) => self.complaints += count,
            (PhaseName::Normal, false) => self.normal += count,
            (PhaseName::Burst, false) => self.burst_normal += count,
        }
    }
}

impl fmt::Display for ScenarioSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stopped_in {
            None => f.write_str("scenario done")?,
            Some(phase) => write!(f, "scenario stopped phase={phase}")?,
        }
        write!(
            f,
            " normal={} burst_normal={} complaints={} seconds={:.1}",
            self.normal, self.burst_normal, self.complaints, self.seconds
        )
    }
}

/// Plays `plan` through `producer`, pausing while `gate` is closed, writing the phase and
/// summary lines to `out`; stops early when `shutdown` resolves.
pub async fn play(
    producer: &Producer,
    gate: &Backpressure,
    metrics: &IngesterMetrics,
    plan: &Plan,
    shutdown: impl Future<Output = ()>,
    out: &mut impl Write,
) -> anyhow::Result<ScenarioSummary> {
    let started = Instant::now();
    let mut rng = match plan.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let mut summary = ScenarioSummary::default();
    tokio::pin!(shutdown);
    for phase in [&plan.normal, &plan.burst] {
        writeln!(out, "{}", plan.phase_line(phase, Utc::now()))?;
        out.flush()?;
        let player = Player {
            producer,
            gate,
            metrics,
            product: plan.product,
        };
        if !player
            .phase(phase, &mut rng, &mut shutdown, &mut summary)
            .await?
        {
            summary.stopped_in = Some(phase.name);
            break;
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    writeln!(out, "{summary}")?;
    out.flush()?;
    Ok(summary)
}

/// Where a phase's posts go.
struct Player<'a> {
    producer: &'a Producer,
    gate: &'a Backpressure,
    metrics: &'a IngesterMetrics,
    product: &'a str,
}

impl Player<'_> {
    /// Plays one phase to its end; false when `shutdown` came first.
    async fn phase(
        &self,
        phase: &Phase,
        rng: &mut StdRng,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
        summary: &mut ScenarioSummary,
    ) -> anyhow::Result<bool> {
        let start = Instant::now();
        for tick in phase.ticks() {
            tokio::select! {
                () = &mut *shutdown => return Ok(false),
                () = tokio::time::sleep_until(start + tick.at) => {}
            }
            let (normal, complaints) = tick_posts(&tick, self.product, rng);
            for (mut posts, are_complaints) in [(normal, false), (complaints, true)] {
                for chunk in posts.chunks_mut(MAX_CHUNK) {
                    if !publish_chunk(
                        self.producer,
                        self.gate,
                        self.metrics,
                        Origin::Scenario,
                        chunk,
                        shutdown,
                    )
                    .await?
                    {
                        return Ok(false);
                    }
                    summary.add(phase.name, are_complaints, chunk.len());
                }
            }
        }
        // The phase lasts its full length even though its last posts went out a little early.
        tokio::select! {
            () = &mut *shutdown => Ok(false),
            () = tokio::time::sleep_until(start + phase.length) => Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use clap::Parser;

    use super::*;
    use crate::config::{Command, Config};

    fn args(extra: &[&str]) -> ScenarioArgs {
        let config = Config::try_parse_from(["pulse-ingester", "scenario"].iter().chain(extra))
            .expect("the arguments parse");
        match config.command {
            Some(Command::Scenario(args)) => args,
            other => panic!("not a scenario: {other:?}"),
        }
    }

    fn totals(phase: &Phase) -> (u64, u64) {
        phase
            .ticks()
            .fold((0, 0), |(n, c), t| (n + t.normal, c + t.complaints))
    }

    #[test]
    fn products_come_from_the_catalogue() {
        assert_eq!(product("Pixel 9"), Ok("Pixel 9"));
        assert_eq!(product("pixel 9"), Ok("Pixel 9"));
        let error = product("Nokia 3310").expect_err("unknown");
        let message = error.to_string();
        assert!(message.contains("\"Nokia 3310\""), "{message}");
        for name in pulse_insights::entities::DEFAULT_PRODUCTS {
            assert!(message.contains(&format!("{name:?}")), "{message}");
        }
        assert!(matches!(
            Plan::new(&args(&["--product", "Nokia 3310"])),
            Err(ScenarioError::UnknownProduct { .. })
        ));
    }

    #[test]
    fn nonsense_rates_and_lengths_are_refused() {
        for (flags, flag) in [
            (["--rate", "0"], "rate"),
            (["--burst-rate=-1", "--seed=1"], "burst-rate"),
            (["--rate", "NaN"], "rate"),
            (["--rate", "1e9"], "rate"),
        ] {
            assert!(
                matches!(Plan::new(&args(&flags)), Err(ScenarioError::Rate { flag: f, .. }) if f == flag),
                "{flags:?}"
            );
        }
        for flags in [
            ["--normal-seconds=-1", "--seed=1"],
            ["--burst-seconds", "inf"],
            ["--normal-seconds", "NaN"],
        ] {
            assert!(
                matches!(Plan::new(&args(&flags)), Err(ScenarioError::Seconds { .. })),
                "{flags:?}"
            );
        }
    }

    #[test]
    fn defaults_are_a_minute_of_normal_then_thirty_seconds_of_burst() {
        let plan = Plan::new(&args(&[])).expect("defaults are valid");
        assert_eq!(plan.product, "Pixel 9");
        assert_eq!(plan.seed, None);
        assert_eq!(plan.normal.length, Duration::from_secs(60));
        assert_eq!(totals(&plan.normal), (1200, 0));
        assert_eq!(totals(&plan.burst), (600, 600));
        assert_eq!(plan.normal.normal_posts(), 1200);
        assert_eq!(plan.burst.complaints(), 600);
    }

    #[test]
    fn the_schedule_holds_the_rates() {
        let plan = Plan::new(&args(&[
            "--normal-seconds",
            "2",
            "--burst-seconds",
            "1.05",
            "--rate",
            "15",
            "--burst-rate",
            "2.5",
        ]))
        .expect("valid");
        // 15/s for 2 s; at 15/s and 2.5/s for 1.05 s: ⌈15.75⌉ and ⌈2.625⌉.
        assert_eq!(totals(&plan.normal), (30, 0));
        assert_eq!(totals(&plan.burst), (16, 3));
        for phase in [&plan.normal, &plan.burst] {
            let ticks: Vec<Tick> = phase.ticks().collect();
            assert!(ticks.windows(2).all(|w| w[0].at < w[1].at));
            assert!(ticks.iter().all(|t| t.at < phase.length));
            // Each tick carries what falls due in its tenth of a second: 1 or 2 posts at 15/s.
            assert!(
                ticks.iter().all(|t| (1..=2).contains(&t.normal)),
                "{ticks:?}"
            );
            // Half way through, half the posts have gone out.
            let half: u64 = ticks
                .iter()
                .filter(|t| t.at < phase.length / 2)
                .map(|t| t.normal)
                .sum();
            assert!(half.abs_diff(phase.normal_posts() / 2) <= 2, "{half}");
        }
        // Complaints at 2.5/s are due at 0, 0.4 and 0.8 s.
        let complaint_ticks: Vec<Duration> = plan
            .burst
            .ticks()
            .filter(|t| t.complaints > 0)
            .map(|t| t.at)
            .collect();
        assert_eq!(
            complaint_ticks,
            [0, 400, 800].map(Duration::from_millis).to_vec()
        );
        let empty = Phase {
            name: PhaseName::Normal,
            length: Duration::ZERO,
            rate: 20.0,
            complaint_rate: 0.0,
        };
        assert_eq!(empty.ticks().count(), 0);
    }

    #[test]
    fn generation_repeats_with_a_seed_and_complaints_only_come_in_the_burst() {
        let plan = Plan::new(&args(&[
            "--normal-seconds",
            "3",
            "--burst-seconds",
            "2",
            "--rate",
            "10",
            "--burst-rate",
            "10",
            "--seed",
            "42",
        ]))
        .expect("valid");
        let run = |seed: u64| {
            let mut rng = StdRng::seed_from_u64(seed);
            [&plan.normal, &plan.burst].map(|phase| {
                phase
                    .ticks()
                    .map(|tick| tick_posts(&tick, plan.product, &mut rng))
                    .fold((Vec::new(), Vec::new()), |(mut n, mut c), (tn, tc)| {
                        n.extend(tn);
                        c.extend(tc);
                        (n, c)
                    })
            })
        };
        let [(normal, no_complaints), (burst_normal, complaints)] = run(42);
        assert_eq!(
            (
                normal.len(),
                no_complaints.len(),
                burst_normal.len(),
                complaints.len()
            ),
            (30, 0, 20, 20)
        );
        let is_complaint = |e: &PostEntry| {
            e.post.content.contains("battery drains") || e.post.content.contains("overheating")
        };
        assert!(!normal.iter().chain(&burst_normal).any(is_complaint));
        assert!(complaints.iter().all(is_complaint));
        assert!(
            complaints
                .iter()
                .all(|e| e.post.content.contains("Pixel 9"))
        );
        let all: Vec<&PostEntry> = normal
            .iter()
            .chain(&burst_normal)
            .chain(&complaints)
            .collect();
        let now = Utc::now();
        assert!(all.iter().all(|e| e.post.validate(now).is_ok()));
        assert!(all.iter().all(|e| e.post.post_id.starts_with("scn-")));
        let ids: HashSet<&str> = all.iter().map(|e| e.post.post_id.as_str()).collect();
        assert_eq!(ids.len(), all.len());

        let contents = |phases: &[(Vec<PostEntry>, Vec<PostEntry>); 2]| -> Vec<String> {
            phases
                .iter()
                .flat_map(|(n, c)| n.iter().chain(c))
                .map(|e| format!("{} {} {}", e.post.source, e.post.author, e.post.content))
                .collect()
        };
        let first = run(42);
        assert_eq!(contents(&first), contents(&run(42)));
        assert_ne!(contents(&first), contents(&run(43)));
    }

    #[test]
    fn lines_name_the_phase_and_the_counts() {
        let plan = Plan::new(&args(&[])).expect("valid");
        let at = DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z")
            .expect("a timestamp")
            .with_timezone(&Utc);
        assert_eq!(
            plan.phase_line(&plan.normal, at),
            "phase normal started_at=2026-11-30T08:00:00.000Z rate=20 seconds=60"
        );
        assert_eq!(
            plan.phase_line(&plan.burst, at),
            "phase burst started_at=2026-11-30T08:00:00.000Z product=\"Pixel 9\" rate=20 burst_rate=20 seconds=30"
        );
        let mut summary = ScenarioSummary {
            normal: 1200,
            burst_normal: 600,
            complaints: 600,
            seconds: 90.06,
            stopped_in: None,
        };
        assert_eq!(
            summary.to_string(),
            "scenario done normal=1200 burst_normal=600 complaints=600 seconds=90.1"
        );
        summary.stopped_in = Some(PhaseName::Burst);
        assert!(
            summary
                .to_string()
                .starts_with("scenario stopped phase=burst normal=1200 ")
        );
    }
}
