//! Activations: validated against the warehouse with errors naming the field; previews map
//! rows exactly as a run would.

use mixsync_proto::v1::{self, field_source, preview_activation_request};
use tonic::Code;

use crate::common::{Harness, activation_spec, column};

async fn create_error(h: &Harness, spec: v1::ActivationSpec) -> tonic::Status {
    h.client()
        .await
        .create_activation(v1::CreateActivationRequest {
            activation: Some(spec),
        })
        .await
        .unwrap_err()
}

#[tokio::test]
async fn activation_errors_name_the_field() {
    let h = Harness::start(None).await;
    let (w, t) = h.warehouse_and_target().await;

    let mut spec = activation_spec(&w, &t);
    spec.mapping.as_mut().unwrap().time = column("created_at");
    let err = create_error(&h, spec).await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "mapping.time: column `created_at` is not in the query's columns (id, user_id, ts, plan)"
    );

    let mut spec = activation_spec(&w, &t);
    spec.mapping.as_mut().unwrap().distinct_id = None;
    let err = create_error(&h, spec).await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("mapping.distinct_id: "),
        "{err:?}"
    );

    let mut spec = activation_spec(&w, &t);
    spec.mapping.as_mut().unwrap().insert_id = Some(v1::FieldSource {
        source: Some(field_source::Source::Derive(v1::DerivedSource {
            columns: vec!["id".into(), "nope".into()],
        })),
    });
    let err = create_error(&h, spec).await;
    assert!(
        err.message()
            .starts_with("mapping.insert_id.derive: column `nope`"),
        "{err:?}"
    );

    let mut spec = activation_spec(&w, &t);
    spec.sync_behaviour = v1::SyncBehaviour::Upsert.into();
    let err = create_error(&h, spec).await;
    assert!(
        err.message().starts_with("activation.sync_behaviour:"),
        "{err:?}"
    );

    let mut spec = activation_spec(&w, &t);
    spec.query = "SELECT id, user_id, ts FROM no_such_table".into();
    let err = create_error(&h, spec).await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("activation.query: "), "{err:?}");
    assert!(err.message().contains("no_such_table"), "{err:?}");

    let spec = activation_spec("no-such-warehouse", &t);
    let err = create_error(&h, spec).await;
    assert_eq!(
        err.message(),
        "activation.warehouse_id: warehouse `no-such-warehouse` does not exist"
    );

    // The query is only prepared: a statement that would write is never executed.
    let mut spec = activation_spec(&w, &t);
    spec.name = "deleting".into();
    spec.query = "DELETE FROM signups RETURNING id, user_id, ts, plan".into();
    let _ = h
        .client()
        .await
        .create_activation(v1::CreateActivationRequest {
            activation: Some(spec),
        })
        .await;
    let rows = h
        .client()
        .await
        .preview_activation(v1::PreviewActivationRequest {
            activation: Some(preview_activation_request::Activation::Spec(
                activation_spec(&w, &t),
            )),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 3, "the table still holds every row");

    let created = h
        .client()
        .await
        .create_activation(v1::CreateActivationRequest {
            activation: Some(activation_spec(&w, &t)),
        })
        .await
        .unwrap()
        .into_inner()
        .activation
        .unwrap();
    assert_eq!(created.sync_behaviour(), v1::SyncBehaviour::Insert);
    assert_eq!(created.options.unwrap().ip_zero, Some(true));
    h.stop().await;
}

#[tokio::test]
async fn preview_maps_rows_and_reports_row_errors() {
    let h = Harness::start(None).await;
    let activation_id = h.activation().await;
    let preview = h
        .client()
        .await
        .preview_activation(v1::PreviewActivationRequest {
            activation: Some(preview_activation_request::Activation::Id(activation_id)),
            limit: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.columns, ["id", "user_id", "ts", "plan"]);
    assert_eq!(preview.rows.len(), 3);

    let first = &preview.rows[0];
    assert_eq!(first.row_number, 1);
    assert!(first.errors.is_empty(), "{first:?}");
    let event: serde_json::Value = serde_json::from_str(&first.record_json).unwrap();
    assert_eq!(event["event"], "Signed Up");
    assert_eq!(event["properties"]["distinct_id"], "u1");
    assert_eq!(event["properties"]["time"], 1_704_164_645_000_i64);
    assert_eq!(event["properties"]["plan"], "pro");
    assert_eq!(event["properties"]["ip"], 0);
    assert_eq!(
        event["properties"]["$insert_id"].as_str().unwrap().len(),
        36
    );
    let row = first.row.as_ref().unwrap();
    assert!(row.fields.contains_key("user_id"));

    let bad = &preview.rows[2];
    assert!(bad.record_json.is_empty());
    assert_eq!(bad.errors[0].field, "distinct_id");
    assert_eq!(bad.errors[0].column, "user_id");
    assert_eq!(bad.errors[0].rule, "denied_value");
    h.stop().await;
}
