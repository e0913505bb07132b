//! The gRPC edge: generated wire types, their conversion to and from the
//! domain, and the `TicketAuthz` service. Only this module knows prost types.

pub mod client;
pub mod connect;
pub mod convert;
pub mod observe;
pub mod server;
pub mod service;

/// Generated from `proto/ticketauthz/v1/ticketauthz.proto`.
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations,
    missing_docs
)]
pub mod pb {
    tonic::include_proto!("ticketauthz.v1");
    // The proto3 JSON mapping of the same messages (pbjson), for Connect.
    include!(concat!(env!("OUT_DIR"), "/ticketauthz.v1.serde.rs"));

    /// The encoded descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("ticketauthz_descriptor");
}
