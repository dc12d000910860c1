//! The queries behind `pulse.v1.AnalyticsService`, validated.
//!
//! Each one checks its request (page sizes, bucket widths and ranges, the filter), answers from
//! `pulse-store` (through the distribution cache and the total cache where it has one) in wire
//! types, and maps failures to statuses. [`crate::grpc`] serves them; [`crate::feed`] uses
//! [`distribution`] for its periodic metrics.

use std::sync::Arc;

use chrono::Utc;
use pulse_proto::v1::{
    self, GetAggregateRequest, GetAggregateResponse, GetDistributionRequest,
    GetDistributionResponse, ListAlertsRequest, ListAlertsResponse, ListPostsRequest,
    ListPostsResponse,
};
use pulse_store::{Pool, PostQuery, StoreError, posts::PageKey, stats::Bucket};
use tonic::Status;

use crate::{
    cache::{self, DistributionCache},
    convert, cursor, insights,
    totals::{Lookup, TotalCache},
};

/// Page size when the caller gives none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page.
pub const MAX_LIMIT: u32 = 500;
/// Most buckets one GetAggregate answers.
pub const MAX_BUCKETS: i64 = 2_000;

/// The read queries, with the pools and the caches they read through.
pub struct Queries {
    pools: ReadPools,
    cache: DistributionCache,
    totals: Arc<TotalCache>,
}

/// Where reads check connections out: plans reused for every read but text searches, which
/// are planned for their term on connections of their own (see [`pulse_store::connect_read_pool`]
/// and [`pulse_store::connect_search_pool`]).
#[derive(Clone)]
pub struct ReadPools {
    pub reads: Pool,
    pub searches: Pool,
}

impl ReadPools {
    /// The pool to read `query` from.
    pub fn for_query(&self, query: &PostQuery) -> &Pool {
        if query.search.is_some() {
            &self.searches
        } else {
            &self.reads
        }
    }
}

impl Queries {
    pub fn new(pools: ReadPools, cache: DistributionCache, totals: TotalCache) -> Self {
        Self {
            pools,
            cache,
            totals: Arc::new(totals),
        }
    }

    /// A page of posts matching the filter, newest first, how many match in all, and the cursor
    /// of the next page.
    ///
    /// One row more than the page is read, so the last page is known as such and carries no
    /// cursor. A cursor and an offset together are refused: a cursor already says where the
    /// page starts.
    pub async fn list_posts(&self, request: ListPostsRequest) -> Result<ListPostsResponse, Status> {
        let query = convert::filter_to_query(request.filter)?;
        let limit = page_limit(request.limit)?;
        let after = page_cursor(&request.cursor)?;
        if after.is_some() && request.offset != 0 {
            return Err(Status::invalid_argument(
                "cursor and offset cannot be combined: page by one or the other",
            ));
        }
        let total = self.total(&query).await?;
        let client = self.client(self.pools.for_query(&query)).await?;
        let fetch = i64::from(limit) + 1;
        let mut posts = match &after {
            Some(key) => pulse_store::posts::page_after(&client, &query, fetch, key).await,
            None => {
                pulse_store::posts::page(&client, &query, fetch, i64::from(request.offset)).await
            }
        }
        .map_err(store_status)?;
        let more = posts.len() > limit as usize;
        posts.truncate(limit as usize);
        let next_cursor = posts
            .last()
            .filter(|_| more)
            .map(|last| cursor::encode(&PageKey::of(last)))
            .unwrap_or_default();
        // A search counts one match past the cap to tell "at least the cap" from "exactly".
        let cap = pulse_store::posts::SEARCH_COUNT_CAP;
        let total_is_lower_bound = query.search.is_some() && total > cap;
        Ok(ListPostsResponse {
            posts: posts.into_iter().map(convert::post_to_wire).collect(),
            total: if total_is_lower_bound { cap } else { total },
            next_cursor,
            total_is_lower_bound,
        })
    }

    /// The sentiment distribution of the posts matching the filter: cached, or counted now and
    /// cached.
    pub async fn get_distribution(
        &self,
        request: GetDistributionRequest,
    ) -> Result<GetDistributionResponse, Status> {
        let query = convert::filter_to_query(request.filter)?;
        if let Some(hit) = self.cache.get(&query, request.by_source).await {
            return Ok(hit);
        }
        let answer = distribution(self.pools.for_query(&query), &query, request.by_source).await?;
        self.cache.put(&query, request.by_source, &answer).await;
        Ok(answer)
    }

    /// Counts per time bucket over the filter's range (the last 24 hours by default), at most
    /// [`MAX_BUCKETS`] of them.
    pub async fn get_aggregate(
        &self,
        request: GetAggregateRequest,
    ) -> Result<GetAggregateResponse, Status> {
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
        let client = self.client(self.pools.for_query(&query)).await?;
        let rows = pulse_store::stats::aggregate(&client, &query, from, to, bucket)
            .await
            .map_err(store_status)?;
        Ok(GetAggregateResponse {
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
        })
    }

    /// The terms and entities driving a sentiment in a window against its baseline.
    pub async fn get_drivers(
        &self,
        request: v1::GetDriversRequest,
    ) -> Result<v1::GetDriversResponse, Status> {
        let windows = insights::Windows::from_wire(request.window, request.baseline, Utc::now())?;
        let sentiment = insights::sentiment(&request.sentiment)?;
        let limit = bounded_limit(
            request.limit,
            insights::DEFAULT_DRIVERS,
            insights::MAX_DRIVERS,
        )?;
        let client = self.client(&self.pools.reads).await?;
        insights::drivers(&client, &windows, sentiment, limit as usize)
            .await
            .map_err(store_status)
    }

    /// Volume and sentiment per entity in a window and its baseline.
    pub async fn get_entities(
        &self,
        request: v1::GetEntitiesRequest,
    ) -> Result<v1::GetEntitiesResponse, Status> {
        let windows = insights::Windows::from_wire(request.window, request.baseline, Utc::now())?;
        let limit = bounded_limit(
            request.limit,
            insights::DEFAULT_ENTITIES,
            insights::MAX_ENTITIES,
        )?;
        let client = self.client(&self.pools.reads).await?;
        insights::entities(&client, &windows, limit as usize)
            .await
            .map_err(store_status)
    }

    /// The newest alerts, optionally only those since a time.
    pub async fn list_alerts(
        &self,
        request: ListAlertsRequest,
    ) -> Result<ListAlertsResponse, Status> {
        let limit = page_limit(request.limit)?;
        let since = request
            .since
            .map(|ts| {
                pulse_domain::timestamp_to_datetime(&ts)
                    .ok_or_else(|| Status::invalid_argument("since is not a valid time"))
            })
            .transpose()?;
        let client = self.client(&self.pools.reads).await?;
        let alerts = pulse_store::alerts::list(&client, i64::from(limit), since)
            .await
            .map_err(store_status)?;
        Ok(ListAlertsResponse {
            alerts: alerts.into_iter().map(convert::alert_to_wire).collect(),
        })
    }

    /// The total for `query`: cached, or counted now, or (when stale) recounted in the
    /// background while the stale one answers.
    async fn total(&self, query: &PostQuery) -> Result<u64, Status> {
        let key = cache::canonical(query, false);
        match self.totals.lookup(&key) {
            Lookup::Fresh(total) => Ok(total),
            Lookup::Stale { total, recount } => {
                if recount {
                    let (pool, totals, query) = (
                        self.pools.for_query(query).clone(),
                        Arc::clone(&self.totals),
                        query.clone(),
                    );
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
        let client = self.client(self.pools.for_query(query)).await?;
        pulse_store::posts::count(&client, query)
            .await
            .map_err(store_status)
    }

    /// A connection of `pool` whose statement is cancelled if the request is abandoned (see
    /// [`pulse_store::cancel`]).
    async fn client(&self, pool: &Pool) -> Result<pulse_store::CancelOnDrop, Status> {
        pulse_store::CancelOnDrop::get(pool)
            .await
            .map_err(store_status)
    }
}

/// The start of a keyset page: none for an empty cursor, refused when malformed.
fn page_cursor(raw: &str) -> Result<Option<PageKey>, Status> {
    if raw.is_empty() {
        return Ok(None);
    }
    cursor::decode(raw).map(Some).map_err(|e| {
        Status::invalid_argument(format!(
            "{e}: pass back a next_cursor unchanged, or leave cursor out to start at the newest post"
        ))
    })
}

/// A requested page size: [`DEFAULT_LIMIT`] for none (0), refused over [`MAX_LIMIT`].
fn page_limit(limit: u32) -> Result<u32, Status> {
    bounded_limit(limit, DEFAULT_LIMIT, MAX_LIMIT)
}

/// `limit`, `default` when it is 0, refused over `max`.
fn bounded_limit(limit: u32, default: u32, max: u32) -> Result<u32, Status> {
    match limit {
        0 => Ok(default),
        n if n > max => Err(Status::invalid_argument(format!(
            "limit must be at most {max}"
        ))),
        n => Ok(n),
    }
}

/// Maps a store failure to a status: unreachable database → UNAVAILABLE.
pub fn store_status(e: StoreError) -> Status {
    if e.is_timeout() {
        Status::deadline_exceeded("the query ran past READ_STATEMENT_TIMEOUT_MS and was cancelled")
    } else if e.is_unavailable() {
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
    let client = pulse_store::CancelOnDrop::get(pool)
        .await
        .map_err(store_status)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A read cancelled by the read pool's `statement_timeout` is a deadline, not a failure.
    #[tokio::test]
    async fn a_read_past_the_statement_timeout_is_deadline_exceeded() {
        let pool = pulse_store::connect_read_pool(
            &pulse_testkit::database_server_url(),
            1,
            std::time::Duration::from_millis(50),
        )
        .expect("pool");
        let client = pool.get().await.expect("connect");
        let error = client
            .query("SELECT pg_sleep(2)", &[])
            .await
            .expect_err("cancelled at 50 ms");
        let status = store_status(StoreError::from(error));
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    }

    #[test]
    fn an_empty_cursor_is_none_and_a_bad_one_is_an_invalid_argument() {
        assert_eq!(page_cursor("").ok(), Some(None));
        let status = page_cursor("not a cursor").expect_err("malformed");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with("cursor "), "{status:?}");
    }

    #[test]
    fn page_limits_default_and_are_bounded() {
        assert_eq!(page_limit(0).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(page_limit(7).ok(), Some(7));
        assert_eq!(page_limit(MAX_LIMIT).ok(), Some(MAX_LIMIT));
        assert_eq!(
            page_limit(MAX_LIMIT + 1).map_err(|s| s.code()).err(),
            Some(tonic::Code::InvalidArgument)
        );
    }
}
