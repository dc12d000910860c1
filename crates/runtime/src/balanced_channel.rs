//! A gRPC channel that spreads its calls over every address of a service, so that adding
//! server pods adds capacity.
//!
//! gRPC sends every call of a channel over one HTTP/2 connection. A Kubernetes ClusterIP
//! Service balances *connections*: kube-proxy picks a pod when a connection opens, and every
//! call on it goes to that pod for as long as the connection lives. A client with one channel
//! therefore talks to one pod, and pods beyond the number of clients receive nothing. The
//! balancing has to happen where the calls are made: the client connects to every pod itself
//! and picks one per call. [`connect_lazy`] does that with tonic's
//! [`Channel::balance_channel`]: one lazily connected endpoint per address, and for each call
//! the less busy (fewer calls in flight) of two endpoints picked at random.
//!
//! How the addresses are found: the setting is one or more URLs, comma-separated
//! (`http://inference-pods:50051`, or `http://10.0.0.5:50051,http://10.0.0.6:50051`). Each URL's
//! host is resolved to all its addresses, one endpoint each, with the URL's scheme and port.
//! In Kubernetes the host is a headless Service (`clusterIP: None`), whose name resolves to the
//! addresses of its ready pods. A background task resolves again every `resolve_every` and
//! inserts and removes endpoints as the answer changes, so pods that come and go (rollouts, the
//! autoscaler) are followed within that interval; it ends when the last clone of the channel
//! is dropped.
//!
//! What it does where resolution cannot help:
//! - A single URL with an IP address as its host is a plain channel: there is nothing to
//!   balance, and nothing to re-resolve.
//! - Until a host resolves, its URL is the endpoint (the connector resolves it when it
//!   connects), so calls fail as a plain channel's would instead of waiting in an empty
//!   balancer; a name that does not resolve at start is a warning, retried at every interval.
//! - A failed or empty answer later keeps the addresses already known: a DNS hiccup must not
//!   empty the set.
//! - A name whose addresses are all loopback (`localhost`: 127.0.0.1 and ::1) is one machine:
//!   it stays one endpoint for its URL, since a server bound to 0.0.0.0 refuses ::1.
//! - An `https` URL stays one endpoint: its certificate names the host, not an address.
//! - An address that stops answering stays in the set until the next resolution drops it; the
//!   calls sent to it fail `UNAVAILABLE` meanwhile, as they would on a plain channel to it.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use tonic::transport::{Channel, Endpoint, Uri, channel::Change};

/// How long one resolution of a host may take before it counts as failed.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Room for the changes of one resolution pass; a pass waits when the balancer lags.
const CHANGES_CAPACITY: usize = 1024;

/// Errors in the URL list.
#[derive(Debug, thiserror::Error)]
pub enum BalancedChannelError {
    #[error("no URL given")]
    Empty,
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

/// How the endpoints connect and how often the hosts are resolved.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// Deadline of establishing one connection.
    pub connect_timeout: Duration,
    /// Deadline of every call, enforced by the channel; `None` leaves it to the caller.
    pub timeout: Option<Duration>,
    /// Interval between resolutions of the hosts.
    pub resolve_every: Duration,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: None,
            resolve_every: Duration::from_secs(30),
        }
    }
}

/// One URL of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    uri: Uri,
    host: String,
    port: u16,
    /// Set when the host is an IP address: the one address, never resolved.
    literal: Option<SocketAddr>,
    /// `https`: kept as one endpoint (see the module doc).
    tls: bool,
}

impl Upstream {
    /// Whether this URL is used as it is, never resolved.
    fn fixed(&self) -> bool {
        self.literal.is_some() || self.tls
    }
}

/// Parses a comma-separated list of `http://host:port` or `https://host:port` URLs (the port
/// defaults to the scheme's).
pub fn parse_urls(list: &str) -> Result<Vec<Upstream>, BalancedChannelError> {
    let upstreams = list
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(parse_url)
        .collect::<Result<Vec<_>, _>>()?;
    if upstreams.is_empty() {
        return Err(BalancedChannelError::Empty);
    }
    Ok(upstreams)
}

fn parse_url(url: &str) -> Result<Upstream, BalancedChannelError> {
    let invalid = |reason: &str| BalancedChannelError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(_) => return Err(invalid("the scheme must be http or https")),
        None => return Err(invalid("no scheme (http:// or https://)")),
    };
    let host = uri.host().ok_or_else(|| invalid("no host"))?.to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    // An IPv6 host keeps its brackets in a URI.
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port));
    Ok(Upstream {
        uri,
        host,
        port,
        literal,
        tls,
    })
}

/// One endpoint of the balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// One address, whichever URLs resolved to it.
    Address(SocketAddr),
    /// The URL at this index of the list, resolved by the connector.
    Url(usize),
}

/// Each endpoint, with the index of the URL it came from.
pub type EndpointSet = BTreeMap<Key, usize>;

/// The endpoints before any resolution: the literal addresses, and the other URLs as they are.
pub fn initial_set(upstreams: &[Upstream]) -> EndpointSet {
    upstreams
        .iter()
        .enumerate()
        .map(|(i, upstream)| match upstream.literal {
            Some(addr) => (Key::Address(addr), i),
            None => (Key::Url(i), i),
        })
        .collect()
}

/// The endpoints after a resolution pass. `answers[i]` is what resolving URL `i` gave (`None`
/// for a URL not resolved: a literal, `https`); a failure or empty answer keeps what
/// `previous` had for that URL.
pub fn next_set(
    upstreams: &[Upstream],
    answers: &[Option<Result<Vec<SocketAddr>, String>>],
    previous: &EndpointSet,
) -> EndpointSet {
    let mut next = EndpointSet::new();
    for (i, upstream) in upstreams.iter().enumerate() {
        let answer = answers.get(i).and_then(Option::as_ref);
        match (upstream.literal, answer) {
            (Some(addr), _) => {
                next.entry(Key::Address(addr)).or_insert(i);
            }
            (None, Some(Ok(addrs)))
                if !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()) =>
            {
                next.insert(Key::Url(i), i);
            }
            (None, Some(Ok(addrs))) if !addrs.is_empty() => {
                for addr in addrs {
                    next.entry(Key::Address(*addr)).or_insert(i);
                }
            }
            _ => {
                let kept: Vec<Key> = previous
                    .iter()
                    .filter(|(_, from)| **from == i)
                    .map(|(key, _)| *key)
                    .collect();
                if kept.is_empty() {
                    next.insert(Key::Url(i), i);
                }
                for key in kept {
                    next.entry(key).or_insert(i);
                }
            }
        }
    }
    next
}

/// What turns `current` into `next`: the endpoints to insert, then the keys to remove
/// (inserting first, so the balancer is never empty in between).
pub fn changes(current: &EndpointSet, next: &EndpointSet) -> (Vec<(Key, usize)>, Vec<Key>) {
    let inserted = next
        .iter()
        .filter(|(key, _)| !current.contains_key(key))
        .map(|(key, from)| (*key, *from))
        .collect();
    let removed = current
        .keys()
        .filter(|key| !next.contains_key(key))
        .copied()
        .collect();
    (inserted, removed)
}

fn endpoint(
    key: Key,
    upstream: &Upstream,
    options: &ChannelOptions,
) -> Result<Endpoint, BalancedChannelError> {
    let endpoint = match key {
        Key::Url(_) => Endpoint::from(upstream.uri.clone()),
        Key::Address(addr) => {
            let scheme = if upstream.tls { "https" } else { "http" };
            let uri: Uri =
                format!("{scheme}://{addr}")
                    .parse()
                    .map_err(
                        |e: http::uri::InvalidUri| BalancedChannelError::InvalidUrl {
                            url: addr.to_string(),
                            reason: e.to_string(),
                        },
                    )?;
            // Requests still name the service (`:authority`), not the pod's address.
            Endpoint::from(uri).origin(upstream.uri.clone())
        }
    };
    let endpoint = endpoint
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true);
    Ok(match options.timeout {
        Some(timeout) => endpoint.timeout(timeout),
        None => endpoint,
    })
}

/// A channel over every address of `urls` (see the module doc); connects lazily, so it is
/// built while the servers are still starting. Must be called within a Tokio runtime.
pub fn connect_lazy(urls: &str, options: ChannelOptions) -> Result<Channel, BalancedChannelError> {
    let upstreams = parse_urls(urls)?;
    if let [single] = upstreams.as_slice()
        && single.literal.is_some()
    {
        return Ok(endpoint(Key::Url(0), single, &options)?.connect_lazy());
    }
    let (channel, sender) = Channel::balance_channel::<Key>(CHANGES_CAPACITY);
    let current = initial_set(&upstreams);
    for (&key, &from) in &current {
        let endpoint = endpoint(key, &upstreams[from], &options)?;
        // The channel is new and its capacity exceeds any URL list typed by hand.
        if sender.try_send(Change::Insert(key, endpoint)).is_err() {
            return Err(BalancedChannelError::InvalidUrl {
                url: urls.to_owned(),
                reason: format!("more than {CHANGES_CAPACITY} URLs"),
            });
        }
    }
    if upstreams.iter().any(|u| !u.fixed()) {
        tokio::spawn(follow(upstreams, options, current, sender));
    }
    Ok(channel)
}

/// Resolves every host now and then every `resolve_every`, applying the changes, until the
/// channel is dropped.
async fn follow(
    upstreams: Vec<Upstream>,
    options: ChannelOptions,
    mut current: EndpointSet,
    sender: tokio::sync::mpsc::Sender<Change<Key, Endpoint>>,
) {
    let mut ticker = tokio::time::interval(options.resolve_every.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if sender.is_closed() {
            return;
        }
        let mut answers = Vec::with_capacity(upstreams.len());
        for upstream in &upstreams {
            if upstream.fixed() {
                answers.push(None);
                continue;
            }
            let answer = resolve(upstream).await;
            match &answer {
                Err(error) => tracing::warn!(
                    url = %upstream.uri, %error,
                    "cannot resolve; keeping the endpoints known"
                ),
                Ok(addrs) if addrs.is_empty() => tracing::warn!(
                    url = %upstream.uri,
                    "resolves to no address; keeping the endpoints known"
                ),
                Ok(_) => {}
            }
            answers.push(Some(answer));
        }
        let next = next_set(&upstreams, &answers, &current);
        let (inserted, removed) = changes(&current, &next);
        if inserted.is_empty() && removed.is_empty() {
            continue;
        }
        for (key, from) in &inserted {
            let endpoint = match endpoint(*key, &upstreams[*from], &options) {
                Ok(endpoint) => endpoint,
                Err(error) => {
                    tracing::warn!(%error, "cannot make an endpoint");
                    continue;
                }
            };
            if sender.send(Change::Insert(*key, endpoint)).await.is_err() {
                return;
            }
        }
        for key in &removed {
            if sender.send(Change::Remove(*key)).await.is_err() {
                return;
            }
        }
        tracing::info!(
            endpoints = %describe(&next, &upstreams),
            added = inserted.len(),
            removed = removed.len(),
            "balanced channel endpoints changed"
        );
        current = next;
    }
}

async fn resolve(upstream: &Upstream) -> Result<Vec<SocketAddr>, String> {
    let lookup = tokio::net::lookup_host((upstream.host.as_str(), upstream.port));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => {
            let mut addrs: Vec<SocketAddr> = addrs.collect();
            addrs.sort();
            addrs.dedup();
            Ok(addrs)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {RESOLVE_TIMEOUT:?}")),
    }
}

/// The endpoints, for a log line: addresses, and unresolved URLs as written.
fn describe(set: &EndpointSet, upstreams: &[Upstream]) -> String {
    set.iter()
        .map(|(key, from)| match key {
            Key::Address(addr) => addr.to_string(),
            Key::Url(_) => upstreams[*from].uri.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    #[test]
    fn parses_a_list_with_blanks_default_ports_and_ipv6() {
        let upstreams =
            parse_urls(" http://inference-pods:50051 , http://[::1]:7,,https://x").expect("valid");
        assert_eq!(upstreams.len(), 3);
        assert_eq!(upstreams[0].host, "inference-pods");
        assert_eq!(upstreams[0].port, 50051);
        assert_eq!(upstreams[0].literal, None);
        assert_eq!(upstreams[1].literal, Some(addr("[::1]:7")));
        assert!(upstreams[2].tls);
        assert_eq!(upstreams[2].port, 443);
        assert!(upstreams[2].fixed());
    }

    #[test]
    fn refuses_empty_lists_and_bad_urls() {
        assert!(matches!(
            parse_urls(" , "),
            Err(BalancedChannelError::Empty)
        ));
        for bad in ["inference:50051", "ftp://x:1", "http://", "http://a b:1"] {
            assert!(
                matches!(
                    parse_urls(bad),
                    Err(BalancedChannelError::InvalidUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn starts_with_literals_and_unresolved_urls() {
        let upstreams = parse_urls("http://10.0.0.1:1,http://svc:1").expect("valid");
        let set = initial_set(&upstreams);
        assert_eq!(
            set,
            EndpointSet::from([(Key::Address(addr("10.0.0.1:1")), 0), (Key::Url(1), 1)])
        );
    }

    #[test]
    fn follows_pods_that_come_and_go() {
        let upstreams = parse_urls("http://inference-pods:50051").expect("valid");
        let start = initial_set(&upstreams);
        let two = next_set(
            &upstreams,
            &[Some(Ok(vec![
                addr("10.1.0.1:50051"),
                addr("10.1.0.2:50051"),
            ]))],
            &start,
        );
        let (inserted, removed) = changes(&start, &two);
        assert_eq!(
            inserted,
            vec![
                (Key::Address(addr("10.1.0.1:50051")), 0),
                (Key::Address(addr("10.1.0.2:50051")), 0)
            ]
        );
        assert_eq!(removed, vec![Key::Url(0)]);

        let rolled = next_set(
            &upstreams,
            &[Some(Ok(vec![
                addr("10.1.0.2:50051"),
                addr("10.1.0.3:50051"),
            ]))],
            &two,
        );
        let (inserted, removed) = changes(&two, &rolled);
        assert_eq!(inserted, vec![(Key::Address(addr("10.1.0.3:50051")), 0)]);
        assert_eq!(removed, vec![Key::Address(addr("10.1.0.1:50051"))]);
        assert_eq!(changes(&rolled, &rolled), (vec![], vec![]));
    }

    #[test]
    fn a_failed_or_empty_answer_keeps_what_is_known() {
        let upstreams = parse_urls("http://a:1,http://b:1").expect("valid");
        let known = next_set(
            &upstreams,
            &[
                Some(Ok(vec![addr("10.0.0.1:1")])),
                Some(Err("no such host".into())),
            ],
            &initial_set(&upstreams),
        );
        assert_eq!(
            known,
            EndpointSet::from([(Key::Address(addr("10.0.0.1:1")), 0), (Key::Url(1), 1)])
        );
        let after = next_set(
            &upstreams,
            &[Some(Err("timeout".into())), Some(Ok(vec![]))],
            &known,
        );
        assert_eq!(after, known);
    }

    #[test]
    fn loopback_names_stay_one_endpoint_and_shared_addresses_one_each() {
        let upstreams = parse_urls("http://localhost:1,http://a:1,http://b:1").expect("valid");
        let set = next_set(
            &upstreams,
            &[
                Some(Ok(vec![addr("127.0.0.1:1"), addr("[::1]:1")])),
                Some(Ok(vec![addr("10.0.0.1:1")])),
                Some(Ok(vec![addr("10.0.0.1:1"), addr("10.0.0.2:1")])),
            ],
            &initial_set(&upstreams),
        );
        assert_eq!(
            set,
            EndpointSet::from([
                (Key::Url(0), 0),
                (Key::Address(addr("10.0.0.1:1")), 1),
                (Key::Address(addr("10.0.0.2:1")), 2),
            ])
        );
    }
}
