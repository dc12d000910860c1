//! The warp application: routes, cross-cutting layers (request id, the gate of keys and rate
//! limits, CORS, gzip, metrics), static files, and the live feed task.

use std::{collections::HashMap, convert::Infallible, future::Future, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use pulse_store::keys::Scope;
use tokio::{
    net::TcpListener,
    sync::{Semaphore, broadcast},
};
use warp::{
    Filter, Reply,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header::WWW_AUTHENTICATE},
    reply::Response,
};

use pulse_runtime::admin::Readiness;

use crate::{
    Config,
    auth::{self, Authenticator, Caller},
    body,
    client_address::{client_block, client_ip},
    clients::Clients,
    csv_export,
    envelope::ApiError,
    idempotency::{self, Idempotency},
    live::{self, LiveEvent},
    live_admission::{self, LiveAdmission},
    metrics::{GatewayMetrics, route_label},
    origin::{self, OriginPolicy},
    rate_limit::{Limits, RateLimiter},
    request_id::{self, RequestId},
    routes, websocket,
};

/// What the gateway's layers share: who may call, how often, and what they hold.
#[derive(Clone)]
pub struct Guards {
    pub auth: Authenticator,
    pub limiter: RateLimiter,
    pub admission: LiveAdmission,
    pub idempotency: Idempotency,
    pub exports: Arc<Semaphore>,
}

impl Guards {
    /// Everything built from the configuration; connections are lazy, so the gateway starts
    /// while PostgreSQL or Redis is still coming up.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        // Two connections: key lookups are rare (cached), and must never queue behind much.
        let pool = pulse_store::connect_pool(config.database.url.expose(), 2)?;
        let auth = Authenticator::new(pool, config.auth_cache, config.public_reads);
        let redis = pulse_stream::connection::connect_lazy(config.redis.url.expose())?;
        let keys = pulse_stream::RedisKeys::new(&config.redis.prefix);
        let limiter = RateLimiter::new(
            redis.clone(),
            keys.clone(),
            Limits {
                per_address: config.rate_limit_requests,
                per_key: config.rate_limit_key_requests,
                window: config.rate_limit_window,
            },
        );
        let admission = LiveAdmission::new(
            auth.clone(),
            OriginPolicy::new(&config.cors_allowed_origins),
            redis.clone(),
            keys.clone(),
            config.ws_ticket,
            live_admission::Caps {
                total: config.ws_max_connections,
                per_client: config.ws_max_per_client,
            },
        );
        let idempotency = Idempotency::new(redis, keys, config.idempotency);
        let exports = Arc::new(Semaphore::new(config.export_max_concurrent as usize));
        Ok(Self {
            auth,
            limiter,
            admission,
            idempotency,
            exports,
        })
    }
}

/// 401 answers say how to authenticate (RFC 6750).
fn refusal(error: ApiError) -> Response {
    let unauthorized = error.status == StatusCode::UNAUTHORIZED;
    let mut response = error.into_response();
    if unauthorized {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The checks in front of every /api route, in order: the client address's rate limit (before
/// anything costs a lookup), the key and its scope, the key's rate limit. `Some(answer)` stops
/// the request there.
async fn gate(
    guards: &Guards,
    trusted_proxies: usize,
    method: &Method,
    path: &str,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<Response> {
    if !path.starts_with("/api/") || method == Method::OPTIONS {
        return None;
    }
    if let Some(ip) = client_ip(remote, headers, trusted_proxies)
        && let Some(refused) = guards.limiter.check_address(&client_block(ip)).await
    {
        return Some(refused);
    }
    let scope = auth::required_scope(method, path)?;
    let caller = match guards.auth.admit(headers, scope).await {
        Ok(caller) => caller,
        Err(e) => return Some(refusal(e)),
    };
    match caller {
        Caller::Key(key) => guards.limiter.check_key(&key.id).await,
        Caller::Anonymous => None,
    }
}

/// The CORS policy for cross-origin requests, from `CORS_ALLOWED_ORIGINS` (none by default:
/// every cross-origin request is refused with 403 CORS_FORBIDDEN).
fn cors(policy: &OriginPolicy) -> warp::cors::Builder {
    let builder = warp::cors()
        .allow_methods(["GET", "POST", "OPTIONS"])
        .allow_headers([
            "content-type",
            "authorization",
            idempotency::HEADER,
            request_id::HEADER,
            "traceparent",
            "tracestate",
        ])
        .expose_headers([
            request_id::HEADER,
            "retry-after",
            "content-disposition",
            idempotency::REPLAYED,
            csv_export::TOTAL_COUNT,
            csv_export::TOTAL_COUNT_IS_LOWER_BOUND,
            csv_export::ROW_CAP,
        ])
        .max_age(600);
    if policy.allows_any() {
        builder.allow_any_origin()
    } else {
        builder.allow_origins(policy.cross_origins())
    }
}

/// The answer to a rejection that escaped every route.
async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    let error = if rejection.find::<warp::cors::CorsForbidden>().is_some() {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "CORS_FORBIDDEN",
            message: "this origin, method or header is not allowed".into(),
        }
    } else {
        ApiError::not_found("not found")
    };
    Ok(error.into_response())
}

/// The query string as a map (empty when there is none).
fn query_map() -> impl Filter<Extract = (HashMap<String, String>,), Error = Infallible> + Clone {
    warp::query::<HashMap<String, String>>()
        .or(warp::any().map(HashMap::new))
        .unify()
}

/// Lets only /api paths through, without consuming anything.
fn under_api() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::path::peek()
        .and_then(|rest: warp::path::Peek| async move {
            if rest.as_str() == "api" || rest.as_str().starts_with("api/") {
                Ok(())
            } else {
                Err(warp::reject())
            }
        })
        .untuple_one()
}

/// Lets only cross-origin requests through ([`origin::is_cross_origin`]).
fn cross_origin() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned()
        .and_then(|headers: HeaderMap| async move {
            if origin::is_cross_origin(&headers) {
                Ok(())
            } else {
                Err(warp::reject())
            }
        })
        .untuple_one()
}

/// The whole HTTP application.
pub fn app(
    config: &Config,
    clients: Clients,
    guards: Guards,
    events: broadcast::Sender<Arc<LiveEvent>>,
    metrics: GatewayMetrics,
) -> impl Filter<Extract = (impl warp::Reply + use<>,), Error = Infallible> + Clone + use<> {
    let with_clients = warp::any().map(move || clients.clone());
    let with_guards = {
        let guards = guards.clone();
        warp::any().map(move || guards.clone())
    };
    // The caller as the gate admitted it, for the routes that act on its behalf.
    let caller_with = |scope: Scope| {
        warp::header::headers_cloned()
            .and(with_guards.clone())
            .then(move |headers: HeaderMap, guards: Guards| async move {
                guards.auth.admit(&headers, scope).await
            })
    };
    let trusted_proxies = config.trusted_proxies;
    let query = warp::query::<HashMap<String, String>>()
        .or(warp::any().map(HashMap::new))
        .unify();
    let json_body = body::limited(config.max_body_bytes);
    let export_max_rows = config.export_max_rows;
    let api = warp::path("api");

    let health = api
        .and(warp::path("health"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_clients.clone())
        .then(routes::health)
        .boxed();
    let posts = api
        .and(warp::path("posts"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::list_posts)
        .boxed();
    let publish = api
        .and(warp::path("posts"))
        .and(warp::path::end())
        .and(warp::post())
        .and(with_clients.clone())
        .and(caller_with(Scope::Write))
        .and(with_guards.clone().map(|g: Guards| g.idempotency))
        .and(warp::header::headers_cloned())
        .and(json_body.clone())
        .then(routes::publish)
        .boxed();
    let ws_ticket = api
        .and(warp::path("ws-ticket"))
        .and(warp::path::end())
        .and(warp::post())
        .and(caller_with(Scope::Read))
        .and(with_guards.clone().map(|g: Guards| g.admission))
        .then(routes::ws_ticket)
        .boxed();
    let export = api
        .and(warp::path("posts"))
        .and(warp::path("export.csv"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_clients.clone())
        .and(warp::any().map(move || export_max_rows))
        .and(with_guards.clone().map(|g: Guards| g.exports))
        .and(query)
        .then(routes::export_csv)
        .boxed();
    let distribution = api
        .and(warp::path!("sentiment" / "distribution"))
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::distribution)
        .boxed();
    let aggregate = api
        .and(warp::path!("sentiment" / "aggregate"))
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::aggregate)
        .boxed();
    let alerts = api
        .and(warp::path("alerts"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::alerts)
        .boxed();
    let drivers = api
        .and(warp::path!("insights" / "drivers"))
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::drivers)
        .boxed();
    let entities = api
        .and(warp::path!("insights" / "entities"))
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::entities)
        .boxed();
    let analyze = api
        .and(warp::path("analyze"))
        .and(warp::path::end())
        .and(warp::post())
        .and(with_clients.clone())
        .and(json_body)
        .then(|clients: Clients, bytes: Result<Bytes, ApiError>| routes::analyze(clients, bytes))
        .boxed();
    let openapi = api
        .and(warp::path("openapi.json"))
        .and(warp::path::end())
        .and(warp::get())
        .then(routes::openapi_document)
        .boxed();
    let api_not_found = api.and(warp::path::full()).then(routes::not_found).boxed();

    // Refused here (401, 403, 429), or rejected so the routes below are tried.
    let gated = warp::method()
        .and(warp::path::full())
        .and(warp::addr::remote())
        .and(warp::header::headers_cloned())
        .and(with_guards.clone())
        .and_then(
            move |method: Method,
                  path: warp::path::FullPath,
                  remote: Option<SocketAddr>,
                  headers: HeaderMap,
                  guards: Guards| async move {
                gate(
                    &guards,
                    trusted_proxies,
                    &method,
                    path.as_str(),
                    remote,
                    &headers,
                )
                .await
                .ok_or_else(warp::reject)
            },
        );

    let api_routes = gated
        .or(health)
        .unify()
        .or(posts)
        .unify()
        .or(publish)
        .unify()
        .or(ws_ticket)
        .unify()
        .or(export)
        .unify()
        .or(distribution)
        .unify()
        .or(aggregate)
        .unify()
        .or(alerts)
        .unify()
        .or(drivers)
        .unify()
        .or(entities)
        .unify()
        .or(analyze)
        .unify()
        .or(openapi)
        .unify()
        .or(api_not_found)
        .unify()
        .map(|reply: Response| routes::no_store(reply).into_response())
        .boxed();
    // Compressed only for clients that say they accept it.
    let accepts_gzip = warp::header::optional::<String>("accept-encoding")
        .and_then(|accept: Option<String>| async move {
            if accept.is_some_and(|a| a.split(',').any(|e| e.trim().starts_with("gzip"))) {
                Ok(())
            } else {
                Err(warp::reject())
            }
        })
        .untuple_one();
    let api_routes = accepts_gzip
        .and(api_routes.clone())
        .with(warp::compression::gzip())
        .map(Reply::into_response)
        .or(api_routes)
        .unify()
        .boxed();
    // Same-origin requests and programs need no CORS; cross-origin ones go through it, and a
    // refusal is answered here so no later route (the dashboard's files) can answer instead.
    let origins = OriginPolicy::new(&config.cors_allowed_origins);
    let api_routes = under_api()
        .and(
            cross_origin()
                .and(
                    api_routes
                        .clone()
                        .with(cors(&origins))
                        .map(Reply::into_response)
                        .recover(recover)
                        .unify(),
                )
                .or(api_routes)
                .unify()
                .recover(recover)
                .unify(),
        )
        .boxed();

    let connections = metrics.websocket_connections.clone();
    let timeouts = live::Timeouts {
        idle: config.ws_idle_timeout,
        send: config.ws_send_timeout,
    };
    let ws = warp::path!("ws" / "sentiment")
        .and(websocket::upgrade())
        .and(warp::addr::remote())
        .and(warp::header::headers_cloned())
        .and(query_map())
        .and(with_guards.clone())
        .then(
            move |upgrade: websocket::Upgrade,
                  remote: Option<SocketAddr>,
                  headers: HeaderMap,
                  query: HashMap<String, String>,
                  guards: Guards| {
                let rx = events.subscribe();
                let connections = connections.clone();
                async move {
                    let client = client_ip(remote, &headers, trusted_proxies)
                        .map_or_else(|| "unknown".to_owned(), client_block);
                    if let Some(refused) = guards.limiter.check_address(&client).await {
                        return refused;
                    }
                    let ticket = query.get("ticket").map(String::as_str);
                    match guards.admission.admit(&client, &headers, ticket).await {
                        Ok(slot) => upgrade
                            .on_upgrade(move |socket| {
                                live::client(socket, rx, connections, timeouts, slot)
                            })
                            .into_response(),
                        Err(e) => refusal(e),
                    }
                }
            },
        );
    // Liveness and readiness on the public port too, for load balancers that probe it.
    let probes = warp::path!("healthz")
        .or(warp::path!("readyz"))
        .unify()
        .and(warp::get())
        .map(|| "ok");
    let observe = warp::log::custom(move |info: warp::log::Info<'_>| {
        let route = route_label(info.path());
        request_id::record_status(info.status());
        tracing::debug!(
            method = %info.method(),
            route,
            status = info.status().as_u16(),
            elapsed_ms = info.elapsed().as_secs_f64() * 1e3,
            "request served"
        );
        metrics
            .requests
            .with_label_values(&[route, info.status().as_str()])
            .inc();
        metrics
            .seconds
            .with_label_values(&[route])
            .observe(info.elapsed().as_secs_f64());
    });

    let index = config.dashboard_dir.join("index.html");
    let dashboard =
        warp::get().and(warp::fs::dir(config.dashboard_dir.clone()).or(warp::fs::file(index)));

    let routes = api_routes.or(ws).or(probes).or(dashboard).recover(recover);
    request_id::filter()
        .and(routes)
        .map(|id: RequestId, reply| warp::reply::with_header(reply, request_id::HEADER, id.0))
        .with(observe)
        .with(warp::trace(request_id::span))
}

/// Serves on `listener` until `shutdown`.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clients = Clients::new(config)?;
    let guards = Guards::new(config)?;
    let registry = prometheus::Registry::new();
    let metrics = GatewayMetrics::new(&registry)?;
    let readiness = Readiness::default();
    readiness.set(true);
    let _admin = pulse_runtime::admin::start(config.admin_addr(), registry, readiness).await?;
    let (events, _) = broadcast::channel(live::CLIENT_BUFFER);
    let follower = tokio::spawn(live::follow(
        Clients::watch_channel(config)?,
        events.clone(),
    ));
    tracing::info!(addr = %listener.local_addr()?, dashboard = %config.dashboard_dir.display(), "gateway listening");
    warp::serve(app(config, clients, guards, events, metrics))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
    follower.abort();
    Ok(())
}

/// Binds the configured address and serves until SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.addr).await?;
    serve(&config, listener, pulse_runtime::shutdown::signal()).await
}
