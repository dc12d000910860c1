//! A text search's total stops at `SEARCH_COUNT_CAP` and says so; other totals stay exact.
//!
//! Every synthetic post reads "<opener> the <topic> ...", so `the` matches all of them and
//! `love` (one opener in five) a fifth.

use chrono::Utc;
use pulse_proto::v1::{
    ListPostsRequest, PostFilter, analytics_service_client::AnalyticsServiceClient,
};
use pulse_store::posts::SEARCH_COUNT_CAP;
use pulse_testkit::TestDatabase;

mod support;
use support::Served;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_total_is_a_lower_bound_past_the_cap() -> anyhow::Result<()> {
    let database = TestDatabase::create("search_total").await?;
    let pool = pulse_store::connect_pool(&database.url, 1)?;
    let mut client = pool.get().await?;
    pulse_store::migrate::run(&mut client).await?;
    let posts = SEARCH_COUNT_CAP + 50;
    let spec = pulse_store::synthetic::LoadSpec {
        posts,
        days: 2,
        end: Utc::now(),
        chunk: posts,
    };
    pulse_store::synthetic::load(&mut client, spec, "cap", |_| {}).await?;
    drop(client);

    let prefix = pulse_testkit::unique_name("search-total");
    let served = Served::start(support::config(&database.url, &prefix)).await?;
    let mut analytics = AnalyticsServiceClient::new(served.channel().await?);
    let mut total = async |search: Option<&str>| -> anyhow::Result<(u64, bool)> {
        let page = analytics
            .list_posts(ListPostsRequest {
                filter: Some(PostFilter {
                    search: search.unwrap_or_default().to_owned(),
                    ..PostFilter::default()
                }),
                limit: 10,
                ..ListPostsRequest::default()
            })
            .await?
            .into_inner();
        anyhow::ensure!(page.posts.len() == 10, "a full page: {}", page.posts.len());
        Ok((page.total, page.total_is_lower_bound))
    };

    assert_eq!(total(Some("the")).await?, (SEARCH_COUNT_CAP, true));
    assert_eq!(total(Some("love")).await?, (posts / 5, false));
    assert_eq!(total(None).await?, (posts, false), "counted by the rollups");

    served.stop().await?;
    drop(pool);
    database.drop_now().await?;
    pulse_testkit::delete_redis_keys(&prefix).await
}
