//! Service tests: control in-process against the local Postgres and RabbitMQ and an emulator,
//! through the generated gRPC client.

mod activations;
mod auth;
mod common;
mod profiles;
mod runs;
mod targets;
mod warehouses;
