//! The gateway: the only public face of Pulse.
//!
//! It translates REST and WebSocket into calls on the internal gRPC services and serves the
//! dashboard's static files. [`routes`] holds the REST handlers, [`params`] validates query
//! strings, [`envelope`] shapes every JSON answer (`{data, metadata, filters, timestamp}`, or
//! `{error, code, timestamp}`), [`views`] maps wire types to JSON, and [`live`] fans the
//! analytics event feed out to WebSocket clients. In front of every route: [`auth`] (API keys
//! and scopes), [`rate_limit`] by [`client_address`] and by key, [`origin`] (CORS and the
//! WebSocket's Origin check), [`live_admission`] (tickets and connection caps of the live
//! feed). Cross-cutting: [`request_id`], [`body`] (size-limited JSON bodies), [`idempotency`]
//! (retries of a publish); [`csv_export`] streams CSV and [`openapi`] describes the REST API.

pub mod auth;
pub mod body;
pub mod client_address;
pub mod clients;
pub mod config;
pub mod csv_export;
pub mod envelope;
pub mod idempotency;
pub mod live;
pub mod live_admission;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod params;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod views;
pub mod websocket;

pub use config::Config;
pub use server::{run, serve};
