//! The contracts between Pulse services, generated from `proto/pulse/v1/*.proto`.
//!
//! Every service speaks these types; nothing else in the workspace defines wire formats.

/// Package `pulse.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("pulse.v1");
}

/// Encoded `FileDescriptorSet` of every Pulse contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pulse_descriptor.bin"));

pub use prost_types::Timestamp;
