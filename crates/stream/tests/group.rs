//! The consumer group against a real Redis: each test uses its own key prefix.

use std::time::Duration;

use chrono::Utc;
use pulse_domain::Post;
use pulse_stream::{
    DeadLetters, Event, EventFeed, GroupConsumer, PostEntry, Producer, RedisKeys,
    connection::{connect, connect_blocking},
    trim::trim_processed,
};
use pulse_testkit::{delete_redis_keys, redis_url, unique_name};
use redis::aio::ConnectionManager;

struct Fixture {
    prefix: String,
    keys: RedisKeys,
    conn: ConnectionManager,
}

impl Fixture {
    async fn new() -> Self {
        let prefix = unique_name("group");
        let keys = RedisKeys::new(&prefix);
        let conn = connect(&redis_url()).await.expect("redis");
        Fixture { prefix, keys, conn }
    }

    async fn consumer(&self, name: &str) -> GroupConsumer {
        let blocking = connect_blocking(&redis_url(), Duration::from_millis(100))
            .await
            .expect("redis");
        let consumer = GroupConsumer::new(self.conn.clone(), blocking, self.keys.clone(), name);
        consumer.ensure_group().await.expect("group");
        consumer
    }

    async fn cleanup(self) {
        delete_redis_keys(&self.prefix).await.expect("del");
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

#[tokio::test]
async fn trimming_keeps_every_pending_and_undelivered_entry() {
    let mut fx = Fixture::new().await;
    let producer = Producer::new(fx.conn.clone(), &fx.keys, 1_000_000);
    // No group yet: nothing has been read, nothing may go.
    let entries: Vec<PostEntry> = (0..300).map(|i| entry(&format!("t{i}"))).collect();
    let ids = producer.publish_many(&entries).await.expect("publish");
    let outcome = trim_processed(&fx.conn, &fx.keys).await.expect("trim");
    assert_eq!(outcome.removed, 0);

    let consumer = fx.consumer("w").await;
    let got = consumer
        .read_new(250, Duration::from_millis(100))
        .await
        .expect("read");
    assert_eq!(got.len(), 250);
    // Acknowledge all but entry 120: 0..120 are done, 120 is pending, 250..300 undelivered.
    let acked: Vec<String> = got
        .iter()
        .map(|d| d.id.clone())
        .filter(|id| *id != ids[120])
        .collect();
    consumer.ack(&acked).await.expect("ack");
    let outcome = trim_processed(&fx.conn, &fx.keys).await.expect("trim");
    assert_eq!(outcome.floor.as_deref(), Some(ids[120].as_str()));
    let remaining: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(fx.keys.posts())
        .arg("-")
        .arg("+")
        .query_async(&mut fx.conn)
        .await
        .expect("xrange");
    let remaining: Vec<&str> = remaining.ids.iter().map(|e| e.id.as_str()).collect();
    // Approximate trimming removes whole nodes only: maybe fewer, never the pending one or later.
    assert!(remaining.contains(&ids[120].as_str()));
    assert!(ids[120..].iter().all(|id| remaining.contains(&id.as_str())));
    assert_eq!(
        consumer.read_own_pending("0", 10).await.expect("own")[0].id,
        ids[120]
    );

    // Once everything delivered is acknowledged, the floor is the last delivered entry.
    consumer.ack(&[ids[120].clone()]).await.expect("ack");
    let outcome = trim_processed(&fx.conn, &fx.keys).await.expect("trim");
    assert_eq!(outcome.floor.as_deref(), Some(ids[249].as_str()));
    let rest = consumer
        .read_new(100, Duration::from_millis(100))
        .await
        .expect("read");
    assert_eq!(rest.len(), 50, "undelivered entries survive every trim");
    fx.cleanup().await;
}

#[tokio::test]
async fn delivery_counts_are_exact_and_deleted_pending_entries_have_no_fields() {
    let mut fx = Fixture::new().await;
    let producer = Producer::new(fx.conn.clone(), &fx.keys, 1_000);
    let consumer = fx.consumer("w").await;
    let other = fx.consumer("other").await;
    let ids = producer
        .publish_many(&[entry("a"), entry("b"), entry("c")])
        .await
        .expect("publish");
    let first = consumer
        .read_new(1, Duration::from_millis(100))
        .await
        .expect("read");
    let middle = other
        .read_new(1, Duration::from_millis(100))
        .await
        .expect("read");
    let last = consumer
        .read_new(1, Duration::from_millis(100))
        .await
        .expect("read");
    assert_eq!((first.len(), middle.len(), last.len()), (1, 1, 1));
    consumer.read_own_pending("0", 10).await.expect("own");
    let counts = consumer
        .delivery_counts(&[ids[0].clone(), ids[2].clone(), "1-1".into()])
        .await
        .expect("counts");
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert_eq!(counts.get(&ids[0]), Some(&2));
    assert_eq!(counts.get(&ids[2]), Some(&2));

    let _: u64 = redis::cmd("XDEL")
        .arg(fx.keys.posts())
        .arg(&ids[0])
        .query_async(&mut fx.conn)
        .await
        .expect("xdel");
    let own = consumer.read_own_pending("0", 10).await.expect("own");
    assert_eq!(own.len(), 2);
    assert!(own[0].is_deleted() && own[0].id == ids[0]);
    assert!(!own[1].is_deleted());
    fx.cleanup().await;
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_once_with_their_original_fields() {
    let mut fx = Fixture::new().await;
    let producer = Producer::new(fx.conn.clone(), &fx.keys, 1_000);
    let consumer = fx.consumer("w").await;
    producer
        .publish_many(&[entry("d1"), entry("d2"), entry("d3")])
        .await
        .expect("publish");
    let got = consumer
        .read_new(10, Duration::from_millis(100))
        .await
        .expect("read");
    for (delivery, reason) in got.iter().zip(["r1", "r2", "r3"]) {
        consumer
            .dead_letter(delivery, reason, 6)
            .await
            .expect("dlq");
    }
    assert_eq!(consumer.pending_count().await.expect("pending"), 0);

    let dlq = DeadLetters::new(fx.conn.clone(), fx.keys.clone());
    assert_eq!(dlq.count().await.expect("len"), 3);
    let listed = dlq.list(None, 2).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].reason.as_deref(), Some("r1"));
    assert_eq!(listed[0].deliveries, Some(6));
    assert_eq!(listed[0].consumer.as_deref(), Some("w"));
    assert_eq!(listed[0].original_id.as_deref(), Some(got[0].id.as_str()));
    assert_eq!(listed[0].field("post_id"), Some("d1"));
    assert!(listed[0].fields.iter().all(|(k, _)| !k.starts_with("dlq_")));
    let next = dlq.list(Some(&listed[1].id), 10).await.expect("list");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].field("post_id"), Some("d3"));

    // One entry by id: it is back on the posts stream, decodable, and gone from the DLQ.
    let new_id = dlq.replay(&listed[0].id).await.expect("replay");
    assert!(new_id.is_some());
    assert_eq!(dlq.replay(&listed[0].id).await.expect("replay"), None);
    let again = consumer
        .read_new(10, Duration::from_millis(100))
        .await
        .expect("read");
    assert_eq!(again.len(), 1);
    let decoded = PostEntry::decode(&again[0].fields, Utc::now()).expect("decodes");
    assert_eq!(decoded.post.post_id, "d1");

    // The rest at once.
    let replayed = dlq.replay_all().await.expect("replay all");
    assert_eq!(replayed.len(), 2);
    assert_eq!(dlq.count().await.expect("len"), 0);
    let len: u64 = redis::cmd("XLEN")
        .arg(fx.keys.posts())
        .query_async(&mut fx.conn)
        .await
        .expect("xlen");
    assert_eq!(len, 6);
    fx.cleanup().await;
}

#[tokio::test]
async fn failure_counts_are_shared_by_consumers_and_go_with_the_entry() {
    let fx = Fixture::new().await;
    let producer = Producer::new(fx.conn.clone(), &fx.keys, 1_000);
    let first = fx.consumer("first").await;
    let second = fx.consumer("second").await;
    producer
        .publish_many(&[entry("f1"), entry("f2"), entry("f3")])
        .await
        .expect("publish");
    let got = first
        .read_new(10, Duration::from_millis(100))
        .await
        .expect("read");
    let ids: Vec<String> = got.iter().map(|d| d.id.clone()).collect();

    assert_eq!(
        first
            .record_failure(&ids[0], "boom 1")
            .await
            .expect("record"),
        1
    );
    // Another worker (after a claim, say) adds to the same count.
    assert_eq!(
        second
            .record_failure(&ids[0], "boom 2")
            .await
            .expect("record"),
        2
    );
    let counts = first.failures(&ids).await.expect("read");
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(counts[&ids[0]].count, 2);
    assert_eq!(counts[&ids[0]].last_error.as_deref(), Some("boom 2"));
    let mut conn = fx.conn.clone();
    let ttl: i64 = redis::cmd("TTL")
        .arg(fx.keys.entry_failures(&ids[0]))
        .query_async(&mut conn)
        .await
        .expect("ttl");
    assert!(ttl > 0, "{ttl}");

    // Acknowledging forgets the count.
    assert_eq!(first.ack_and_forget(&ids[..2]).await.expect("ack"), 2);
    assert!(first.failures(&ids).await.expect("read").is_empty());

    // So does dead-lettering, which reports what the cap trimmed: nothing here.
    first
        .record_failure(&ids[2], "boom 3")
        .await
        .expect("record");
    let trimmed = first
        .dead_letter_and_forget(&got[2], "failed", 1)
        .await
        .expect("dead letter");
    assert_eq!(trimmed, 0);
    assert!(first.failures(&ids).await.expect("read").is_empty());
    assert_eq!(first.dead_letter_count().await.expect("count"), 1);
    assert_eq!(first.pending_count().await.expect("pending"), 0);
    fx.cleanup().await;
}

#[tokio::test]
async fn dead_letters_trimmed_by_the_cap_are_counted() {
    let fx = Fixture::new().await;
    let producer = Producer::new(fx.conn.clone(), &fx.keys, 1_000);
    let consumer = fx.consumer("c").await;
    // The dead-letter stream full to its cap, and a little over.
    let cap = pulse_stream::dead_letters::DEFAULT_MAX_LEN;
    let mut conn = fx.conn.clone();
    for chunk in (0..cap + 200).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for n in chunk {
            pipe.cmd("XADD")
                .arg(fx.keys.dead_letters())
                .arg("*")
                .arg("n")
                .arg(*n)
                .ignore();
        }
        let () = pipe.query_async(&mut conn).await.expect("fill");
    }
    producer
        .publish_many(&[entry("t1")])
        .await
        .expect("publish");
    let got = consumer
        .read_new(10, Duration::from_millis(100))
        .await
        .expect("read");
    let trimmed = consumer
        .dead_letter_and_forget(&got[0], "failed", 1)
        .await
        .expect("dead letter");
    let left = consumer.dead_letter_count().await.expect("count");
    assert!(trimmed > 0, "nothing trimmed");
    assert_eq!(left, (cap + 200 + 1) as u64 - trimmed);
    assert!(left >= cap as u64);
    fx.cleanup().await;
}
