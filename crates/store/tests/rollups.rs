//! The rollups against a real PostgreSQL: every post counted once, under its latest analysis,
//! whatever the order and concurrency of the writes, and reads over rollups equal to a count of
//! the posts of the range widened to whole minutes (distributions) or whole buckets (charts).

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulse_domain::{Analysis, Post};
use pulse_store::{
    PostQuery, posts,
    rollups::{self, Drift},
    stats::{self, Bucket},
};

mod support;
use support::Db;

async fn write(db: &Db, posts: &[Post], analyses: &[Analysis]) -> posts::WriteOutcome {
    let mut client = db.client().await;
    posts::insert_analysed(&mut client, posts, analyses)
        .await
        .expect("insert")
}

async fn drift(db: &Db) -> Drift {
    let client = db.client().await;
    rollups::drift(&client).await.expect("drift")
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
    let db = Db::new("rollups").await;
    let posts: Vec<Post> = (0..30).map(|i| post(i, i as i64 * 37)).collect();
    let first: Vec<Analysis> = posts
        .iter()
        .map(|p| analysis(&p.post_id, "local@1", "positive", base()))
        .collect();
    write(&db, &posts, &first).await;
    write(&db, &posts, &first).await;
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
    let outcome = write(&db, &posts[..10], &newer).await;
    assert_eq!((outcome.posts_inserted, outcome.analyses_inserted), (0, 10));
    write(&db, &posts[10..20], &older).await;
    write(&db, &posts[..10], &newer).await;
    assert_eq!(
        sentiment_counts(&db).await,
        [("negative".to_owned(), 10), ("positive".to_owned(), 20)]
    );
    assert_eq!(drift(&db).await, Drift::default());
    db.drop().await;
}

#[tokio::test]
async fn concurrent_overlapping_writers_count_every_post_once() {
    let db = Db::new("rollups").await;
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
    assert_eq!(drift(&db).await, Drift::default());
    db.drop().await;
}

#[tokio::test]
async fn any_range_and_bucket_counts_what_a_scan_of_its_whole_minutes_counts() {
    let db = Db::new("rollups").await;
    // 600 posts over 10 hours, every 61 s, so that minutes and hours all have ragged edges.
    let posts: Vec<Post> = (0..600).map(|i| post(i, i as i64 * 61)).collect();
    let analyses: Vec<Analysis> = posts
        .iter()
        .enumerate()
        .map(|(i, p)| analysis(&p.post_id, "local@1", label(i / 7), base()))
        .collect();
    for (chunk, labels) in posts.chunks(100).zip(analyses.chunks(100)) {
        write(&db, chunk, labels).await;
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
        // Counts are kept per minute: the range is widened to whole minutes.
        let (whole_from, whole_to) = (
            base() + Duration::minutes(from_s.div_euclid(60)),
            base() + Duration::minutes((to_s + 59).div_euclid(60)),
        );
        let expected = |sentiment: Option<&str>, source: Option<&str>| {
            posts
                .iter()
                .zip(&analyses)
                .filter(|(p, a)| {
                    p.created_at >= whole_from
                        && p.created_at < whole_to
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
        // A ListPosts total counts the exact range.
        let exact = posts
            .iter()
            .filter(|p| p.created_at >= from && p.created_at < to)
            .count() as u64;
        assert_eq!(
            posts::count(&client, &query).await.expect("count"),
            exact,
            "total of {from_s}..{to_s}"
        );
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
            // Each bucket counts its whole width.
            let unit = match bucket {
                Bucket::Minute => 60,
                Bucket::Hour => 3_600,
                Bucket::Day => 86_400,
            };
            let day_start = base() - Duration::hours(9);
            let (bucket_from, bucket_to) = (
                day_start
                    + Duration::seconds((from - day_start).num_seconds().div_euclid(unit) * unit),
                day_start
                    + Duration::seconds(
                        ((to - day_start).num_seconds() + unit - 1).div_euclid(unit) * unit,
                    ),
            );
            let mut want = std::collections::BTreeMap::new();
            for p in posts
                .iter()
                .filter(|p| p.created_at >= bucket_from && p.created_at < bucket_to)
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
    // A filter the rollups do not keep scans the posts.
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

#[tokio::test]
async fn the_synthetic_loader_writes_what_the_worker_would() {
    let db = Db::new("rollups").await;
    let mut client = db.pool.get().await.expect("connect");
    let spec = pulse_store::synthetic::LoadSpec {
        posts: 5_000,
        days: 30,
        end: Utc::now(),
        chunk: 1_500,
    };
    let mut reported = Vec::new();
    let loaded = pulse_store::synthetic::load(&mut client, spec, "load-test", |n| reported.push(n))
        .await
        .expect("load");
    assert_eq!(loaded, 5_000);
    assert_eq!(reported, [1_500, 3_000, 4_500, 5_000]);
    let census = posts::census(&client).await.expect("census");
    assert_eq!((census.posts, census.analyses), (5_000, 5_000));
    assert_eq!(census.unanalysed_posts, 0);
    let weeks = pulse_store::partitions::weeks(&client)
        .await
        .expect("weeks");
    assert!(
        (5..=7).contains(&weeks.len()),
        "30 days and the week ahead: {weeks:?}"
    );
    drop(client);
    assert_eq!(drift(&db).await, Drift::default());
    db.drop().await;
}
