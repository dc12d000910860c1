//! The gateway: the only public face of Pulse.
//!
//! It translates REST and WebSocket into calls on the internal gRPC services and serves the
//! dashboard's static files. [`routes`] holds the REST handlers, [`params`] validates query
//! strings, [`envelope`] shapes every JSON answer (`{data, metadata, filters, timestamp}`, or
//! `{error, code, timestamp}`), [`views`] maps wire types to JSON, and [`live`] fans the
//! analytics event feed out to WebSocket clients. Cross-cutting: [`request_id`],
//! [`rate_limit`], [`body`] (size-limited JSON bodies); [`csv_export`] streams CSV and
//! [`openapi`] describes the REST API.

pub mod body;
pub mod clients;
pub mod config;
pub mod csv_export;
pub mod envelope;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod views;
pub mod websocket;

pub use config::Config;
pub use server::{run, serve};
