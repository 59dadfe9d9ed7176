//! Encoding and gzip of one full `/import` request: 2000 events of about 300 bytes.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mixsync_loader::encoder::gzip;
use mixsync_loader::objects::events::encode;

fn events(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            Bytes::from(format!(
                r#"{{"event":"Order Completed","properties":{{"time":1732780800{i:03},"distinct_id":"user-{i}","$insert_id":"a1b2c3d4-e5f6-4a7b-8c9d-{i:012}","ip":0,"plan":"enterprise","amount":{i}.5,"currency":"EUR","coupon":null,"items":["sku-1","sku-2"],"country":"DE","channel":"email","campaign":"winter-sale-2026"}}}}"#
            ))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let records = events(2000);
    let bytes: usize = records.iter().map(Bytes::len).sum();
    let mut group = c.benchmark_group("import_request");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("encode", |b| b.iter(|| encode(&records)));
    group.bench_function("encode_gzip", |b| {
        b.iter(|| gzip(&encode(&records)).expect("gzip into memory"))
    });
    group.finish();
    eprintln!("2000 events, {bytes} bytes of JSON");
}

criterion_group!(benches, bench);
criterion_main!(benches);
