//! What the pipeline services read: a run's frozen settings and how to reach its warehouse and
//! target. Secrets are [`SecretString`]s: `Debug` prints `[REDACTED]`.

use mixsync_domain::{FieldMapping, ObjectKind};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::fingerprint::fingerprint;
use crate::store::StateStore;

/// Per-activation switches for how records are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationOptions {
    /// Send `ip: 0` (events) / `$ip: "0"` (profiles) so Mixpanel does not geolocate the
    /// loader's address. Default true.
    pub ip_zero: bool,
    /// Profiles: send `$ignore_time` so the update does not change "last seen".
    pub ignore_time: bool,
    /// How many times a run is tried when it meets a transient failure (the warehouse
    /// connection lost, an extractor killed), the first included. Default 3. Not part of the
    /// settings fingerprint: changing it keeps the sync snapshot.
    #[serde(skip_serializing_if = "is_default_attempts")]
    pub max_attempts: u32,
}

/// The default of [`ActivationOptions::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The most attempts an activation may ask for.
pub const MAX_MAX_ATTEMPTS: u32 = 10;

fn is_default_attempts(n: &u32) -> bool {
    *n == DEFAULT_MAX_ATTEMPTS
}

impl Default for ActivationOptions {
    fn default() -> Self {
        Self {
            ip_zero: true,
            ignore_time: false,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// Everything a run needs, as the activation was when the run was triggered.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// The run.
    pub run_id: String,
    /// Its activation.
    pub activation_id: String,
    /// The warehouse the query runs on.
    pub warehouse_id: String,
    /// The target records go to.
    pub target_id: String,
    /// The SQL query.
    pub query: String,
    /// The Mixpanel object written.
    pub object: ObjectKind,
    /// Column → field mapping.
    pub mapping: FieldMapping,
    /// Sending options.
    pub options: ActivationOptions,
    /// Ignore sync snapshots and send every row (loaded records still update the snapshot).
    pub full_resync: bool,
    /// SHA-256 hex of the settings the activation's sync snapshot depends on (query, object,
    /// mapping, options, target), as the run froze them.
    pub fingerprint: String,
    /// The run's attempt when the plan was read (1 for the first). The extractor tags its
    /// batches with it; the mapper takes it from each batch, not from a cached plan.
    pub attempt: u32,
}

/// How to connect to a warehouse.
#[derive(Debug, Clone)]
pub struct WarehouseConnection {
    /// A libpq key=value connection string, password included; `sslmode` and `sslrootcert`
    /// have libpq's meaning (see `docs/tls.md`).
    pub dsn: SecretString,
    /// The PEM CA certificate(s) given through the API, trusted instead of `sslrootcert`.
    pub root_cert: Option<SecretString>,
    /// Whether runs refuse a role that can do more than read (`docs/security.md`).
    pub require_read_only_role: bool,
}

impl WarehouseConnection {
    /// A connection from a DSN alone.
    pub fn from_dsn(dsn: impl Into<String>) -> Self {
        Self {
            dsn: SecretString::from(dsn.into()),
            root_cert: None,
            require_read_only_role: false,
        }
    }
}

/// How to reach a Mixpanel project.
#[derive(Debug, Clone)]
pub struct TargetConnection {
    /// Ingestion API base URL without a trailing slash, e.g. `https://api.mixpanel.com` or
    /// `http://127.0.0.1:3900`.
    pub base_url: String,
    /// Mixpanel project id.
    pub project_id: u64,
    /// Project token (may be empty when none is stored).
    pub token: SecretString,
    /// Service-account username.
    pub service_account_username: String,
    /// Service-account secret.
    pub service_account_secret: SecretString,
    /// The project's cap in records per second, shared by every loader.
    pub rate_limit_per_second: u32,
}

/// The activation settings frozen into a run when it is triggered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunSettings {
    pub warehouse_id: String,
    pub target_id: String,
    pub query: String,
    pub object: ObjectKind,
    pub mapping: FieldMapping,
    pub options: ActivationOptions,
}

impl StateStore {
    /// The plan of a run: its activation's settings as they were when it was triggered.
    pub async fn run_plan(&self, run_id: &str) -> Result<RunPlan, StateError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT activation_id, settings, full_resync, fingerprint, attempt FROM runs WHERE id = $1",
                &[&run_id],
            )
            .await?
            .ok_or_else(|| StateError::not_found("run", run_id))?;
        let settings: serde_json::Value = row.get(1);
        let settings: RunSettings = serde_json::from_value(settings)
            .map_err(|e| StateError::corrupt(format!("settings of run `{run_id}`"), e))?;
        // Runs queued before fingerprints were stored get theirs from their settings.
        let fingerprint = match row.get::<_, Option<String>>(3) {
            Some(stored) => stored,
            None => fingerprint(&settings)?,
        };
        Ok(RunPlan {
            run_id: run_id.to_owned(),
            activation_id: row.get(0),
            warehouse_id: settings.warehouse_id,
            target_id: settings.target_id,
            query: settings.query,
            object: settings.object,
            mapping: settings.mapping,
            options: settings.options,
            full_resync: row.get(2),
            fingerprint,
            attempt: u32::try_from(row.get::<_, i32>(4)).unwrap_or(1),
        })
    }
}
