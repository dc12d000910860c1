//! The posts the fault tests publish: generated, realistic texts under ids `<prefix>-<n>`, so
//! a test knows exactly which posts must arrive.

use std::collections::HashSet;

use chrono::Utc;
use pulse_proto::v1::{Post, PublishRequest, ingest_service_client::IngestServiceClient};
use rand::{SeedableRng, rngs::StdRng};
use tonic::transport::Channel;

/// Posts with generated, realistic texts and ids `<prefix>-<n>`.
pub fn posts(prefix: &str, range: std::ops::Range<usize>) -> Vec<Post> {
    let mut rng = StdRng::seed_from_u64(range.start as u64);
    range
        .map(|i| {
            let (post, _) = pulse_ingester::generator::generate(&mut rng);
            Post {
                post_id: format!("{prefix}-{i}"),
                source: post.source,
                author: post.author,
                content: post.content,
                created_at: Some(pulse_domain::datetime_to_timestamp(Utc::now())),
            }
        })
        .collect()
}

/// The ids [`posts`] gives the same `prefix` and `range`.
pub fn ids(prefix: &str, range: std::ops::Range<usize>) -> HashSet<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

/// Publishes `posts` in calls of 500; every post must be accepted.
pub async fn publish_all(
    client: &mut IngestServiceClient<Channel>,
    posts: Vec<Post>,
) -> anyhow::Result<()> {
    for chunk in posts.chunks(500) {
        let response = client
            .publish(PublishRequest {
                posts: chunk.to_vec(),
            })
            .await?
            .into_inner();
        anyhow::ensure!(
            response.accepted_count as usize == chunk.len(),
            "only {} of {} accepted",
            response.accepted_count,
            chunk.len()
        );
    }
    Ok(())
}
