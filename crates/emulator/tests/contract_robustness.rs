//! CONTRACT.md, last line: "No request can panic the emulator or leave a connection hanging."
//!
//! A property test posts arbitrary bytes, JSON-ish values, plausible but mangled events and updates,
//! with random content types and encodings, to `/import`, `/engage` and `/groups`: without faults
//! configured no answer is a 5xx, every request is answered within the client timeout, and the
//! emulator still serves a valid request afterwards.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::*;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
struct ArbitraryRequest {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    encoding: Encoding,
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Encoding {
    None,
    /// Really gzip-compressed.
    Gzip,
    /// Labelled with this `Content-Encoding`, left as is.
    Label(String),
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "event",
            "properties",
            "time",
            "distinct_id",
            "$insert_id",
            "$token",
            "$distinct_id",
            "$group_key",
            "$group_id",
            "$set",
            "$set_once",
            "$add",
            "$union",
            "$append",
            "$remove",
            "$unset",
            "$delete",
            "$ignore_time",
            "$ip",
            "",
        ])
        .prop_map(str::to_owned),
        "[a-z$_.]{1,10}",
        ".{0,12}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    let now = now_s();
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        (now - 100_000..now + 100_000).prop_map(Value::from),
        ((now - 100_000) * 1000..(now + 100_000) * 1000).prop_map(Value::from),
        prop::sample::select(vec![
            TOKEN,
            "anon",
            "null",
            "",
            "0",
            "-1",
            "00000000-0000-0000-0000-000000000000",
            "é",
            "😀",
            "\u{0}",
        ])
        .prop_map(Value::from),
        "[A-Za-z0-9-]{0,40}".prop_map(Value::from),
        ".{0,300}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 10, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..10).prop_map(Value::Array),
            btree_map(key(), inner, 0..10).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn event_like() -> impl Strategy<Value = Value> {
    (
        leaf(),
        leaf(),
        leaf(),
        leaf(),
        btree_map(key(), json_value(), 0..6),
        any::<u8>(),
    )
        .prop_map(|(name, time, distinct_id, insert_id, extra, drop)| {
            let mut props = serde_json::Map::new();
            for (i, (k, v)) in [
                ("time", time),
                ("distinct_id", distinct_id),
                ("$insert_id", insert_id),
            ]
            .into_iter()
            .enumerate()
            {
                if drop & (1 << i) == 0 {
                    props.insert(k.to_owned(), v);
                }
            }
            props.extend(extra);
            if drop & 0x10 != 0 {
                json!({"event": name, "properties": props, "extra": drop})
            } else {
                json!({"event": name, "properties": props})
            }
        })
}

fn update_like() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec![
        "$set",
        "$set_once",
        "$add",
        "$union",
        "$append",
        "$remove",
        "$unset",
        "$delete",
        "$bogus",
    ]);
    (leaf(), leaf(), leaf(), op, json_value(), btree_map(key(), json_value(), 0..3)).prop_map(
        |(token, id, group_id, op, value, extra)| {
            let mut u = json!({"$token": token, "$distinct_id": id, "$group_key": "Company", "$group_id": group_id});
            u[op] = value;
            for (k, v) in extra {
                u[k] = v;
            }
            u
        },
    )
}

/// A serialized value, possibly cut short or with one byte changed.
fn mangled(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    (values, 0..4u8, any::<prop::sample::Index>(), any::<u8>()).prop_map(
        |(value, how, at, byte)| {
            let mut bytes = serde_json::to_vec(&value).unwrap();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                match how {
                    1 => bytes.truncate(i),
                    2 => bytes[i] = byte,
                    3 => bytes.insert(i, byte),
                    _ => {}
                }
            }
            bytes
        },
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..2048),
        mangled(json_value()),
        mangled(vec(json_value(), 0..20).prop_map(Value::Array)),
        mangled(vec(event_like(), 0..20).prop_map(Value::Array)),
        mangled(vec(update_like(), 0..20).prop_map(Value::Array)),
        vec(event_like(), 0..10).prop_map(|lines| ndjson(&lines)),
        (vec(update_like(), 0..10), any::<bool>()).prop_map(|(updates, base64)| {
            let json = serde_json::to_string(&updates).unwrap();
            let data = if base64 { BASE64.encode(json) } else { json };
            form_urlencoded::Serializer::new(String::new())
                .append_pair("data", &data)
                .append_pair("verbose", "1")
                .finish()
                .into_bytes()
        }),
    ]
}

fn request() -> impl Strategy<Value = ArbitraryRequest> {
    let path = prop::sample::select(vec![
        "/import",
        "/import?strict=0",
        "/import?strict=1&project_id=1",
        "/import?strict=%FF&project_id=%00",
        "/engage",
        "/engage?verbose=1",
        "/engage?verbose=2&ip=0",
        "/groups",
        "/groups?verbose=1",
        "/groups?verbose=2",
    ]);
    let authorization = prop_oneof![
        Just(None),
        Just(Some(basic(TOKEN, ""))),
        Just(Some(basic(SA_USER, SA_SECRET))),
        Just(Some("Basic demo-token:".to_owned())),
        "Basic [ -~]{0,40}".prop_map(Some),
        vec(any::<u8>(), 0..40).prop_map(|b| Some(format!("Basic {}", BASE64.encode(b)))),
    ];
    let content_type = prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "application/json",
            "application/x-ndjson",
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin1",
        ])
        .prop_map(|s| Some(s.to_owned())),
        "[ -~]{0,30}".prop_map(Some),
    ];
    let encoding = prop_oneof![
        Just(Encoding::None),
        Just(Encoding::Gzip),
        prop::sample::select(vec![
            "gzip",
            "identity",
            "deflate",
            "br",
            "gzip, identity",
            "GZIP",
            ""
        ])
        .prop_map(|s| Encoding::Label(s.to_owned())),
        "[ -~]{0,20}".prop_map(Encoding::Label),
    ];
    (path, authorization, content_type, encoding, body()).prop_map(
        |(path, authorization, content_type, encoding, body)| ArbitraryRequest {
            path: path.to_owned(),
            authorization,
            content_type,
            encoding,
            body,
        },
    )
}

async fn send(emu: &Emu, req: &ArbitraryRequest) -> Result<(u16, String), reqwest::Error> {
    let mut builder = emu
        .client
        .post(emu.url(&req.path))
        .timeout(Duration::from_secs(10));
    if let Some(auth) = &req.authorization {
        builder = builder.header("authorization", auth.as_str());
    }
    if let Some(content_type) = &req.content_type {
        builder = builder.header("content-type", content_type.as_str());
    }
    let body = match &req.encoding {
        Encoding::None => req.body.clone(),
        Encoding::Gzip => {
            builder = builder.header("content-encoding", "gzip");
            gzip(&req.body)
        }
        Encoding::Label(label) => {
            builder = builder.header("content-encoding", label.as_str());
            req.body.clone()
        }
    };
    let response = builder.body(body).send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((status, text))
}

#[test]
fn arbitrary_requests_never_cause_a_5xx_or_a_hang() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt.block_on(Emu::start());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&request(), |req| {
        let outcome = rt.block_on(send(&emu, &req));
        match outcome {
            Ok((status, text)) => prop_assert!(status < 500, "{status} {text:?} for {req:?}"),
            Err(e) => prop_assert!(false, "no answer ({e}) for {req:?}"),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(async {
        emu.import_all(&events(3, "after-fuzz")).await;
        emu.engage(
            "?verbose=1",
            &json!([{"$token": TOKEN, "$distinct_id": "after", "$set": {"ok": 1}}]),
        )
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
        let stats = emu.stats().await;
        for endpoint in ["import", "engage", "groups"] {
            for status in stats["requests"][endpoint].as_object().unwrap().keys() {
                assert!(
                    !status.starts_with('5'),
                    "{endpoint} answered {status}: {stats}"
                );
            }
        }
        emu.shutdown().await;
    });
}

/// A raw HTTP/1.1 exchange; returns what the emulator sent back before closing or a timeout.
async fn raw_exchange(emu: &Emu, request: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(emu.emulator.addr())
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the emulator left the connection hanging after {:?}",
        String::from_utf8_lossy(request)
    );
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_malformed_http_requests_do_not_hang_or_break_the_emulator() {
    let emu = Emu::start().await;
    let requests: [&[u8]; 5] = [
        b"POST /import HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[{\"event\":",
        b"POST /engage HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nnot a chunk\r\n",
        b"POST /groups HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n\x1f\x8b\x08\x00",
        b"GARBAGE\r\n\r\n",
        b"POST /import HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nAuthorization: Basic \xff\xfe\r\n\r\n[]",
    ];
    for request in requests {
        let answer = raw_exchange(&emu, request).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.starts_with("HTTP/1.1 5"), "{text}");
    }
    emu.import_all(&events(2, "after-raw")).await;
}
