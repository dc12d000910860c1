//! Paging by keyset against a real PostgreSQL: every post once, in the page order, however many
//! posts share a `created_at`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulse_domain::{Analysis, Post};
use pulse_store::{
    PostQuery,
    posts::{self, PageKey, StoredPost},
};

mod support;
use support::Db;

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// `post_id` and `created_at` of each post, in the order given.
fn keys(posts: &[StoredPost]) -> Vec<(String, DateTime<Utc>)> {
    posts
        .iter()
        .map(|p| (p.post.post_id.clone(), p.post.created_at))
        .collect()
}

/// Every page of `query`, `limit` posts at a time: the first by offset 0, each next one after
/// the last post of the one before.
async fn page_through(
    client: &pulse_store::pool::Client,
    query: &PostQuery,
    limit: i64,
) -> (Vec<StoredPost>, usize) {
    let mut all = posts::page(client, query, limit, 0).await.expect("first");
    let mut pages = 1;
    let mut last = all.len();
    while last == usize::try_from(limit).expect("small limit") {
        let after = PageKey::of(all.last().expect("a full page"));
        let page = posts::page_after(client, query, limit, &after)
            .await
            .expect("next page");
        last = page.len();
        pages += 1;
        all.extend(page);
        assert!(pages < 100, "paging does not end");
    }
    (all, pages)
}

#[tokio::test]
async fn keyset_pages_hold_every_post_once_in_order_across_equal_times() {
    let db = Db::new("paging").await;
    let pool = db.pool.clone();
    // 23 posts at the same microsecond (ids chosen so their order is not insertion order),
    // framed by one newer and one older post; sources alternate for the filtered pass.
    let tie = noon() + Duration::microseconds(123_456);
    let mut stored: Vec<Post> = (0..23)
        .map(|i| Post {
            post_id: format!("tie-{:02}", (i * 7) % 23),
            source: if i % 2 == 0 { "even" } else { "odd" }.into(),
            author: "a".into(),
            content: format!("post {i}"),
            created_at: tie,
        })
        .collect();
    for (id, created_at) in [
        ("newer", tie + Duration::microseconds(1)),
        ("older", noon()),
    ] {
        stored.push(Post {
            post_id: id.into(),
            source: "even".into(),
            author: "a".into(),
            content: id.into(),
            created_at,
        });
    }
    let analyses: Vec<Analysis> = stored
        .iter()
        .map(|p| Analysis {
            post_id: p.post_id.clone(),
            model_name: "m".into(),
            sentiment_label: "neutral".into(),
            confidence_score: 0.5,
            emotion: None,
            emotion_score: None,
            emotion_model: None,
            analyzed_at: noon(),
        })
        .collect();
    let mut client = pool.get().await.expect("connect");
    posts::insert_analysed(&mut client, &stored, &analyses)
        .await
        .expect("insert");

    // The expected order: newest first, then post_id descending among equal times.
    let mut expected: Vec<(String, DateTime<Utc>)> = stored
        .iter()
        .map(|p| (p.post_id.clone(), p.created_at))
        .collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));

    let all = PostQuery::default();
    for limit in [1, 4, 5, 25, 40] {
        let (paged, _) = page_through(&client, &all, limit).await;
        assert_eq!(keys(&paged), expected, "limit {limit}");
        assert!(
            paged.iter().all(|p| p.analyses.len() == 1),
            "every post with its analysis"
        );
    }
    // The same as one page by offset, and 25 posts at 4 a page are 7 pages, the last short.
    let one = posts::page(&client, &all, 100, 0).await.expect("one page");
    assert_eq!(keys(&one), expected);
    assert_eq!(page_through(&client, &all, 4).await.1, 7);

    // A filter and the cursor together: the filter's parameters and the key's do not mix.
    let even = PostQuery {
        source: Some("even".into()),
        ..PostQuery::default()
    };
    let expected_even: Vec<(String, DateTime<Utc>)> = stored
        .iter()
        .filter(|p| p.source == "even")
        .map(|p| (p.post_id.clone(), p.created_at))
        .collect::<Vec<_>>();
    let mut expected_even = expected_even;
    expected_even.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let (paged, _) = page_through(&client, &even, 3).await;
    assert_eq!(keys(&paged), expected_even);

    // After the last post there is nothing; after a key between posts, the rest.
    let last = PageKey::of(one.last().expect("posts"));
    assert!(
        posts::page_after(&client, &all, 10, &last)
            .await
            .expect("after the last")
            .is_empty()
    );
    let between = PageKey {
        created_at: tie,
        post_id: "tie-10a".into(),
    };
    let rest = posts::page_after(&client, &all, 100, &between)
        .await
        .expect("after a key");
    let ids: Vec<&str> = rest.iter().map(|p| p.post.post_id.as_str()).collect();
    let want: Vec<String> = (0..=10)
        .rev()
        .map(|i| format!("tie-{i:02}"))
        .chain(["older".to_owned()])
        .collect();
    assert_eq!(ids, want);

    drop(client);
    drop(pool);
    db.drop().await;
}

#[tokio::test]
async fn a_reanalysed_post_is_one_row_with_every_analysis_newest_first() {
    let db = Db::new("paging").await;
    let mut client = db.pool.get().await.expect("connect");
    let stored: Vec<Post> = (0..3)
        .map(|i| Post {
            post_id: format!("p{i}"),
            source: "s".into(),
            author: "a".into(),
            content: format!("post {i}"),
            created_at: noon() + Duration::seconds(i),
        })
        .collect();
    let analysis = |post: &str, label: &str, minutes: i64| Analysis {
        post_id: post.into(),
        model_name: format!("model-{minutes}"),
        sentiment_label: label.into(),
        confidence_score: 0.5,
        emotion: None,
        emotion_score: None,
        emotion_model: None,
        analyzed_at: noon() + Duration::minutes(minutes),
    };
    let first: Vec<Analysis> = stored
        .iter()
        .map(|p| analysis(&p.post_id, "neutral", 1))
        .collect();
    posts::insert_analysed(&mut client, &stored, &first)
        .await
        .expect("insert");
    // p1 is analysed again, later, as negative.
    posts::insert_analysed(&mut client, &stored[1..2], &[analysis("p1", "negative", 2)])
        .await
        .expect("re-analyse");

    let page = posts::page(&client, &PostQuery::default(), 2, 0)
        .await
        .expect("page");
    let summary: Vec<(&str, Vec<&str>)> = page
        .iter()
        .map(|p| {
            let models = p.analyses.iter().map(|a| a.model_name.as_str()).collect();
            (p.post.post_id.as_str(), models)
        })
        .collect();
    assert_eq!(
        summary,
        [("p2", vec!["model-1"]), ("p1", vec!["model-2", "model-1"])],
        "two posts, the re-analysed one once, its newest analysis first"
    );
    // A sentiment filter reads the latest analysis only.
    let negative = PostQuery {
        sentiment: Some("negative".into()),
        ..PostQuery::default()
    };
    let after = PageKey::of(&page[0]);
    let ids: Vec<String> = posts::page_after(&client, &negative, 10, &after)
        .await
        .expect("filtered page")
        .into_iter()
        .map(|p| p.post.post_id)
        .collect();
    assert_eq!(ids, ["p1"]);
    let neutral = PostQuery {
        sentiment: Some("neutral".into()),
        ..PostQuery::default()
    };
    let ids: Vec<String> = posts::page(&client, &neutral, 10, 0)
        .await
        .expect("filtered page")
        .into_iter()
        .map(|p| p.post.post_id)
        .collect();
    assert_eq!(ids, ["p2", "p0"], "p1's latest analysis is negative");
    drop(client);
    db.drop().await;
}
