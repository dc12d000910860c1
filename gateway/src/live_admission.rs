//! Who may open the live feed, and how many may: the checks before a WebSocket upgrade.
//!
//! A browser cannot set `Authorization` on a WebSocket, so it first asks `POST /api/ws-ticket`
//! (with its key, over REST) for a ticket and opens `/ws/sentiment?ticket=...` with it; a
//! ticket is good once, for `WS_TICKET_SECS`. Other clients send their key as a header. Pages
//! from other origins are refused ([`crate::origin`]): browsers apply no CORS to WebSockets.
//!
//! Connections are capped per gateway replica, in all (`WS_MAX_CONNECTIONS`) and per client
//! address block (`WS_MAX_PER_CLIENT`), so one machine cannot take every slot. The cap is by
//! address, not by key: one read key is often shared by many wall displays, each of which must
//! get its connection. A [`Slot`] is held for the connection's life and given back when it drops.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use pulse_store::keys::Scope;
use pulse_stream::{Connection, RedisKeys};
use rand::RngCore;
use warp::http::{HeaderMap, StatusCode};

use crate::{
    auth::{Authenticator, Caller},
    envelope::ApiError,
    origin::OriginPolicy,
};

/// Connection caps of one replica.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub total: usize,
    pub per_client: usize,
}

#[derive(Default)]
struct Slots {
    total: usize,
    per_client: HashMap<String, usize>,
}

/// One admitted connection's place; dropping it frees the place.
pub struct Slot {
    slots: Arc<Mutex<Slots>>,
    client: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.total = slots.total.saturating_sub(1);
            if let Some(n) = slots.per_client.get_mut(&self.client) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    slots.per_client.remove(&self.client);
                }
            }
        }
    }
}

#[derive(Clone)]
pub struct LiveAdmission {
    auth: Authenticator,
    origins: OriginPolicy,
    redis: Connection,
    keys: RedisKeys,
    ticket_ttl: Duration,
    caps: Caps,
    slots: Arc<Mutex<Slots>>,
}

/// What a ticket stores for a caller without a key (reads are public); a ticket of a key holds
/// the key's id, for the logs of whoever inspects Redis.
const ANONYMOUS: &str = "-";

impl LiveAdmission {
    pub fn new(
        auth: Authenticator,
        origins: OriginPolicy,
        redis: Connection,
        keys: RedisKeys,
        ticket_ttl: Duration,
        caps: Caps,
    ) -> Self {
        Self {
            auth,
            origins,
            redis,
            keys,
            ticket_ttl,
            caps,
            slots: Arc::default(),
        }
    }

    /// A single-use ticket for `caller` (who may read), and how long it lasts.
    pub async fn issue_ticket(&self, caller: &Caller) -> Result<(String, Duration), ApiError> {
        let mut bytes = [0_u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let ticket: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let value = caller.key_id().unwrap_or(ANONYMOUS);
        let key = self.keys.websocket_ticket(&ticket);
        match pulse_stream::tickets::issue(&self.redis, &key, value, self.ticket_ttl).await {
            Ok(true) => Ok((ticket, self.ticket_ttl)),
            Ok(false) => Err(tickets_unavailable("a ticket collided")),
            Err(e) => Err(tickets_unavailable(&e.to_string())),
        }
    }

    /// Admits a connection from address block `client` with these headers and maybe a ticket,
    /// or says why not (403 origin, 401 key or ticket, 429 per-address cap, 503 replica full).
    pub async fn admit(
        &self,
        client: &str,
        headers: &HeaderMap,
        ticket: Option<&str>,
    ) -> Result<Slot, ApiError> {
        if !self.origins.allows(headers) {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                code: "ORIGIN_FORBIDDEN",
                message: "pages from this origin may not open the live feed".into(),
            });
        }
        match ticket {
            Some(ticket) => self.redeem(ticket).await?,
            None => {
                self.auth.admit(headers, Scope::Read).await?;
            }
        }
        let holder = client.to_owned();
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| full("the connection table is unusable"))?;
        if slots.total >= self.caps.total {
            return Err(full(
                "this gateway holds as many live connections as it may",
            ));
        }
        let held = slots.per_client.entry(holder.clone()).or_default();
        if *held >= self.caps.per_client {
            return Err(ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "TOO_MANY_CONNECTIONS",
                message: format!(
                    "at most {} live connections per client address",
                    self.caps.per_client
                ),
            });
        }
        *held += 1;
        slots.total += 1;
        Ok(Slot {
            slots: Arc::clone(&self.slots),
            client: holder,
        })
    }

    /// Takes a ticket back: valid once, until it expires.
    async fn redeem(&self, ticket: &str) -> Result<(), ApiError> {
        let invalid = || ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "INVALID_TICKET",
            message: "this ticket is unknown, used or expired: ask POST /api/ws-ticket for another"
                .into(),
        };
        if ticket.len() != 32 || !ticket.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let key = self.keys.websocket_ticket(ticket);
        match pulse_stream::tickets::redeem(&self.redis, &key).await {
            Ok(Some(_holder)) => Ok(()),
            Ok(None) => Err(invalid()),
            Err(e) => Err(tickets_unavailable(&e.to_string())),
        }
    }
}

fn full(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "TOO_MANY_CONNECTIONS",
        message: message.into(),
    }
}

fn tickets_unavailable(detail: &str) -> ApiError {
    tracing::warn!(error = detail, "WebSocket tickets unavailable");
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "TICKETS_UNAVAILABLE",
        message: "live-feed tickets cannot be issued or checked right now; retry shortly".into(),
    }
}
