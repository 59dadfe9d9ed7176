//! Mapping a 500-row batch (the extractor's default batch) into event JSON.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mixsync_domain::{FieldMapping, ProfileOperation, PropertyMapping, Source, Value};
use mixsync_mapper::{EventMapper, EventOptions, map_event};
use serde_json::json;

const ROWS: usize = 500;
const NOW: i64 = 1_700_000_000_000;

fn columns() -> Vec<String> {
    [
        "id", "event", "ts", "user_id", "plan", "amount", "country", "meta",
    ]
    .map(String::from)
    .to_vec()
}

fn mapping() -> FieldMapping {
    let property = |column: &str| PropertyMapping {
        column: column.into(),
        property: column.into(),
        operation: ProfileOperation::Set,
        unset_when_null: false,
    };
    FieldMapping {
        event_name: Some(Source::Column("event".into())),
        time: Some(Source::Column("ts".into())),
        distinct_id: Some(Source::Column("user_id".into())),
        insert_id: Some(Source::Derive {
            columns: vec!["id".into()],
        }),
        properties: ["plan", "amount", "country", "meta"].map(property).to_vec(),
        ..FieldMapping::default()
    }
}

fn rows() -> Vec<Vec<Value>> {
    (0..ROWS as i64)
        .map(|i| {
            vec![
                Value::Int(i),
                Value::from(if i % 3 == 0 { "Signed Up" } else { "Purchase" }),
                Value::Timestamp {
                    ms: NOW - 86_400_000 + i * 1000,
                },
                Value::Text(format!("user-{}", i % 97)),
                Value::from("pro"),
                Value::Numeric(format!("{}.{:02}", i * 3, i % 100)),
                Value::from("FR"),
                Value::Json(json!({"source": "ads", "campaign": i % 7})),
            ]
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let (mapping, options, columns, rows) = (mapping(), EventOptions::default(), columns(), rows());
    let mut group = c.benchmark_group("map");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("event_mapper_500_rows", |b| {
        b.iter(|| {
            let mapper = EventMapper::new(&mapping, &options, &columns);
            for (i, row) in rows.iter().enumerate() {
                black_box(mapper.map(row, i as u64 + 1, NOW).unwrap());
            }
        });
    });
    group.bench_function("map_event_500_rows", |b| {
        b.iter(|| {
            for (i, row) in rows.iter().enumerate() {
                black_box(map_event(&mapping, &options, &columns, row, i as u64 + 1, NOW).unwrap());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
