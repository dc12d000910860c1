//! The warp application: routes, cross-cutting layers (request id, rate limit, CORS, gzip,
//! metrics), static files, and the live feed task.

use std::{collections::HashMap, convert::Infallible, future::Future, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use tokio::{net::TcpListener, sync::broadcast};
use warp::{Filter, Reply, http::HeaderMap, reply::Response};

use crate::{
    Config, body,
    clients::Clients,
    csv_export,
    envelope::ApiError,
    live::{self, LiveEvent},
    metrics::{GatewayMetrics, route_label},
    rate_limit::RateLimiter,
    request_id::{self, RequestId},
    routes, websocket,
};
use pulse_runtime::admin::Readiness;

/// The CORS policy of the API, from `CORS_ALLOWED_ORIGINS`.
fn cors(config: &Config) -> warp::cors::Builder {
    let builder = warp::cors()
        .allow_methods(["GET", "POST", "OPTIONS"])
        .allow_headers([
            "content-type",
            request_id::HEADER,
            "traceparent",
            "tracestate",
        ])
        .expose_headers([
            request_id::HEADER,
            "retry-after",
            "content-disposition",
            csv_export::TOTAL_COUNT,
            csv_export::ROW_CAP,
        ])
        .max_age(600);
    let origins: Vec<&str> = config
        .cors_allowed_origins
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    if origins.contains(&"*") {
        builder.allow_any_origin()
    } else {
        builder.allow_origins(origins)
    }
}

/// The answer to a rejection that escaped every route.
async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    let error = if rejection.find::<warp::cors::CorsForbidden>().is_some() {
        ApiError {
            status: warp::http::StatusCode::FORBIDDEN,
            code: "CORS_FORBIDDEN",
            message: "this origin, method or header is not allowed".into(),
        }
    } else {
        ApiError::not_found("not found")
    };
    Ok(error.into_response())
}

/// The whole HTTP application.
pub fn app(
    config: &Config,
    clients: Clients,
    limiter: RateLimiter,
    events: broadcast::Sender<Arc<LiveEvent>>,
    metrics: GatewayMetrics,
) -> impl Filter<Extract = (impl warp::Reply + use<>,), Error = Infallible> + Clone + use<> {
    let with_clients = warp::any().map(move || clients.clone());
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
        .and(json_body.clone())
        .then(routes::publish)
        .boxed();
    let export = api
        .and(warp::path("posts"))
        .and(warp::path("export.csv"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_clients.clone())
        .and(warp::any().map(move || export_max_rows))
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

    // Over the limit: answer 429 here; otherwise reject so the routes below are tried.
    let rate_limited = warp::path::full()
        .and(warp::addr::remote())
        .and(warp::header::headers_cloned())
        .and(warp::any().map(move || limiter.clone()))
        .and_then(
            |path: warp::path::FullPath,
             remote: Option<SocketAddr>,
             headers: HeaderMap,
             limiter: RateLimiter| async move {
                limiter
                    .check(path.as_str(), remote, &headers)
                    .await
                    .ok_or_else(warp::reject)
            },
        );

    let api_routes = rate_limited
        .or(health)
        .unify()
        .or(posts)
        .unify()
        .or(publish)
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
        .with(cors(config))
        .boxed();

    let connections = metrics.websocket_connections.clone();
    let ws = warp::path!("ws" / "sentiment")
        .and(websocket::upgrade())
        .map(move |upgrade: websocket::Upgrade| {
            let rx = events.subscribe();
            let connections = connections.clone();
            upgrade.on_upgrade(move |socket| live::client(socket, rx, connections))
        });
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
    let limiter = RateLimiter::new(
        pulse_stream::connection::connect_lazy(config.redis.url.expose())?,
        pulse_stream::RedisKeys::new(&config.redis.prefix),
        config.rate_limit_requests,
        config.rate_limit_window.as_secs(),
        config.trust_forwarded_for,
    );
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
    warp::serve(app(config, clients, limiter, events, metrics))
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
