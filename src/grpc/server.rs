//! The gRPC edge of the main port: the routes (the `TicketAuthz` service,
//! reflection, health), the plaintext health-only server, and accepted
//! connections with `TCP_NODELAY`. The composition root is [`crate::serve`].

use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::grpc::observe::{self, Rpc};
use crate::grpc::pb;
use crate::grpc::pb::ticket_authz_server::TicketAuthzServer;
use crate::grpc::service::AuthzService;

/// The connections a listener accepts, with `TCP_NODELAY` set, as tonic's
/// own `serve(addr)` does and its `serve_with_incoming` does not. Without it
/// a response written while the previous one is unacknowledged waits for
/// the client's delayed ACK (40 ms on Linux): under 64 concurrent callers
/// that was the p99 of every call, for the no-op service as for ours.
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The fully qualified service name, as health checks ask for it.
pub const SERVICE_NAME: &str = observe::SERVICE;

/// The reflection RPC's path.
const REFLECTION_PATH: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

/// Every gRPC path served beside health, with its bounded `rpc` label.
pub fn paths() -> Vec<(&'static str, &'static str)> {
    Rpc::ALL
        .iter()
        .map(|rpc| (rpc.path(), rpc.method()))
        .chain([(REFLECTION_PATH, "ServerReflectionInfo")])
        .collect()
}

/// The health service answering from `reporter`'s statuses.
pub fn health(reporter: &HealthReporter) -> HealthServer<HealthService> {
    HealthServer::new(HealthService::from_health_reporter(reporter.clone()))
}

/// The gRPC services of the main port; `service` is shared with the
/// Connect edge, so both count and trace the same RPCs alike.
pub fn routes(
    service: Arc<AuthzService>,
    health: HealthServer<HealthService>,
    max_message_bytes: usize,
) -> Result<Routes, tonic_reflection::server::Error> {
    let authz = TicketAuthzServer::from_arc(service)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    Ok(Routes::new(health)
        .add_service(authz)
        .add_service(reflection))
}

/// Serves only health on `listener` (plaintext, unauthenticated, for
/// probes) until `stop`; open `Watch` streams keep it draining, so the
/// caller bounds it.
pub async fn serve_health(
    health: HealthServer<HealthService>,
    listener: TcpListener,
    stop: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .add_service(health)
        .serve_with_incoming_shutdown(incoming(listener), stop)
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut accepted = super::incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let stream = accepted.next().await.unwrap().unwrap();
        assert!(stream.nodelay().unwrap(), "TCP_NODELAY is off");
    }
}
