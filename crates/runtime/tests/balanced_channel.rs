//! Two real gRPC servers behind one balanced channel: both must receive calls.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use pulse_runtime::balanced_channel::{ChannelOptions, connect_lazy};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Starts a health server on a free port; returns its address and its count of calls.
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(tower::util::MapRequestLayer::new(
                move |request: http::Request<tonic::body::Body>| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    request
                },
            ))
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .expect("serve");
    });
    (addr, calls)
}

#[tokio::test]
async fn calls_reach_every_server() {
    let (first, first_calls) = counting_server().await;
    let (second, second_calls) = counting_server().await;
    let channel = connect_lazy(
        &format!("http://{first},http://{second}"),
        ChannelOptions {
            timeout: Some(Duration::from_secs(5)),
            ..ChannelOptions::default()
        },
    )
    .expect("channel");
    let client = HealthClient::new(channel);
    let calls = (0..50).map(|_| {
        let mut client = client.clone();
        async move { client.check(HealthCheckRequest::default()).await }
    });
    for answer in futures::future::join_all(calls).await {
        answer.expect("health answer");
    }
    let (first, second) = (
        first_calls.load(Ordering::Relaxed),
        second_calls.load(Ordering::Relaxed),
    );
    assert_eq!(first + second, 50, "every call answered once");
    assert!(
        first > 0 && second > 0,
        "both servers get calls: {first} and {second}"
    );
}

#[tokio::test]
async fn a_name_is_resolved_and_followed() {
    let (server, calls) = counting_server().await;
    let channel = connect_lazy(
        &format!("http://localhost:{}", server.port()),
        ChannelOptions {
            resolve_every: Duration::from_millis(200),
            ..ChannelOptions::default()
        },
    )
    .expect("channel");
    let mut client = HealthClient::new(channel);
    for _ in 0..3 {
        client
            .check(HealthCheckRequest::default())
            .await
            .expect("health answer");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn a_host_that_does_not_resolve_fails_calls_without_hanging() {
    let channel = connect_lazy(
        "http://pulse-no-such-host.invalid:50051",
        ChannelOptions::default(),
    )
    .expect("a name that does not resolve is not an error at start");
    let mut client = HealthClient::new(channel);
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        client.check(HealthCheckRequest::default()),
    )
    .await
    .expect("the call fails instead of waiting");
    assert!(answer.is_err());
}
