//! Warehouses: tested before they are stored; passwords never come back.

use mixsync_proto::v1::{self, test_warehouse_request};
use tonic::Code;

use crate::common::Harness;

#[tokio::test]
async fn warehouses_are_tested_and_used_ones_cannot_be_deleted() {
    let h = Harness::start(None).await;
    let mut client = h.client().await;

    let mut unreachable = h.warehouse_spec("nope");
    unreachable.dsn = "postgres://postgres:hunter2@127.0.0.1:5432/no_such_database_x".into();
    let refused = client
        .create_warehouse(v1::CreateWarehouseRequest {
            warehouse: Some(unreachable),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("`connect` check"), "{refused:?}");
    assert!(
        refused.message().contains("no_such_database_x"),
        "{refused:?}"
    );
    assert!(!refused.message().contains("hunter2"));

    let mut spec = h.warehouse_spec("wh");
    spec.password = "pw-not-needed".into();
    let warehouse = client
        .create_warehouse(v1::CreateWarehouseRequest {
            warehouse: Some(spec),
        })
        .await
        .unwrap()
        .into_inner()
        .warehouse
        .unwrap();
    assert!(warehouse.has_password);
    assert!(!format!("{warehouse:?}").contains("pw-not-needed"));
    assert_eq!(
        warehouse.dsn,
        format!("postgres://postgres@127.0.0.1:5432/{}", h.db_name)
    );

    let report = client
        .test_warehouse(v1::TestWarehouseRequest {
            warehouse: Some(test_warehouse_request::Warehouse::Id(warehouse.id.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "{report:?}");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names[..3],
        ["connect", "tls", "read_only_transaction"],
        "{report:?}"
    );
    assert!(!report.server_version.is_empty());

    let target_id = client
        .create_target(v1::CreateTargetRequest {
            target: Some(h.target_spec("mp")),
        })
        .await
        .unwrap()
        .into_inner()
        .target
        .unwrap()
        .id;
    client
        .create_activation(v1::CreateActivationRequest {
            activation: Some(crate::common::activation_spec(&warehouse.id, &target_id)),
        })
        .await
        .unwrap();
    let in_use = client
        .delete_warehouse(v1::DeleteWarehouseRequest {
            id: warehouse.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(in_use.code(), Code::FailedPrecondition);
    assert!(
        in_use.message().contains("activation(s) signups"),
        "{in_use:?}"
    );
    h.stop().await;
}

/// A login role on the harness's database, dropped (with its grants) at the end of the test.
async fn make_role(h: &Harness, name: &str, grants: &str) -> tokio_postgres::Client {
    let (admin, connection) = tokio_postgres::connect(&h.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {name} LOGIN;
             GRANT CONNECT ON DATABASE \"{db}\" TO {name};
             GRANT USAGE ON SCHEMA public TO {name};
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name};
             {grants}",
            db = h.db_name
        ))
        .await
        .unwrap();
    admin
}

#[tokio::test]
async fn roles_that_can_do_more_than_read_are_warned_about_or_refused() {
    let h = Harness::start(None).await;
    let mut client = h.client().await;
    let role = format!("mixsync_ro_{}", mixsync_test_support::unique_suffix());
    let admin = make_role(&h, &role, "").await;
    let spec = |require: bool| v1::WarehouseSpec {
        name: "ro".into(),
        dsn: format!("postgres://{role}@127.0.0.1:5432/{}", h.db_name),
        require_read_only_role: require,
        ..Default::default()
    };
    let test = |spec: v1::WarehouseSpec| v1::TestWarehouseRequest {
        warehouse: Some(test_warehouse_request::Warehouse::Spec(spec)),
    };

    // SELECT only: the role check passes, nothing to warn about.
    let report = client
        .test_warehouse(test(spec(true)))
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "{report:?}");
    let check = report.checks.iter().find(|c| c.name == "role").unwrap();
    assert!(check.message.contains("can only read"), "{check:?}");
    assert!(report.warnings.is_empty(), "{report:?}");

    // A table it can write to: a warning naming it, or a refusal when required.
    admin
        .batch_execute(&format!("GRANT INSERT ON TABLE signups TO {role}"))
        .await
        .unwrap();
    let report = client
        .test_warehouse(test(spec(false)))
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report.warnings,
        [format!(
            "role `{role}` can write to 1 table(s) (e.g. public.signups): grant it SELECT only"
        )],
        "{report:?}"
    );
    let report = client
        .test_warehouse(test(spec(true)))
        .await
        .unwrap()
        .into_inner();
    assert!(!report.ok, "{report:?}");
    let check = report.checks.iter().find(|c| c.name == "role").unwrap();
    assert!(
        !check.ok && check.message.contains("can write to 1 table(s)"),
        "{check:?}"
    );
    let refused = client
        .create_warehouse(v1::CreateWarehouseRequest {
            warehouse: Some(spec(true)),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("`role` check")
            && refused.message().contains("require_read_only_role"),
        "{refused:?}"
    );
    let created = client
        .create_warehouse(v1::CreateWarehouseRequest {
            warehouse: Some(spec(false)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.warnings.len(), 1, "{created:?}");

    // Functions that read server files.
    admin
        .batch_execute(&format!(
            "REVOKE INSERT ON TABLE signups FROM {role};
             GRANT EXECUTE ON FUNCTION pg_read_file(text) TO {role};"
        ))
        .await
        .unwrap();
    let report = client
        .test_warehouse(test(spec(false)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("can execute pg_read_file")),
        "{report:?}"
    );

    // The harness's own role is a superuser.
    let report = client
        .test_warehouse(test(h.warehouse_spec("su")))
        .await
        .unwrap()
        .into_inner();
    assert!(
        report.warnings.iter().any(|w| w.contains("is a superuser")),
        "{report:?}"
    );

    client
        .delete_warehouse(v1::DeleteWarehouseRequest {
            id: created.warehouse.unwrap().id,
        })
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "REVOKE EXECUTE ON FUNCTION pg_read_file(text) FROM {role};
             DROP OWNED BY {role}; DROP ROLE {role};"
        ))
        .await
        .unwrap();
    h.stop().await;
}
