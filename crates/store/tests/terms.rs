//! The term rollups against a real PostgreSQL: what posts mention is counted once per post under
//! its latest analysis, moves with a re-analysis, is read back per window, and quotes examples
//! that still carry the sentiment.

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulse_domain::{Analysis, Post};
use pulse_store::{
    posts::{self, Mentions},
    rollups::{self, Drift},
    terms::{self, Counted, SentimentCounts, TermKind},
};

mod support;
use support::Db;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn post(id: usize, seconds: i64, content: &str) -> Post {
    Post {
        post_id: format!("p{id}"),
        source: "twitter".into(),
        author: format!("author{id}"),
        content: content.into(),
        created_at: base() + Duration::seconds(seconds),
    }
}

fn mentions(terms: &[&str], entities: &[&str]) -> Mentions {
    Mentions {
        terms: terms.iter().map(|t| (*t).to_owned()).collect(),
        entities: entities.iter().map(|t| (*t).to_owned()).collect(),
    }
}

fn analysis(post_id: &str, label: &str, analyzed_at: DateTime<Utc>) -> Analysis {
    Analysis {
        post_id: post_id.into(),
        model_name: "local@1".into(),
        sentiment_label: label.into(),
        confidence_score: 0.9,
        emotion: None,
        emotion_score: None,
        emotion_model: None,
        analyzed_at,
    }
}

async fn write(db: &Db, posts: &[Post], mentions: &[Mentions], analyses: &[Analysis]) {
    let mut client = db.client().await;
    posts::insert_analysed_mentioning(&mut client, posts, mentions, analyses)
        .await
        .expect("insert");
}

async fn count_of(
    db: &Db,
    kind: TermKind,
    term: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> SentimentCounts {
    let client = db.client().await;
    terms::counts(&client, from, to, Counted::All)
        .await
        .expect("counts")
        .into_iter()
        .find(|c| c.kind == kind && c.term == term)
        .map(|c| c.posts)
        .unwrap_or_default()
}

#[tokio::test]
async fn terms_are_counted_once_per_post_and_move_with_a_reanalysis() {
    let db = Db::new("terms").await;
    // Ten complaints in the first minute, five praises two hours later.
    let complaints: Vec<Post> = (0..10)
        .map(|i| post(i, i as i64 * 5, "Pixel 9 battery drains"))
        .collect();
    let complaint_terms: Vec<Mentions> = (0..10)
        .map(|_| {
            mentions(
                &["battery", "battery drains", "drains", "pixel"],
                &["Pixel 9"],
            )
        })
        .collect();
    let negative: Vec<Analysis> = complaints
        .iter()
        .map(|p| analysis(&p.post_id, "negative", base()))
        .collect();
    write(&db, &complaints, &complaint_terms, &negative).await;
    // Redelivered: nothing moves.
    write(&db, &complaints, &complaint_terms, &negative).await;
    let praise: Vec<Post> = (10..15)
        .map(|i| post(i, 7200 + i as i64, "Love my Pixel 9 #happy"))
        .collect();
    let praise_terms: Vec<Mentions> = (10..15)
        .map(|_| mentions(&["love", "pixel"], &["Pixel 9", "#happy"]))
        .collect();
    let positive: Vec<Analysis> = praise
        .iter()
        .map(|p| analysis(&p.post_id, "positive", base()))
        .collect();
    write(&db, &praise, &praise_terms, &positive).await;

    let day = (base() - Duration::hours(1), base() + Duration::hours(5));
    assert_eq!(
        count_of(&db, TermKind::Term, "battery drains", day.0, day.1).await,
        SentimentCounts {
            positive: 0,
            neutral: 0,
            negative: 10
        }
    );
    assert_eq!(
        count_of(&db, TermKind::Entity, "Pixel 9", day.0, day.1).await,
        SentimentCounts {
            positive: 5,
            neutral: 0,
            negative: 10
        }
    );
    let client = db.client().await;
    let entities_only = terms::counts(&client, day.0, day.1, Counted::Entities)
        .await
        .expect("counts");
    let names: Vec<(TermKind, &str)> = entities_only
        .iter()
        .map(|c| (c.kind, c.term.as_str()))
        .collect();
    assert_eq!(
        names,
        [(TermKind::Entity, "#happy"), (TermKind::Entity, "Pixel 9")],
        "the entities alone"
    );
    drop(client);
    // A window of the complaints' minute alone, with ragged ends.
    let minute = (
        base() + Duration::seconds(10),
        base() + Duration::seconds(20),
    );
    assert_eq!(
        count_of(&db, TermKind::Term, "pixel", minute.0, minute.1)
            .await
            .negative,
        10,
        "widened to the whole minute"
    );
    assert_eq!(
        count_of(&db, TermKind::Term, "pixel", minute.0, minute.1)
            .await
            .positive,
        0
    );

    // A newer analysis turns three complaints neutral: their terms move with them.
    let later: Vec<Analysis> = complaints[..3]
        .iter()
        .map(|p| Analysis {
            model_name: "local@2".into(),
            ..analysis(&p.post_id, "neutral", base() + Duration::minutes(1))
        })
        .collect();
    write(&db, &complaints[..3], &complaint_terms[..3], &later).await;
    assert_eq!(
        count_of(&db, TermKind::Term, "battery drains", day.0, day.1).await,
        SentimentCounts {
            positive: 0,
            neutral: 3,
            negative: 7
        }
    );
    let client = db.client().await;
    assert_eq!(
        terms::posts(&client, day.0, day.1).await.expect("posts"),
        SentimentCounts {
            positive: 5,
            neutral: 3,
            negative: 7
        }
    );
    assert_eq!(
        rollups::drift(&client).await.expect("drift"),
        Drift::default()
    );

    // Examples: recent posts that still carry the sentiment.
    let wanted = vec![
        (TermKind::Term, "battery drains".to_owned()),
        (TermKind::Entity, "Pixel 9".to_owned()),
        (TermKind::Term, "never mentioned".to_owned()),
    ];
    let examples = terms::examples(&client, "negative", &wanted, day.0, day.1, 2)
        .await
        .expect("examples");
    let drains = examples
        .get(&(TermKind::Term, "battery drains".to_owned()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(drains.len(), 2, "{examples:?}");
    assert!(
        drains
            .iter()
            .all(|e| e.sentiment == "negative" && e.content.contains("battery drains"))
    );
    assert!(
        drains
            .iter()
            .all(|e| !["p0", "p1", "p2"].contains(&e.post_id.as_str())),
        "re-analysed posts are no longer negative examples: {drains:?}"
    );
    assert!(!examples.contains_key(&(TermKind::Term, "never mentioned".to_owned())));
    let happy = terms::examples(
        &client,
        "positive",
        &[(TermKind::Entity, "#happy".into())],
        day.0,
        day.1,
        2,
    )
    .await
    .expect("examples");
    assert_eq!(happy.values().map(Vec::len).sum::<usize>(), 2);
    drop(client);
    db.drop().await;
}

/// Every term counted in the two hours around [`base`].
async fn counted_around_base(client: &tokio_postgres::Client) -> Vec<terms::TermCount> {
    terms::counts(
        client,
        base() - Duration::hours(1),
        base() + Duration::hours(1),
        Counted::All,
    )
    .await
    .expect("counts")
}

#[tokio::test]
async fn posts_without_mentions_count_no_terms() {
    let db = Db::new("terms").await;
    let plain = vec![post(1, 0, "nothing counted")];
    let mut client = db.client().await;
    posts::insert_analysed(&mut client, &plain, &[analysis("p1", "positive", base())])
        .await
        .expect("insert");
    let counted = counted_around_base(&client).await;
    assert!(counted.is_empty(), "{counted:?}");
    // A term with a newline cannot be stored as one: it is dropped, the rest is kept, once.
    posts::insert_analysed_mentioning(
        &mut client,
        &[post(2, 0, "x")],
        &[mentions(&["split\nterm", "kept", "kept"], &[])],
        &[analysis("p2", "negative", base())],
    )
    .await
    .expect("insert");
    let counted = counted_around_base(&client).await;
    let names: Vec<(&str, u64)> = counted
        .iter()
        .map(|c| (c.term.as_str(), c.posts.negative))
        .collect();
    assert_eq!(names, [("kept", 1)], "a term given twice counts once");
    assert_eq!(
        rollups::drift(&client).await.expect("drift"),
        Drift::default()
    );
    drop(client);
    db.drop().await;
}
