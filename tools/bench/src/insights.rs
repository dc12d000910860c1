//! `pulse-bench insights`: the drivers and entities queries over a day of posts at the mesh's
//! rate.
//!
//! The insights read only the rollups, whose size follows the vocabulary (terms per minute and
//! sentiment), not the posts. So the benchmark writes the term and sentiment rollups that
//! `--hours` of posts at `--posts-per-second` leave (see
//! [`pulse_store::synthetic::load_term_rollups`]), with the vocabulary of the ingester's
//! generator, measured by extracting 100,000 generated posts the way the worker does, plus
//! `--extra-terms` long-tail terms (Zipf) for a richer language. The last hour gets a burst of
//! the generator's complaints, so the drivers query has drivers (and their examples) to answer.
//! Then it times `GET /api/insights/drivers` (the last 24 hours against the 24 before) and
//! `GET /api/insights/entities` through the gateway.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use pulse_insights::{entities::Catalogue, terms};
use pulse_store::{
    synthetic::{TermLoadSpec, TermRate},
    terms::TermKind,
};
use rand::{SeedableRng, rngs::StdRng};

/// Options of `pulse-bench insights`.
#[derive(Debug, Clone, clap::Args)]
pub struct InsightsOptions {
    #[command(flatten)]
    pub database: pulse_settings::DatabaseSettings,
    /// The gateway's base URL.
    #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:8080")]
    pub gateway_url: String,
    /// The stream's rate the rollups stand for.
    #[arg(long, default_value_t = 480.0)]
    pub posts_per_second: f64,
    /// Hours of rollups, ending now: 48 is the day queried and the day it is compared with.
    #[arg(long, default_value_t = 48)]
    pub hours: u32,
    /// Long-tail terms added to the generator's vocabulary (each post mentions five of them).
    #[arg(long, default_value_t = 0)]
    pub extra_terms: usize,
    /// Requests per endpoint.
    #[arg(long, default_value_t = 300)]
    pub requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Skip the load (the rollups are already there).
    #[arg(long)]
    pub no_load: bool,
}

/// Posts sampled from the generator to measure its vocabulary.
const SAMPLE: usize = 100_000;

/// Terms per minute of each sentiment for a stream of `posts_per_minute` generated posts.
fn generator_vocabulary(posts_per_minute: f64, complaints: bool) -> Vec<TermRate> {
    let mut rng = StdRng::seed_from_u64(16);
    let catalogue = Catalogue::default();
    let mut counts: BTreeMap<(TermKind, String), [u64; 3]> = BTreeMap::new();
    for _ in 0..SAMPLE {
        let (content, sentiment) = if complaints {
            (
                pulse_ingester::generator::complaint(&mut rng, "Pixel 9").content,
                2,
            )
        } else {
            let (post, intended) = pulse_ingester::generator::generate(&mut rng);
            (post.content, intended as usize)
        };
        let found = terms::extract(&content);
        let mentioned = found
            .words
            .iter()
            .chain(&found.mentions)
            .map(|t| (TermKind::Term, t.clone()))
            .chain(
                catalogue
                    .find(&content)
                    .into_iter()
                    .chain(found.hashtags.iter().cloned())
                    .map(|e| (TermKind::Entity, e)),
            );
        for key in mentioned {
            counts.entry(key).or_default()[sentiment] += 1;
        }
    }
    let scale = posts_per_minute / SAMPLE as f64;
    counts
        .into_iter()
        .map(|((kind, term), c)| TermRate {
            kind,
            term,
            per_minute: c.map(|n| n as f64 * scale),
        })
        .collect()
}

/// `count` long-tail terms, Zipf-distributed, five mentions per post in all, split like the
/// generator's mix.
fn long_tail(count: usize, posts_per_minute: f64) -> Vec<TermRate> {
    let harmonic: f64 = (1..=count).map(|i| 1.0 / i as f64).sum();
    (1..=count)
        .map(|i| {
            let rate = 5.0 * posts_per_minute / (harmonic * i as f64);
            TermRate {
                kind: TermKind::Term,
                term: format!("tail{i}"),
                per_minute: [0.4 * rate, 0.3 * rate, 0.3 * rate],
            }
        })
        .collect()
}

/// Times `requests` GETs of `url`, `concurrency` at a time; fails on any non-2xx answer.
async fn time_requests(
    client: &reqwest::Client,
    url: &str,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Duration>> {
    use futures::StreamExt;
    let results: Vec<anyhow::Result<Duration>> = futures::stream::iter(0..requests)
        .map(|_| async move {
            let started = Instant::now();
            let response = client.get(url).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            anyhow::ensure!(
                status.is_success(),
                "{url}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            Ok(started.elapsed())
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Loads the rollups and times the two queries.
pub async fn run(options: InsightsOptions) -> anyhow::Result<()> {
    let per_minute = options.posts_per_second * 60.0;
    let url = options.database.url.expose();
    if !options.no_load {
        pulse_store::provision::ensure_database(url).await?;
        let pool = pulse_store::connect_pool(url, 1)?;
        let mut client = pool.get().await?;
        pulse_store::migrate::run(&mut client).await?;
        let mut vocabulary = generator_vocabulary(per_minute, false);
        vocabulary.extend(long_tail(options.extra_terms, per_minute));
        let terms = vocabulary.len();
        let started = Instant::now();
        let mix = [0.4 * per_minute, 0.3 * per_minute, 0.3 * per_minute];
        let now = chrono::Utc::now();
        let rows = pulse_store::synthetic::load_term_rollups(
            &mut client,
            &TermLoadSpec {
                end: now,
                hours: options.hours,
                posts_per_minute: mix,
                vocabulary,
            },
        )
        .await?;
        // The last hour: complaints at a tenth of the rate on top.
        let burst = pulse_store::synthetic::load_term_rollups(
            &mut client,
            &TermLoadSpec {
                end: now,
                hours: 1,
                posts_per_minute: [0.0, 0.0, 0.1 * per_minute],
                vocabulary: generator_vocabulary(0.1 * per_minute, true),
            },
        )
        .await?;
        println!(
            "loaded {} rollup rows ({terms} terms, {} posts/s over {} h) in {:.1} s",
            rows + burst,
            options.posts_per_second,
            options.hours,
            started.elapsed().as_secs_f64()
        );
    }
    let client = reqwest::Client::new();
    let base = options.gateway_url.trim_end_matches('/');
    let now = chrono::Utc::now();
    let from =
        (now - chrono::TimeDelta::hours(24)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (name, path) in [
        (
            "drivers 24 h",
            format!("/api/insights/drivers?from={from}&to={to}"),
        ),
        ("drivers 1 h", "/api/insights/drivers".to_owned()),
        (
            "entities 24 h",
            format!("/api/insights/entities?from={from}&to={to}"),
        ),
    ] {
        let url = format!("{base}{path}");
        let sample: serde_json::Value = client.get(&url).send().await?.json().await?;
        let returned = sample["data"]["drivers"]
            .as_array()
            .or_else(|| sample["data"]["entities"].as_array())
            .map_or(0, Vec::len);
        let started = Instant::now();
        let mut latencies =
            time_requests(&client, &url, options.requests, options.concurrency).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{name}: {} requests, concurrency {}, {:.1} req/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({returned} items, {} terms tested)",
            options.requests,
            options.concurrency,
            options.requests as f64 / seconds.max(1e-9),
            crate::stats::quantile(&mut latencies, 0.5).as_secs_f64() * 1e3,
            crate::stats::quantile(&mut latencies, 0.99).as_secs_f64() * 1e3,
            crate::stats::quantile(&mut latencies, 1.0).as_secs_f64() * 1e3,
            sample["data"]["terms_tested"],
        );
    }
    Ok(())
}
