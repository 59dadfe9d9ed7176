//! User and group profile activations: identifiers, sync behaviour and operations validated with
//! errors naming the field; previews show the exact update objects a run sends.

use mixsync_proto::v1::{self, field_source, preview_activation_request};
use tokio_postgres::NoTls;
use tonic::Code;

use crate::common::{Harness, activation_spec, column};

/// `users` and `companies` tables next to the harness's `signups`.
async fn seed_profiles(h: &Harness) {
    let (client, connection) = tokio_postgres::connect(&h.db_url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE users (id text, email text, name text, logins int, tags text[],
                                 plan text, phone text);
             INSERT INTO users VALUES
               ('u1', 'ada@example.com', 'Ada', 3, '{beta,early}', 'pro', NULL),
               (NULL, 'nobody@example.com', 'Nobody', 1, '{}', 'free', NULL),
               ('u3', 'bob@example.com', 'Bob', 0, NULL, 'free', '+15550100');
             CREATE TABLE companies (id bigint, name text, seats int, domains jsonb);
             INSERT INTO companies VALUES
               (1001, 'Acme', 12, '[\"acme.com\"]'),
               (NULL, 'Nameless', 1, NULL);",
        )
        .await
        .unwrap();
}

fn property(column: &str, property: &str, operation: v1::ProfileOperation) -> v1::PropertyMapping {
    v1::PropertyMapping {
        column: column.into(),
        property: property.into(),
        operation: operation.into(),
        unset_when_null: false,
    }
}

fn users_spec(warehouse_id: &str, target_id: &str) -> v1::ActivationSpec {
    v1::ActivationSpec {
        name: "users".into(),
        warehouse_id: warehouse_id.into(),
        target_id: target_id.into(),
        query: "SELECT id, email, name, logins, tags, plan, phone FROM users".into(),
        object: v1::MixpanelObject::UserProfiles.into(),
        sync_behaviour: v1::SyncBehaviour::Unspecified.into(),
        mapping: Some(v1::FieldMapping {
            distinct_id: column("id"),
            properties: vec![
                property("email", "$email", v1::ProfileOperation::Set),
                property("name", "$name", v1::ProfileOperation::SetOnce),
                property("logins", "logins", v1::ProfileOperation::Add),
                property("tags", "tags", v1::ProfileOperation::Union),
                v1::PropertyMapping {
                    unset_when_null: true,
                    ..property("phone", "$phone", v1::ProfileOperation::Unspecified)
                },
            ],
            ..Default::default()
        }),
        options: None,
        schedule: None,
    }
}

fn groups_spec(warehouse_id: &str, target_id: &str) -> v1::ActivationSpec {
    v1::ActivationSpec {
        name: "companies".into(),
        warehouse_id: warehouse_id.into(),
        target_id: target_id.into(),
        query: "SELECT id, name, seats, domains FROM companies".into(),
        object: v1::MixpanelObject::GroupProfiles.into(),
        sync_behaviour: v1::SyncBehaviour::Upsert.into(),
        mapping: Some(v1::FieldMapping {
            group_key: Some(v1::FieldSource {
                source: Some(field_source::Source::Constant("company_id".into())),
            }),
            group_id: column("id"),
            properties: vec![
                property("name", "$name", v1::ProfileOperation::Set),
                property("seats", "seats", v1::ProfileOperation::Add),
                property("domains", "domains", v1::ProfileOperation::Union),
            ],
            ..Default::default()
        }),
        options: Some(v1::ActivationOptions {
            ip_zero: Some(true),
            ignore_time: true,
            max_attempts: 0,
        }),
        schedule: None,
    }
}

async fn create(h: &Harness, spec: v1::ActivationSpec) -> Result<v1::Activation, tonic::Status> {
    h.client()
        .await
        .create_activation(v1::CreateActivationRequest {
            activation: Some(spec),
        })
        .await
        .map(|r| r.into_inner().activation.unwrap())
}

async fn create_error(h: &Harness, spec: v1::ActivationSpec) -> String {
    let err = create(h, spec).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    err.message().to_owned()
}

fn props(spec: &mut v1::ActivationSpec) -> &mut Vec<v1::PropertyMapping> {
    &mut spec.mapping.as_mut().unwrap().properties
}

#[tokio::test]
async fn user_profile_activations_are_validated() {
    let h = Harness::start(None).await;
    seed_profiles(&h).await;
    let (w, t) = h.warehouse_and_target().await;

    let mut spec = users_spec(&w, &t);
    spec.sync_behaviour = v1::SyncBehaviour::Insert.into();
    assert_eq!(
        create_error(&h, spec).await,
        "activation.sync_behaviour: INSERT does not fit user_profiles; user_profiles support UPSERT only"
    );

    let mut spec = users_spec(&w, &t);
    spec.mapping.as_mut().unwrap().distinct_id = None;
    assert_eq!(
        create_error(&h, spec).await,
        "mapping.distinct_id: the user_profiles mapping is missing `distinct_id`; map a column to each"
    );

    let mut spec = users_spec(&w, &t);
    spec.mapping.as_mut().unwrap().distinct_id = Some(v1::FieldSource {
        source: Some(field_source::Source::Derive(v1::DerivedSource {
            columns: vec!["email".into()],
        })),
    });
    assert!(
        create_error(&h, spec)
            .await
            .starts_with("mapping.distinct_id: `distinct_id` cannot be derived"),
    );

    let mut spec = users_spec(&w, &t);
    props(&mut spec)[2].column = "plan".into();
    assert_eq!(
        create_error(&h, spec).await,
        "mapping.properties[2].column: `$add` takes numbers, but column `plan` is text; map a numeric column or use `$set`"
    );

    let mut spec = users_spec(&w, &t);
    props(&mut spec)[3].column = "logins".into();
    assert_eq!(
        create_error(&h, spec).await,
        "mapping.properties[3].column: `$union` takes lists, but column `logins` is int4; map an array or json column or use `$set`"
    );

    let mut spec = users_spec(&w, &t);
    props(&mut spec)[0].property = "$distinct_id".into();
    assert!(
        create_error(&h, spec)
            .await
            .starts_with("mapping.properties[0].property: `$distinct_id` is an update key"),
    );

    let mut spec = users_spec(&w, &t);
    spec.mapping.as_mut().unwrap().event_name = column("name");
    assert_eq!(
        create_error(&h, spec).await,
        "mapping.event_name: `event_name` does not apply to user_profiles; remove it from the mapping"
    );

    // Events take no profile operations.
    let mut spec = activation_spec(&w, &t);
    props(&mut spec)[0].operation = v1::ProfileOperation::Add.into();
    assert_eq!(
        create_error(&h, spec).await,
        "mapping.properties[0].operation: property `plan` sets `operation`, which applies to profiles only; remove it for events"
    );

    let created = create(&h, users_spec(&w, &t)).await.unwrap();
    assert_eq!(created.object(), v1::MixpanelObject::UserProfiles);
    assert_eq!(created.sync_behaviour(), v1::SyncBehaviour::Upsert);
    let mapping = created.mapping.unwrap();
    assert_eq!(mapping.properties[2].operation(), v1::ProfileOperation::Add);
    assert!(mapping.properties[4].unset_when_null);
    h.stop().await;
}

#[tokio::test]
async fn group_profile_activations_are_validated() {
    let h = Harness::start(None).await;
    seed_profiles(&h).await;
    let (w, t) = h.warehouse_and_target().await;

    let mut spec = groups_spec(&w, &t);
    spec.mapping.as_mut().unwrap().group_id = Some(v1::FieldSource {
        source: Some(field_source::Source::Constant("acme".into())),
    });
    assert_eq!(
        create_error(&h, spec).await,
        "mapping.group_id: `group_id` must be a column: each row is one group"
    );

    let mut spec = groups_spec(&w, &t);
    spec.mapping.as_mut().unwrap().group_key = None;
    assert!(
        create_error(&h, spec)
            .await
            .starts_with("mapping.group_key: the group_profiles mapping is missing `group_key`"),
    );

    let mut spec = groups_spec(&w, &t);
    props(&mut spec)[0].operation = v1::ProfileOperation::Append.into();
    assert!(create_error(&h, spec).await.starts_with(
        "mapping.properties[0].operation: `$append` is not documented for group_profiles"
    ),);

    let mut spec = groups_spec(&w, &t);
    spec.sync_behaviour = v1::SyncBehaviour::Insert.into();
    assert!(
        create_error(&h, spec)
            .await
            .starts_with("activation.sync_behaviour: INSERT does not fit group_profiles"),
    );

    // A column as group key works too.
    let mut spec = groups_spec(&w, &t);
    spec.name = "companies by name".into();
    spec.mapping.as_mut().unwrap().group_key = column("name");
    create(&h, spec).await.unwrap();

    let created = create(&h, groups_spec(&w, &t)).await.unwrap();
    assert_eq!(created.object(), v1::MixpanelObject::GroupProfiles);
    assert!(created.options.unwrap().ignore_time);
    h.stop().await;
}

async fn preview(h: &Harness, spec: v1::ActivationSpec) -> v1::PreviewActivationResponse {
    h.client()
        .await
        .preview_activation(v1::PreviewActivationRequest {
            activation: Some(preview_activation_request::Activation::Spec(spec)),
            limit: 10,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn previews_show_profile_updates() {
    let h = Harness::start(None).await;
    seed_profiles(&h).await;
    let (w, t) = h.warehouse_and_target().await;

    let users = preview(&h, users_spec(&w, &t)).await;
    assert_eq!(users.rows.len(), 3);
    let first = &users.rows[0];
    assert!(first.errors.is_empty(), "{first:?}");
    assert_eq!(
        first.record_json,
        concat!(
            r#"[{"$token":"<project token>","$distinct_id":"u1","$set":{"$email":"ada@example.com"},"$ip":"0"},"#,
            r#"{"$token":"<project token>","$distinct_id":"u1","$set_once":{"$name":"Ada"},"$ip":"0"},"#,
            r#"{"$token":"<project token>","$distinct_id":"u1","$add":{"logins":3},"$ip":"0"},"#,
            r#"{"$token":"<project token>","$distinct_id":"u1","$union":{"tags":["beta","early"]},"$ip":"0"},"#,
            r#"{"$token":"<project token>","$distinct_id":"u1","$unset":["$phone"],"$ip":"0"}]"#,
        )
    );
    let missing = &users.rows[1];
    assert!(missing.record_json.is_empty());
    assert_eq!(missing.errors.len(), 1, "{missing:?}");
    let e = &missing.errors[0];
    assert_eq!(
        (e.field.as_str(), e.column.as_str(), e.rule.as_str()),
        ("$distinct_id", "id", "required")
    );
    assert_eq!(
        e.message,
        "row 2, column `id`: `$distinct_id` is invalid: it is null; every user profile update needs one"
    );
    let third: serde_json::Value = serde_json::from_str(&users.rows[2].record_json).unwrap();
    assert_eq!(third[0]["$set"]["$phone"], "+15550100");
    assert!(
        third
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("$union").is_none()),
        "a NULL list is left out: {third}"
    );

    let groups = preview(&h, groups_spec(&w, &t)).await;
    assert_eq!(
        groups.rows[0].record_json,
        concat!(
            r#"[{"$token":"<project token>","$group_key":"company_id","$group_id":"1001","$set":{"$name":"Acme"},"$ignore_time":true},"#,
            r#"{"$token":"<project token>","$group_key":"company_id","$group_id":"1001","$add":{"seats":12},"$ignore_time":true},"#,
            r#"{"$token":"<project token>","$group_key":"company_id","$group_id":"1001","$union":{"domains":["acme.com"]},"$ignore_time":true}]"#,
        )
    );
    let e = &groups.rows[1].errors[0];
    assert_eq!(
        (e.field.as_str(), e.column.as_str(), e.rule.as_str()),
        ("$group_id", "id", "required")
    );
    assert!(
        !groups.rows[0].record_json.contains("demo-token"),
        "the project token never leaves control"
    );
    h.stop().await;
}
