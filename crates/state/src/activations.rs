//! Activations: a query on a warehouse, mapped and sent to a target.

use std::time::SystemTime;

use mixsync_domain::{FieldMapping, ObjectKind, SyncBehaviour};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::StateError;
use crate::ids::new_id;
use crate::page::{Page, PageRequest, paginate};
use crate::plan::ActivationOptions;
use crate::store::StateStore;

/// When an activation runs by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Only when triggered.
    #[default]
    Manual,
    /// Every N minutes (N ≥ 1).
    EveryMinutes(u32),
    /// A five-field cron expression, in UTC.
    Cron(String),
}

/// What defines an activation.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationSpec {
    /// Unique name.
    pub name: String,
    /// Warehouse id.
    pub warehouse_id: String,
    /// Target id.
    pub target_id: String,
    /// SQL query.
    pub query: String,
    /// Mixpanel object written.
    pub object: ObjectKind,
    /// Insert or upsert.
    pub sync_behaviour: SyncBehaviour,
    /// Column → field mapping.
    pub mapping: FieldMapping,
    /// Sending options.
    pub options: ActivationOptions,
    /// When it runs.
    pub schedule: Schedule,
}

/// A stored activation.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    /// Id (UUID v7).
    pub id: String,
    /// The settings.
    pub spec: ActivationSpec,
    /// Whether scheduled runs are paused.
    pub paused: bool,
    /// Creation time.
    pub created_at: SystemTime,
    /// Last change.
    pub updated_at: SystemTime,
}

/// Which activations to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationFilter {
    /// Only those on this warehouse.
    pub warehouse_id: Option<String>,
    /// Only those sending to this target.
    pub target_id: Option<String>,
}

const COLUMNS: &str = "id, name, warehouse_id, target_id, query, object, sync_behaviour, mapping, \
     options, schedule, paused, created_at, updated_at";

fn json_field<T: serde::de::DeserializeOwned>(
    row: &Row,
    index: usize,
    what: &str,
    id: &str,
) -> Result<T, StateError> {
    let value: serde_json::Value = row.get(index);
    serde_json::from_value(value)
        .map_err(|e| StateError::corrupt(format!("{what} of activation `{id}`"), e))
}

fn from_row(row: &Row) -> Result<Activation, StateError> {
    let id: String = row.get(0);
    let object: String = row.get(5);
    let behaviour: String = row.get(6);
    let spec = ActivationSpec {
        name: row.get(1),
        warehouse_id: row.get(2),
        target_id: row.get(3),
        query: row.get(4),
        object: object
            .parse()
            .map_err(|e| StateError::corrupt(format!("object of activation `{id}`"), e))?,
        sync_behaviour: behaviour
            .parse()
            .map_err(|e| StateError::corrupt(format!("sync behaviour of activation `{id}`"), e))?,
        mapping: json_field(row, 7, "mapping", &id)?,
        options: json_field(row, 8, "options", &id)?,
        schedule: json_field(row, 9, "schedule", &id)?,
    };
    Ok(Activation {
        spec,
        paused: row.get(10),
        created_at: row.get(11),
        updated_at: row.get(12),
        id,
    })
}

/// The jsonb columns of a spec.
struct JsonColumns {
    mapping: serde_json::Value,
    options: serde_json::Value,
    schedule: serde_json::Value,
}

fn json_columns(spec: &ActivationSpec) -> Result<JsonColumns, StateError> {
    let err = |e: serde_json::Error| StateError::corrupt("activation settings", e);
    Ok(JsonColumns {
        mapping: serde_json::to_value(&spec.mapping).map_err(err)?,
        options: serde_json::to_value(spec.options).map_err(err)?,
        schedule: serde_json::to_value(&spec.schedule).map_err(err)?,
    })
}

fn write_error(err: tokio_postgres::Error, spec: &ActivationSpec) -> StateError {
    if StateError::is_unique_violation(&err) {
        return StateError::NameTaken {
            kind: "activation",
            name: spec.name.clone(),
        };
    }
    if StateError::is_foreign_key_violation(&err) {
        let constraint = err
            .as_db_error()
            .and_then(|db| db.constraint())
            .unwrap_or_default();
        return if constraint.contains("target") {
            StateError::MissingReference {
                field: "target_id",
                kind: "target",
                id: spec.target_id.clone(),
            }
        } else {
            StateError::MissingReference {
                field: "warehouse_id",
                kind: "warehouse",
                id: spec.warehouse_id.clone(),
            }
        };
    }
    err.into()
}

impl StateStore {
    /// Stores a new activation; its name must be unused and its warehouse and target exist.
    pub async fn create_activation(&self, spec: &ActivationSpec) -> Result<Activation, StateError> {
        let id = new_id();
        let json = json_columns(spec)?;
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO activations (id, name, warehouse_id, target_id, query, object, sync_behaviour, mapping, options, schedule)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
        );
        let params: [&(dyn ToSql + Sync); 10] = [
            &id,
            &spec.name,
            &spec.warehouse_id,
            &spec.target_id,
            &spec.query,
            &spec.object.as_str(),
            &spec.sync_behaviour.as_str(),
            &json.mapping,
            &json.options,
            &json.schedule,
        ];
        let row = client
            .query_one(&sql, &params)
            .await
            .map_err(|e| write_error(e, spec))?;
        from_row(&row)
    }

    /// Replaces an activation's settings. Runs already triggered keep their snapshot.
    pub async fn update_activation(
        &self,
        id: &str,
        spec: &ActivationSpec,
    ) -> Result<Activation, StateError> {
        let json = json_columns(spec)?;
        let client = self.client().await?;
        let sql = format!(
            "UPDATE activations SET name = $2, warehouse_id = $3, target_id = $4, query = $5, object = $6,
                 sync_behaviour = $7, mapping = $8, options = $9, schedule = $10, updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let params: [&(dyn ToSql + Sync); 10] = [
            &id,
            &spec.name,
            &spec.warehouse_id,
            &spec.target_id,
            &spec.query,
            &spec.object.as_str(),
            &spec.sync_behaviour.as_str(),
            &json.mapping,
            &json.options,
            &json.schedule,
        ];
        let row = client
            .query_opt(&sql, &params)
            .await
            .map_err(|e| write_error(e, spec))?
            .ok_or_else(|| StateError::not_found("activation", id))?;
        from_row(&row)
    }

    /// Sets whether scheduled runs are paused.
    pub async fn set_activation_paused(
        &self,
        id: &str,
        paused: bool,
    ) -> Result<Activation, StateError> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE activations SET paused = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        );
        let row = client
            .query_opt(&sql, &[&id, &paused])
            .await?
            .ok_or_else(|| StateError::not_found("activation", id))?;
        from_row(&row)
    }

    /// One activation by id.
    pub async fn get_activation(&self, id: &str) -> Result<Activation, StateError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM activations WHERE id = $1");
        let row = client
            .query_opt(&sql, &[&id])
            .await?
            .ok_or_else(|| StateError::not_found("activation", id))?;
        from_row(&row)
    }

    /// One activation by name, if there is one.
    pub async fn find_activation_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Activation>, StateError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM activations WHERE name = $1");
        client
            .query_opt(&sql, &[&name])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Activations ordered by name.
    pub async fn list_activations(
        &self,
        filter: &ActivationFilter,
        page: &PageRequest,
    ) -> Result<Page<Activation>, StateError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM activations
             WHERE name > $1 AND ($2::text IS NULL OR warehouse_id = $2) AND ($3::text IS NULL OR target_id = $3)
             ORDER BY name LIMIT $4"
        );
        let rows = client
            .query(
                &sql,
                &[
                    &page.page_token,
                    &filter.warehouse_id,
                    &filter.target_id,
                    &page.fetch(),
                ],
            )
            .await?
            .iter()
            .map(from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(rows, page, |a| a.spec.name.clone()))
    }

    /// Deletes an activation with its runs, failed records and sync snapshot.
    pub async fn delete_activation(&self, id: &str) -> Result<(), StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deleted = tx
            .execute("DELETE FROM activations WHERE id = $1", &[&id])
            .await?;
        if deleted == 0 {
            return Err(StateError::not_found("activation", id));
        }
        tx.commit().await?;
        Ok(())
    }
}
