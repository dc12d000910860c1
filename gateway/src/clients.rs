//! gRPC clients of the internal services, created once and shared by every request.

use std::time::Duration;

use pulse_proto::v1::{
    analytics_service_client::AnalyticsServiceClient,
    inference_service_client::InferenceServiceClient, ingest_service_client::IngestServiceClient,
};
use pulse_runtime::{
    balanced_channel::{self, ChannelOptions},
    propagation::TracedChannel,
};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

use crate::Config;

#[derive(Clone)]
pub struct Clients {
    pub analytics: AnalyticsServiceClient<TracedChannel>,
    pub inference: InferenceServiceClient<TracedChannel>,
    pub ingester: IngestServiceClient<TracedChannel>,
    pub analytics_health: HealthClient<Channel>,
    pub inference_health: HealthClient<Channel>,
    pub ingester_health: HealthClient<Channel>,
    pub timeout: Duration,
}

fn channel(url: &str, timeout: Duration) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

impl Clients {
    /// Lazy channels: the gateway starts while its upstreams are still coming up.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let timeout = config.upstream_timeout;
        let analytics = channel(&config.analytics_url, timeout)?;
        // Inference is the service scaled out: its calls are spread over every pod.
        let inference = balanced_channel::connect_lazy(
            &config.inference.url,
            ChannelOptions {
                connect_timeout: Duration::from_secs(2),
                timeout: Some(timeout),
                resolve_every: config.inference.resolve,
            },
        )?;
        let ingester = channel(&config.ingester_url, timeout)?;
        Ok(Self {
            analytics: AnalyticsServiceClient::new(TracedChannel::new(analytics.clone())),
            inference: InferenceServiceClient::new(TracedChannel::new(inference.clone())),
            ingester: IngestServiceClient::new(TracedChannel::new(ingester.clone())),
            analytics_health: HealthClient::new(analytics),
            inference_health: HealthClient::new(inference),
            ingester_health: HealthClient::new(ingester),
            timeout,
        })
    }

    /// A channel for the long-lived event subscription, without the per-call deadline.
    pub fn watch_channel(config: &Config) -> anyhow::Result<AnalyticsServiceClient<TracedChannel>> {
        let channel = Endpoint::from_shared(config.analytics_url.clone())?
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .connect_lazy();
        Ok(AnalyticsServiceClient::new(TracedChannel::new(channel)))
    }
}
