//! mixsync's wire types: the `mixsync.v1` protobuf messages (queue messages
//! between services) and the `mixsync.v1.Control` gRPC service, generated
//! from `proto/mixsync/v1/` at build time.
//!
//! Which service sends each queue message and what the receiver does with it:
//! docs/architecture.md ("Queues", "Message flow").

/// Generated code for the `mixsync.v1` protobuf package.
///
/// Client: [`v1::control_client::ControlClient`]; server:
/// [`v1::control_server::ControlServer`] around a [`v1::control_server::Control`]
/// implementation.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod v1 {
    tonic::include_proto!("mixsync.v1");
}

pub mod convert;

/// The encoded `FileDescriptorSet` of every mixsync proto file and its imports,
/// for gRPC server reflection (`tonic-reflection`'s
/// `register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mixsync_descriptor.bin"));

#[cfg(test)]
mod tests;
