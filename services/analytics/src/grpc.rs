//! `pulse.v1.AnalyticsService` over gRPC: [`AnalyticsApi`] answers each request with a
//! validated query of [`crate::queries`], and `WatchEvents` with a subscription to the event
//! feed ([`crate::feed`]). Each query runs in a [`scope`]: when its caller gives up and the
//! request is dropped, the statement it is running is cancelled on the server.

use std::{pin::Pin, time::Duration};

use futures::Stream;
use pulse_proto::v1::{
    GetAggregateRequest, GetAggregateResponse, GetDistributionRequest, GetDistributionResponse,
    GetDriversRequest, GetDriversResponse, GetEntitiesRequest, GetEntitiesResponse,
    ListAlertsRequest, ListAlertsResponse, ListPostsRequest, ListPostsResponse, WatchEventsRequest,
    WatchEventsResponse, analytics_service_server::AnalyticsService,
};
use pulse_store::cancel::scope;
use tonic::{Request, Response, Status};

use crate::{
    cache::DistributionCache,
    feed::Feed,
    queries::{Queries, ReadPools},
    totals::TotalCache,
};

/// How long one blocking read of the event feed waits before it is asked again.
const FEED_BLOCK: Duration = Duration::from_secs(1);

pub struct AnalyticsApi {
    queries: Queries,
    feed: Feed,
}

impl AnalyticsApi {
    pub fn new(pools: ReadPools, feed: Feed, cache: DistributionCache, totals: TotalCache) -> Self {
        Self {
            queries: Queries::new(pools, cache, totals),
            feed,
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<WatchEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AnalyticsService for AnalyticsApi {
    #[tracing::instrument(name = "analytics.list_posts", skip_all)]
    async fn list_posts(
        &self,
        request: Request<ListPostsRequest>,
    ) -> Result<Response<ListPostsResponse>, Status> {
        scope(self.queries.list_posts(request.into_inner()))
            .await
            .map(Response::new)
    }

    #[tracing::instrument(name = "analytics.get_distribution", skip_all)]
    async fn get_distribution(
        &self,
        request: Request<GetDistributionRequest>,
    ) -> Result<Response<GetDistributionResponse>, Status> {
        scope(self.queries.get_distribution(request.into_inner()))
            .await
            .map(Response::new)
    }

    #[tracing::instrument(name = "analytics.get_aggregate", skip_all)]
    async fn get_aggregate(
        &self,
        request: Request<GetAggregateRequest>,
    ) -> Result<Response<GetAggregateResponse>, Status> {
        scope(self.queries.get_aggregate(request.into_inner()))
            .await
            .map(Response::new)
    }

    #[tracing::instrument(name = "analytics.list_alerts", skip_all)]
    async fn list_alerts(
        &self,
        request: Request<ListAlertsRequest>,
    ) -> Result<Response<ListAlertsResponse>, Status> {
        scope(self.queries.list_alerts(request.into_inner()))
            .await
            .map(Response::new)
    }

    #[tracing::instrument(name = "analytics.get_drivers", skip_all)]
    async fn get_drivers(
        &self,
        request: Request<GetDriversRequest>,
    ) -> Result<Response<GetDriversResponse>, Status> {
        scope(self.queries.get_drivers(request.into_inner()))
            .await
            .map(Response::new)
    }

    #[tracing::instrument(name = "analytics.get_entities", skip_all)]
    async fn get_entities(
        &self,
        request: Request<GetEntitiesRequest>,
    ) -> Result<Response<GetEntitiesResponse>, Status> {
        scope(self.queries.get_entities(request.into_inner()))
            .await
            .map(Response::new)
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let after = request.into_inner().after_event_id;
        let stream = self.feed.subscribe(after, FEED_BLOCK).await?;
        Ok(Response::new(Box::pin(stream)))
    }
}
