//! Which web pages may use the API from a browser.
//!
//! By default only the gateway's own pages (the dashboard) may: a request whose `Origin` names
//! the host it was sent to is same-origin and needs no CORS. Other origins must be listed in
//! `CORS_ALLOWED_ORIGINS` (`*` allows any, which only suits a deployment whose every endpoint
//! is public). Requests without `Origin` come from programs, not pages, and are not a CORS
//! matter. The same policy decides which pages may open the WebSocket, which browsers do not
//! guard with CORS at all.

use warp::http::{HeaderMap, header::HOST, header::ORIGIN};

#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Vec<String>,
    any: bool,
}

impl OriginPolicy {
    /// From a comma-separated list of origins (`https://wall.example.com`); `*` for any.
    pub fn new(list: &str) -> Self {
        let allowed: Vec<String> = list
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Self {
            any: allowed.iter().any(|o| o == "*"),
            allowed,
        }
    }

    /// The configured cross-origin list, for the CORS layer (empty: none).
    pub fn cross_origins(&self) -> impl Iterator<Item = &str> {
        self.allowed
            .iter()
            .map(String::as_str)
            .filter(|o| *o != "*")
    }

    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether a page at the request's origin may use the API or the WebSocket.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
            return true;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.any || is_same_origin(&origin, headers) || self.allowed.contains(&origin)
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to. The
/// scheme is not compared: behind a proxy that ends TLS the gateway cannot know it.
fn is_same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// Whether the request is cross-origin: it has an `Origin` other than its own host.
pub fn is_cross_origin(headers: &HeaderMap) -> bool {
    headers
        .get(ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|origin| {
            !is_same_origin(&origin.trim_end_matches('/').to_ascii_lowercase(), headers)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, host.parse().expect("host"));
        if let Some(origin) = origin {
            headers.insert(ORIGIN, origin.parse().expect("origin"));
        }
        headers
    }

    #[test]
    fn same_origin_by_default_and_listed_origins_besides() {
        let policy = OriginPolicy::new("");
        assert!(policy.allows(&request(None, "pulse.example.com")));
        assert!(policy.allows(&request(
            Some("https://pulse.example.com"),
            "pulse.example.com"
        )));
        assert!(policy.allows(&request(Some("http://127.0.0.1:8080"), "127.0.0.1:8080")));
        assert!(!policy.allows(&request(Some("https://evil.example"), "pulse.example.com")));
        assert!(!policy.allows(&request(
            Some("https://pulse.example.com.evil.example"),
            "pulse.example.com"
        )));
        assert!(is_cross_origin(&request(
            Some("https://evil.example"),
            "pulse.example.com"
        )));
        assert!(!is_cross_origin(&request(None, "pulse.example.com")));

        let listed = OriginPolicy::new(" https://Wall.example.com/ ,https://ops.example.com");
        assert!(listed.allows(&request(
            Some("https://wall.example.com"),
            "pulse.example.com"
        )));
        assert!(!listed.allows(&request(Some("https://evil.example"), "pulse.example.com")));
        assert_eq!(listed.cross_origins().count(), 2);
        assert!(!listed.allows_any());

        let any = OriginPolicy::new("*");
        assert!(any.allows(&request(Some("https://evil.example"), "pulse.example.com")));
        assert_eq!(any.cross_origins().count(), 0);
    }
}
