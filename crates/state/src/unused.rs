//! Deleting an object only while no activation refers to it (warehouses and targets).

use crate::error::StateError;
use crate::store::StateStore;

/// An object activations refer to: its table and the activations column that points at it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Referenced {
    /// `warehouse` or `target`: the kind named in errors.
    pub kind: &'static str,
    /// The table the object lives in.
    pub table: &'static str,
    /// The `activations` column holding its id.
    pub activation_column: &'static str,
}

pub(crate) const WAREHOUSE: Referenced = Referenced {
    kind: "warehouse",
    table: "warehouses",
    activation_column: "warehouse_id",
};

pub(crate) const TARGET: Referenced = Referenced {
    kind: "target",
    table: "targets",
    activation_column: "target_id",
};

impl StateStore {
    /// Deletes object `id` of `what` when no activation uses it; otherwise `InUse`, naming the
    /// activations that do.
    pub(crate) async fn delete_unused(&self, what: Referenced, id: &str) -> Result<(), StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The names are constants of this module, never input.
        let users_sql = format!(
            "SELECT name FROM activations WHERE {} = $1 ORDER BY name",
            what.activation_column
        );
        let users: Vec<String> = tx
            .query(&users_sql, &[&id])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !users.is_empty() {
            return Err(StateError::InUse {
                kind: what.kind,
                id: id.to_owned(),
                used_by: format!("activation(s) {}", users.join(", ")),
            });
        }
        let deleted = tx
            .execute(&format!("DELETE FROM {} WHERE id = $1", what.table), &[&id])
            .await
            .map_err(|e| in_use_on_race(e, what.kind, id))?;
        if deleted == 0 {
            return Err(StateError::not_found(what.kind, id));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// An activation created between the check and the delete makes the delete violate its foreign
/// key: that is the same "in use" as the check's.
fn in_use_on_race(err: tokio_postgres::Error, kind: &'static str, id: &str) -> StateError {
    if StateError::is_foreign_key_violation(&err) {
        StateError::InUse {
            kind,
            id: id.to_owned(),
            used_by: "an activation".into(),
        }
    } else {
        err.into()
    }
}
