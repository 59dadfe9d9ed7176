//! CONTRACT.md, `POST /import` steps 2–6 (query, body, size, format, count), 8 (store) and 9 (answer).
//! The per-event rules of step 7 are in `contract_import_rules.rs`.

mod common;

use std::io::Write;

use common::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use mixsync_domain::rules::TruncateUnit;
use mixsync_emulator::Config;
use serde_json::{Value, json};

const TEN_MB: usize = 10_485_760;
const TWO_MIB: usize = 2_097_152;

fn config_with_max_bytes(max: usize) -> Config {
    let mut config = config();
    config.limits.max_import_bytes = max;
    config
}

/// A valid JSON array of exactly `len` bytes: one event, padded with whitespace inside the array.
fn padded_body(len: usize, insert_id: &str) -> Vec<u8> {
    let event = serde_json::to_vec(&event("Padded", "u1", insert_id)).unwrap();
    assert!(len >= event.len() + 2);
    let mut body = b"[".to_vec();
    body.extend(&event);
    body.resize(len - 1, b' ');
    body.push(b']');
    assert_eq!(body.len(), len);
    body
}

fn strict_400_message(error: &str) -> String {
    format!(r#"{{"code":400,"error":"{error}","status":"Bad Request"}}"#)
}

// ---- step 2: query ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_without_strict_is_strict() {
    let emu = Emu::start().await;
    let bad = without_prop(event("B", "u2", "s-2"), "time");
    let resp = emu
        .post("/import")
        .token()
        .json(&json!([event("A", "u1", "s-1"), bad]))
        .send()
        .await;
    resp.assert(
        400,
        &strict_failure(
            vec![failure(
                1,
                Some("s-2"),
                "properties.time",
                "'properties.time' must be specified",
            )],
            1,
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_strict_0_drops_invalid_events_silently() {
    let emu = Emu::start().await;
    let good = event("A", "u1", "ns-1");
    let bad = without_prop(event("B", "u2", "ns-2"), "time");
    let resp = emu
        .post("/import?strict=0")
        .token()
        .json(&json!([bad.clone(), good.clone(), bad]))
        .send()
        .await;
    resp.assert_raw(
        200,
        r#"{"code":200,"num_records_imported":1,"status":"OK"}"#,
    );
    assert_eq!(emu.event_list(1).await, vec![good]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_strict_value_other_than_0_or_1() {
    let emu = Emu::start().await;
    for strict in ["true", "2", "", "yes", "01"] {
        let resp = emu
            .post(&format!("/import?strict={strict}"))
            .token()
            .json(&json!([event("A", "u1", "q-1")]))
            .send()
            .await;
        resp.assert_raw(
            400,
            &strict_400_message("'strict' is invalid: must be 0 or 1"),
        );
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_ignores_verbose_ip_and_unknown_parameters() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import?strict=1&verbose=1&ip=0&foo=bar&verbose=2")
        .token()
        .json(&json!([event("A", "u1", "v-1"), event("A", "u1", "v-2")]))
        .send()
        .await;
    resp.assert_raw(
        200,
        r#"{"code":200,"num_records_imported":2,"status":"OK"}"#,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_checks_the_query_before_the_body() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import?strict=x")
        .token()
        .header("content-encoding", "gzip")
        .body(b"definitely not gzip".to_vec())
        .send()
        .await;
    resp.assert_raw(
        400,
        &strict_400_message("'strict' is invalid: must be 0 or 1"),
    );
}

// ---- step 3: body encoding ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_decompresses_gzip() {
    let emu = Emu::start().await;
    let batch = events(3, "gz");
    let resp = emu
        .post("/import?strict=1")
        .token()
        .json(&json!(batch))
        .gzip()
        .send()
        .await;
    resp.assert(200, &import_ok(3));
    assert_eq!(emu.event_list(1).await, batch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_identity_encoding() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import")
        .token()
        .header("content-encoding", "identity")
        .json(&json!(events(2, "id")))
        .send()
        .await;
    resp.assert(200, &import_ok(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_bad_gzip() {
    let emu = Emu::start().await;
    let mut truncated = gzip(&serde_json::to_vec(&json!(events(50, "bad-gz"))).unwrap());
    truncated.truncate(truncated.len() / 2);
    for body in [
        b"[{\"event\":\"plain json\"}]".to_vec(),
        truncated,
        b"\x1f\x8b\x08garbage".to_vec(),
    ] {
        let resp = emu
            .post("/import")
            .token()
            .header("content-encoding", "gzip")
            .content_type("application/json")
            .body(body)
            .send()
            .await;
        resp.assert_raw(
            400,
            r#"{"code":400,"error":"unable to decompress request body: invalid gzip data","status":"Bad Request"}"#,
        );
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_other_content_encodings_with_415() {
    let emu = Emu::start().await;
    for encoding in ["br", "deflate", "compress", "zstd"] {
        let resp = emu
            .post("/import")
            .token()
            .header("content-encoding", encoding)
            .json(&json!(events(1, encoding)))
            .send()
            .await;
        resp.assert_raw(
            415,
            &format!(
                r#"{{"code":415,"error":"unsupported content encoding '{encoding}'","status":"Unsupported Media Type"}}"#
            ),
        );
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_stops_decompressing_a_gzip_bomb_at_the_byte_limit() {
    let emu = Emu::start_with(config_with_max_bytes(TWO_MIB)).await;
    // 8 MiB of whitespace inside an array compresses to about 8 KB: four times the limit.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(b"[").unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..8 {
        encoder.write_all(&spaces).unwrap();
    }
    encoder.write_all(b"]").unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let resp = emu
        .post("/import")
        .token()
        .content_type("application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await;
    resp.assert_raw(
        413,
        r#"{"code":413,"error":"request exceeds max limit of 2097152 bytes","status":"Request Entity Too Large"}"#,
    );
}

// ---- step 4: size ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_body_over_10_mb_with_413() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import")
        .token()
        .content_type("application/json")
        .body(padded_body(TEN_MB + 1, "big-1"))
        .send()
        .await;
    resp.assert_raw(
        413,
        r#"{"code":413,"error":"request exceeds max limit of 10485760 bytes","status":"Request Entity Too Large"}"#,
    );
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_a_body_of_exactly_10_mb() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import")
        .token()
        .content_type("application/json")
        .body(padded_body(TEN_MB, "big-2"))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_max_import_bytes_2097152_rejects_one_byte_more() {
    let emu = Emu::start_with(config_with_max_bytes(TWO_MIB)).await;
    let resp = emu
        .post("/import")
        .token()
        .content_type("application/json")
        .body(padded_body(TWO_MIB + 1, "two-1"))
        .send()
        .await;
    resp.assert_raw(
        413,
        r#"{"code":413,"error":"request exceeds max limit of 2097152 bytes","status":"Request Entity Too Large"}"#,
    );
    let resp = emu
        .post("/import")
        .token()
        .content_type("application/json")
        .body(padded_body(TWO_MIB, "two-2"))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
    assert_eq!(emu.event_list(1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_limits_the_uncompressed_size_of_a_gzip_body() {
    let emu = Emu::start_with(config_with_max_bytes(TWO_MIB)).await;
    let over = gzip(&padded_body(TWO_MIB + 1, "gz-over"));
    assert!(over.len() < TWO_MIB);
    let resp = emu
        .post("/import")
        .token()
        .header("content-encoding", "gzip")
        .body(over)
        .send()
        .await;
    resp.assert(
        413,
        &json!({"code":413,"error":"request exceeds max limit of 2097152 bytes","status":"Request Entity Too Large"}),
    );
    let resp = emu
        .post("/import")
        .token()
        .header("content-encoding", "gzip")
        .body(gzip(&padded_body(TWO_MIB, "gz-exact")))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_checks_the_size_before_the_format() {
    let emu = Emu::start_with(config_with_max_bytes(TWO_MIB)).await;
    let resp = emu
        .post("/import")
        .token()
        .content_type("application/json")
        .body(vec![b'x'; TWO_MIB + 1])
        .send()
        .await;
    assert_eq!(resp.status, 413, "{}", resp.text());
}

// ---- step 5: format ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reads_ndjson() {
    let emu = Emu::start().await;
    let batch = events(3, "nd");
    let mut body = b"\n".to_vec();
    body.extend(ndjson(&batch[..2]));
    body.extend(b"   \n\r\n");
    body.extend(serde_json::to_vec(&batch[2]).unwrap()); // last line without a newline
    let resp = emu
        .post("/import?strict=1")
        .token()
        .content_type("application/x-ndjson")
        .body(body)
        .send()
        .await;
    resp.assert(200, &import_ok(3));
    assert_eq!(emu.event_list(1).await, batch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reads_gzipped_ndjson() {
    let emu = Emu::start().await;
    let batch = events(4, "ndgz");
    let resp = emu
        .post("/import")
        .token()
        .ndjson(&batch)
        .gzip()
        .send()
        .await;
    resp.assert(200, &import_ok(4));
    assert_eq!(emu.event_list(1).await, batch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reads_a_json_array_whatever_the_content_type() {
    let emu = Emu::start().await;
    for (i, content_type) in [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        Some("application/octet-stream"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut req = emu.post("/import").token().body(
            serde_json::to_vec(&json!([
                event("A", "u", &format!("ct-{i}-a")),
                event("A", "u", &format!("ct-{i}-b"))
            ]))
            .unwrap(),
        );
        if let Some(content_type) = content_type {
            req = req.content_type(content_type);
        }
        req.send().await.assert(200, &import_ok(2));
    }
    assert_eq!(emu.event_list(1).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_body_that_is_not_a_json_array() {
    let emu = Emu::start().await;
    for body in [
        b"not json".to_vec(),
        b"[{\"event\":\"A\"".to_vec(),
        serde_json::to_vec(&event("A", "u", "obj-1")).unwrap(),
        b"\"a string\"".to_vec(),
        b"[1,2,]".to_vec(),
        ndjson(&events(2, "nd-as-json")),
    ] {
        let resp = emu
            .post("/import")
            .token()
            .content_type("application/json")
            .body(body.clone())
            .send()
            .await;
        assert_eq!(
            resp.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(&body),
            resp.text()
        );
        let json = resp.json();
        assert_eq!(json.as_object().unwrap().len(), 3, "{json}");
        assert_eq!(
            (&json["code"], &json["status"]),
            (&json!(400), &json!("Bad Request"))
        );
        let error = json["error"].as_str().unwrap();
        assert!(
            error.starts_with("unable to parse request body: "),
            "{error}"
        );
        assert!(
            error.len() > "unable to parse request body: ".len(),
            "{error}"
        );
        assert!(
            resp.text()
                .starts_with(r#"{"code":400,"error":"unable to parse request body: "#)
        );
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_bad_ndjson_naming_the_line() {
    let emu = Emu::start().await;
    let batch = events(2, "ndbad");
    let mut body = ndjson(&batch);
    body.extend(b"{\"event\": oops}\n");
    let resp = emu
        .post("/import")
        .token()
        .content_type("application/x-ndjson")
        .body(body)
        .send()
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    let json = resp.json();
    let error = json["error"].as_str().unwrap();
    assert!(
        error.starts_with("unable to parse request body: "),
        "{error}"
    );
    assert!(error.contains("line 3"), "{error}");
    assert_eq!(json["code"], json!(400));
    assert_eq!(json["status"], json!("Bad Request"));
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_an_empty_array_as_no_data() {
    let emu = Emu::start().await;
    let expected = strict_400_message("no data provided");
    emu.post("/import")
        .token()
        .content_type("application/json")
        .body(b"[]".to_vec())
        .send()
        .await
        .assert_raw(400, &expected);
    emu.post("/import")
        .token()
        .content_type("application/json")
        .body(b" [ ] ".to_vec())
        .send()
        .await
        .assert_raw(400, &expected);
    emu.post("/import")
        .token()
        .content_type("application/x-ndjson")
        .body(b"\n  \n\n".to_vec())
        .send()
        .await
        .assert_raw(400, &expected);
    emu.post("/import")
        .token()
        .content_type("application/x-ndjson")
        .body(Vec::new())
        .send()
        .await
        .assert_raw(400, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_ndjson_line_that_is_not_an_object_is_a_per_event_failure() {
    let emu = Emu::start().await;
    let good = event("A", "u", "ndv-1");
    let resp = emu
        .post("/import")
        .token()
        .ndjson(&[good.clone(), json!([1, 2]), json!("str")])
        .send()
        .await;
    let message = "event must be an object with 'event' and 'properties'";
    resp.assert(
        400,
        &strict_failure(
            vec![
                failure(1, None, "event", message),
                failure(2, None, "event", message),
            ],
            1,
        ),
    );
    assert_eq!(emu.event_list(1).await, vec![good]);
}

// ---- step 6: count ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_more_than_2000_events_and_stores_nothing() {
    let emu = Emu::start().await;
    let resp = emu.import(&events(2001, "many")).await;
    resp.assert_raw(
        400,
        &strict_400_message("too many records in request: 2001 (max 2000)"),
    );
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_exactly_2000_events() {
    let emu = Emu::start().await;
    emu.import_all(&events(2000, "max")).await;
    assert_eq!(emu.stored_events(1).await["total"], json!(2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_count_limit_follows_the_configuration_and_precedes_event_checks() {
    let mut config = config();
    config.limits.max_import_events = 5;
    let emu = Emu::start_with(config).await;
    let mut batch = events(5, "cfg");
    batch.push(json!("not an event"));
    emu.import(&batch)
        .await
        .assert(400, &json!({"code":400,"error":"too many records in request: 6 (max 5)","status":"Bad Request"}));
    emu.import_all(&batch[..5]).await;
}

// ---- step 8: store ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_stores_events_as_sent_in_order_of_arrival() {
    let emu = Emu::start().await;
    let first = with_prop(event("Signed Up", "u1", "st-1"), "plan", json!("pro"));
    let second = with_prop(
        event("Purchase", "u2", "st-2"),
        "items",
        json!([{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]),
    );
    let third = with_prop(event("Purchase", "u1", "st-3"), "amount", json!(9.5));
    emu.import_all(&[first.clone(), second.clone()]).await;
    emu.import_all(std::slice::from_ref(&third)).await;
    assert_eq!(
        emu.stored_events(1).await,
        json!({"project_id": 1, "total": 3, "events": [first, second, third]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_truncates_long_strings_to_255_bytes() {
    let emu = Emu::start().await;
    let long_name = "k".repeat(300);
    let mut ev = event(&"E".repeat(300), "u1", "tr-1");
    ev = with_prop(ev, "ascii", json!("a".repeat(300)));
    ev = with_prop(ev, "exact", json!("b".repeat(255)));
    ev = with_prop(ev, &long_name, json!("v"));
    ev = with_prop(
        ev,
        "nested",
        json!({"inner": "c".repeat(300), "list": ["d".repeat(300)]}),
    );
    emu.import_all(&[ev]).await;
    let stored = emu.event_list(1).await.remove(0);
    assert_eq!(stored["event"], json!("E".repeat(255)));
    let props = &stored["properties"];
    assert_eq!(props["ascii"], json!("a".repeat(255)));
    assert_eq!(props["exact"], json!("b".repeat(255)));
    assert_eq!(props[&"k".repeat(255)], json!("v"));
    assert!(props.get(&long_name).is_none());
    assert_eq!(
        props["nested"],
        json!({"inner": "c".repeat(255), "list": ["d".repeat(255)]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_truncates_on_a_char_boundary_in_bytes_mode() {
    let emu = Emu::start().await;
    let mut ev = event("E", "u1", "tb-1");
    ev = with_prop(
        ev,
        "mixed",
        json!(format!("{}é{}", "a".repeat(254), "z".repeat(10))),
    );
    ev = with_prop(ev, "accents", json!("é".repeat(300)));
    ev = with_prop(ev, "emoji", json!("😀".repeat(100)));
    emu.import_all(&[ev]).await;
    let props = emu.event_list(1).await.remove(0)["properties"].clone();
    // 254 + 2 bytes would be 256: the é is dropped whole.
    assert_eq!(props["mixed"], json!("a".repeat(254)));
    assert_eq!(props["accents"], json!("é".repeat(127)));
    assert_eq!(props["emoji"], json!("😀".repeat(63)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_truncates_to_255_chars_in_chars_mode() {
    let mut config = config();
    config.limits.truncate = TruncateUnit::Chars;
    let emu = Emu::start_with(config).await;
    let mut ev = event(&"é".repeat(300), "u1", "tc-1");
    ev = with_prop(ev, "accents", json!("é".repeat(300)));
    ev = with_prop(ev, "emoji", json!("😀".repeat(300)));
    ev = with_prop(ev, "ascii", json!("a".repeat(300)));
    ev = with_prop(ev, "short", json!("é".repeat(200)));
    ev = with_prop(ev, &"ñ".repeat(256), json!(1));
    emu.import_all(&[ev]).await;
    let stored = emu.event_list(1).await.remove(0);
    assert_eq!(stored["event"], json!("é".repeat(255)));
    let props = &stored["properties"];
    assert_eq!(props["accents"], json!("é".repeat(255)));
    assert_eq!(props["emoji"], json!("😀".repeat(255)));
    assert_eq!(props["ascii"], json!("a".repeat(255)));
    assert_eq!(props["short"], json!("é".repeat(200)));
    assert_eq!(props[&"ñ".repeat(255)], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_clamps_a_time_less_than_an_hour_ahead_to_now_in_seconds() {
    let emu = Emu::start().await;
    let before = now_s();
    emu.import_all(&[with_prop(
        event("E", "u1", "fut-s"),
        "time",
        json!(before + 1800),
    )])
    .await;
    let after = now_s();
    let time = emu.event_list(1).await[0]["properties"]["time"]
        .as_i64()
        .unwrap();
    assert!(
        (before..=after).contains(&time),
        "{before} <= {time} <= {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_clamps_a_time_less_than_an_hour_ahead_to_now_in_milliseconds() {
    let emu = Emu::start().await;
    let before = now_ms();
    emu.import_all(&[with_prop(
        event("E", "u1", "fut-ms"),
        "time",
        json!(before + 3_500_000),
    )])
    .await;
    let after = now_ms();
    let time = emu.event_list(1).await[0]["properties"]["time"]
        .as_i64()
        .unwrap();
    assert!(
        (before..=after).contains(&time),
        "{before} <= {time} <= {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_keeps_past_times_unchanged() {
    let emu = Emu::start().await;
    let batch = [
        with_prop(event("E", "u1", "past-1"), "time", json!(31_536_000)),
        with_prop(
            event("E", "u1", "past-2"),
            "time",
            json!(1_600_000_000_123_i64),
        ),
        with_prop(
            event("E", "u1", "past-3"),
            "time",
            json!(now_s() - 86_400 * 3650),
        ),
    ];
    emu.import_all(&batch).await;
    assert_eq!(emu.event_list(1).await, batch.to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_twice_keeps_one_copy_and_counts_deduplicated() {
    let emu = Emu::start().await;
    let batch = events(3, "dup");
    emu.import_all(&batch).await;
    emu.import_all(&batch).await;
    assert_eq!(emu.event_list(1).await, batch);
    let stats = emu.stats().await;
    assert_eq!(
        stats["records"],
        json!({"accepted": 6, "rejected": 0, "deduplicated": 3, "throttled": 0})
    );
    assert_eq!(stats["requests"]["import"], json!({"200": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_dedup_keeps_the_latest_version_at_the_first_position() {
    let emu = Emu::start().await;
    let a = with_prop(event("A", "u1", "ver-a"), "v", json!(1));
    let b = event("B", "u2", "ver-b");
    let a2 = with_prop(a.clone(), "v", json!(2));
    emu.import_all(&[a, b.clone()]).await;
    emu.import_all(std::slice::from_ref(&a2)).await;
    assert_eq!(emu.event_list(1).await, vec![a2, b]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_dedup_within_one_batch_counts_every_event_as_imported() {
    let emu = Emu::start().await;
    let ev = event("A", "u1", "same-1");
    emu.import_all(&[ev.clone(), ev.clone(), ev.clone()]).await;
    assert_eq!(emu.event_list(1).await, vec![ev]);
    assert_eq!(emu.stats().await["records"]["deduplicated"], json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_dedup_compares_time_in_milliseconds() {
    let emu = Emu::start().await;
    let t = now_s() - 100;
    let in_seconds = with_prop(event("A", "u1", "unit-1"), "time", json!(t));
    let in_millis = with_prop(event("A", "u1", "unit-1"), "time", json!(t * 1000));
    emu.import_all(&[in_seconds]).await;
    emu.import_all(std::slice::from_ref(&in_millis)).await;
    assert_eq!(emu.event_list(1).await, vec![in_millis]);
    assert_eq!(emu.stats().await["records"]["deduplicated"], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_dedup_key_is_event_time_distinct_id_and_insert_id() {
    let emu = Emu::start().await;
    let t = now_s() - 100;
    let base = with_prop(event("A", "u1", "key-1"), "time", json!(t));
    let variants = vec![
        base.clone(),
        json!({"event": "B", "properties": base["properties"].clone()}),
        with_prop(base.clone(), "time", json!(t - 1)),
        with_prop(base.clone(), "distinct_id", json!("u2")),
        with_prop(base.clone(), "$insert_id", json!("key-2")),
    ];
    emu.import_all(&variants).await;
    assert_eq!(emu.event_list(1).await, variants);
    assert_eq!(emu.stats().await["records"]["deduplicated"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_dedup_is_per_project() {
    let mut config = config();
    config.projects.push(mixsync_emulator::ProjectConfig {
        id: 2,
        name: "Two".into(),
        token: "two-token".into(),
        api_secret: "two-secret".into(),
    });
    let emu = Emu::start_with(config).await;
    let ev = event("A", "u1", "proj-1");
    emu.import_all(std::slice::from_ref(&ev)).await;
    emu.post("/import")
        .basic("two-token", "")
        .json(&json!([ev.clone()]))
        .send()
        .await
        .assert(200, &import_ok(1));
    assert_eq!(emu.event_list(1).await, vec![ev.clone()]);
    assert_eq!(emu.event_list(2).await, vec![ev]);
}

// ---- step 9: answer ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_strict_failure_body_has_the_contract_key_order_and_stores_valid_events() {
    let emu = Emu::start().await;
    let good = event("A", "u1", "ok-1");
    let bad = with_prop(event("B", "u2", "bad-1"), "time", json!(1.5));
    let resp = emu.import(&[good.clone(), bad, good.clone()]).await;
    resp.assert_raw(
        400,
        r#"{"code":400,"error":"some data points in the request failed validation","failed_records":[{"index":1,"insert_id":"bad-1","field":"properties.time","message":"'properties.time' is invalid: must be specified as seconds since epoch"}],"num_records_imported":2,"status":"Bad Request"}"#,
    );
    assert_eq!(emu.event_list(1).await, vec![good]);
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["import"], json!({"400": 1}));
    assert_eq!(
        stats["records"],
        json!({"accepted": 2, "rejected": 1, "deduplicated": 1, "throttled": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_strict_failure_lists_every_failed_event_by_index() {
    let emu = Emu::start().await;
    let batch = vec![
        without_prop(event("A", "u", "m-0"), "distinct_id"),
        event("A", "u", "m-1"),
        json!(42),
        with_prop(event("A", "u", "m-3"), "$insert_id", json!("has space")),
        event("A", "u", "m-4"),
    ];
    let resp = emu.import(&batch).await;
    resp.assert(
        400,
        &strict_failure(
            vec![
                failure(0, Some("m-0"), "properties.distinct_id", "'properties.distinct_id' must be specified"),
                failure(2, None, "event", "event must be an object with 'event' and 'properties'"),
                failure(
                    3,
                    Some("has space"),
                    "$insert_id",
                    "'$insert_id' is invalid: must only contain alphanumeric or hyphen '-' characters",
                ),
            ],
            2,
        ),
    );
    assert_eq!(
        emu.event_list(1).await,
        vec![batch[1].clone(), batch[4].clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_strict_failure_with_no_valid_event_imports_zero() {
    let emu = Emu::start().await;
    let resp = emu.import(&[json!(null)]).await;
    resp.assert(
        400,
        &strict_failure(
            vec![failure(
                0,
                None,
                "event",
                "event must be an object with 'event' and 'properties'",
            )],
            0,
        ),
    );
    assert_eq!(emu.event_list(1).await, Vec::<Value>::new());
}
