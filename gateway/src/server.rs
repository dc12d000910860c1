//! The warp application: routes, static files, and the live feed task.

use std::{collections::HashMap, convert::Infallible, future::Future};

use tokio::{net::TcpListener, sync::broadcast};
use warp::Filter;

use crate::{
    Config,
    clients::Clients,
    live,
    metrics::{GatewayMetrics, route_label},
    routes,
};
use pulse_core::admin::Readiness;

/// The whole HTTP application.
pub fn app(
    config: &Config,
    clients: Clients,
    events: broadcast::Sender<String>,
    metrics: GatewayMetrics,
) -> impl Filter<Extract = (impl warp::Reply + use<>,), Error = Infallible> + Clone + use<> {
    let with_clients = warp::any().map(move || clients.clone());
    let query = warp::query::<HashMap<String, String>>()
        .or(warp::any().map(HashMap::new))
        .unify();
    let api = warp::path("api");

    let health = api
        .and(warp::path("health"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_clients.clone())
        .then(routes::health);
    let posts = api
        .and(warp::path("posts"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::list_posts);
    let distribution = api
        .and(warp::path!("sentiment" / "distribution"))
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::distribution);
    let aggregate = api
        .and(warp::path!("sentiment" / "aggregate"))
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::aggregate);
    let alerts = api
        .and(warp::path("alerts"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_clients.clone())
        .and(query)
        .then(routes::alerts);
    let api_not_found = api.and(warp::any()).then(routes::not_found);

    let connections = metrics.websocket_connections.clone();
    let ws = warp::path!("ws" / "sentiment")
        .and(warp::ws())
        .map(move |ws: warp::ws::Ws| {
            let rx = events.subscribe();
            let connections = connections.clone();
            ws.max_message_size(64 * 1024)
                .on_upgrade(move |socket| live::client(socket, rx, connections))
        });
    // Liveness and readiness on the public port too, for load balancers that probe it.
    let probes = warp::path!("healthz")
        .or(warp::path!("readyz"))
        .unify()
        .and(warp::get())
        .map(|| "ok");
    let observe = warp::log::custom(move |info: warp::log::Info<'_>| {
        let route = route_label(info.path());
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

    let api_routes = health
        .or(posts)
        .unify()
        .or(distribution)
        .unify()
        .or(aggregate)
        .unify()
        .or(alerts)
        .unify()
        .or(api_not_found)
        .unify()
        .map(routes::no_store);

    api_routes
        .or(ws)
        .or(probes)
        .or(dashboard)
        .recover(|_rejection: warp::Rejection| async {
            Ok::<_, Infallible>(crate::envelope::ApiError::not_found("not found").into_response())
        })
        .with(observe)
        .with(warp::trace::request())
}

/// Serves on `listener` until `shutdown`.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clients = Clients::new(config)?;
    let registry = prometheus::Registry::new();
    let metrics = GatewayMetrics::new(&registry)?;
    let readiness = Readiness::default();
    readiness.set(true);
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    pulse_core::admin::spawn(config.admin_addr, registry, readiness, async {
        let _ = admin_stopped.await;
    })
    .await?;
    let (events, _) = broadcast::channel(live::CLIENT_BUFFER);
    let follower = tokio::spawn(live::follow(
        Clients::watch_channel(config)?,
        events.clone(),
    ));
    tracing::info!(addr = %listener.local_addr()?, dashboard = %config.dashboard_dir.display(), "gateway listening");
    warp::serve(app(config, clients, events, metrics))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
    follower.abort();
    let _ = stop_admin.send(());
    Ok(())
}

/// Binds the configured address and serves until SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.addr).await?;
    serve(&config, listener, pulse_core::shutdown::signal()).await
}
