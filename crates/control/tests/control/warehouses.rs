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
