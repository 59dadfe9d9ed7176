//! Defaults shared by several services, written once.

/// The state database when `MIXSYNC_DATABASE_URL` is unset: the local PostgreSQL.
pub const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/mixsync";
/// RabbitMQ when `MIXSYNC_AMQP_URL` is unset: the local broker, default vhost.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Control's gRPC address when `MIXSYNC_GRPC_ADDR` is unset (and where the CLI looks for it).
pub const GRPC_ADDR: &str = "127.0.0.1:50051";
