//! REST handlers. Each validates its query, calls one internal service, and answers in the
//! envelope; every failure becomes an [`ApiError`].

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use futures::future::join4;
use pulse_proto::v1::{
    AnalyzeRequest, Backend, BucketWidth, GetAggregateRequest, GetDistributionRequest,
    GetDriversRequest, GetEntitiesRequest, ListAlertsRequest, ListPostsRequest, Post,
    PublishRequest, Task, TaskResult, TimeWindow,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use warp::{
    Reply,
    http::{HeaderMap, StatusCode},
    reply::Response,
};

use crate::{
    auth::Caller,
    body,
    clients::Clients,
    csv_export,
    envelope::{self, ApiError},
    idempotency::{self, Idempotency, Recall},
    live_admission::LiveAdmission,
    openapi,
    params::{FILTER_PARAMS, Params},
    views,
};

type Query = HashMap<String, String>;

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(ApiError::into_response)
}

/// `GET /api/posts`: a page by `offset`, or by `cursor` (the `next_cursor` of the page before).
pub async fn list_posts(clients: Clients, query: Query) -> Response {
    respond(
        async {
            let params = Params::new(query, &[FILTER_PARAMS, &["limit", "offset", "cursor"]])?;
            let (filter, echo) = params.post_filter()?;
            let limit = params.integer("limit", 50, 1, 500)?;
            let cursor = params.cursor("cursor")?;
            if cursor.is_some() && params.text("offset")?.is_some() {
                return Err(ApiError::bad_request(
                    "INVALID_ARGUMENT",
                    "cursor and offset cannot be combined: page by one or the other",
                ));
            }
            let offset = params.integer("offset", 0, 0, 1_000_000)?;
            let page = clients
                .analytics
                .clone()
                .list_posts(ListPostsRequest {
                    filter: Some(filter),
                    limit,
                    offset,
                    cursor: cursor.clone().unwrap_or_default(),
                })
                .await?
                .into_inner();
            let returned = page.posts.len();
            let next_cursor = (!page.next_cursor.is_empty()).then_some(page.next_cursor);
            Ok(envelope::ok(
                Value::Array(page.posts.iter().map(views::post).collect()),
                json!({
                    "total": page.total,
                    "total_is_lower_bound": page.total_is_lower_bound,
                    "limit": limit,
                    "offset": cursor.is_none().then_some(offset),
                    "returned": returned,
                    "next_cursor": next_cursor,
                }),
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
                    since: since.map(pulse_domain::datetime_to_timestamp),
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

/// Longest window of the insights, in days (as the analytics service bounds it).
const MAX_INSIGHT_DAYS: i64 = 31;

/// The window and baseline of an insights query: `from`/`to` (the last hour by default) and
/// `baseline`, a duration ending where the window starts (by default the window's length).
fn insight_windows(params: &Params) -> Result<(TimeWindow, Option<TimeWindow>, Value), ApiError> {
    let (from, to) = params.range()?;
    let baseline = params.duration("baseline", MAX_INSIGHT_DAYS)?;
    let to_ts = to.unwrap_or_else(chrono::Utc::now);
    let from_ts = from.unwrap_or(to_ts - chrono::TimeDelta::hours(1));
    let echo = json!({
        "from": from_ts.to_rfc3339(),
        "to": to.map(|t| t.to_rfc3339()),
        "baseline_seconds": baseline.map(|b| b.num_seconds()),
    });
    let window = TimeWindow {
        from: Some(pulse_domain::datetime_to_timestamp(from_ts)),
        to: Some(pulse_domain::datetime_to_timestamp(to_ts)),
    };
    let baseline = baseline.map(|length| TimeWindow {
        from: Some(pulse_domain::datetime_to_timestamp(from_ts - length)),
        to: Some(pulse_domain::datetime_to_timestamp(from_ts)),
    });
    Ok((window, baseline, echo))
}

/// `GET /api/insights/drivers`: the terms and entities driving a sentiment in a window.
pub async fn drivers(clients: Clients, query: Query) -> Response {
    respond(
        async {
            let params = Params::new(query, &[&["from", "to", "baseline", "sentiment", "limit"]])?;
            let (window, baseline, mut echo) = insight_windows(&params)?;
            let sentiment = params
                .choice("sentiment", &["negative", "positive", "neutral", "all"])?
                .unwrap_or_else(|| "negative".to_owned());
            let limit = params.integer("limit", 10, 1, 50)?;
            echo["sentiment"] = json!(sentiment);
            let answer = clients
                .analytics
                .clone()
                .get_drivers(GetDriversRequest {
                    window: Some(window),
                    baseline,
                    sentiment,
                    limit,
                })
                .await?
                .into_inner();
            Ok(envelope::ok(
                views::drivers(&answer),
                json!({"returned": answer.drivers.len(), "limit": limit}),
                echo,
            ))
        }
        .await,
    )
}

/// `GET /api/insights/entities`: volume and sentiment per entity, against a baseline.
pub async fn entities(clients: Clients, query: Query) -> Response {
    respond(
        async {
            let params = Params::new(query, &[&["from", "to", "baseline", "limit"]])?;
            let (window, baseline, echo) = insight_windows(&params)?;
            let limit = params.integer("limit", 20, 1, 100)?;
            let answer = clients
                .analytics
                .clone()
                .get_entities(GetEntitiesRequest {
                    window: Some(window),
                    baseline,
                    limit,
                })
                .await?
                .into_inner();
            Ok(envelope::ok(
                views::entities(&answer),
                json!({"returned": answer.entities.len(), "limit": limit}),
                echo,
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

/// JSON 404 for any path under /api that no route matched; 405 for a known path with
/// another method.
pub async fn not_found(path: warp::path::FullPath) -> Response {
    if openapi::is_known_path(path.as_str()) {
        return ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "METHOD_NOT_ALLOWED",
            message: format!("{} does not accept this method", path.as_str()),
        }
        .into_response();
    }
    ApiError::not_found("no such endpoint").into_response()
}

/// `GET /api/openapi.json`.
pub async fn openapi_document() -> Response {
    warp::reply::json(&openapi::document()).into_response()
}

/// `GET /api/posts/export.csv`: at most `max_rows` rows (`EXPORT_MAX_ROWS`), fewer when the
/// request's `limit` says so.
pub async fn export_csv(
    clients: Clients,
    max_rows: u32,
    exports: Arc<Semaphore>,
    query: Query,
) -> Response {
    respond(
        async {
            let params = Params::new(query, &[FILTER_PARAMS, &["limit"]])?;
            let (filter, _) = params.post_filter()?;
            let rows = params.integer("limit", max_rows, 1, max_rows)?;
            let permit = exports.try_acquire_owned().map_err(|_| ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "EXPORT_BUSY",
                message: "as many exports as allowed are running; retry in a minute".into(),
            })?;
            csv_export::export(clients, filter, rows, permit).await
        }
        .await,
    )
}

/// Body of `POST /api/analyze`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeBody {
    pub text: String,
    #[serde(default)]
    pub tasks: Option<Vec<String>>,
}

fn task_name(task: i32) -> &'static str {
    match Task::try_from(task) {
        Ok(Task::Sentiment) => "sentiment",
        Ok(Task::Emotion) => "emotion",
        _ => "unspecified",
    }
}

fn task_result(r: &TaskResult) -> Value {
    let scores: serde_json::Map<String, Value> = r
        .scores
        .iter()
        .map(|s| (s.label.clone(), json!(s.score)))
        .collect();
    let timings = r.timings.unwrap_or_default();
    json!({
        "label": r.label,
        "score": r.score,
        "scores": scores,
        "model": r.model,
        "backend": match Backend::try_from(r.backend) {
            Ok(Backend::Local) => "local",
            Ok(Backend::Llm) => "llm",
            _ => "unspecified",
        },
        "timings": {
            "tokenization_us": timings.tokenization_us,
            "queue_us": timings.queue_us,
            "inference_us": timings.inference_us,
        },
    })
}

/// `POST /api/analyze`: ad-hoc text through the inference service.
pub async fn analyze(clients: Clients, bytes: Result<Bytes, ApiError>) -> Response {
    respond(
        async {
            let request: AnalyzeBody = body::json(&bytes?)?;
            let text = request.text.trim();
            if text.is_empty() {
                return Err(ApiError::bad_request(
                    "INVALID_PARAMETER",
                    "text must not be empty",
                ));
            }
            let max = pulse_domain::MAX_CONTENT_CHARS;
            if text.chars().count() > max {
                return Err(ApiError::bad_request(
                    "PARAMETER_TOO_LONG",
                    format!("text is longer than {max} characters"),
                ));
            }
            let mut tasks = Vec::new();
            for name in request.tasks.unwrap_or_default() {
                let task = match name.as_str() {
                    "sentiment" => Task::Sentiment,
                    "emotion" => Task::Emotion,
                    _ => {
                        return Err(ApiError::bad_request(
                            "INVALID_PARAMETER",
                            "tasks must each be \"sentiment\" or \"emotion\"",
                        ));
                    }
                };
                if !tasks.contains(&i32::from(task)) {
                    tasks.push(i32::from(task));
                }
            }
            let analysis = clients
                .inference
                .clone()
                .analyze(AnalyzeRequest {
                    text: text.to_owned(),
                    tasks: tasks.clone(),
                })
                .await?
                .into_inner()
                .analysis
                .unwrap_or_default();
            let mut data = serde_json::Map::new();
            for result in &analysis.results {
                data.insert(task_name(result.task).to_owned(), task_result(result));
            }
            data.insert("truncated".into(), json!(analysis.truncated));
            Ok(envelope::ok(
                Value::Object(data),
                json!({"text_chars": text.chars().count()}),
                json!({"tasks": tasks.iter().map(|t| task_name(*t)).collect::<Vec<_>>()}),
            ))
        }
        .await,
    )
}

/// Body of `POST /api/posts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    pub posts: Vec<PublishPost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishPost {
    #[serde(default)]
    pub post_id: Option<String>,
    pub source: String,
    pub author: String,
    pub content: String,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// Posts one `POST /api/posts` may carry.
pub const MAX_PUBLISH_POSTS: usize = 500;

/// Longest post id a publisher may choose: the stored id also holds its key's namespace.
pub const MAX_CLIENT_POST_ID_LEN: usize =
    pulse_domain::MAX_POST_ID_LEN - pulse_store::keys::ID_LEN - 1;

/// `POST /api/posts`: real posts into the processing stream, one result per post.
///
/// Each post id is stored as `<key id>:<post id>`, so one publisher cannot claim (and so
/// suppress) another's ids; the answer gives the stored ids. See [`idempotency`] for retries.
pub async fn publish(
    clients: Clients,
    caller: Result<Caller, ApiError>,
    idempotency: Idempotency,
    headers: HeaderMap,
    bytes: Result<Bytes, ApiError>,
) -> Response {
    respond(
        async {
            let caller = caller?;
            let namespace = caller.key_id().ok_or_else(|| {
                ApiError::bad_request("UNAUTHENTICATED", "publishing needs an API key")
            })?;
            let bytes = bytes?;
            let idempotency_key = idempotency::key(&headers)?;
            if let Some(key) = &idempotency_key
                && let Recall::Replay(answer) = idempotency.recall(namespace, key, &bytes).await?
            {
                let reply = warp::reply::json(&answer);
                return Ok(
                    warp::reply::with_header(reply, idempotency::REPLAYED, "true").into_response(),
                );
            }
            let request: PublishBody = body::json(&bytes)?;
            if request.posts.is_empty() || request.posts.len() > MAX_PUBLISH_POSTS {
                return Err(ApiError::bad_request(
                    "OUT_OF_RANGE",
                    format!("posts must hold 1 to {MAX_PUBLISH_POSTS} posts"),
                ));
            }
            let now = chrono::Utc::now();
            let mut posts = Vec::with_capacity(request.posts.len());
            for (i, p) in request.posts.into_iter().enumerate() {
                let created_at = match p.created_at.as_deref() {
                    None => now,
                    Some(raw) => chrono::DateTime::parse_from_rfc3339(raw)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|_| {
                            ApiError::bad_request(
                                "INVALID_DATE",
                                format!("posts[{i}].created_at must be an RFC 3339 time"),
                            )
                        })?,
                };
                let own_id = match (p.post_id, &idempotency_key) {
                    (Some(id), _) if id.len() > MAX_CLIENT_POST_ID_LEN => {
                        return Err(ApiError::bad_request(
                            "INVALID_ARGUMENT",
                            format!(
                                "posts[{i}].post_id is longer than {MAX_CLIENT_POST_ID_LEN} bytes"
                            ),
                        ));
                    }
                    (Some(id), _) => id,
                    (None, Some(key)) => idempotency::derived_post_id(namespace, key, i),
                    (None, None) => uuid::Uuid::now_v7().to_string(),
                };
                posts.push(Post {
                    post_id: format!("{namespace}:{own_id}"),
                    source: p.source,
                    author: p.author,
                    content: p.content,
                    created_at: Some(pulse_domain::datetime_to_timestamp(created_at)),
                });
            }
            let response = clients
                .ingester
                .clone()
                .publish(PublishRequest { posts })
                .await?
                .into_inner();
            let results: Vec<Value> = response
                .results
                .iter()
                .map(|r| {
                    json!({
                        "post_id": r.post_id,
                        "accepted": r.accepted,
                        "entry_id": (!r.entry_id.is_empty()).then(|| r.entry_id.clone()),
                        "error": (!r.error.is_empty()).then(|| r.error.clone()),
                    })
                })
                .collect();
            let rejected = results.len() - response.accepted_count as usize;
            let answer = envelope::body(
                Value::Array(results),
                json!({"accepted": response.accepted_count, "rejected": rejected}),
                json!({}),
            );
            if let Some(key) = &idempotency_key {
                idempotency.remember(namespace, key, &bytes, &answer).await;
            }
            Ok(warp::reply::json(&answer).into_response())
        }
        .await,
    )
}

/// `POST /api/ws-ticket`: a single-use ticket that opens the live feed from a browser.
pub async fn ws_ticket(caller: Result<Caller, ApiError>, admission: LiveAdmission) -> Response {
    respond(
        async {
            let caller = caller?;
            let (ticket, ttl) = admission.issue_ticket(&caller).await?;
            Ok(envelope::ok(
                json!({"ticket": ticket, "expires_in_seconds": ttl.as_secs()}),
                json!({}),
                json!({}),
            ))
        }
        .await,
    )
}

/// Wraps a reply so it is never cached by browsers or proxies (live data).
pub fn no_store(reply: impl Reply) -> impl Reply {
    warp::reply::with_header(reply, "cache-control", "no-store")
}
