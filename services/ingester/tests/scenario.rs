//! `pulse-ingester scenario` against a real Redis, with a key prefix of its own: the stream
//! receives the normal mix first and the complaints only once the burst has started.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use pulse_ingester::{
    Config,
    backpressure::{Backpressure, Marks},
    config::Command,
    metrics::IngesterMetrics,
    scenario::{self, PhaseName, Plan},
};
use pulse_stream::{
    GroupConsumer, PostEntry, Producer, RedisKeys,
    connection::{connect, connect_blocking},
};
use pulse_testkit::{delete_redis_keys, redis_url, unique_name};

fn plan(flags: &[&str]) -> anyhow::Result<Plan> {
    let config = Config::try_parse_from(["pulse-ingester", "scenario"].iter().chain(flags))?;
    match config.command {
        Some(Command::Scenario(args)) => Ok(Plan::new(&args)?),
        other => anyhow::bail!("not a scenario: {other:?}"),
    }
}

fn is_complaint(entry: &PostEntry) -> bool {
    entry.post.content.contains("battery drains") || entry.post.content.contains("overheating")
}

/// The `started_at` of the line of `phase` in `output`.
fn started_at(output: &str, phase: &str) -> anyhow::Result<DateTime<Utc>> {
    let line = output
        .lines()
        .find(|line| line.starts_with(&format!("phase {phase} ")))
        .ok_or_else(|| anyhow::anyhow!("no {phase} line in {output}"))?;
    let at = line
        .split(' ')
        .find_map(|field| field.strip_prefix("started_at="))
        .ok_or_else(|| anyhow::anyhow!("no started_at in {line}"))?;
    Ok(DateTime::parse_from_rfc3339(at)?.with_timezone(&Utc))
}

#[tokio::test]
async fn the_burst_of_complaints_follows_the_normal_mix() -> anyhow::Result<()> {
    let prefix = unique_name("scenario");
    let keys = RedisKeys::new(&prefix);
    let result = async {
        let conn = connect(&redis_url()).await?;
        let blocking = connect_blocking(&redis_url(), Duration::from_millis(100)).await?;
        let consumer = GroupConsumer::new(conn.clone(), blocking, keys.clone(), "t");
        consumer.ensure_group().await?;
        let producer = Producer::new(conn, &keys, 100_000);
        let metrics = IngesterMetrics::new(&prometheus::Registry::new())?;
        let gate = Backpressure::new(
            Marks {
                high: 10_000,
                low: 5_000,
            },
            metrics.clone(),
        );
        let plan = plan(&[
            "--normal-seconds",
            "2",
            "--burst-seconds",
            "1",
            "--rate",
            "10",
            "--burst-rate",
            "10",
            "--seed",
            "5",
        ])?;
        let mut out = Vec::new();
        let summary = scenario::play(
            &producer,
            &gate,
            &metrics,
            &plan,
            std::future::pending(),
            &mut out,
        )
        .await?;
        let output = String::from_utf8(out)?;
        println!("{output}");
        assert_eq!(
            (summary.normal, summary.burst_normal, summary.complaints),
            (20, 10, 10),
            "{output}"
        );
        assert!(summary.seconds >= 2.9 && summary.seconds < 6.0, "{output}");
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 3, "{output}");
        assert!(lines[0].starts_with("phase normal started_at="), "{output}");
        assert!(lines[0].ends_with(" rate=10 seconds=2"), "{output}");
        assert!(lines[1].starts_with("phase burst started_at="), "{output}");
        assert!(
            lines[1].ends_with(" product=\"Pixel 9\" rate=10 burst_rate=10 seconds=1"),
            "{output}"
        );
        assert!(
            lines[2].starts_with("scenario done normal=20 burst_normal=10 complaints=10 seconds="),
            "{output}"
        );
        let burst_at = started_at(&output, "burst")?;
        let normal_at = started_at(&output, "normal")?;
        assert!(burst_at - normal_at >= chrono::Duration::milliseconds(1_950));

        let deliveries = consumer.read_new(1_000, Duration::from_millis(100)).await?;
        let now = Utc::now();
        let entries = deliveries
            .iter()
            .map(|d| PostEntry::decode(&d.fields, now))
            .collect::<Result<Vec<_>, _>>()?;
        assert_eq!(entries.len(), 40);
        assert!(entries.iter().all(|e| e.post.post_id.starts_with("scn-")));
        // Stream order: the 20 posts of the normal phase, then the burst's 20, half of them
        // complaints about the product.
        let (normal, burst) = entries.split_at(20);
        assert!(!normal.iter().any(is_complaint));
        assert!(normal.iter().all(|e| e.post.created_at < burst_at));
        assert!(burst.iter().all(|e| e.post.created_at >= burst_at));
        let complaints: Vec<&PostEntry> = burst.iter().filter(|e| is_complaint(e)).collect();
        assert_eq!(complaints.len(), 10);
        assert!(
            complaints
                .iter()
                .all(|e| e.post.content.contains("Pixel 9"))
        );
        anyhow::Ok(())
    }
    .await;
    delete_redis_keys(&prefix).await?;
    result
}

#[tokio::test]
async fn a_shutdown_stops_the_scenario_and_says_in_which_phase() -> anyhow::Result<()> {
    let prefix = unique_name("scenario-stop");
    let keys = RedisKeys::new(&prefix);
    let result = async {
        let producer = Producer::new(connect(&redis_url()).await?, &keys, 100_000);
        let metrics = IngesterMetrics::new(&prometheus::Registry::new())?;
        let gate = Backpressure::new(
            Marks {
                high: 10_000,
                low: 5_000,
            },
            metrics.clone(),
        );
        let plan = plan(&["--normal-seconds", "30", "--rate", "10"])?;
        let mut out = Vec::new();
        let summary = scenario::play(
            &producer,
            &gate,
            &metrics,
            &plan,
            tokio::time::sleep(Duration::from_millis(450)),
            &mut out,
        )
        .await?;
        let output = String::from_utf8(out)?;
        assert_eq!(summary.stopped_in, Some(PhaseName::Normal), "{output}");
        assert!(summary.seconds < 2.0, "{output}");
        assert!((4..=6).contains(&summary.normal), "{output}");
        assert_eq!((summary.burst_normal, summary.complaints), (0, 0));
        assert!(!output.contains("phase burst"), "{output}");
        assert!(
            output
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("scenario stopped phase=normal normal=")),
            "{output}"
        );
        assert_eq!(producer.stream_len().await?, summary.normal);
        anyhow::Ok(())
    }
    .await;
    delete_redis_keys(&prefix).await?;
    result
}
