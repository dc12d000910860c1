//! The WebSocket upgrade of `/ws/sentiment`, done here rather than by `warp::ws` so that each
//! connection's buffers can be sized.
//!
//! tungstenite gives every connection a 128 KiB read buffer that it zero-fills on the first
//! read, and warp offers no way to change it: 1,000 dashboards cost 130 MB of resident memory
//! for buffers that never hold more than a 100-byte subscribe message. Clients here only send
//! small control messages and receive events of a few hundred bytes, so 4 KiB buffers do.

use std::future::Future;

use hyper_util::rt::TokioIo;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use warp::{Filter, Rejection, Reply, http::StatusCode, hyper::upgrade::OnUpgrade};

/// An accepted WebSocket connection.
pub type Socket = WebSocketStream<TokioIo<warp::hyper::upgrade::Upgraded>>;

/// Largest message a client may send.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Read buffer per connection.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// A request that asked for a WebSocket, not yet answered.
pub struct Upgrade {
    key: String,
    on_upgrade: OnUpgrade,
}

fn has_token(header: &str, token: &str) -> bool {
    header
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Matches a WebSocket handshake (RFC 6455, section 4.2.1).
pub fn upgrade() -> impl Filter<Extract = (Upgrade,), Error = Rejection> + Clone {
    warp::get()
        .and(warp::header::<String>("connection"))
        .and(warp::header::<String>("upgrade"))
        .and(warp::header::exact("sec-websocket-version", "13"))
        .and(warp::header::<String>("sec-websocket-key"))
        .and(warp::ext::get::<OnUpgrade>())
        .and_then(
            |connection: String, upgrade: String, key: String, on_upgrade: OnUpgrade| async move {
                if has_token(&connection, "upgrade") && has_token(&upgrade, "websocket") {
                    Ok(Upgrade { key, on_upgrade })
                } else {
                    Err(warp::reject::not_found())
                }
            },
        )
}

impl Upgrade {
    /// Answers 101 Switching Protocols and runs `serve` on the connection once it is upgraded.
    pub fn on_upgrade<F, Fut>(self, serve: F) -> impl Reply
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade { key, on_upgrade } = self;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let config = WebSocketConfig::default()
                        .read_buffer_size(READ_BUFFER_BYTES)
                        .write_buffer_size(0)
                        .max_message_size(Some(MAX_MESSAGE_BYTES))
                        .max_frame_size(Some(MAX_MESSAGE_BYTES));
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    serve(socket).await;
                }
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let reply = warp::reply::with_status(warp::reply(), StatusCode::SWITCHING_PROTOCOLS);
        let reply = warp::reply::with_header(reply, "connection", "upgrade");
        let reply = warp::reply::with_header(reply, "upgrade", "websocket");
        warp::reply::with_header(
            reply,
            "sec-websocket-accept",
            derive_accept_key(key.as_bytes()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::has_token;

    #[test]
    fn connection_tokens_are_case_insensitive_lists() {
        assert!(has_token("Upgrade", "upgrade"));
        assert!(has_token("keep-alive, Upgrade", "upgrade"));
        assert!(!has_token("keep-alive", "upgrade"));
        assert!(!has_token("upgraded", "upgrade"));
    }
}
