//! A real analytics server for a test: its own database, key prefix and free port.

// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use pulse_settings::ConnectionUrl;
use tokio::{sync::oneshot, task::JoinHandle};

/// The configuration of a test server on `database_url`, with Redis keys under `prefix` and the
/// alert monitor off; the address is set by [`Served::start`].
pub fn config(database_url: &str, prefix: &str) -> pulse_analytics::Config {
    let mut config = pulse_analytics::Config::parse_from(["pulse-analytics"]);
    config.admin.addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.database.url = ConnectionUrl::new(database_url.to_owned());
    config.redis.url = ConnectionUrl::new(pulse_testkit::redis_url());
    config.redis.prefix = prefix.to_owned();
    config.alert_interval = Duration::ZERO;
    config
}

/// A server running until [`Served::stop`].
pub struct Served {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Served {
    /// Serves `config` on a free local port.
    pub async fn start(mut config: pulse_analytics::Config) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        config.addr = addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            pulse_analytics::serve(&config, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        Ok(Self { addr, stop, server })
    }

    /// A channel to the server.
    pub async fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        Ok(
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))?
                .connect()
                .await?,
        )
    }

    /// Shuts the server down and waits for it, failing with its error if it had one.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server.await?
    }
}
