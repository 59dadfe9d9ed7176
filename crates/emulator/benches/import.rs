//! The emulator must never be the bottleneck: `/import` of gzip'd 2000-event batches of ~300-byte events,
//! through the whole HTTP service (routing, auth, gunzip, split, validate, dedup, store), on one core.
//!
//! Run: `cargo bench -p mixsync-emulator --bench import`

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, header};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::{Compression, write::GzEncoder};
use mixsync_emulator::{Config, RateLimitConfig, router};
use tower::ServiceExt;

const EVENTS_PER_BATCH: usize = 2000;
const BATCHES: usize = 50;

fn event(batch: usize, i: usize) -> String {
    let n = batch * EVENTS_PER_BATCH + i;
    format!(
        concat!(
            r#"{{"event":"Page Viewed","properties":{{"time":{},"distinct_id":"user-{:08}","#,
            r#""$insert_id":"{:08x}-0000-4000-8000-{:012x}","ip":0,"page":"/products/{}/details","#,
            r#""referrer":"https://www.example.com/search?q=item{}","plan":"pro","amount":{}.5,"#,
            r#""browser":"Chrome","country":"DE","session_id":"s-{:010}","experiment":"checkout-v2"}}}}"#
        ),
        1_700_000_000_000u64 + n as u64,
        n % 50_000,
        n,
        n,
        n % 997,
        n % 31,
        n % 250,
        n / 7,
    )
}

fn gzip_batch(batch: usize) -> (Vec<u8>, usize) {
    let events: Vec<String> = (0..EVENTS_PER_BATCH).map(|i| event(batch, i)).collect();
    let json = format!("[{}]", events.join(","));
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(json.as_bytes()).expect("gzip in memory");
    (gz.finish().expect("gzip in memory"), json.len())
}

fn bench_import(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = Config {
        rate_limit: RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        },
        ..Config::demo()
    };
    let app = router(&config);
    let batches: Vec<(Vec<u8>, usize)> = (0..BATCHES).map(gzip_batch).collect();
    let raw_bytes: usize = batches.iter().map(|b| b.1).sum();
    eprintln!(
        "average event size: {} bytes; average gzip batch: {} bytes",
        raw_bytes / (BATCHES * EVENTS_PER_BATCH),
        batches.iter().map(|b| b.0.len()).sum::<usize>() / BATCHES
    );
    let mut group = c.benchmark_group("emulator");
    group.throughput(Throughput::Elements(EVENTS_PER_BATCH as u64));
    group.sample_size(30);
    let mut next = 0usize;
    group.bench_function("import_gzip_2000_events", |b| {
        b.iter(|| {
            let body = batches[next % BATCHES].0.clone();
            next += 1;
            let request = Request::post("/import?strict=1&project_id=1")
                .header(header::AUTHORIZATION, "Basic ZGVtby1zYTpkZW1vLXNlY3JldA==")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(body))
                .expect("request");
            let response = runtime
                .block_on(app.clone().oneshot(request))
                .expect("infallible");
            assert_eq!(response.status(), 200);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_import);
criterion_main!(benches);
