//! The store against a real PostgreSQL: one throw-away database per test.

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulse_domain::{Analysis, Post};
use pulse_store::{
    PostQuery, migrate, posts,
    stats::{self, Bucket},
};

mod support;
use support::Db;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, minute, 30)
        .single()
        .expect("valid time")
}

fn post(id: &str, source: &str, content: &str, minute: u32) -> Post {
    Post {
        post_id: id.into(),
        source: source.into(),
        author: format!("author-{id}"),
        content: content.into(),
        created_at: at(minute),
    }
}

fn analysis(post_id: &str, label: &str, score: f32) -> Analysis {
    Analysis {
        post_id: post_id.into(),
        model_name: "test-model@1".into(),
        sentiment_label: label.into(),
        confidence_score: score,
        emotion: (label == "negative").then(|| "anger".to_owned()),
        emotion_score: (label == "negative").then_some(0.7),
        emotion_model: (label == "negative").then(|| "emotion@1".to_owned()),
        analyzed_at: at(59),
    }
}

async fn seed(db: &Db) {
    let posts = vec![
        post("a", "twitter", "Love it, 100% great", 0),
        post("b", "reddit", "Hate the update", 0),
        post("c", "twitter", "It arrived", 2),
        post("d", "twitter", "Hate_it so much", 3),
    ];
    let analyses = vec![
        analysis("a", "positive", 0.9),
        analysis("b", "negative", 0.8),
        analysis("c", "neutral", 0.6),
        analysis("d", "negative", 0.7),
    ];
    let mut client = db.pool.get().await.expect("connect");
    let outcome = posts::insert_analysed(&mut client, &posts, &analyses)
        .await
        .expect("insert");
    assert_eq!((outcome.posts_inserted, outcome.analyses_inserted), (4, 4));
}

#[tokio::test]
async fn migrations_are_recorded_and_not_rerun() {
    let db = Db::new("store").await;
    let mut client = db.pool.get().await.expect("connect");
    assert!(
        migrate::run(&mut client)
            .await
            .expect("second run")
            .is_empty()
    );
    assert!(migrate::pending(&client).await.expect("pending").is_empty());
    let recorded: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(recorded, migrate::MIGRATIONS.len() as i64);
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn writing_the_same_batch_twice_changes_nothing() {
    let db = Db::new("store").await;
    seed(&db).await;
    let mut client = db.pool.get().await.expect("connect");
    let again = posts::insert_analysed(
        &mut client,
        &[
            post("a", "twitter", "changed text", 0),
            post("e", "twitter", "new", 1),
        ],
        &[
            analysis("a", "negative", 0.1),
            analysis("e", "positive", 0.5),
        ],
    )
    .await
    .expect("insert");
    assert_eq!((again.posts_inserted, again.analyses_inserted), (1, 1));
    assert_eq!(posts::counts(&client).await.expect("counts"), (5, 5));
    let stored = posts::get_many(&client, &["a"]).await.expect("get");
    assert_eq!(stored[0].post.content, "Love it, 100% great");
    assert_eq!(stored[0].analyses[0].sentiment_label, "positive");
    drop(client);
    db.drop().await;
}

async fn ids(pool: &pulse_store::Pool, query: PostQuery) -> Vec<String> {
    let client = pool.get().await.expect("connect");
    posts::list(&client, &query, 10, 0)
        .await
        .expect("list")
        .posts
        .into_iter()
        .map(|p| p.post.post_id)
        .collect()
}

#[tokio::test]
async fn filters_paging_and_literal_search() {
    let db = Db::new("store").await;
    seed(&db).await;
    let client = db.pool.get().await.expect("connect");
    let all = posts::list(&client, &PostQuery::default(), 10, 0)
        .await
        .expect("list");
    let order: Vec<&str> = all.posts.iter().map(|p| p.post.post_id.as_str()).collect();
    assert_eq!(order, ["d", "c", "b", "a"], "newest first");
    assert_eq!(all.total, 4);

    let page = posts::list(&client, &PostQuery::default(), 2, 2)
        .await
        .expect("page");
    assert_eq!(page.total, 4);
    assert_eq!(page.posts.len(), 2);
    assert_eq!(page.posts[0].post.post_id, "b");

    let query = |q: PostQuery| ids(&db.pool, q);
    let twitter_negative = PostQuery {
        source: Some("twitter".into()),
        sentiment: Some("negative".into()),
        ..PostQuery::default()
    };
    assert_eq!(query(twitter_negative).await, ["d"]);
    let search = PostQuery {
        search: Some("hate".into()),
        ..PostQuery::default()
    };
    assert_eq!(query(search).await, ["d", "b"], "case-insensitive");
    let underscore = PostQuery {
        search: Some("e_i".into()),
        ..PostQuery::default()
    };
    assert_eq!(query(underscore).await, ["d"], "_ is literal");
    let percent = PostQuery {
        search: Some("100%".into()),
        ..PostQuery::default()
    };
    assert_eq!(query(percent).await, ["a"], "% is literal");
    let emotion = PostQuery {
        emotion: Some("anger".into()),
        ..PostQuery::default()
    };
    assert_eq!(query(emotion).await, ["d", "b"]);
    let window = PostQuery {
        from: Some(at(1)),
        to: Some(at(3)),
        ..PostQuery::default()
    };
    assert_eq!(query(window).await, ["c"]);
    let author = PostQuery {
        author: Some("author-b".into()),
        ..PostQuery::default()
    };
    assert_eq!(query(author).await, ["b"]);
    let injection = PostQuery {
        source: Some("x' OR '1'='1".into()),
        ..PostQuery::default()
    };
    assert!(query(injection).await.is_empty());
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn distribution_and_gap_free_buckets() {
    let db = Db::new("store").await;
    seed(&db).await;
    let client = db.pool.get().await.expect("connect");
    let d = stats::distribution(&client, &PostQuery::default())
        .await
        .expect("distribution");
    assert_eq!(d.total, 4);
    assert_eq!(d.sentiment[0], ("negative".to_owned(), 2));
    assert_eq!(d.emotion, vec![("anger".to_owned(), 2)]);
    let by_source = stats::distribution_by_source(&client, &PostQuery::default())
        .await
        .expect("by source");
    assert_eq!(by_source.len(), 2);

    let from = Utc
        .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
        .single()
        .expect("time");
    let buckets = stats::aggregate(
        &client,
        &PostQuery::default(),
        from,
        from + Duration::minutes(5),
        Bucket::Minute,
    )
    .await
    .expect("aggregate");
    let totals: Vec<u64> = buckets.iter().map(|b| b.total).collect();
    assert_eq!(
        totals,
        [2, 0, 1, 1, 0],
        "one bucket per minute, empty ones included"
    );
    assert_eq!(buckets[0].positive + buckets[0].negative, 2);
    assert!((buckets[0].average_confidence - 0.85).abs() < 1e-6);
    assert_eq!(buckets[1].average_confidence, 0.0);
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn reads_past_the_statement_timeout_are_cancelled_and_say_so() {
    let db = Db::new("store").await;
    let reads =
        pulse_store::connect_read_pool(&db.database.url, 1, std::time::Duration::from_millis(100))
            .expect("read pool");
    let client = reads.get().await.expect("connect");
    let error = pulse_store::StoreError::from(
        client
            .query("SELECT pg_sleep(2)", &[])
            .await
            .expect_err("a 2 s statement must be cancelled at 100 ms"),
    );
    assert!(error.is_timeout(), "{error}");
    assert!(!error.is_unavailable(), "{error}");
    // The connection stays usable, and a quick read is untouched by the limit.
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(one, 1);
    // The writers' pool has no limit, and a limit of zero means none.
    for pool in [
        db.pool.clone(),
        pulse_store::connect_read_pool(&db.database.url, 1, std::time::Duration::ZERO)
            .expect("unlimited read pool"),
    ] {
        let client = pool.get().await.expect("connect");
        let timeout: String = client
            .query_one("SHOW statement_timeout", &[])
            .await
            .expect("show")
            .get(0);
        assert_eq!(timeout, "0");
    }
    drop((client, reads));
    db.drop().await;
}

#[tokio::test]
async fn reads_reuse_one_plan_and_searches_are_planned_for_their_term() {
    let db = Db::new("store").await;
    seed(&db).await;
    let timeout = std::time::Duration::ZERO;
    let reads = pulse_store::connect_read_pool(&db.database.url, 1, timeout).expect("read pool");
    let client = reads.get().await.expect("connect");
    let newest = PostQuery::default();
    let first = posts::page(&client, &newest, 2, 0).await.expect("page");
    for _ in 0..7 {
        assert_eq!(
            posts::page(&client, &newest, 2, 0).await.expect("page"),
            first
        );
    }
    let (generic, custom): (i64, i64) = {
        let row = client
            .query_one(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements
                 WHERE statement LIKE '%FROM social_media_posts p%LIMIT%OFFSET%'
                   AND statement NOT LIKE '%pg_prepared_statements%'",
                &[],
            )
            .await
            .expect("the page statement is prepared");
        (row.get(0), row.get(1))
    };
    assert_eq!(
        (generic, custom),
        (8, 0),
        "one plan, made once, for every page"
    );
    let setting = |name: &'static str, pool: pulse_store::Pool| async move {
        let client = pool.get().await.expect("connect");
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .expect("show");
        row.get::<_, String>(0)
    };
    drop(client);
    assert_eq!(setting("jit", reads.clone()).await, "off");
    let searches =
        pulse_store::connect_search_pool(&db.database.url, 1, timeout).expect("search pool");
    assert_eq!(
        setting("plan_cache_mode", searches.clone()).await,
        "force_custom_plan"
    );
    assert_eq!(
        setting("max_parallel_workers_per_gather", searches).await,
        "0"
    );
    drop(reads);
    db.drop().await;
}

#[tokio::test]
async fn substring_search_is_served_by_the_trigram_index() {
    let db = Db::new("store").await;
    seed(&db).await;
    let client = db.pool.get().await.expect("connect");
    // A handful of rows would always be scanned; forbid the scan to see whether the index can
    // answer at all.
    client
        .batch_execute("SET enable_seqscan = off")
        .await
        .expect("set");
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT post_id FROM social_media_posts WHERE content ILIKE $1",
            &[&"%battery%"],
        )
        .await
        .expect("explain")
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Each day partition has its copy of idx_posts_content_trgm, named after the partition.
    assert!(
        plan.iter().any(
            |line| line.contains("Bitmap Index Scan on social_media_posts_p")
                && line.contains("content")
        ),
        "{plan:#?}"
    );
    drop(client);
    db.drop().await;
}
