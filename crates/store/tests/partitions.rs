//! Time partitions against a real PostgreSQL: the migration converts a database with rows
//! without losing any, posts stay idempotent across partitions, partitions are created ahead and
//! dropped behind, and rollups outlive the rows they count.

use chrono::{Datelike, Duration, NaiveDate, TimeDelta, Utc};
use pulse_domain::{Analysis, Post};
use pulse_store::{
    PostQuery, migrate,
    partitions::{self, Retention},
    posts,
    rollups::{self, Drift},
    stats,
};

mod support;
use support::Db;

/// The Monday that starts the week (and the partition) of `day`.
fn monday_of(day: NaiveDate) -> NaiveDate {
    day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()))
}

fn post(id: &str) -> Post {
    Post {
        post_id: id.into(),
        source: "twitter".into(),
        author: "someone".into(),
        content: format!("post {id}"),
        created_at: Utc::now() - Duration::minutes(5),
    }
}

fn analysis(id: &str, label: &str) -> Analysis {
    Analysis {
        post_id: id.into(),
        model_name: "local@1".into(),
        sentiment_label: label.into(),
        confidence_score: 0.8,
        emotion: None,
        emotion_score: None,
        emotion_model: None,
        analyzed_at: Utc::now(),
    }
}

/// Rows as release 4 stored them: 40 posts that arrived 50, 25 and 0 days ago, one of them
/// analysed twice.
const OLD_ROWS: &str = "
INSERT INTO social_media_posts (post_id, source, content, author, created_at, ingested_at)
SELECT 'old' || n, 'reddit', 'old post ' || n, 'author', now() - (n % 3) * interval '25 days',
       now() - (n % 3) * interval '25 days'
FROM generate_series(1, 40) n;
INSERT INTO sentiment_analysis (post_id, model_name, sentiment_label, confidence_score, analyzed_at)
SELECT 'old' || n, 'local@1', CASE WHEN n % 2 = 0 THEN 'negative' ELSE 'positive' END, 0.9,
       now() - (n % 3) * interval '25 days'
FROM generate_series(1, 40) n;
INSERT INTO sentiment_analysis (post_id, model_name, sentiment_label, confidence_score, analyzed_at)
VALUES ('old1', 'llm@1', 'neutral', 0.7, now());
";

/// A database as release 4 left it, holding [`OLD_ROWS`].
async fn old_database() -> Db {
    let db = Db::at_version("partitions", 4).await;
    db.client()
        .await
        .batch_execute(OLD_ROWS)
        .await
        .expect("old rows");
    db
}

#[tokio::test]
async fn the_migration_moves_every_row_into_week_partitions() {
    let db = old_database().await;
    let mut client = db.client().await;
    assert_eq!(
        migrate::run(&mut client).await.expect("migrate"),
        [5, 6, 7, 8],
        "rollups, then partitions, then terms, then API keys"
    );
    drop(client);
    assert_eq!(
        db.scalar("SELECT count(*) FROM social_media_posts").await,
        40
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM sentiment_analysis").await,
        41
    );
    assert_eq!(db.scalar("SELECT count(*) FROM post_keys").await, 40);
    assert_eq!(
        db.scalar("SELECT count(*) FROM ONLY social_media_posts")
            .await,
        0,
        "the parent holds no rows of its own"
    );
    let client = db.client().await;
    let weeks = partitions::weeks(&client).await.expect("weeks");
    let today = Utc::now().date_naive();
    for back in [50, 25, 0] {
        let week = monday_of(today - TimeDelta::days(back));
        assert!(weeks.contains(&week), "{week} in {weeks:?}");
    }
    assert!(
        weeks.contains(&monday_of(today + TimeDelta::days(7))),
        "a week ahead: {weeks:?}"
    );
    assert_eq!(
        rollups::drift(&client).await.expect("drift"),
        Drift::default()
    );

    // A post stored before the conversion is still a duplicate after it, though its week's
    // partition is not this week's.
    let mut client = db.client().await;
    let outcome = posts::insert_analysed(
        &mut client,
        &[post("old3"), post("new1")],
        &[analysis("old3", "positive"), analysis("new1", "negative")],
    )
    .await
    .expect("insert");
    assert_eq!((outcome.posts_inserted, outcome.analyses_inserted), (1, 1));
    assert_eq!(
        db.scalar("SELECT count(*) FROM social_media_posts").await,
        41
    );
    // The newest analysis of old1 (neutral) is the one counted.
    let d = stats::distribution(&client, &PostQuery::default())
        .await
        .expect("distribution");
    let neutral = d.sentiment.iter().find(|(label, _)| label == "neutral");
    assert_eq!(neutral, Some(&("neutral".to_owned(), 1)));
    assert_eq!(d.total, 41);
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn retention_drops_old_weeks_and_keeps_their_rollups_longer() {
    let db = old_database().await;
    let mut client = db.client().await;
    migrate::run(&mut client).await.expect("migrate");
    let before = stats::distribution(&client, &PostQuery::default())
        .await
        .expect("distribution");

    let retention = Retention {
        raw_days: Some(30),
        rollup_days: Some(400),
    };
    let done = partitions::maintain(&mut client, Utc::now(), 14, retention)
        .await
        .expect("maintain")
        .expect("no other instance maintains");
    // The migration created a partition for every week since the oldest row; those that ended
    // by the Monday of the cutoff's week go, the rest stay (the posts of 25 days ago among them).
    let today = Utc::now().date_naive();
    let boundary = monday_of(today - TimeDelta::days(30));
    let oldest = monday_of(today - TimeDelta::days(50));
    let past = u32::try_from((boundary - oldest).num_days() / 7).expect("weeks");
    assert!(past >= 1);
    assert_eq!(done.weeks_dropped, past, "{done:?}");
    assert_eq!(
        done.keys_deleted, 13,
        "the posts of 50 days ago: n % 3 == 2"
    );
    assert!(
        done.partitions_created >= 2,
        "the second week ahead: {done:?}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM social_media_posts").await,
        27
    );
    assert_eq!(db.scalar("SELECT count(*) FROM post_keys").await, 27);
    let weeks = partitions::weeks(&client).await.expect("weeks");
    assert!(!weeks.contains(&oldest), "{weeks:?}");
    assert!(weeks.contains(&boundary), "{weeks:?}");
    assert!(
        weeks.contains(&monday_of(today + TimeDelta::days(14))),
        "{weeks:?}"
    );

    // The days of the dropped weeks are still counted: a year's chart keeps its past.
    let after = stats::distribution(&client, &PostQuery::default())
        .await
        .expect("distribution");
    assert_eq!(after.total, before.total);

    // A second pass finds nothing to do.
    let again = partitions::maintain(&mut client, Utc::now(), 14, retention)
        .await
        .expect("maintain")
        .expect("lock");
    assert_eq!(again, partitions::Maintained::default());
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn a_write_for_a_week_without_partition_is_transient_until_maintenance_runs() {
    let db = Db::new("partitions").await;
    let mut client = db.client().await;
    let suffix = monday_of(Utc::now().date_naive()).format("%Y%m%d");
    client
        .batch_execute(&format!(
            "DROP TABLE social_media_posts_p{suffix}; DROP TABLE sentiment_analysis_p{suffix};"
        ))
        .await
        .expect("drop this week's partitions");
    let error = posts::insert_analysed(&mut client, &[post("p1")], &[analysis("p1", "positive")])
        .await
        .expect_err("no partition for this week");
    assert!(error.is_missing_partition(), "{error}");
    assert!(error.is_transient(), "retried, never dead-lettered");
    assert_eq!(
        db.scalar("SELECT count(*) FROM post_keys").await,
        0,
        "rolled back"
    );

    let done = partitions::maintain(&mut client, Utc::now(), 7, Retention::default())
        .await
        .expect("maintain")
        .expect("lock");
    assert_eq!(done.partitions_created, 2);
    let outcome = posts::insert_analysed(&mut client, &[post("p1")], &[analysis("p1", "positive")])
        .await
        .expect("insert");
    assert_eq!(outcome.posts_inserted, 1);
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn an_analysis_of_a_post_never_stored_fails_the_whole_batch() {
    let db = Db::new("partitions").await;
    let mut client = db.client().await;
    let error = posts::insert_analysed(
        &mut client,
        &[post("p1")],
        &[analysis("p1", "positive"), analysis("ghost", "negative")],
    )
    .await
    .expect_err("ghost is not stored");
    assert!(!error.is_transient(), "{error}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM social_media_posts").await,
        0
    );
    drop(client);
    db.drop().await;
}
