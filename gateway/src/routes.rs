//! REST handlers. Each validates its query, calls one internal service, and answers in the
//! envelope; every failure becomes an [`ApiError`].

use std::collections::HashMap;

use futures::future::join4;
use pulse_proto::v1::{
    BucketWidth, GetAggregateRequest, GetDistributionRequest, ListAlertsRequest, ListPostsRequest,
};
use serde_json::{Value, json};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use warp::{Reply, http::StatusCode, reply::Response};

use crate::{
    clients::Clients,
    envelope::{self, ApiError},
    params::{FILTER_PARAMS, Params},
    views,
};

type Query = HashMap<String, String>;

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(ApiError::into_response)
}

pub async fn list_posts(clients: Clients, query: Query) -> Response {
    respond(
        async {
            let params = Params::new(query, &[FILTER_PARAMS, &["limit", "offset"]])?;
            let (filter, echo) = params.post_filter()?;
            let limit = params.integer("limit", 50, 1, 500)?;
            let offset = params.integer("offset", 0, 0, 1_000_000)?;
            let page = clients
                .analytics
                .clone()
                .list_posts(ListPostsRequest {
                    filter: Some(filter),
                    limit,
                    offset,
                })
                .await?
                .into_inner();
            let returned = page.posts.len();
            Ok(envelope::ok(
                Value::Array(page.posts.iter().map(views::post).collect()),
                json!({"total": page.total, "limit": limit, "offset": offset, "returned": returned}),
                echo,
            ))
        }
        .await,
    )
}

pub async fn distribution(clients: Clients, query: Query) -> Response {
    respond(
        async {
            let params = Params::new(query, &[FILTER_PARAMS, &["by_source"]])?;
            let (filter, echo) = params.post_filter()?;
            let by_source = params.flag("by_source")?;
            let d = clients
                .analytics
                .clone()
                .get_distribution(GetDistributionRequest {
                    filter: Some(filter),
                    by_source,
                })
                .await?
                .into_inner();
            Ok(envelope::ok(
                views::distribution(&d),
                json!({"total": d.total, "cached": d.cached}),
                echo,
            ))
        }
        .await,
    )
}

pub async fn aggregate(clients: Clients, query: Query) -> Response {
    respond(
        async {
            let params = Params::new(query, &[FILTER_PARAMS, &["bucket"]])?;
            let (filter, echo) = params.post_filter()?;
            let bucket = params.choice("bucket", &["minute", "hour", "day"])?;
            let width = match bucket.as_deref() {
                Some("minute") => BucketWidth::Minute,
                Some("day") => BucketWidth::Day,
                _ => BucketWidth::Hour,
            };
            let buckets = clients
                .analytics
                .clone()
                .get_aggregate(GetAggregateRequest {
                    filter: Some(filter),
                    bucket_width: width.into(),
                })
                .await?
                .into_inner()
                .buckets;
            Ok(envelope::ok(
                Value::Array(buckets.iter().map(views::bucket).collect()),
                json!({"bucket": bucket.as_deref().unwrap_or("hour"), "buckets": buckets.len()}),
                echo,
            ))
        }
        .await,
    )
}

pub async fn alerts(clients: Clients, query: Query) -> Response {
    respond(
        async {
            let params = Params::new(query, &[&["limit", "since"]])?;
            let limit = params.integer("limit", 50, 1, 500)?;
            let since = params.time("since")?;
            let alerts = clients
                .analytics
                .clone()
                .list_alerts(ListAlertsRequest {
                    limit,
                    since: since.map(pulse_core::domain::datetime_to_timestamp),
                })
                .await?
                .into_inner()
                .alerts;
            Ok(envelope::ok(
                Value::Array(alerts.iter().map(views::alert).collect()),
                json!({"returned": alerts.len(), "limit": limit}),
                json!({"since": since.map(|s| s.to_rfc3339())}),
            ))
        }
        .await,
    )
}

async fn check(mut client: HealthClient<tonic::transport::Channel>, service: &str) -> &'static str {
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    match client.check(request).await {
        Ok(response) if response.get_ref().status == i32::from(ServingStatus::Serving) => "up",
        Ok(_) => "down",
        Err(status) if status.code() == tonic::Code::NotFound => "unknown",
        Err(_) => "unreachable",
    }
}

/// Each dependency's state; 503 when the database (as analytics sees it) is not reachable.
pub async fn health(clients: Clients) -> Response {
    let (analytics, database, inference, ingester) = join4(
        check(
            clients.analytics_health.clone(),
            "pulse.v1.AnalyticsService",
        ),
        check(clients.analytics_health.clone(), "postgres"),
        check(
            clients.inference_health.clone(),
            "pulse.v1.InferenceService",
        ),
        check(clients.ingester_health.clone(), "pulse.v1.IngestService"),
    )
    .await;
    let redis = check(clients.analytics_health.clone(), "redis").await;
    let healthy = database == "up" && analytics == "up";
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "dependencies": {
            "database": database,
            "redis": redis,
            "analytics": analytics,
            "inference": inference,
            "ingester": ingester,
        },
    });
    if healthy {
        envelope::ok(body, json!({}), json!({}))
    } else {
        let mut response = envelope::ok(body, json!({}), json!({}));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
    }
}

/// JSON 404 for any path under /api that no route matched.
pub async fn not_found() -> Response {
    ApiError::not_found("no such endpoint").into_response()
}

/// Wraps a reply so it is never cached by browsers or proxies (live data).
pub fn no_store(reply: impl Reply) -> impl Reply {
    warp::reply::with_header(reply, "cache-control", "no-store")
}
