//! What the warehouse role could do besides reading (`docs/security.md`, "The warehouse
//! role"): activation queries run in `READ ONLY` transactions, but a role that is a superuser,
//! can write tables, or can call functions that reach outside the database (`dblink`,
//! `pg_read_file`, server-side large objects, …) is more than a reverse-ETL tool needs, and a
//! leaked warehouse password would carry all of that.

use tokio_postgres::Client;

use super::{Warehouse, WarehouseError, pg};

/// Functions that read server files, run programs or open connections elsewhere.
const REACHING_FUNCTIONS: &[&str] = &[
    "dblink",
    "dblink_connect",
    "dblink_connect_u",
    "dblink_exec",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "lo_import",
    "lo_export",
];

/// Predefined roles that grant the same reach.
const REACHING_ROLES: &[&str] = &[
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
];

/// What the connected role may do beyond reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleReport {
    /// The role (`current_user`).
    pub role: String,
    /// Whether it is a superuser.
    pub superuser: bool,
    /// Tables (outside the system schemas) it may insert into, update, delete from or truncate.
    pub writable_tables: i64,
    /// One of them, for the message.
    pub writable_example: Option<String>,
    /// Functions of [`REACHING_FUNCTIONS`] it may execute.
    pub functions: Vec<String>,
    /// Predefined roles of [`REACHING_ROLES`] it is a member of.
    pub server_roles: Vec<String>,
}

impl RoleReport {
    /// Each thing the role could do beyond reading, in words; empty for a read-only role.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.superuser {
            out.push(format!(
                "role `{}` is a superuser: it can change any data and read server files",
                self.role
            ));
            // Everything below follows from it.
            return out;
        }
        if self.writable_tables > 0 {
            out.push(format!(
                "role `{}` can write to {} table(s) (e.g. {}): grant it SELECT only",
                self.role,
                self.writable_tables,
                self.writable_example.as_deref().unwrap_or("?")
            ));
        }
        if !self.functions.is_empty() {
            out.push(format!(
                "role `{}` can execute {}: these reach outside the database; revoke EXECUTE",
                self.role,
                self.functions.join(", ")
            ));
        }
        if !self.server_roles.is_empty() {
            out.push(format!(
                "role `{}` is a member of {}: revoke it",
                self.role,
                self.server_roles.join(", ")
            ));
        }
        out
    }
}

impl Warehouse {
    /// What the connected role may do beyond reading. Read-only queries against the catalog,
    /// in their own read-only transaction.
    pub async fn role(&self) -> Result<RoleReport, WarehouseError> {
        let mut client = self.client.lock().await;
        role_report(&mut client).await
    }
}

async fn role_report(client: &mut Client) -> Result<RoleReport, WarehouseError> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(pg)?;
    let functions: Vec<String> = REACHING_FUNCTIONS.iter().map(|f| (*f).to_owned()).collect();
    let roles: Vec<String> = REACHING_ROLES.iter().map(|r| (*r).to_owned()).collect();
    let row = tx
        .query_one(
            "WITH writable AS (
                 SELECT format('%I.%I', n.nspname, c.relname) AS name
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p')
                    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                    AND n.nspname NOT LIKE 'pg\\_toast%'
                    AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
                         OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))
             )
             SELECT current_user::text,
                    (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
                    (SELECT count(*) FROM writable),
                    (SELECT min(name) FROM writable),
                    coalesce((SELECT array_agg(DISTINCT p.proname::text ORDER BY p.proname::text)
                                FROM pg_proc p
                               WHERE p.proname = ANY($1::text[])
                                 AND has_function_privilege(p.oid, 'EXECUTE')), '{}'),
                    coalesce((SELECT array_agg(r.rolname::text ORDER BY r.rolname::text)
                                FROM pg_roles r
                               WHERE r.rolname = ANY($2::text[])
                                 AND pg_has_role(current_user, r.oid, 'MEMBER')), '{}')",
            &[&functions, &roles],
        )
        .await
        .map_err(pg)?;
    let report = RoleReport {
        role: row.try_get(0).map_err(pg)?,
        superuser: row
            .try_get::<_, Option<bool>>(1)
            .map_err(pg)?
            .unwrap_or(false),
        writable_tables: row.try_get(2).map_err(pg)?,
        writable_example: row.try_get(3).map_err(pg)?,
        functions: row.try_get(4).map_err(pg)?,
        server_roles: row.try_get(5).map_err(pg)?,
    };
    tx.rollback().await.map_err(pg)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RoleReport {
        RoleReport {
            role: "reader".into(),
            superuser: false,
            writable_tables: 0,
            writable_example: None,
            functions: Vec::new(),
            server_roles: Vec::new(),
        }
    }

    #[test]
    fn a_read_only_role_has_no_problems_and_each_power_is_named() {
        assert!(report().problems().is_empty());
        let r = RoleReport {
            writable_tables: 2,
            writable_example: Some("public.orders".into()),
            functions: vec!["dblink".into(), "pg_read_file".into()],
            server_roles: vec!["pg_read_server_files".into()],
            ..report()
        };
        assert_eq!(
            r.problems(),
            [
                "role `reader` can write to 2 table(s) (e.g. public.orders): grant it SELECT only",
                "role `reader` can execute dblink, pg_read_file: these reach outside the database; revoke EXECUTE",
                "role `reader` is a member of pg_read_server_files: revoke it",
            ]
        );
        let su = RoleReport {
            superuser: true,
            ..r
        };
        assert_eq!(su.problems().len(), 1);
        assert!(su.problems()[0].contains("is a superuser"));
    }
}
