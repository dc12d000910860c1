//! `pulse-worker dlq list|replay` against a real Redis, with a key prefix of its own.

use std::time::Duration;

use chrono::Utc;
use clap::Parser;
use pulse_domain::Post;
use pulse_stream::{
    GroupConsumer, PostEntry, Producer, RedisKeys,
    connection::{connect, connect_blocking},
};
use pulse_testkit::{delete_redis_keys, redis_url, unique_name};
use pulse_worker::{Config, config::DlqCommand};

fn entry(id: &str) -> PostEntry {
    PostEntry {
        post: Post {
            post_id: id.into(),
            source: "twitter".into(),
            author: "a".into(),
            content: "a text".into(),
            created_at: Utc::now(),
        },
        traceparent: None,
    }
}

async fn run(config: &Config, command: DlqCommand) -> (anyhow::Result<()>, String) {
    let mut out = Vec::new();
    let result = pulse_worker::dlq::run(config, &command, &mut out).await;
    (result, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_by_id_or_all_at_once() -> anyhow::Result<()> {
    let prefix = unique_name("dlq");
    let keys = RedisKeys::new(&prefix);
    let conn = connect(&redis_url()).await?;
    let blocking = connect_blocking(&redis_url(), Duration::from_millis(100)).await?;
    let consumer = GroupConsumer::new(conn.clone(), blocking, keys.clone(), "w");
    consumer.ensure_group().await?;
    Producer::new(conn.clone(), &keys, 1_000)
        .publish_many(&[entry("p1"), entry("p2"), entry("p3")])
        .await?;
    let got = consumer.read_new(10, Duration::from_millis(100)).await?;
    for delivery in &got {
        consumer
            .dead_letter(delivery, "delivered 6 times without success", 6)
            .await?;
    }
    let config = Config::parse_from([
        "pulse-worker",
        "--redis-url",
        &redis_url(),
        "--stream-prefix",
        &prefix,
    ]);

    let (result, listing) = run(&config, DlqCommand::List { limit: 2 }).await;
    result?;
    assert!(
        listing.starts_with(&format!(
            "3 dead letters in {prefix}:posts:dlq, the oldest 2 shown"
        )),
        "{listing}"
    );
    assert!(listing.contains("reason: delivered 6 times without success"));
    assert!(listing.contains(&format!("original {}  deliveries 6  consumer w", got[0].id)));
    assert!(listing.contains("post_id: \"p1\"") && !listing.contains("post_id: \"p3\""));

    // By id; an unknown id is reported as an error after the others are replayed.
    let letters = pulse_stream::DeadLetters::new(conn.clone(), keys.clone());
    let first = letters.list(None, 1).await?.remove(0);
    let (result, output) = run(
        &config,
        DlqCommand::Replay {
            all: false,
            ids: vec![first.id.clone(), "1-1".into()],
        },
    )
    .await;
    assert!(result.is_err_and(|e| e.to_string().contains("1-1")));
    assert!(
        output.contains(&format!("replayed {}", first.id)),
        "{output}"
    );
    assert_eq!(letters.count().await?, 2);

    let (result, output) = run(
        &config,
        DlqCommand::Replay {
            all: true,
            ids: Vec::new(),
        },
    )
    .await;
    result?;
    assert!(output.ends_with("2 dead letters replayed\n"), "{output}");
    assert_eq!(letters.count().await?, 0);

    // All three are back on the stream, decodable, for the group to read.
    let again = consumer.read_new(10, Duration::from_millis(100)).await?;
    let ids: Vec<String> = again
        .iter()
        .filter_map(|d| PostEntry::decode(&d.fields, Utc::now()).ok())
        .map(|e| e.post.post_id)
        .collect();
    assert_eq!(ids, vec!["p1", "p2", "p3"]);

    delete_redis_keys(&prefix).await
}
