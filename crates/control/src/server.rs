//! The gRPC server: Control behind the bearer-token check, grpc.health.v1 open, and server
//! reflection (also behind the token) so stock tools can discover the API; over TLS or mutual
//! TLS when configured (`crate::tls`).

use mixsync_proto::v1::control_server::ControlServer;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};

use crate::Error;
use crate::auth::BearerAuth;
use crate::services::{Context, ControlService};

/// Serves until `shutdown` is cancelled.
pub(crate) async fn serve(
    ctx: Context,
    listener: TcpListener,
    api_token: Option<&SecretString>,
    tls: Option<ServerTlsConfig>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let auth = BearerAuth::new(api_token);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ControlServer<ControlService>>().await;
    let reflection = reflection_builder().build_v1().map_err(Error::Reflection)?;
    // The older protocol version, still the only one many stock tools speak (Python
    // grpcio-reflection, Postman, grpcui, older grpcurl).
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .map_err(Error::Reflection)?;
    let control = ControlServer::new(ControlService::new(ctx));
    let stop = shutdown.clone();
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).map_err(Error::Serve)?;
    }
    let result = builder
        .add_service(health_service)
        .add_service(InterceptedService::new(reflection, auth.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, auth.clone()))
        .add_service(InterceptedService::new(control, auth))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move {
            stop.cancelled().await;
            health
                .set_not_serving::<ControlServer<ControlService>>()
                .await;
        })
        .await;
    result.map_err(Error::Serve)
}

/// Reflection over control's API and gRPC health, for either protocol version.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mixsync_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}
