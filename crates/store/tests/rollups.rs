//! The rollups against a real PostgreSQL: every post counted once, under its latest analysis,
//! whatever the order and concurrency of the writes, and reads over rollups equal to a count of
//! the posts for any range.

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulse_domain::{Analysis, Post};
use pulse_store::{
    PostQuery, migrate, posts,
    provision::{drop_database, ensure_database},
    rollups::{self, Drift},
    stats::{self, Bucket},
};
use pulse_testkit::TestDatabase;

struct Db {
    database: TestDatabase,
    pool: pulse_store::Pool,
}

impl Db {
    async fn new() -> Self {
        let database = TestDatabase::unique("rollups");
        ensure_database(&database.url)
            .await
            .expect("create database");
        let pool = pulse_store::connect_pool(&database.url, 8).expect("pool");
        let mut client = pool.get().await.expect("connect");
        migrate::run(&mut client).await.expect("migrate");
        Db { database, pool }
    }

    async fn write(&self, posts: &[Post], analyses: &[Analysis]) -> posts::WriteOutcome {
        let mut client = self.pool.get().await.expect("connect");
        posts::insert_analysed(&mut client, posts, analyses)
            .await
            .expect("insert")
    }

    async fn drift(&self) -> Drift {
        let client = self.pool.get().await.expect("connect");
        rollups::drift(&client).await.expect("drift")
    }

    async fn drop(self) {
        drop(self.pool);
        drop_database(&self.database.url)
            .await
            .expect("drop database");
    }
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn post(id: usize, seconds: i64) -> Post {
    Post {
        post_id: format!("p{id}"),
        source: ["twitter", "reddit", "news"][id % 3].into(),
        author: format!("author{}", id % 5),
        content: format!("post number {id}"),
        created_at: base() + Duration::seconds(seconds),
    }
}

fn label(i: usize) -> &'static str {
    ["positive", "neutral", "negative"][i % 3]
}

fn analysis(post_id: &str, model: &str, label: &str, analyzed_at: DateTime<Utc>) -> Analysis {
    Analysis {
        post_id: post_id.into(),
        model_name: model.into(),
        sentiment_label: label.into(),
        confidence_score: 0.75,
        emotion: (label == "negative").then(|| "anger".to_owned()),
        emotion_score: (label == "negative").then_some(0.6),
        emotion_model: (label == "negative").then(|| "emotion@1".to_owned()),
        analyzed_at,
    }
}

async fn sentiment_counts(db: &Db) -> Vec<(String, u64)> {
    let client = db.pool.get().await.expect("connect");
    let mut counts = stats::distribution(&client, &PostQuery::default())
        .await
        .expect("distribution")
        .sentiment;
    counts.sort();
    counts
}

#[tokio::test]
async fn redeliveries_and_reanalyses_keep_each_post_counted_once() {
    let db = Db::new().await;
    let posts: Vec<Post> = (0..30).map(|i| post(i, i as i64 * 37)).collect();
    let first: Vec<Analysis> = posts
        .iter()
        .map(|p| analysis(&p.post_id, "local@1", "positive", base()))
        .collect();
    db.write(&posts, &first).await;
    db.write(&posts, &first).await;
    assert_eq!(sentiment_counts(&db).await, [("positive".to_owned(), 30)]);

    // A newer analysis by another model takes over the first ten posts; an older one of the next
    // ten changes nothing, because the reads show the newest.
    let newer: Vec<Analysis> = posts[..10]
        .iter()
        .map(|p| analysis(&p.post_id, "llm@1", "negative", base() + Duration::hours(1)))
        .collect();
    let older: Vec<Analysis> = posts[10..20]
        .iter()
        .map(|p| analysis(&p.post_id, "old@1", "neutral", base() - Duration::hours(1)))
        .collect();
    let outcome = db.write(&posts[..10], &newer).await;
    assert_eq!((outcome.posts_inserted, outcome.analyses_inserted), (0, 10));
    db.write(&posts[10..20], &older).await;
    db.write(&posts[..10], &newer).await;
    assert_eq!(
        sentiment_counts(&db).await,
        [("negative".to_owned(), 10), ("positive".to_owned(), 20)]
    );
    assert_eq!(db.drift().await, Drift::default());
    db.drop().await;
}

#[tokio::test]
async fn concurrent_overlapping_writers_count_every_post_once() {
    let db = Db::new().await;
    let posts: Vec<Post> = (0..200).map(|i| post(i, i as i64 * 11)).collect();
    // Eight writers, each with an overlapping half of the posts and its own model, in its own
    // order: redeliveries and re-analyses racing on the same posts and the same rollup rows.
    let mut writers = Vec::new();
    for w in 0..8_usize {
        let mut mine: Vec<Post> = posts
            .iter()
            .filter(|p| (p.post_id[1..].parse::<usize>().unwrap_or(0) + w) % 2 == 0)
            .cloned()
            .collect();
        if w % 2 == 1 {
            mine.reverse();
        }
        let pool = db.pool.clone();
        writers.push(tokio::spawn(async move {
            for chunk in mine.chunks(25) {
                let analyses: Vec<Analysis> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        analysis(
                            &p.post_id,
                            &format!("model@{w}"),
                            label(i + w),
                            base() + Duration::seconds(w as i64),
                        )
                    })
                    .collect();
                let mut client = pool.get().await.expect("connect");
                posts::insert_analysed(&mut client, chunk, &analyses)
                    .await
                    .expect("insert");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let total: u64 = sentiment_counts(&db).await.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 200, "every post counted once");
    assert_eq!(db.drift().await, Drift::default());
    db.drop().await;
}

#[tokio::test]
async fn any_range_and_bucket_counts_what_a_scan_of_the_posts_counts() {
    let db = Db::new().await;
    // 600 posts over 10 hours, every 61 s, so that minutes and hours all have ragged edges.
    let posts: Vec<Post> = (0..600).map(|i| post(i, i as i64 * 61)).collect();
    let analyses: Vec<Analysis> = posts
        .iter()
        .enumerate()
        .map(|(i, p)| analysis(&p.post_id, "local@1", label(i / 7), base()))
        .collect();
    for (chunk, labels) in posts.chunks(100).zip(analyses.chunks(100)) {
        db.write(chunk, labels).await;
    }
    let client = db.pool.get().await.expect("connect");
    let ranges = [
        (0, 36_600),
        (59, 7_321),
        (1_000, 1_010),
        (3_599, 3_601),
        (3_540, 10_860),
        (-500, 20_000),
        (12_345, 31_234),
    ];
    for (from_s, to_s) in ranges {
        let from = base() + Duration::seconds(from_s);
        let to = base() + Duration::seconds(to_s);
        let expected = |sentiment: Option<&str>, source: Option<&str>| {
            posts
                .iter()
                .zip(&analyses)
                .filter(|(p, a)| {
                    p.created_at >= from
                        && p.created_at < to
                        && sentiment.is_none_or(|s| a.sentiment_label == s)
                        && source.is_none_or(|s| p.source == s)
                })
                .count() as u64
        };
        let query = PostQuery {
            from: Some(from),
            to: Some(to),
            ..PostQuery::default()
        };
        let d = stats::distribution(&client, &query)
            .await
            .expect("distribution");
        assert_eq!(d.total, expected(None, None), "range {from_s}..{to_s}");
        let filtered = PostQuery {
            source: Some("reddit".into()),
            sentiment: Some("negative".into()),
            ..query.clone()
        };
        let d = stats::distribution(&client, &filtered)
            .await
            .expect("distribution");
        assert_eq!(
            d.total,
            expected(Some("negative"), Some("reddit")),
            "range {from_s}..{to_s}, reddit negative"
        );
        for bucket in [Bucket::Minute, Bucket::Hour, Bucket::Day] {
            if bucket == Bucket::Minute && to_s - from_s > 20_000 {
                continue;
            }
            let buckets = stats::aggregate(&client, &PostQuery::default(), from, to, bucket)
                .await
                .expect("aggregate");
            let mut want = std::collections::BTreeMap::new();
            for p in posts
                .iter()
                .filter(|p| p.created_at >= from && p.created_at < to)
            {
                let start = match bucket {
                    Bucket::Minute => p.created_at.format("%H:%M").to_string(),
                    Bucket::Hour => p.created_at.format("%H").to_string(),
                    Bucket::Day => p.created_at.format("%d").to_string(),
                };
                *want.entry(start).or_insert(0_u64) += 1;
            }
            let got: std::collections::BTreeMap<String, u64> = buckets
                .iter()
                .filter(|b| b.total > 0)
                .map(|b| {
                    let start = match bucket {
                        Bucket::Minute => b.start.format("%H:%M").to_string(),
                        Bucket::Hour => b.start.format("%H").to_string(),
                        Bucket::Day => b.start.format("%d").to_string(),
                    };
                    (start, b.total)
                })
                .collect();
            assert_eq!(got, want, "range {from_s}..{to_s}, {bucket:?}");
        }
    }
    // The same read with a filter the rollups do not keep scans the posts and agrees.
    let by_author = PostQuery {
        author: Some("author3".into()),
        ..PostQuery::default()
    };
    let d = stats::distribution(&client, &by_author)
        .await
        .expect("distribution");
    assert_eq!(d.total, 120);
    drop(client);
    db.drop().await;
}
