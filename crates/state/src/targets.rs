//! Targets: Mixpanel projects records are sent to.

use std::time::SystemTime;

use mixsync_domain::Residency;
use secrecy::SecretString;
use tokio_postgres::Row;

use crate::crypto::Purpose;
use crate::error::StateError;
use crate::ids::new_id;
use crate::page::{Page, PageRequest, paginate};
use crate::plan::TargetConnection;
use crate::store::StateStore;
use crate::unused;

/// What defines a target. `Debug` never prints the token or the secret.
#[derive(Clone)]
pub struct TargetSpec {
    /// Unique name.
    pub name: String,
    /// Mixpanel project id (> 0).
    pub project_id: u64,
    /// Data residency; decides the API host unless `base_url` is set.
    pub residency: Residency,
    /// Explicit API base URL (e.g. the emulator), without a trailing slash.
    pub base_url: Option<String>,
    /// Project token. On update, `None` keeps the stored one.
    pub token: Option<SecretString>,
    /// Service-account username.
    pub service_account_username: String,
    /// Service-account secret. On update, `None` keeps the stored one.
    pub service_account_secret: Option<SecretString>,
    /// Whether a plain `http://` base URL on a host that is not loopback is accepted.
    pub allow_insecure_http: bool,
    /// The project's cap in records per second, shared by every loader (> 0).
    pub rate_limit_per_second: u32,
}

/// Mixpanel's documented cap for a project: 30,000 events (or profile updates) per second.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 30_000;

impl std::fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<SecretString>| s.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("TargetSpec")
            .field("name", &self.name)
            .field("project_id", &self.project_id)
            .field("residency", &self.residency)
            .field("base_url", &self.base_url)
            .field("token", &redact(&self.token))
            .field("service_account_username", &self.service_account_username)
            .field(
                "service_account_secret",
                &redact(&self.service_account_secret),
            )
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .finish()
    }
}

/// The ingestion API base URL: the explicit one, else the residency's host.
pub fn api_base_url(residency: Residency, base_url: Option<&str>) -> String {
    base_url.map_or_else(
        || residency.api_base_url().to_owned(),
        |url| url.trim_end_matches('/').to_owned(),
    )
}

/// A stored target. Carries no secret, only whether each is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Id (UUID v7).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Mixpanel project id.
    pub project_id: u64,
    /// Data residency.
    pub residency: Residency,
    /// Explicit API base URL, when set.
    pub base_url: Option<String>,
    /// Service-account username.
    pub service_account_username: String,
    /// Whether a project token is stored.
    pub has_token: bool,
    /// Whether a service-account secret is stored.
    pub has_service_account_secret: bool,
    /// Whether a plain `http://` base URL on a host that is not loopback is accepted.
    pub allow_insecure_http: bool,
    /// The project's cap in records per second.
    pub rate_limit_per_second: u32,
    /// Creation time.
    pub created_at: SystemTime,
    /// Last change.
    pub updated_at: SystemTime,
}

const COLUMNS: &str = "id, name, project_id, residency, base_url, service_account_username, \
     token_secret IS NOT NULL, service_account_secret IS NOT NULL, created_at, updated_at, \
     allow_insecure_http, rate_limit_per_second";

fn from_row(row: &Row) -> Result<Target, StateError> {
    let id: String = row.get(0);
    let project_id: i64 = row.get(2);
    let residency: String = row.get(3);
    Ok(Target {
        name: row.get(1),
        project_id: u64::try_from(project_id)
            .map_err(|e| StateError::corrupt(format!("project id of target `{id}`"), e))?,
        residency: residency
            .parse()
            .map_err(|e| StateError::corrupt(format!("residency of target `{id}`"), e))?,
        base_url: row.get(4),
        service_account_username: row.get(5),
        has_token: row.get(6),
        has_service_account_secret: row.get(7),
        created_at: row.get(8),
        updated_at: row.get(9),
        allow_insecure_http: row.get(10),
        rate_limit_per_second: u32::try_from(row.get::<_, i32>(11))
            .map_err(|e| StateError::corrupt(format!("rate limit of target `{id}`"), e))?,
        id,
    })
}

fn project_id_param(spec: &TargetSpec) -> Result<i64, StateError> {
    i64::try_from(spec.project_id).map_err(|e| StateError::corrupt("project id", e))
}

fn rate_param(spec: &TargetSpec) -> Result<i32, StateError> {
    i32::try_from(spec.rate_limit_per_second)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            StateError::corrupt(
                "rate limit per second",
                format!("{} is not in 1..=2147483647", spec.rate_limit_per_second),
            )
        })
}

fn name_taken(err: tokio_postgres::Error, name: &str) -> StateError {
    if StateError::is_unique_violation(&err) {
        StateError::NameTaken {
            kind: "target",
            name: name.to_owned(),
        }
    } else {
        err.into()
    }
}

impl StateStore {
    /// Stores a new target; its name must be unused.
    pub async fn create_target(&self, spec: &TargetSpec) -> Result<Target, StateError> {
        let id = new_id();
        let token =
            self.secrets()
                .await?
                .seal_opt(Purpose::ProjectToken, &id, spec.token.as_ref())?;
        let secret = self.secrets().await?.seal_opt(
            Purpose::ServiceAccountSecret,
            &id,
            spec.service_account_secret.as_ref(),
        )?;
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO targets (id, name, project_id, residency, base_url, service_account_username, token_secret, service_account_secret, allow_insecure_http, rate_limit_per_second)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
        );
        let row = client
            .query_one(
                &sql,
                &[
                    &id,
                    &spec.name,
                    &project_id_param(spec)?,
                    &spec.residency.as_str(),
                    &spec.base_url,
                    &spec.service_account_username,
                    &token,
                    &secret,
                    &spec.allow_insecure_http,
                    &rate_param(spec)?,
                ],
            )
            .await
            .map_err(|e| name_taken(e, &spec.name))?;
        from_row(&row)
    }

    /// Replaces a target's settings; secrets given as `None` keep their stored values.
    pub async fn update_target(&self, id: &str, spec: &TargetSpec) -> Result<Target, StateError> {
        let token =
            self.secrets()
                .await?
                .seal_opt(Purpose::ProjectToken, id, spec.token.as_ref())?;
        let secret = self.secrets().await?.seal_opt(
            Purpose::ServiceAccountSecret,
            id,
            spec.service_account_secret.as_ref(),
        )?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let before = tx
            .query_opt(
                "SELECT project_id, residency, base_url FROM targets WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
            .ok_or_else(|| StateError::not_found("target", id))?;
        let sql = format!(
            "UPDATE targets SET name = $2, project_id = $3, residency = $4, base_url = $5,
                 service_account_username = $6,
                 token_secret = COALESCE($7, token_secret),
                 service_account_secret = COALESCE($8, service_account_secret),
                 allow_insecure_http = $9,
                 rate_limit_per_second = $10,
                 updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let project_id = project_id_param(spec)?;
        let row = tx
            .query_opt(
                &sql,
                &[
                    &id,
                    &spec.name,
                    &project_id,
                    &spec.residency.as_str(),
                    &spec.base_url,
                    &spec.service_account_username,
                    &token,
                    &secret,
                    &spec.allow_insecure_http,
                    &rate_param(spec)?,
                ],
            )
            .await
            .map_err(|e| name_taken(e, &spec.name))?
            .ok_or_else(|| StateError::not_found("target", id))?;
        let target = from_row(&row)?;
        let changed = [
            ("project", before.get::<_, i64>(0) != row.get::<_, i64>(2)),
            (
                "residency",
                before.get::<_, String>(1) != row.get::<_, String>(3),
            ),
            (
                "base URL",
                before.get::<_, Option<String>>(2) != row.get::<_, Option<String>>(4),
            ),
        ];
        let changed: Vec<&str> = changed
            .iter()
            .filter(|(_, c)| *c)
            .map(|(n, _)| *n)
            .collect();
        if !changed.is_empty() {
            // What the snapshots say Mixpanel holds is about the old destination: the next
            // run of each activation empties its snapshot and sends every row.
            let reason = format!(
                "the destination changed (the target's {} changed): a full sync",
                changed.join(" and ")
            );
            let reset = tx
                .execute(
                    "UPDATE activations SET snapshot_reset_reason = $2 WHERE target_id = $1",
                    &[&id, &reason],
                )
                .await?;
            tracing::info!(
                target_id = id,
                activations = reset,
                reason,
                "target destination changed"
            );
        }
        tx.commit().await?;
        Ok(target)
    }

    /// One target by id.
    pub async fn get_target(&self, id: &str) -> Result<Target, StateError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM targets WHERE id = $1");
        let row = client
            .query_opt(&sql, &[&id])
            .await?
            .ok_or_else(|| StateError::not_found("target", id))?;
        from_row(&row)
    }

    /// One target by name, if there is one.
    pub async fn find_target_by_name(&self, name: &str) -> Result<Option<Target>, StateError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM targets WHERE name = $1");
        client
            .query_opt(&sql, &[&name])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Targets ordered by name.
    pub async fn list_targets(&self, page: &PageRequest) -> Result<Page<Target>, StateError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM targets WHERE name > $1 ORDER BY name LIMIT $2");
        let rows = client
            .query(&sql, &[&page.page_token, &page.fetch()])
            .await?
            .iter()
            .map(from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(rows, page, |t| t.name.clone()))
    }

    /// Deletes a target no activation uses.
    pub async fn delete_target(&self, id: &str) -> Result<(), StateError> {
        self.delete_unused(unused::TARGET, id).await
    }

    /// How to reach a stored target, secrets decrypted.
    pub async fn target_connection(&self, target_id: &str) -> Result<TargetConnection, StateError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT project_id, residency, base_url, service_account_username, token_secret,
                        service_account_secret, rate_limit_per_second
                 FROM targets WHERE id = $1",
                &[&target_id],
            )
            .await?
            .ok_or_else(|| StateError::not_found("target", target_id))?;
        let project_id: i64 = row.get(0);
        let residency: String = row.get(1);
        let residency: Residency = residency
            .parse()
            .map_err(|e| StateError::corrupt(format!("residency of target `{target_id}`"), e))?;
        let base_url: Option<String> = row.get(2);
        let token: Option<Vec<u8>> = row.get(4);
        let secret: Option<Vec<u8>> = row.get(5);
        Ok(TargetConnection {
            base_url: api_base_url(residency, base_url.as_deref()),
            project_id: u64::try_from(project_id).map_err(|e| {
                StateError::corrupt(format!("project id of target `{target_id}`"), e)
            })?,
            token: self.secrets().await?.open_opt(
                Purpose::ProjectToken,
                target_id,
                token.as_deref(),
            )?,
            service_account_username: row.get(3),
            service_account_secret: self.secrets().await?.open_opt(
                Purpose::ServiceAccountSecret,
                target_id,
                secret.as_deref(),
            )?,
            rate_limit_per_second: u32::try_from(row.get::<_, i32>(6)).unwrap_or(1).max(1),
        })
    }
}
