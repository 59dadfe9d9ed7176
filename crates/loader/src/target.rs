//! The Mixpanel project records are sent to, resolved by target id (secrets never travel in queue
//! messages) and cached per id.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use secrecy::{ExposeSecret as _, SecretString};

/// Where and as whom to send: a Mixpanel project and a service account allowed to import into it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `https://api.mixpanel.com`, a residency host, or the emulator's URL; no trailing path.
    pub base_url: String,
    /// The project id (`?project_id=`).
    pub project_id: u64,
    /// The project token (for `/engage` and `/groups`).
    pub token: SecretString,
    /// The service account's user name.
    pub service_account_username: String,
    /// The service account's secret.
    pub service_account_secret: SecretString,
    /// The project's cap in records per second, shared by every loader.
    pub rate_limit_per_second: u32,
}

impl Target {
    /// Whether `other` sends to the same place with the same credentials.
    pub fn same_as(&self, other: &Target) -> bool {
        self.base_url == other.base_url
            && self.project_id == other.project_id
            && self.service_account_username == other.service_account_username
            && self.service_account_secret.expose_secret()
                == other.service_account_secret.expose_secret()
            && self.token.expose_secret() == other.token.expose_secret()
    }
}

/// Why a target could not be resolved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    /// It does not exist (deleted since the run started): the run cannot go on.
    #[error("target `{0}` does not exist (was it deleted during the run?)")]
    NotFound(String),
    /// It exists but cannot be used (its secrets do not decrypt with this key).
    #[error("target `{id}` cannot be used: {reason}")]
    Unusable {
        /// The target id.
        id: String,
        /// Why.
        reason: String,
    },
    /// The state store could not answer now; try again later.
    #[error("cannot look up target `{id}`: {reason}")]
    Unavailable {
        /// The target id.
        id: String,
        /// What went wrong.
        reason: String,
    },
}

/// Resolves target ids: the state store in production, a fixed map in tests.
pub trait TargetSource: Send + Sync + 'static {
    /// The target's current settings.
    fn target(&self, id: &str) -> impl Future<Output = Result<Target, TargetError>> + Send;

    /// Where the rate limit shared by every loader process is kept, if anywhere (the state
    /// store); `None` keeps it in this process.
    fn shared_rate_limit(&self) -> Option<mixsync_state::StateStore> {
        None
    }
}

/// A fixed set of targets.
impl TargetSource for HashMap<String, Target> {
    async fn target(&self, id: &str) -> Result<Target, TargetError> {
        self.get(id)
            .cloned()
            .ok_or_else(|| TargetError::NotFound(id.to_owned()))
    }
}

/// The state store resolves targets in production.
impl TargetSource for mixsync_state::StateStore {
    fn shared_rate_limit(&self) -> Option<mixsync_state::StateStore> {
        Some(self.clone())
    }

    async fn target(&self, id: &str) -> Result<Target, TargetError> {
        use mixsync_state::StateError;
        match self.target_connection(id).await {
            Ok(c) => Ok(Target {
                base_url: c.base_url,
                project_id: c.project_id,
                token: c.token,
                service_account_username: c.service_account_username,
                service_account_secret: c.service_account_secret,
                rate_limit_per_second: c.rate_limit_per_second,
            }),
            Err(StateError::NotFound { .. }) => Err(TargetError::NotFound(id.to_owned())),
            Err(error @ (StateError::Decrypt { .. } | StateError::Corrupt { .. })) => {
                Err(TargetError::Unusable {
                    id: id.to_owned(),
                    reason: error.to_string(),
                })
            }
            Err(error) => Err(TargetError::Unavailable {
                id: id.to_owned(),
                reason: error.to_string(),
            }),
        }
    }
}

/// Caches resolved targets for `ttl`, so credentials changed in the state store are picked up
/// within that time, and at once after Mixpanel refuses them ([`TargetCache::refresh`]).
pub struct TargetCache<S> {
    source: S,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Arc<Target>, Instant)>>,
    /// The run whose records last came for each target.
    runs: Mutex<HashMap<String, String>>,
}

impl<S: TargetSource> TargetCache<S> {
    /// An empty cache over `source`.
    pub fn new(source: S, ttl: Duration) -> Self {
        TargetCache {
            source,
            ttl,
            entries: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
        }
    }

    /// Records that run `run_id` sends to target `id`; the first records of another run than
    /// the last one drop the cached target, so each run reads its target afresh.
    pub fn note_run(&self, id: &str, run_id: &str) {
        let mut runs = self.runs.lock();
        if runs.get(id).is_some_and(|last| last == run_id) {
            return;
        }
        runs.insert(id.to_owned(), run_id.to_owned());
        self.entries.lock().remove(id);
    }

    /// The target, from the cache when fresh.
    pub async fn get(&self, id: &str) -> Result<Arc<Target>, TargetError> {
        if let Some((target, at)) = self.entries.lock().get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(target.clone());
        }
        self.refresh(id).await
    }

    /// The target, read again from the source.
    pub async fn refresh(&self, id: &str) -> Result<Arc<Target>, TargetError> {
        match self.source.target(id).await {
            Ok(target) => {
                let target = Arc::new(target);
                self.entries
                    .lock()
                    .insert(id.to_owned(), (target.clone(), Instant::now()));
                Ok(target)
            }
            Err(error) => {
                if matches!(error, TargetError::NotFound(_)) {
                    self.entries.lock().remove(id);
                }
                Err(error)
            }
        }
    }
}
