//! CONTRACT.md, `POST /import` step 1 (auth), "Hosts" and `GET /api/app/me`.

mod common;

use std::collections::BTreeMap;

use common::*;
use mixsync_emulator::{Config, ProjectConfig, Role, ServiceAccountConfig};
use reqwest::Method;
use serde_json::{Value, json};

const LEGACY_SA_MESSAGE: &str = r#"{"code":401,"error":"Unauthorized, invalid project secret. See docs for more information: https://developer.mixpanel.com/reference/authentication","status":"Unauthorized"}"#;

fn one_event() -> Vec<Value> {
    vec![event("Signed Up", "u1", "auth-1")]
}

/// Demo project 1 plus project 2 ("Other"), and service accounts with each role.
fn multi_project_config() -> Config {
    let mut config = config();
    config.projects.push(ProjectConfig {
        id: 2,
        name: "Other".into(),
        token: "other-token".into(),
        api_secret: "other-secret".into(),
    });
    config.projects.push(ProjectConfig {
        id: 3,
        name: "Third".into(),
        token: "third-token".into(),
        api_secret: "third-secret".into(),
    });
    for (username, role) in [("sa-admin", Role::Admin), ("sa-analyst", Role::Analyst)] {
        config.service_accounts.push(ServiceAccountConfig {
            username: username.into(),
            secret: format!("{username}-secret"),
            roles: BTreeMap::from([("1".to_string(), role)]),
        });
    }
    config.service_accounts.push(ServiceAccountConfig {
        username: "sa-multi".into(),
        secret: "sa-multi-secret".into(),
        roles: BTreeMap::from([
            ("1".to_string(), Role::Admin),
            ("3".to_string(), Role::Analyst),
        ]),
    });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_without_authorization_is_401() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import?strict=1")
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert_raw(401, UNAUTHORIZED);
    assert_eq!(emu.event_list(1).await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_non_basic_authorization_is_401() {
    let emu = Emu::start().await;
    for header in ["Bearer demo-token", "Digest demo-token", "demo-token:"] {
        let resp = emu
            .post("/import")
            .authorization(header)
            .json(&json!(one_event()))
            .send()
            .await;
        resp.assert_raw(401, UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_an_undecodable_basic_credential_is_401() {
    let emu = Emu::start().await;
    // Neither base64 of `user:pass` nor `user:pass`.
    for header in ["Basic !!!", "Basic ZGVtby10b2tlbg==", "Basic "] {
        let resp = emu
            .post("/import")
            .authorization(header)
            .json(&json!(one_event()))
            .send()
            .await;
        resp.assert_raw(401, UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_the_project_token_with_an_empty_password() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import")
        .basic(TOKEN, "")
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert_raw(
        200,
        r#"{"code":200,"num_records_imported":1,"status":"OK"}"#,
    );
    assert_eq!(emu.event_list(1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_the_project_api_secret_with_an_empty_password() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import")
        .basic(API_SECRET, "")
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
    assert_eq!(emu.event_list(1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_plain_text_basic_credentials() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import")
        .authorization("Basic demo-token:")
        .json(&json!([event("A", "u1", "plain-1")]))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
    let resp = emu
        .post("/import?project_id=1")
        .authorization("Basic demo-sa:demo-secret")
        .json(&json!([event("A", "u1", "plain-2")]))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
    assert_eq!(emu.event_list(1).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_token_and_a_password_is_401() {
    let emu = Emu::start().await;
    for (user, pass) in [(TOKEN, "x"), (API_SECRET, "demo-api-secret")] {
        let resp = emu
            .post("/import")
            .basic(user, pass)
            .json(&json!(one_event()))
            .send()
            .await;
        resp.assert_raw(401, UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_unknown_credentials_is_401() {
    let emu = Emu::start().await;
    for (user, pass) in [
        ("nobody", ""),
        ("nobody", "x"),
        (SA_USER, "wrong-secret"),
        ("", ""),
    ] {
        let resp = emu
            .post("/import?project_id=1")
            .basic(user, pass)
            .json(&json!(one_event()))
            .send()
            .await;
        resp.assert_raw(401, UNAUTHORIZED);
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_service_account_and_project_id_imports() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import?strict=1&project_id=1")
        .basic(SA_USER, SA_SECRET)
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
    assert_eq!(emu.event_list(1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_service_account_without_project_id_is_401_with_the_legacy_message() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import?strict=1")
        .basic(SA_USER, SA_SECRET)
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert_raw(401, LEGACY_SA_MESSAGE);
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_service_account_and_an_invalid_project_id_is_400() {
    let emu = Emu::start().await;
    for project_id in ["abc", "0", "-1", "1.5", "1e3"] {
        let resp = emu
            .post(&format!("/import?project_id={project_id}"))
            .basic(SA_USER, SA_SECRET)
            .json(&json!(one_event()))
            .send()
            .await;
        resp.assert_raw(
            400,
            r#"{"code":400,"error":"'project_id' is invalid: must be a positive integer","status":"Bad Request"}"#,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_service_account_on_an_unknown_project_is_403() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import?project_id=99")
        .basic(SA_USER, SA_SECRET)
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert_raw(
        403,
        r#"{"code":403,"error":"service account 'demo-sa' does not have access to project 99","status":"Forbidden"}"#,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_service_account_without_a_role_on_the_project_is_403() {
    let emu = Emu::start_with(multi_project_config()).await;
    let resp = emu
        .post("/import?project_id=2")
        .basic(SA_USER, SA_SECRET)
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert(
        403,
        &json!({"code":403,"error":"service account 'demo-sa' does not have access to project 2","status":"Forbidden"}),
    );
    assert_eq!(emu.event_list(2).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_the_consumer_viewer_account_is_403() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import?project_id=1")
        .basic(VIEWER_USER, VIEWER_SECRET)
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert_raw(
        403,
        r#"{"code":403,"error":"service account 'demo-viewer' needs the Owner or Admin role on project 1 to import data","status":"Forbidden"}"#,
    );
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_an_analyst_account_is_403_and_with_an_admin_account_succeeds() {
    let emu = Emu::start_with(multi_project_config()).await;
    let resp = emu
        .post("/import?project_id=1")
        .basic("sa-analyst", "sa-analyst-secret")
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert(
        403,
        &json!({"code":403,"error":"service account 'sa-analyst' needs the Owner or Admin role on project 1 to import data","status":"Forbidden"}),
    );
    let resp = emu
        .post("/import?project_id=1")
        .basic("sa-admin", "sa-admin-secret")
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_token_and_a_matching_project_id_succeeds() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import?project_id=1")
        .token()
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_token_and_another_project_id_is_401() {
    let emu = Emu::start_with(multi_project_config()).await;
    for (user, project_id) in [
        (TOKEN, "2"),
        (API_SECRET, "2"),
        ("other-token", "1"),
        (TOKEN, "99"),
    ] {
        let resp = emu
            .post(&format!("/import?project_id={project_id}"))
            .basic(user, "")
            .json(&json!(one_event()))
            .send()
            .await;
        resp.assert_raw(401, UNAUTHORIZED);
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
    assert_eq!(emu.event_list(2).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_a_token_and_a_non_numeric_project_id_is_401() {
    // The 400 for a malformed project_id is a service-account rule; with a token or API secret,
    // "a given project_id must then equal it, else 401 Invalid credentials".
    let emu = Emu::start().await;
    for (user, project_id) in [(TOKEN, "abc"), (TOKEN, "0"), (API_SECRET, "-1")] {
        let resp = emu
            .post(&format!("/import?project_id={project_id}"))
            .basic(user, "")
            .json(&json!(one_event()))
            .send()
            .await;
        resp.assert_raw(401, UNAUTHORIZED);
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_token_auth_stores_into_the_tokens_project() {
    let emu = Emu::start_with(multi_project_config()).await;
    let resp = emu
        .post("/import")
        .basic("other-token", "")
        .json(&json!(one_event()))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
    let resp = emu
        .post("/import")
        .basic("third-secret", "")
        .json(&json!([event("B", "u", "third-1")]))
        .send()
        .await;
    resp.assert(200, &import_ok(1));
    assert_eq!(emu.event_list(1).await.len(), 0);
    assert_eq!(emu.event_list(2).await.len(), 1);
    assert_eq!(emu.event_list(3).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_checked_before_the_query_and_the_body() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import?strict=yes")
        .header("content-encoding", "gzip")
        .body(b"not gzip".to_vec())
        .send()
        .await;
    resp.assert_raw(401, UNAUTHORIZED);
    let resp = emu
        .post("/import?strict=yes")
        .basic(VIEWER_USER, VIEWER_SECRET)
        .header("content-encoding", "br")
        .body(b"x".to_vec())
        .send()
        .await;
    // A service account without project_id fails auth before the query is looked at.
    resp.assert_raw(401, LEGACY_SA_MESSAGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_routes_to_the_emulator() {
    let emu = Emu::start().await;
    for (i, host) in [
        "api.mixpanel.com",
        "api-eu.mixpanel.com",
        "api-in.mixpanel.com",
        "example.org",
    ]
    .into_iter()
    .enumerate()
    {
        let resp = emu
            .post("/import")
            .header("host", host)
            .token()
            .json(&json!([event("A", "u", &format!("host-{i}"))]))
            .send()
            .await;
        resp.assert(200, &import_ok(1));
    }
    assert_eq!(emu.event_list(1).await.len(), 4);
}

// ---- GET /api/app/me ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_lists_the_owner_accounts_project() {
    let emu = Emu::start().await;
    let resp = emu
        .get("/api/app/me")
        .basic(SA_USER, SA_SECRET)
        .send()
        .await;
    resp.assert_raw(
        200,
        r#"{"results":{"user_name":"demo-sa","user_email":null,"projects":{"1":{"id":1,"name":"Demo","role":"owner"}},"workspaces":{},"organizations":{}}}"#,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_lists_the_viewer_accounts_project_with_role_consumer() {
    let emu = Emu::start().await;
    let resp = emu
        .get("/api/app/me")
        .basic(VIEWER_USER, VIEWER_SECRET)
        .send()
        .await;
    resp.assert(
        200,
        &json!({"results":{"user_name":"demo-viewer","user_email":null,
            "projects":{"1":{"id":1,"name":"Demo","role":"consumer"}},"workspaces":{},"organizations":{}}}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_lists_every_project_the_account_has_a_role_on() {
    let emu = Emu::start_with(multi_project_config()).await;
    let resp = emu
        .get("/api/app/me")
        .basic("sa-multi", "sa-multi-secret")
        .send()
        .await;
    resp.assert(
        200,
        &json!({"results":{"user_name":"sa-multi","user_email":null,
            "projects":{
                "1":{"id":1,"name":"Demo","role":"admin"},
                "3":{"id":3,"name":"Third","role":"analyst"}
            },
            "workspaces":{},"organizations":{}}}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_accepts_plain_text_basic_credentials() {
    let emu = Emu::start().await;
    let resp = emu
        .get("/api/app/me")
        .authorization("Basic demo-sa:demo-secret")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["results"]["user_name"], json!("demo-sa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_with_bad_credentials_is_401() {
    let emu = Emu::start().await;
    const ME_401: &str = r#"{"error":"Invalid credentials","status":"error"}"#;
    for auth in [
        None,
        Some(basic(SA_USER, "wrong")),
        Some(basic("nobody", "x")),
        Some(basic(TOKEN, "")),
        Some(basic(API_SECRET, "")),
        Some("Bearer demo-secret".to_string()),
    ] {
        let mut req = emu.get("/api/app/me");
        if let Some(auth) = &auth {
            req = req.authorization(auth);
        }
        req.send().await.assert_raw(401, ME_401);
    }
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["me"], json!({"401": 6}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_service_account_is_refused_until_restored_or_reset() {
    let emu = Emu::start().await;
    let emu = &emu;
    let import = |id: &'static str| async move {
        emu.post("/import?project_id=1")
            .basic(SA_USER, SA_SECRET)
            .json(&json!([event("A", "u1", id)]))
            .send()
            .await
    };
    import("before").await.assert(200, &import_ok(1));
    emu.request(Method::PUT, "/_emulator/revoked")
        .json(&json!([SA_USER]))
        .send()
        .await
        .assert(200, &json!([SA_USER]));
    import("revoked").await.assert_raw(401, UNAUTHORIZED);
    assert_eq!(
        emu.get("/api/app/me")
            .basic(SA_USER, SA_SECRET)
            .send()
            .await
            .status,
        401
    );
    // Another account and the project token still work.
    emu.import_all(&[event("A", "u1", "token")]).await;
    emu.request(Method::PUT, "/_emulator/revoked")
        .json(&json!({"names": []}))
        .send()
        .await
        .assert(
            400,
            &json!({"error": "invalid revoked list: invalid type: map, expected a sequence at \
                              line 1 column 0 (expected a JSON array of service-account usernames)"}),
        );
    emu.request(Method::PUT, "/_emulator/revoked")
        .json(&json!([]))
        .send()
        .await
        .assert(200, &json!([]));
    import("restored").await.assert(200, &import_ok(1));
    emu.request(Method::PUT, "/_emulator/revoked")
        .json(&json!([SA_USER]))
        .send()
        .await;
    emu.post("/_emulator/reset").send().await;
    emu.get("/_emulator/revoked")
        .send()
        .await
        .assert(200, &json!([]));
    import("after-reset").await.assert(200, &import_ok(1));
}
