//! The address a request comes from, as far as it can be trusted.
//!
//! Behind `TRUSTED_PROXIES` proxies (an ingress, a load balancer), the socket peer is the
//! nearest proxy and each proxy has appended the address it saw to `X-Forwarded-For`. Only the
//! entries those proxies wrote can be believed: the client is the rightmost entry that no
//! trusted proxy accounts for, the `TRUSTED_PROXIES`-th from the right when the peer is counted
//! as the first. Anything further left was written by the client and is ignored, so a forged
//! header cannot pick another client's rate limit. A request that passed fewer proxies than
//! configured is keyed by the leftmost hop there is.
//!
//! IPv6 clients are grouped by /64: one subscriber usually holds a whole /64 and can use any
//! address in it, so limiting single IPv6 addresses would limit nobody.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use warp::http::HeaderMap;

/// The client's address.
pub fn client_ip(
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted_proxies: usize,
) -> Option<IpAddr> {
    let peer = remote.map(|a| a.ip());
    if trusted_proxies == 0 {
        return peer;
    }
    // Every X-Forwarded-For header, in order, as one list (RFC 7230 allows repeating it).
    let mut forwarded = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return peer;
        };
        for hop in value.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => forwarded.push(ip),
                // A hop a trusted proxy would never write: believe only the peer.
                Err(_) => return peer,
            }
        }
    }
    // Hops from the nearest: the peer, then X-Forwarded-For from its right end.
    let hops: Vec<IpAddr> = peer
        .into_iter()
        .chain(forwarded.into_iter().rev())
        .collect();
    hops.get(trusted_proxies).or_else(|| hops.last()).copied()
}

/// The block a rate limit counts: the address itself for IPv4, its /64 for IPv6 (an IPv4
/// address mapped into IPv6 counts as IPv4).
pub fn client_block(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let network = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{network}/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().expect("header"));
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let peer = Some(SocketAddr::from(([10, 0, 0, 1], 5000)));
        let forged = headers(&["203.0.113.9"]);
        assert_eq!(client_ip(peer, &forged, 0), Some(ip("10.0.0.1")));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let peer = Some(SocketAddr::from(([10, 0, 0, 1], 5000)));
        // The client forged the first entry; the ingress (the peer) appended the real one.
        let one = headers(&["198.51.100.1, 203.0.113.9"]);
        assert_eq!(client_ip(peer, &one, 1), Some(ip("203.0.113.9")));
        // Two proxies: a CDN appended the client, the ingress appended the CDN.
        let two = headers(&["198.51.100.1", "203.0.113.9, 192.0.2.50"]);
        assert_eq!(client_ip(peer, &two, 2), Some(ip("203.0.113.9")));
        // Fewer hops than proxies: the leftmost there is.
        assert_eq!(
            client_ip(peer, &headers(&["203.0.113.9"]), 3),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(client_ip(peer, &HeaderMap::new(), 1), Some(ip("10.0.0.1")));
        // A hop that is not an address: only the peer is believed.
        assert_eq!(
            client_ip(peer, &headers(&["garbage, 203.0.113.9"]), 1),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_slash_64() {
        assert_eq!(client_block(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(client_block(ip("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(
            client_block(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client_block(ip("2001:db8:1:2::1")),
            client_block(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_block(ip("2001:db8:1:2::1")),
            client_block(ip("2001:db8:1:3::1"))
        );
    }
}
