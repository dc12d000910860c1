//! `pulse-ingester replay`: a JSONL file of posts goes through the real stream, worker and
//! database, at the pace backpressure allows or at a given rate; invalid lines are reported
//! with their number and skipped.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use pulse_e2e::{Options, Platform};
use pulse_ingester::{
    backpressure::{self, Backpressure, Marks},
    metrics::IngesterMetrics,
    replay::replay,
};
use pulse_stream::Producer;
use rand::{SeedableRng, rngs::StdRng};

/// `count` valid lines with ids `<prefix>-<n>`.
fn valid_lines(prefix: &str, count: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(11);
    (0..count)
        .map(|i| {
            let (post, _) = pulse_ingester::generator::generate(&mut rng);
            serde_json::json!({
                "post_id": format!("{prefix}-{i}"),
                "source": post.source,
                "author": post.author,
                "content": post.content,
                "created_at": "2026-01-02T03:04:05.678Z",
            })
            .to_string()
        })
        .collect()
}

fn write_file(lines: &[String]) -> anyhow::Result<std::path::PathBuf> {
    let path = pulse_testkit::temp_path("replay", "jsonl");
    std::fs::write(&path, lines.join("\n") + "\n")?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_jsonl_file_is_replayed_under_backpressure_and_at_a_given_rate() -> anyhow::Result<()> {
    let platform = Platform::start("replay", Options::default()).await?;
    let producer = Producer::new(platform.redis().await?, &platform.stream_keys(), 1_000_000);
    let metrics = IngesterMetrics::new(&prometheus::Registry::new())?;
    let marks = Marks { high: 60, low: 30 };
    let gate = Backpressure::new(marks, metrics.clone());
    let watcher = tokio::spawn(backpressure::watch(
        producer.clone(),
        gate.clone(),
        Duration::from_millis(50),
        metrics.clone(),
    ));
    // The largest backlog seen while the file is replayed.
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let peak = Arc::clone(&peak);
        let producer = producer.clone();
        async move {
            loop {
                if let Ok(backlog) = producer.backlog().await {
                    peak.fetch_max(backlog.unprocessed(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });

    let mut lines = valid_lines("replay", 400);
    lines.insert(4, "{not json".to_owned());
    lines.insert(
        100,
        r#"{"post_id":"r-ts","source":"reddit","author":"a","content":"x","created_at":"yesterday"}"#
            .to_owned(),
    );
    lines.insert(
        200,
        r#"{"post_id":"r-src","source":"Not A Source","author":"a","content":"x","created_at":"2026-01-02T03:04:05Z"}"#
            .to_owned(),
    );
    lines.insert(300, String::new());
    // A line published twice is stored once.
    lines.push(lines[0].clone());
    let file = write_file(&lines)?;
    let mut report = Vec::new();
    let summary = replay(
        &producer,
        &gate,
        &metrics,
        &file,
        None,
        std::future::pending(),
        &mut report,
    )
    .await?;
    let report = String::from_utf8(report)?;
    assert_eq!(
        (
            summary.lines,
            summary.published,
            summary.invalid,
            summary.blank
        ),
        (405, 401, 3, 1),
        "{summary}"
    );
    assert!(report.contains("line 5: not a post"), "{report}");
    assert!(report.contains("line 101: INVALID_TIMESTAMP"), "{report}");
    assert!(report.contains("line 201: INVALID_CHARACTERS"), "{report}");
    Platform::wait_until(Duration::from_secs(60), || async {
        let census = platform.census().await?;
        let backlog = platform.backlog().await?;
        Ok(census.posts == 400 && census.analyses == 400 && backlog.pending == 0)
    })
    .await?;
    let census = platform.census().await?;
    assert_eq!(census.distinct_post_ids, 400);
    let pauses = metrics.backpressure_pauses.get();
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "REPLAY {summary}; backlog peaked at {peak} with marks {}/{}, {pauses} pauses",
        marks.high, marks.low
    );
    assert!(pauses >= 1, "backpressure never paused the replay");
    // One chunk (100 posts) may go out before the gate closes; never more.
    assert!(peak <= marks.high + 100, "backlog peaked at {peak}");

    // At a given rate: 30 posts at 100/s go out in chunks of 10, at 0, 0.1 and 0.2 s.
    let file_rated = write_file(&valid_lines("rated", 30))?;
    let rated = replay(
        &producer,
        &gate,
        &metrics,
        &file_rated,
        Some(100.0),
        std::future::pending(),
        &mut Vec::new(),
    )
    .await?;
    println!("REPLAY at 100/s: {rated}");
    assert_eq!(rated.published, 30);
    assert!(rated.seconds >= 0.19 && rated.seconds < 3.0, "{rated}");

    sampler.abort();
    watcher.abort();
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(file_rated);
    platform.shutdown().await
}
