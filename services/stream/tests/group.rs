//! The consumer group against a real Redis: each test uses its own key prefix.

use std::time::Duration;

use chrono::Utc;
use pulse_core::Post;
use pulse_stream::{
    Event, EventFeed, GroupConsumer, PostEntry, Producer, StreamKeys,
    connection::{connect, connect_blocking},
};
use redis::aio::ConnectionManager;

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

struct Fixture {
    keys: StreamKeys,
    conn: ConnectionManager,
}

impl Fixture {
    async fn new() -> Self {
        let keys = StreamKeys::new(format!("pulse-test-{}", uuid::Uuid::new_v4().simple()));
        let conn = connect(&redis_url()).await.expect("redis");
        Fixture { keys, conn }
    }

    async fn consumer(&self, name: &str) -> GroupConsumer {
        let blocking = connect_blocking(&redis_url(), Duration::from_millis(100))
            .await
            .expect("redis");
        let consumer = GroupConsumer::new(self.conn.clone(), blocking, self.keys.clone(), name);
        consumer.ensure_group().await.expect("group");
        consumer
    }

    async fn cleanup(mut self) {
        let _: () = redis::cmd("DEL")
            .arg(self.keys.posts())
            .arg(self.keys.dead_letters())
            .arg(self.keys.events())
            .query_async(&mut self.conn)
            .await
            .expect("del");
    }
}

fn entry(id: &str) -> PostEntry {
    PostEntry {
        post: Post {
            post_id: id.into(),
            source: "twitter".into(),
            author: "a".into(),
            content: "text".into(),
            created_at: Utc::now(),
        },
        traceparent: None,
    }
}

#[tokio::test]
async fn unacked_entries_stay_pending_and_are_claimed_by_another_consumer() {
    let fx = Fixture::new().await;
    let producer = Producer::new(fx.conn.clone(), &fx.keys, 1_000);
    let first = fx.consumer("first").await;
    let second = fx.consumer("second").await;
    // The group is created at 0, so entries published before a consumer reads are not missed.
    producer
        .publish_many(&[entry("p1"), entry("p2"), entry("p3")])
        .await
        .expect("publish");

    let got = first
        .read_new(10, Duration::from_millis(100))
        .await
        .expect("read");
    assert_eq!(got.len(), 3);
    first.ack(&[got[0].id.clone()]).await.expect("ack");
    assert_eq!(first.pending_count().await.expect("pending"), 2);
    // Nothing new for the second consumer: delivered entries belong to the first.
    assert!(
        second
            .read_new(10, Duration::from_millis(100))
            .await
            .expect("read")
            .is_empty()
    );
    // The first consumer sees its own pending entries again after a restart.
    assert_eq!(first.read_own_pending("0", 10).await.expect("own").len(), 2);

    // Not idle long enough yet.
    let (claimed, _) = second
        .autoclaim(Duration::from_secs(60), "0-0", 10)
        .await
        .expect("claim");
    assert!(claimed.is_empty());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (claimed, _) = second
        .autoclaim(Duration::from_millis(20), "0-0", 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    let ids: Vec<String> = claimed.iter().map(|d| d.id.clone()).collect();
    let counts = second.delivery_counts(&ids).await.expect("counts");
    // Read, re-read from the pending list, claimed: each counts as a delivery.
    assert!(counts.values().all(|c| *c == 3), "{counts:?}");
    assert_eq!(second.ack(&ids).await.expect("ack"), 2);
    assert_eq!(first.pending_count().await.expect("pending"), 0);
    fx.cleanup().await;
}

#[tokio::test]
async fn dead_letters_keep_the_fields_and_the_reason() {
    let mut fx = Fixture::new().await;
    let consumer = fx.consumer("w").await;
    let _: String = redis::cmd("XADD")
        .arg(fx.keys.posts())
        .arg("*")
        .arg("garbage")
        .arg("\u{1}")
        .query_async(&mut fx.conn)
        .await
        .expect("xadd");
    let got = consumer
        .read_new(10, Duration::from_millis(100))
        .await
        .expect("read");
    assert_eq!(got.len(), 1);
    let decoded = PostEntry::decode(&got[0].fields, Utc::now());
    assert!(decoded.is_err());
    consumer
        .dead_letter(&got[0], "undecodable: field v is missing", 1)
        .await
        .expect("dlq");
    assert_eq!(consumer.pending_count().await.expect("pending"), 0);
    let dlq: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(fx.keys.dead_letters())
        .arg("-")
        .arg("+")
        .query_async(&mut fx.conn)
        .await
        .expect("xrange");
    assert_eq!(dlq.ids.len(), 1);
    let fields = &dlq.ids[0].map;
    assert_eq!(
        fields.get("garbage"),
        Some(&redis::Value::BulkString(b"\x01".to_vec()))
    );
    assert_eq!(
        fields.get("dlq_reason"),
        Some(&redis::Value::BulkString(
            b"undecodable: field v is missing".to_vec()
        ))
    );
    assert_eq!(
        fields.get("dlq_original_id"),
        Some(&redis::Value::BulkString(got[0].id.clone().into_bytes()))
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn the_event_feed_is_resumable_from_any_id() {
    let fx = Fixture::new().await;
    let feed = EventFeed::new(fx.conn.clone(), &fx.keys, 1_000);
    assert_eq!(feed.last_id().await.expect("last"), "0-0");
    let ids = feed
        .publish(&[
            (Event::Alert { alert_id: 1 }, None),
            (
                Event::Alert { alert_id: 2 },
                Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            ),
        ])
        .await
        .expect("publish");
    let mut reader = connect_blocking(&redis_url(), Duration::from_millis(100))
        .await
        .expect("redis");
    let all = feed
        .read_after(&mut reader, "0-0", 10, Duration::from_millis(100))
        .await
        .expect("read");
    assert_eq!(all.len(), 2);
    let rest = feed
        .read_after(&mut reader, &ids[0], 10, Duration::from_millis(100))
        .await
        .expect("read");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].event, Ok(Event::Alert { alert_id: 2 }));
    assert!(rest[0].traceparent.is_some());
    let none = feed
        .read_after(&mut reader, &ids[1], 10, Duration::from_millis(100))
        .await
        .expect("read");
    assert!(none.is_empty());
    assert_eq!(feed.last_id().await.expect("last"), ids[1]);
    fx.cleanup().await;
}
