//! How every mixsync service reads its configuration.
//!
//! Services are configured by `MIXSYNC_*` environment variables (see the README's configuration
//! table and `docs/architecture.md`). They all read them through an [`Env`], so that every
//! variable follows the same rules:
//!
//! - **blank is unset**: a variable set to an empty or all-space value takes its default;
//! - **one grammar per kind of value**: switches ([`Env::switch`]: `on`/`off`, `true`/`false`,
//!   `yes`/`no`, `1`/`0`, any case), durations ([`Env::duration`]: `500ms`, `30s`, `5m`, `1h 30m`,
//!   or a bare number in the unit the variable's name or documentation gives), bounded integers
//!   ([`Env::number`]);
//! - **errors name the variable, its value and what is accepted** (secrets are never echoed);
//! - **defaults are written once** ([`defaults`]), and what a service read is kept, so
//!   `mixsync serve <service> --print-config` can show the effective configuration with secrets
//!   redacted ([`Env::settings`]).

pub mod defaults;
mod duration;
mod env;
mod error;
mod redact;

pub use duration::{BareUnit, parse_duration};
pub use env::{Env, Setting, Source};
pub use error::ConfigError;
pub use redact::redact_url_password;

use secrecy::SecretString;

/// `MIXSYNC_DATABASE_URL`: the state database every service but the emulator uses.
pub const DATABASE_URL_VAR: &str = "MIXSYNC_DATABASE_URL";
/// `MIXSYNC_SECRET_KEY`: the key secrets are encrypted at rest with.
pub const SECRET_KEY_VAR: &str = "MIXSYNC_SECRET_KEY";
/// `MIXSYNC_SECRET_KEY_PREVIOUS`: the key being rotated away from.
pub const SECRET_KEY_PREVIOUS_VAR: &str = "MIXSYNC_SECRET_KEY_PREVIOUS";

/// The state database's URL (`MIXSYNC_DATABASE_URL`, default [`defaults::DATABASE_URL`]); kept
/// secret because it may hold a password, shown with the password redacted.
///
/// # Errors
///
/// A value that is not UTF-8.
pub fn database_url(env: &Env) -> Result<SecretString, ConfigError> {
    env.url(DATABASE_URL_VAR, defaults::DATABASE_URL)
}

/// `MIXSYNC_SECRET_KEY`, required: `why` says what this service needs it for.
///
/// # Errors
///
/// The variable is unset or blank, or not UTF-8.
pub fn secret_key(env: &Env, why: &str) -> Result<SecretString, ConfigError> {
    env.require_secret(SECRET_KEY_VAR, why)
}

/// `MIXSYNC_SECRET_KEY_PREVIOUS`, optional: while rotating, the key secrets were stored with
/// before; they stay readable until control re-encrypts them under `MIXSYNC_SECRET_KEY`.
///
/// # Errors
///
/// A value that is not UTF-8.
pub fn secret_key_previous(env: &Env) -> Result<Option<SecretString>, ConfigError> {
    env.secret(SECRET_KEY_PREVIOUS_VAR)
}
