use prost::Message as _;

use crate::v1::{self, value::Kind};

fn value(kind: Kind) -> v1::Value {
    v1::Value { kind: Some(kind) }
}

#[test]
fn row_batch_round_trips() {
    let batch = v1::RowBatch {
        run_id: "run-1".into(),
        activation_id: "act-1".into(),
        batch_id: "run-1-0".into(),
        seq: 0,
        columns: vec!["id".into(), "signup".into(), "tags".into(), "note".into()],
        rows: vec![v1::Row {
            values: vec![
                value(Kind::IntValue(i64::MAX)),
                value(Kind::TimestampMicros(1_700_000_000_000_000)),
                value(Kind::Array(v1::ValueList {
                    values: vec![
                        value(Kind::Text("a".into())),
                        value(Kind::Numeric("1.50".into())),
                    ],
                })),
                value(Kind::Null(prost_types::NullValue::NullValue.into())),
            ],
        }],
        first_row_number: 1,
        last: true,
        total_rows: 1,
        attempt: 2,
    };

    let bytes = batch.encode_to_vec();
    let decoded = v1::RowBatch::decode(bytes.as_slice()).unwrap();

    assert_eq!(decoded, batch);
}

#[test]
fn well_known_types_map_to_prost_types() {
    let mut row = prost_types::Struct::default();
    row.fields.insert(
        "email".into(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue(
                "a@example.com".into(),
            )),
        },
    );
    let record = v1::FailedRecord {
        id: "fr-1".into(),
        stage: v1::Stage::Load.into(),
        row: Some(row),
        created_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        ..Default::default()
    };

    let decoded = v1::FailedRecord::decode(record.encode_to_vec().as_slice()).unwrap();

    assert_eq!(decoded, record);
    assert_eq!(decoded.stage(), v1::Stage::Load);
}

#[test]
fn descriptor_set_holds_control_service_and_imports() {
    let fds = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();

    let services: Vec<String> = fds
        .file
        .iter()
        .flat_map(|file| {
            file.service
                .iter()
                .map(move |service| format!("{}.{}", file.package(), service.name()))
        })
        .collect();
    assert_eq!(services, ["mixsync.v1.Control"]);

    let files: Vec<&str> = fds.file.iter().map(|file| file.name()).collect();
    for expected in [
        "mixsync/v1/common.proto",
        "mixsync/v1/control.proto",
        "mixsync/v1/pipeline.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/struct.proto",
    ] {
        assert!(
            files.contains(&expected),
            "{expected} missing from {files:?}"
        );
    }
}
