//! Everything Pulse keeps in Redis streams.
//!
//! Key names live only here ([`keys`]). A post travels as a flat stream entry ([`codec`]) that
//! also carries its W3C `traceparent`. The [`producer`] appends posts to the work stream, the
//! [`consumer`] reads it as one member of a consumer group (acknowledging only after the caller
//! has stored the result, reclaiming entries of dead consumers, dead-lettering poison),
//! [`failures`] counts the failures each pending entry had because of its own content (what
//! decides when it is given up on), [`dead_letters`] lists and replays what was given up on,
//! [`trim`] removes only entries every group has finished with, [`backlog`] measures what is
//! left to do (producers throttle on it), and [`events`] is the feed of analysed posts and
//! alerts that the read side watches.
//!
//! Besides the streams, the other Redis uses of Pulse live here too, so no other crate names a
//! Redis command: [`cache`] (bytes that expire, such as the read side's distribution cache and
//! the gateway's idempotent replies), [`throttle`] (the gateway's rate limits), [`tickets`]
//! (single-use WebSocket tickets) and [`connection::ping`]. Callers hold a [`Connection`] from
//! [`connection`].

pub mod backlog;
pub mod cache;
pub mod codec;
pub mod connection;
pub mod consumer;
pub mod dead_letters;
pub mod error;
pub mod events;
pub mod failures;
pub mod keys;
mod newest;
pub mod producer;
pub mod throttle;
pub mod tickets;
pub mod trim;

pub use backlog::Backlog;
pub use codec::{DecodeError, PostEntry};
pub use connection::{Connection, connect};
pub use consumer::{Delivery, GroupConsumer};
pub use dead_letters::{DeadLetter, DeadLetters};
pub use error::StreamError;
pub use events::{Event, EventFeed, FeedEntry, FeedReader};
pub use failures::EntryFailures;
pub use keys::RedisKeys;
pub use producer::Producer;
