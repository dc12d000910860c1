//! `pulse.v1.AnalyticsService`.

use std::{pin::Pin, sync::Arc, time::Duration};

use chrono::Utc;
use futures::Stream;
use pulse_proto::v1::{
    self, GetAggregateRequest, GetAggregateResponse, GetDistributionRequest,
    GetDistributionResponse, ListAlertsRequest, ListAlertsResponse, ListPostsRequest,
    ListPostsResponse, WatchEventsRequest, WatchEventsResponse,
    analytics_service_server::AnalyticsService,
};
use pulse_store::{Pool, PostQuery, StoreError, stats::Bucket};
use tonic::{Request, Response, Status};

use crate::{
    cache::{self, DistributionCache},
    convert,
    feed::Feed,
    totals::{Lookup, TotalCache},
};

/// Page size when the caller gives none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page.
pub const MAX_LIMIT: u32 = 500;
/// Most buckets one GetAggregate answers.
pub const MAX_BUCKETS: i64 = 2_000;

pub struct AnalyticsApi {
    pool: Pool,
    feed: Feed,
    cache: DistributionCache,
    totals: Arc<TotalCache>,
}

impl AnalyticsApi {
    pub fn new(pool: Pool, feed: Feed, cache: DistributionCache, totals: TotalCache) -> Self {
        Self {
            pool,
            feed,
            cache,
            totals: Arc::new(totals),
        }
    }

    /// The total for `query`: cached, or counted now, or (when stale) recounted in the
    /// background while the stale one answers.
    async fn total(&self, query: &PostQuery) -> Result<u64, Status> {
        let key = cache::canonical(query, false);
        match self.totals.lookup(&key) {
            Lookup::Fresh(total) => Ok(total),
            Lookup::Stale { total, recount } => {
                if recount {
                    let (pool, totals, query) =
                        (self.pool.clone(), Arc::clone(&self.totals), query.clone());
                    tokio::spawn(async move {
                        let counted = async {
                            let client = pool.get().await.map_err(StoreError::from)?;
                            pulse_store::posts::count(&client, &query).await
                        }
                        .await;
                        match counted {
                            Ok(total) => totals.store(&key, total),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot recount a post total");
                                totals.recount_failed(&key);
                            }
                        }
                    });
                }
                Ok(total)
            }
            Lookup::Off => self.count(query).await,
            Lookup::Missing => {
                let lock = self.totals.first_count_lock(&key);
                let _counting = lock.lock().await;
                // Someone else may have counted while this request waited.
                if let Some(total) = self.totals.peek(&key) {
                    return Ok(total);
                }
                let total = self.count(query).await?;
                self.totals.store(&key, total);
                Ok(total)
            }
        }
    }

    async fn count(&self, query: &PostQuery) -> Result<u64, Status> {
        let client = self.client().await?;
        pulse_store::posts::count(&client, query)
            .await
            .map_err(store_status)
    }

    async fn client(&self) -> Result<pulse_store::pool::Client, Status> {
        self.pool.get().await.map_err(|e| store_status(e.into()))
    }
}

/// Maps a store failure to a status: unreachable database → UNAVAILABLE.
pub fn store_status(e: StoreError) -> Status {
    if e.is_unavailable() {
        Status::unavailable(format!("database unavailable: {e}"))
    } else {
        tracing::error!(error = %e, "query failed");
        Status::internal("query failed")
    }
}

/// Distribution for `query`, from the database.
pub async fn distribution(
    pool: &Pool,
    query: &PostQuery,
    by_source: bool,
) -> Result<GetDistributionResponse, Status> {
    let client = pool.get().await.map_err(|e| store_status(e.into()))?;
    let distribution = pulse_store::stats::distribution(&client, query)
        .await
        .map_err(store_status)?;
    let sources = if by_source {
        pulse_store::stats::distribution_by_source(&client, query)
            .await
            .map_err(store_status)?
    } else {
        Vec::new()
    };
    Ok(convert::distribution_to_wire(distribution, sources))
}

type EventStream = Pin<Box<dyn Stream<Item = Result<WatchEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AnalyticsService for AnalyticsApi {
    #[tracing::instrument(name = "analytics.list_posts", skip_all)]
    async fn list_posts(
        &self,
        request: Request<ListPostsRequest>,
    ) -> Result<Response<ListPostsResponse>, Status> {
        let request = request.into_inner();
        let query = convert::filter_to_query(request.filter)?;
        let limit = match request.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(Status::invalid_argument(format!(
                    "limit must be at most {MAX_LIMIT}"
                )));
            }
            n => n,
        };
        let total = self.total(&query).await?;
        let client = self.client().await?;
        let posts =
            pulse_store::posts::page(&client, &query, i64::from(limit), i64::from(request.offset))
                .await
                .map_err(store_status)?;
        Ok(Response::new(ListPostsResponse {
            posts: posts.into_iter().map(convert::post_to_wire).collect(),
            total,
        }))
    }

    #[tracing::instrument(name = "analytics.get_distribution", skip_all)]
    async fn get_distribution(
        &self,
        request: Request<GetDistributionRequest>,
    ) -> Result<Response<GetDistributionResponse>, Status> {
        let request = request.into_inner();
        let query = convert::filter_to_query(request.filter)?;
        if let Some(hit) = self.cache.get(&query, request.by_source).await {
            return Ok(Response::new(hit));
        }
        let answer = distribution(&self.pool, &query, request.by_source).await?;
        self.cache.put(&query, request.by_source, &answer).await;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(name = "analytics.get_aggregate", skip_all)]
    async fn get_aggregate(
        &self,
        request: Request<GetAggregateRequest>,
    ) -> Result<Response<GetAggregateResponse>, Status> {
        let request = request.into_inner();
        let query = convert::filter_to_query(request.filter)?;
        let bucket = match v1::BucketWidth::try_from(request.bucket_width) {
            Ok(v1::BucketWidth::Minute) => Bucket::Minute,
            Ok(v1::BucketWidth::Hour | v1::BucketWidth::Unspecified) => Bucket::Hour,
            Ok(v1::BucketWidth::Day) => Bucket::Day,
            Err(_) => return Err(Status::invalid_argument("unknown bucket width")),
        };
        let to = query.to.unwrap_or_else(Utc::now);
        let from = query.from.unwrap_or(to - chrono::Duration::hours(24));
        let buckets = (to - from).num_seconds() / bucket.duration().num_seconds().max(1);
        if buckets > MAX_BUCKETS {
            return Err(Status::invalid_argument(format!(
                "the range holds {buckets} buckets, over the limit of {MAX_BUCKETS}; use a wider bucket"
            )));
        }
        let client = self.client().await?;
        let rows = pulse_store::stats::aggregate(&client, &query, from, to, bucket)
            .await
            .map_err(store_status)?;
        Ok(Response::new(GetAggregateResponse {
            buckets: rows
                .into_iter()
                .map(|b| v1::AggregateBucket {
                    start: Some(pulse_domain::datetime_to_timestamp(b.start)),
                    total: b.total,
                    positive: b.positive,
                    neutral: b.neutral,
                    negative: b.negative,
                    average_confidence: b.average_confidence,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(name = "analytics.list_alerts", skip_all)]
    async fn list_alerts(
        &self,
        request: Request<ListAlertsRequest>,
    ) -> Result<Response<ListAlertsResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(Status::invalid_argument(format!(
                    "limit must be at most {MAX_LIMIT}"
                )));
            }
            n => n,
        };
        let since = request
            .since
            .map(|ts| {
                pulse_domain::timestamp_to_datetime(&ts)
                    .ok_or_else(|| Status::invalid_argument("since is not a valid time"))
            })
            .transpose()?;
        let client = self.client().await?;
        let alerts = pulse_store::alerts::list(&client, i64::from(limit), since)
            .await
            .map_err(store_status)?;
        Ok(Response::new(ListAlertsResponse {
            alerts: alerts.into_iter().map(convert::alert_to_wire).collect(),
        }))
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let after = request.into_inner().after_event_id;
        let stream = self.feed.subscribe(after, Duration::from_secs(1)).await?;
        Ok(Response::new(Box::pin(stream)))
    }
}
