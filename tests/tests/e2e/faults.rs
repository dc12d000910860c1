//! Fault tests: the stream keeps its promises when things break. Each test runs the whole mesh
//! against the real PostgreSQL, Redis and ONNX Runtime, breaks one thing for its own services
//! only (a fault-injecting proxy, or an aborted worker), and checks exact numbers afterwards:
//! every post stored once, every analysis stored once, every post counted once in the rollups,
//! nothing left pending.
//!
//! Each test prints a `FAULT` line with its figures (run with `--nocapture` to see them).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use chrono::Utc;
use pulse_e2e::{Options, Platform};
use pulse_proto::v1::PublishRequest;

use crate::workload::{ids, posts, publish_all};

/// Timeouts shaped for tests: short enough that reclaim and recovery happen within seconds,
/// with `CLAIM_IDLE` > `BATCH_TIMEOUT` > `INFERENCE_TIMEOUT` as production requires, and wide
/// margins over the ~10-100 ms a batch takes, since the tests share two cores.
fn fault_tuning(worker: &mut pulse_worker::Config) {
    worker.inference_timeout = Duration::from_millis(8_000);
    worker.batch_timeout = Duration::from_millis(10_000);
    worker.claim_idle = Duration::from_secs(12);
    worker.claim_interval = Duration::from_millis(1_000);
    worker.retry_max = Duration::from_millis(2_000);
    worker.shutdown_grace = Duration::from_secs(5);
}

/// Waits until the database holds `expected` posts and analyses and the group has nothing
/// pending or undelivered; returns how long that took.
async fn wait_drained(
    platform: &Platform,
    expected: u64,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    Platform::wait_until(timeout, || async {
        let census = platform.census().await?;
        if census.posts < expected || census.analyses < expected {
            return Ok(false);
        }
        let backlog = platform.backlog().await?;
        Ok(backlog.pending == 0 && backlog.lag == Some(0))
    })
    .await
    .map_err(|e| anyhow::anyhow!("not drained: {e}"))?;
    Ok(started.elapsed())
}

/// Waits until at least `count` posts are stored.
async fn wait_stored(platform: &Platform, count: u64, timeout: Duration) -> anyhow::Result<()> {
    Platform::wait_until(timeout, || async {
        Ok(platform.census().await?.posts >= count)
    })
    .await
}

/// The figures every fault test reports and checks.
#[derive(Debug)]
struct Figures {
    posts: u64,
    analyses: u64,
    duplicates: u64,
    lost: u64,
    unexpected: u64,
    pending: u64,
    /// Rollup keys counted other than once per stored post: a post processed twice (or a
    /// re-analysis applied twice) shows here, where unique constraints hide it in the rows.
    rollup_drift: pulse_store::rollups::Drift,
}

/// Counts what is stored against `expected`: duplicates (rows beyond one per post id, or per
/// post and model), lost posts (expected, not stored) and unexpected ones.
async fn count_figures(platform: &Platform, expected: &HashSet<String>) -> anyhow::Result<Figures> {
    let census = platform.census().await?;
    let stored = platform.stored_ids().await?;
    let backlog = platform.backlog().await?;
    Ok(Figures {
        posts: census.posts,
        analyses: census.analyses,
        duplicates: (census.posts - census.distinct_post_ids)
            + (census.analyses - census.distinct_analyses),
        lost: expected.difference(&stored).count() as u64,
        unexpected: stored.difference(expected).count() as u64,
        pending: backlog.pending + backlog.lag.unwrap_or(backlog.length),
        rollup_drift: platform.rollup_drift().await?,
    })
}

fn assert_exact(figures: &Figures, expected: u64) {
    assert_eq!(figures.duplicates, 0, "{figures:?}");
    assert_eq!(figures.lost, 0, "{figures:?}");
    assert_eq!(figures.unexpected, 0, "{figures:?}");
    assert_eq!(figures.posts, expected, "{figures:?}");
    assert_eq!(figures.analyses, expected, "{figures:?}");
    assert_eq!(figures.pending, 0, "{figures:?}");
    assert_eq!(
        figures.rollup_drift,
        pulse_store::rollups::Drift::default(),
        "{figures:?}"
    );
}

/// Entries pending for one consumer.
async fn pending_of(platform: &Platform, consumer: &str) -> anyhow::Result<u64> {
    let mut conn = platform.redis().await?;
    let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(platform.stream_keys().posts())
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(100_000)
        .arg(consumer)
        .query_async(&mut conn)
        .await?;
    Ok(rows.len() as u64)
}

/// Polls `condition` during `period`; true when it held at least once.
async fn observed_within<F, Fut>(period: Duration, mut condition: F) -> anyhow::Result<bool>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + period;
    while Instant::now() < deadline {
        if condition().await? {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_of_two_workers_mid_flow_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let started = Instant::now();
    let n = 5_000;
    let mut platform = Platform::start(
        "kill",
        Options {
            workers: 2,
            worker_config: fault_tuning,
            ..Options::default()
        },
    )
    .await?;
    let mut ingest = platform.ingest_client().await?;
    publish_all(&mut ingest, posts("kill", 0..n)).await?;
    wait_stored(&platform, 1_000, Duration::from_secs(120)).await?;

    platform.abort_worker(0).await?;
    let killed_at = Instant::now();
    let stored_at_kill = platform.census().await?.posts;
    let orphaned = pending_of(&platform, "test-worker-0").await?;

    let drain = wait_drained(&platform, n as u64, Duration::from_secs(240)).await?;
    let figures = count_figures(&platform, &ids("kill", 0..n)).await?;
    let claimed = Platform::metric(
        &platform.workers[1].registry,
        "pulse_worker_entries_claimed_total",
        &[],
    );
    // Entries of the killed worker whose batch had committed: acknowledged without inference.
    let already_stored = Platform::metric(
        &platform.workers[1].registry,
        "pulse_worker_entries_already_stored_total",
        &[],
    );
    println!(
        "FAULT kill-worker: posts {} analyses {} duplicates {} lost {} pending {}; killed at {stored_at_kill} stored with {orphaned} entries in flight, {claimed} claimed by the survivor ({already_stored} of them already stored, acknowledged without inference); drained {:.1} s after the kill; test {:.1} s",
        figures.posts,
        figures.analyses,
        figures.duplicates,
        figures.lost,
        figures.pending,
        killed_at.elapsed().as_secs_f64().min(drain.as_secs_f64()),
        started.elapsed().as_secs_f64()
    );
    assert_exact(&figures, n as u64);
    assert_eq!(pending_of(&platform, "test-worker-0").await?, 0);
    assert!(
        claimed >= orphaned as f64,
        "the survivor claimed {claimed} of {orphaned} orphaned entries"
    );
    assert_eq!(platform.dead_letters().await?.count().await?, 0);
    platform.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_cut_for_ten_seconds_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let started = Instant::now();
    let platform = Platform::start(
        "pgcut",
        Options {
            proxied: pulse_e2e::Proxied {
                postgres: true,
                ..Default::default()
            },
            worker_config: fault_tuning,
            ..Options::default()
        },
    )
    .await?;
    let proxy = platform.proxy("postgres")?;
    let worker = &platform.workers[0];
    let mut ingest = platform.ingest_client().await?;
    publish_all(&mut ingest, posts("pg", 0..1_000)).await?;
    wait_stored(&platform, 200, Duration::from_secs(60)).await?;

    proxy.cut();
    let cut_at = Instant::now();
    // More posts arrive while the database is away; they wait in the stream.
    publish_all(&mut ingest, posts("pg", 1_000..2_000)).await?;
    let noticed = observed_within(Duration::from_secs(8), || async {
        Ok(!worker.readiness.is_ready())
    })
    .await?;
    let frozen = platform.census().await?.posts;
    tokio::time::sleep(cut_at + Duration::from_secs(10) - Instant::now()).await;
    let still = platform.census().await?.posts;
    let backlog_during = platform.backlog().await?;
    proxy.restore();

    let drain = wait_drained(&platform, 2_000, Duration::from_secs(120)).await?;
    let figures = count_figures(&platform, &ids("pg", 0..2_000)).await?;
    let failed = platform.workers_metric(
        "pulse_worker_batches_failed_total",
        &[("cause", "database")],
    );
    println!(
        "FAULT postgres-cut-10s: posts {} analyses {} duplicates {} lost {} pending {}; {frozen} stored when cut, {} waiting during the cut, {failed} batches failed; drained {:.1} s after restore; test {:.1} s",
        figures.posts,
        figures.analyses,
        figures.duplicates,
        figures.lost,
        figures.pending,
        backlog_during.pending + backlog_during.lag.unwrap_or(0),
        drain.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(noticed, "the worker stayed ready with the database cut");
    assert_eq!(still, frozen, "posts were stored with the database cut");
    assert!(worker.readiness.is_ready(), "ready again after the drain");
    assert_exact(&figures, 2_000);
    assert_eq!(platform.dead_letters().await?.count().await?, 0);
    platform.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inference_cut_acknowledges_nothing_and_everything_is_analysed_after() -> anyhow::Result<()>
{
    let started = Instant::now();
    let platform = Platform::start(
        "infcut",
        Options {
            proxied: pulse_e2e::Proxied {
                inference: true,
                ..Default::default()
            },
            worker_config: fault_tuning,
            ..Options::default()
        },
    )
    .await?;
    let proxy = platform.proxy("inference")?;
    let worker = &platform.workers[0];
    let mut ingest = platform.ingest_client().await?;
    publish_all(&mut ingest, posts("inf", 0..1_000)).await?;
    wait_stored(&platform, 200, Duration::from_secs(60)).await?;

    proxy.cut();
    let cut_at = Instant::now();
    publish_all(&mut ingest, posts("inf", 1_000..1_500)).await?;
    let noticed = observed_within(Duration::from_secs(8), || async {
        Ok(!worker.readiness.is_ready())
    })
    .await?;
    // Batches in flight when the connection broke fail, or finish when their analyses were
    // already back (storing them takes a moment); from then on nothing is acknowledged.
    let settled = observed_within(Duration::from_secs(5), || async {
        Ok(platform.workers_metric("pulse_worker_batches_in_flight", &[]) == 0.0)
    })
    .await?;
    let processed = platform.workers_metric("pulse_worker_posts_processed_total", &[]);
    let stored = platform.census().await?.posts;
    tokio::time::sleep(cut_at + Duration::from_secs(10) - Instant::now()).await;
    let processed_after = platform.workers_metric("pulse_worker_posts_processed_total", &[]);
    let stored_after = platform.census().await?.posts;
    let waiting = platform.backlog().await?;
    proxy.restore();

    let drain = wait_drained(&platform, 1_500, Duration::from_secs(120)).await?;
    let figures = count_figures(&platform, &ids("inf", 0..1_500)).await?;
    println!(
        "FAULT inference-cut-10s: posts {} analyses {} duplicates {} lost {} pending {}; {stored} stored when cut, {} waiting unacknowledged during the cut; drained {:.1} s after restore; test {:.1} s",
        figures.posts,
        figures.analyses,
        figures.duplicates,
        figures.lost,
        figures.pending,
        waiting.pending + waiting.lag.unwrap_or(0),
        drain.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(noticed, "the worker stayed ready with inference cut");
    assert!(settled, "batches stayed in flight with inference cut");
    assert_eq!(
        processed_after, processed,
        "entries were acknowledged during the cut"
    );
    assert_eq!(stored_after, stored);
    assert!(waiting.pending + waiting.lag.unwrap_or(0) >= 500);
    assert_exact(&figures, 1_500);
    assert_eq!(platform.dead_letters().await?.count().await?, 0);
    platform.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cut_for_ten_seconds_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut platform = Platform::start(
        "rediscut",
        Options {
            proxied: pulse_e2e::Proxied {
                redis: true,
                ..Default::default()
            },
            // The generator runs through the outage too: 20 posts/s.
            posts_per_minute: 1_200,
            worker_config: fault_tuning,
            ..Options::default()
        },
    )
    .await?;
    let ingest = platform.ingest_client().await?;

    // A publisher that keeps calling Publish through the outage and remembers what was
    // acknowledged and what was refused.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let publisher = tokio::spawn(async move {
        let mut ingest = ingest;
        let mut acknowledged: HashSet<String> = HashSet::new();
        let mut attempted: HashSet<String> = HashSet::new();
        let mut unavailable = 0u64;
        let mut next = 0usize;
        while !*stop_rx.borrow() {
            let batch = posts("pub", next..next + 20);
            next += 20;
            attempted.extend(batch.iter().map(|p| p.post_id.clone()));
            let call = tokio::time::timeout(
                Duration::from_secs(15),
                ingest.publish(PublishRequest {
                    posts: batch.clone(),
                }),
            )
            .await;
            match call {
                Ok(Ok(response)) => {
                    let response = response.into_inner();
                    anyhow::ensure!(response.accepted_count == 20, "refused posts: {response:?}");
                    acknowledged.extend(batch.into_iter().map(|p| p.post_id));
                }
                Ok(Err(status)) if status.code() == tonic::Code::Unavailable => unavailable += 1,
                Ok(Err(status)) => anyhow::bail!("unexpected answer: {status}"),
                Err(_) => anyhow::bail!("Publish hung for 15 s"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok((acknowledged, attempted, unavailable))
    });

    tokio::time::sleep(Duration::from_secs(3)).await;
    let proxy = platform.proxy("redis")?;
    proxy.cut();
    let cut_at = Instant::now();
    let worker_noticed = observed_within(Duration::from_secs(9), || async {
        Ok(!platform.workers[0].readiness.is_ready())
    })
    .await?;
    let ingester_noticed = observed_within(
        cut_at + Duration::from_secs(10) - Instant::now(),
        || async { Ok(!platform.ingester_readiness.is_ready()) },
    )
    .await?;
    tokio::time::sleep(
        (cut_at + Duration::from_secs(10)).saturating_duration_since(Instant::now()),
    )
    .await;
    proxy.restore();
    let restored_at = Instant::now();
    // Both reconnect by themselves: publishing succeeds again, then stop publishing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop_tx.send(true);
    let (acknowledged, attempted, unavailable) = publisher.await??;
    platform.stop_ingester().await?;
    let generated = Platform::metric(
        &platform.ingester_registry,
        "pulse_ingester_posts_ingested_total",
        &[("origin", "generator")],
    ) as u64;

    let stored = platform.stored_ids().await?;
    let expected_min = acknowledged.len() as u64 + generated;
    Platform::wait_until(Duration::from_secs(120), || async {
        let backlog = platform.backlog().await?;
        let census = platform.census().await?;
        Ok(backlog.pending == 0
            && backlog.lag == Some(0)
            && census.posts >= expected_min
            && census.analyses == census.posts)
    })
    .await?;
    let drain = restored_at.elapsed();
    let census = platform.census().await?;
    let stored_now = platform.stored_ids().await?;
    let lost = acknowledged.difference(&stored_now).count();
    let published_stored = stored_now
        .iter()
        .filter(|id| id.starts_with("pub-"))
        .count();
    let generated_stored = stored_now
        .iter()
        .filter(|id| id.starts_with("gen-"))
        .count() as u64;
    let duplicates =
        (census.posts - census.distinct_post_ids) + (census.analyses - census.distinct_analyses);
    println!(
        "FAULT redis-cut-10s: posts {} analyses {} duplicates {duplicates} lost {lost}; Publish: {} acknowledged, {unavailable} calls answered UNAVAILABLE, {published_stored} stored; generator: {generated} acknowledged by Redis, {generated_stored} stored; readiness dropped: worker {worker_noticed}, ingester {ingester_noticed}; drained {:.1} s after restore; test {:.1} s",
        census.posts,
        census.analyses,
        acknowledged.len(),
        drain.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(stored);
    assert_eq!(duplicates, 0);
    assert_eq!(lost, 0, "acknowledged posts are missing");
    assert!(
        stored_now
            .iter()
            .all(|id| !id.starts_with("pub-") || attempted.contains(id))
    );
    assert!(unavailable > 0, "Publish never saw the outage");
    // A generated post counts once Redis acknowledged it; one whose XADD reply was lost in the
    // cut is stored without being counted, and retried under the same id.
    assert!(
        (generated..=generated + 1).contains(&generated_stored),
        "generator: {generated} acknowledged, {generated_stored} stored"
    );
    assert_eq!(census.analyses, census.posts);
    assert!(worker_noticed && ingester_noticed);
    assert_eq!(platform.dead_letters().await?.count().await?, 0);
    platform.shutdown().await
}

/// Inference in the poison test refuses texts over this many characters, while the platform
/// accepts up to 5,000: a post over it decodes and validates, and fails every time.
const INFERENCE_MAX_CHARS: usize = 1_000;

fn limit_inference_input(inference: &mut pulse_inference::Config) {
    inference.max_input_chars = INFERENCE_MAX_CHARS;
}

/// Entries that can never be decoded: no version, an unknown version, a bad timestamp, a
/// non-UTF-8 author, an invalid source.
async fn add_undecodable(platform: &Platform) -> anyhow::Result<()> {
    let mut conn = platform.redis().await?;
    let key = platform.stream_keys().posts();
    let now = Utc::now().to_rfc3339();
    let entries: Vec<Vec<(&str, Vec<u8>)>> = vec![
        vec![("garbage", b"\x01".to_vec())],
        vec![("v", b"9".to_vec()), ("post_id", b"x-1".to_vec())],
        vec![
            ("v", b"1".to_vec()),
            ("post_id", b"x-2".to_vec()),
            ("source", b"twitter".to_vec()),
            ("author", b"a".to_vec()),
            ("content", b"text".to_vec()),
            ("created_at", b"yesterday".to_vec()),
        ],
        vec![
            ("v", b"1".to_vec()),
            ("post_id", b"x-3".to_vec()),
            ("source", b"twitter".to_vec()),
            ("author", vec![0xff, 0xfe]),
            ("content", b"text".to_vec()),
            ("created_at", now.clone().into_bytes()),
        ],
        vec![
            ("v", b"1".to_vec()),
            ("post_id", b"x-4".to_vec()),
            ("source", b"Not A Source".to_vec()),
            ("author", b"a".to_vec()),
            ("content", b"text".to_vec()),
            ("created_at", now.into_bytes()),
        ],
    ];
    for fields in entries {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&key).arg("*");
        for (name, value) in fields {
            cmd.arg(name).arg(value);
        }
        let _: String = cmd.query_async(&mut conn).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_entries_are_dead_lettered_while_good_ones_flow() -> anyhow::Result<()> {
    let started = Instant::now();
    let platform = Platform::start(
        "poison",
        Options {
            inference_config: limit_inference_input,
            worker_config: fault_tuning,
            ..Options::default()
        },
    )
    .await?;
    let max_deliveries = 5;
    let mut ingest = platform.ingest_client().await?;
    // 300 good posts with 5 poisoned ones among them, in the same calls and batches.
    let mut batch = posts("good", 0..300);
    let long_text = "This review goes on and on. ".repeat(60);
    assert!(long_text.chars().count() > INFERENCE_MAX_CHARS);
    for (n, at) in [7, 70, 150, 222, 299].into_iter().enumerate() {
        let mut bad = batch[0].clone();
        bad.post_id = format!("long-{n}");
        bad.content.clone_from(&long_text);
        batch.insert(at, bad);
    }
    add_undecodable(&platform).await?;
    publish_all(&mut ingest, batch).await?;
    add_undecodable(&platform).await?;

    let good = ids("good", 0..300);
    let good_stored_after = std::cell::Cell::new(None);
    let dlq = platform.dead_letters().await?;
    Platform::wait_until(Duration::from_secs(120), || async {
        let stored = platform.stored_ids().await?;
        if good_stored_after.get().is_none() && good.is_subset(&stored) {
            good_stored_after.set(Some(started.elapsed()));
        }
        let backlog = platform.backlog().await?;
        Ok(dlq.count().await? == 15 && backlog.pending == 0 && backlog.lag == Some(0))
    })
    .await?;
    let drained = started.elapsed();
    let figures = count_figures(&platform, &good).await?;
    let letters = dlq.list(None, 100).await?;
    let undecodable: Vec<_> = letters
        .iter()
        .filter(|l| {
            l.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("undecodable: "))
        })
        .collect();
    let refused: Vec<_> = letters
        .iter()
        .filter(|l| l.field("post_id").is_some_and(|id| id.starts_with("long-")))
        .collect();
    println!(
        "FAULT poison: posts {} analyses {} duplicates {} lost {} pending {}; dead letters: {} undecodable (1 delivery each), {} refused by inference every time ({:?} deliveries); good posts all stored after {:.1} s, everything settled after {:.1} s",
        figures.posts,
        figures.analyses,
        figures.duplicates,
        figures.lost,
        figures.pending,
        undecodable.len(),
        refused.len(),
        refused.iter().map(|l| l.deliveries).collect::<Vec<_>>(),
        good_stored_after.get().unwrap_or_default().as_secs_f64(),
        drained.as_secs_f64(),
    );
    assert_exact(&figures, 300);
    assert_eq!(undecodable.len(), 10);
    assert!(undecodable.iter().all(|l| l.deliveries == Some(1)));
    assert_eq!(refused.len(), 5);
    for letter in &refused {
        // Dead-lettered at its fifth failure of its own, on its fifth delivery.
        assert_eq!(letter.deliveries, Some(max_deliveries), "{letter:?}");
        let reason = letter.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("failed 5 times") && reason.contains("over the limit"),
            "{reason}"
        );
        // The original fields travel unchanged.
        assert_eq!(letter.field("content"), Some(long_text.as_str()));
        assert!(letter.original_id.is_some());
    }
    let failed = platform.workers_metric("pulse_worker_entries_failed_total", &[]);
    assert_eq!(failed, (5 * max_deliveries) as f64);

    // The operator's view, then a replay: the entries are back on the stream, fail again the
    // same way, and are dead-lettered again, while nothing else changes.
    let mut config = <pulse_worker::Config as clap::Parser>::parse_from(["pulse-worker"]);
    config.redis.url = pulse_settings::ConnectionUrl::new(pulse_testkit::redis_url());
    config.redis.prefix.clone_from(&platform.stream_prefix);
    let mut listing = Vec::new();
    pulse_worker::dlq::run(
        &config,
        &pulse_worker::config::DlqCommand::List { limit: 3 },
        &mut listing,
    )
    .await?;
    let listing = String::from_utf8(listing)?;
    assert!(listing.starts_with("15 dead letters"), "{listing}");
    assert!(
        listing.contains("reason: undecodable: field v is missing"),
        "{listing}"
    );
    let mut replayed = Vec::new();
    pulse_worker::dlq::run(
        &config,
        &pulse_worker::config::DlqCommand::Replay {
            all: true,
            ids: Vec::new(),
        },
        &mut replayed,
    )
    .await?;
    assert!(String::from_utf8(replayed)?.ends_with("15 dead letters replayed\n"));
    Platform::wait_until(Duration::from_secs(60), || async {
        let backlog = platform.backlog().await?;
        Ok(dlq.count().await? == 15 && backlog.pending == 0 && backlog.lag == Some(0))
    })
    .await?;
    assert_exact(&count_figures(&platform, &good).await?, 300);
    platform.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_stops_reading_finishes_batches_and_exits_in_bounded_time() -> anyhow::Result<()> {
    let mut platform = Platform::start(
        "sigterm",
        Options {
            worker_config: fault_tuning,
            ..Options::default()
        },
    )
    .await?;
    let mut ingest = platform.ingest_client().await?;
    publish_all(&mut ingest, posts("term", 0..2_000)).await?;
    wait_stored(&platform, 300, Duration::from_secs(60)).await?;
    let took = platform.stop_worker(0).await?;
    let census = platform.census().await?;
    let backlog = platform.backlog().await?;
    println!(
        "FAULT sigterm: stopped in {:.2} s with {} posts stored, {} pending, {} never delivered",
        took.as_secs_f64(),
        census.posts,
        backlog.pending,
        backlog.lag.unwrap_or_default()
    );
    // Stopped well within the grace period (5 s) plus one blocking read.
    assert!(took < Duration::from_secs(6), "{took:?}");
    // Every batch in flight was finished: nothing is half done, nothing was lost.
    assert_eq!(backlog.pending, 0);
    assert_eq!(census.posts + backlog.lag.unwrap_or_default(), 2_000);
    assert_eq!(census.analyses, census.posts);
    platform.shutdown().await
}

/// The marker that makes inference fail (`FAULT_FAIL_ON_TEXT`) in the crash test.
const CRASH_MARKER: &str = "zq-crash-marker-41";

fn crash_on_marker(inference: &mut pulse_inference::Config) {
    inference.fault_fail_on_text = Some(CRASH_MARKER.to_owned());
}

/// Failures an entry may have by its own fault in the crash test.
const CRASH_MAX_DELIVERIES: u64 = 3;

fn crash_tuning(worker: &mut pulse_worker::Config) {
    fault_tuning(worker);
    worker.max_deliveries = CRASH_MAX_DELIVERIES;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_post_that_crashes_inference_is_dead_lettered_alone_and_its_batch_is_stored()
-> anyhow::Result<()> {
    let started = Instant::now();
    let platform = Platform::start(
        "crash",
        Options {
            inference_config: crash_on_marker,
            worker_config: crash_tuning,
            ..Options::default()
        },
    )
    .await?;
    let mut ingest = platform.ingest_client().await?;
    let mut batch = posts("ok", 0..300);
    let mut bad = batch[0].clone();
    bad.post_id = "crash-0".to_owned();
    bad.content = format!("The battery died again {CRASH_MARKER} and the screen froze");
    batch.insert(137, bad);
    publish_all(&mut ingest, batch).await?;

    let good = ids("ok", 0..300);
    let dlq = platform.dead_letters().await?;
    let good_stored_after = std::cell::Cell::new(None);
    Platform::wait_until(Duration::from_secs(120), || async {
        let stored = platform.stored_ids().await?;
        if good_stored_after.get().is_none() && good.is_subset(&stored) {
            good_stored_after.set(Some(started.elapsed()));
        }
        let backlog = platform.backlog().await?;
        Ok(dlq.count().await? >= 1 && backlog.pending == 0 && backlog.lag == Some(0))
    })
    .await?;
    let figures = count_figures(&platform, &good).await?;
    let letters = dlq.list(None, 100).await?;
    let failed = platform.workers_metric("pulse_worker_entries_failed_total", &[]);
    let splits = platform.workers_metric("pulse_worker_batch_splits_total", &[]);
    let batch_failures = platform.workers_metric("pulse_worker_batches_failed_total", &[]);
    let processed = platform.workers_metric("pulse_worker_posts_processed_total", &[]);
    println!(
        "FAULT crash-on-text: posts {} analyses {} duplicates {} lost {} pending {}; dead letters {} ({:?} deliveries); {failed} failures of the bad entry, {splits} splits, {batch_failures} whole batches failed, {processed} processed; good posts all stored after {:.1} s; test {:.1} s",
        figures.posts,
        figures.analyses,
        figures.duplicates,
        figures.lost,
        figures.pending,
        letters.len(),
        letters.iter().map(|l| l.deliveries).collect::<Vec<_>>(),
        good_stored_after.get().unwrap_or_default().as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert_exact(&figures, 300);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.field("post_id"), Some("crash-0"));
    let reason = letter.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("failed 3 times") && reason.contains("FAULT_FAIL_ON_TEXT"),
        "{reason}"
    );
    // The bad entry was retried alone: it failed exactly MAX_DELIVERIES times, and no batch
    // ever failed as a whole, so no good entry went back to pending or was read twice.
    assert_eq!(failed, CRASH_MAX_DELIVERIES as f64);
    assert_eq!(letter.deliveries, Some(CRASH_MAX_DELIVERIES));
    assert!(splits >= 1.0, "the batch was never split");
    assert_eq!(batch_failures, 0.0);
    assert_eq!(processed, 300.0);
    assert_eq!(
        platform.workers_metric("pulse_worker_entries_already_stored_total", &[]),
        0.0
    );
    platform.shutdown().await
}

fn one_delivery(worker: &mut pulse_worker::Config) {
    fault_tuning(worker);
    worker.max_deliveries = 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_postgres_cut_dead_letters_nothing_even_with_one_delivery_allowed()
-> anyhow::Result<()> {
    let started = Instant::now();
    let platform = Platform::start(
        "pglong",
        Options {
            proxied: pulse_e2e::Proxied {
                postgres: true,
                ..Default::default()
            },
            worker_config: one_delivery,
            ..Options::default()
        },
    )
    .await?;
    let proxy = platform.proxy("postgres")?;
    let mut ingest = platform.ingest_client().await?;
    publish_all(&mut ingest, posts("pl", 0..1_000)).await?;
    wait_stored(&platform, 200, Duration::from_secs(60)).await?;

    proxy.cut();
    publish_all(&mut ingest, posts("pl", 1_000..1_500)).await?;
    // MAX_DELIVERIES (1) x CLAIM_INTERVAL (1 s) is long gone after 8 s; the entries of the
    // batches that failed at the cut have been delivered once and will be again.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = platform.backlog().await?;
    let failed_at_cut = platform.workers_metric(
        "pulse_worker_batches_failed_total",
        &[("cause", "database")],
    );
    proxy.restore();

    let drain = wait_drained(&platform, 1_500, Duration::from_secs(120)).await?;
    let figures = count_figures(&platform, &ids("pl", 0..1_500)).await?;
    let dead = platform.dead_letters().await?.count().await?;
    println!(
        "FAULT postgres-cut-8s-max-deliveries-1: posts {} analyses {} duplicates {} lost {} pending {}; {} delivered and pending during the cut, {failed_at_cut} batches failed, {dead} dead letters; drained {:.1} s after restore; test {:.1} s",
        figures.posts,
        figures.analyses,
        figures.duplicates,
        figures.lost,
        figures.pending,
        during.pending,
        drain.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    // Entries failed by the cut and were delivered again after it: under a rule that counted
    // deliveries, every one of them would be over MAX_DELIVERIES.
    assert!(during.pending > 0, "no entry was in flight at the cut");
    assert!(failed_at_cut >= 1.0);
    assert_eq!(dead, 0);
    assert_exact(&figures, 1_500);
    assert_eq!(
        platform.workers_metric("pulse_worker_entries_failed_total", &[]),
        0.0
    );
    platform.shutdown().await
}
