//! Targets: TestTarget's reasons, and secrets that never come back.

use mixsync_proto::v1::{self, test_target_request};
use tonic::Code;

use crate::common::Harness;

#[tokio::test]
async fn test_target_gives_precise_reasons() {
    let h = Harness::start(None).await;
    let mut client = h.client().await;
    let test = |spec: v1::TargetSpec| v1::TestTargetRequest {
        target: Some(test_target_request::Target::Spec(spec)),
    };

    let ok = client
        .test_target(test(h.target_spec("t")))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.ok, "{ok:?}");
    let names: Vec<_> = ok.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["token", "service_account", "project_access"]);

    let mut wrong_secret = h.target_spec("t");
    wrong_secret.service_account_secret = "not-the-secret".into();
    let report = client
        .test_target(test(wrong_secret.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(!report.ok);
    let failed = report.checks.iter().find(|c| !c.ok).unwrap();
    assert_eq!(failed.name, "service_account");
    assert!(
        failed
            .message
            .starts_with("Mixpanel refused service account `demo-sa` (HTTP 401)"),
        "{failed:?}"
    );
    assert!(!failed.message.contains("not-the-secret"));

    let mut other_project = h.target_spec("t");
    other_project.project_id = "123".into();
    let report = client
        .test_target(test(other_project.clone()))
        .await
        .unwrap()
        .into_inner();
    let failed = report.checks.iter().find(|c| !c.ok).unwrap();
    assert!(
        failed
            .message
            .starts_with("service account `demo-sa` cannot access project 123 (it can access: 1)"),
        "{failed:?}"
    );

    // A viewer can read /api/app/me: the test passes, with a warning about the role.
    let mut viewer = h.target_spec("t");
    viewer.service_account_username = "demo-viewer".into();
    viewer.service_account_secret = "demo-viewer-secret".into();
    let report = client.test_target(test(viewer)).await.unwrap().into_inner();
    assert!(report.ok, "{report:?}");
    assert!(
        report.checks[2].message.contains("owner or admin"),
        "{report:?}"
    );

    // Creating runs the test first and refuses with its reason.
    let refused = client
        .create_target(v1::CreateTargetRequest {
            target: Some(other_project),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("cannot access project 123"),
        "{refused:?}"
    );
    let refused = client
        .create_target(v1::CreateTargetRequest {
            target: Some(wrong_secret),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);

    let mut bad_token = h.target_spec("t");
    bad_token.token = "has spaces!".into();
    let invalid = client
        .create_target(v1::CreateTargetRequest {
            target: Some(bad_token),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert!(
        invalid.message().starts_with("target.token:"),
        "{invalid:?}"
    );
    assert!(!invalid.message().contains("has spaces"));
    h.stop().await;
}

#[tokio::test]
async fn targets_never_return_secrets_and_updates_keep_them() {
    let h = Harness::start(None).await;
    let mut client = h.client().await;
    let created = client
        .create_target(v1::CreateTargetRequest {
            target: Some(h.target_spec("mp")),
        })
        .await
        .unwrap()
        .into_inner();
    let target = created.target.unwrap();
    assert!(target.has_token && target.has_service_account_secret);
    assert_eq!(target.project_id, "1");
    let shown = format!("{target:?}");
    assert!(
        !shown.contains("demo-token") && !shown.contains("demo-secret"),
        "{shown}"
    );

    let duplicate = client
        .create_target(v1::CreateTargetRequest {
            target: Some(h.target_spec("mp")),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    // A new destination with the stored secrets is refused, naming what to give again: the
    // secrets never follow a target to another URL or project.
    for (what, change) in [
        (
            "base_url",
            Box::new(|s: &mut v1::TargetSpec| s.base_url = "https://collector.example.com".into())
                as Box<dyn Fn(&mut v1::TargetSpec)>,
        ),
        (
            "project_id",
            Box::new(|s: &mut v1::TargetSpec| s.project_id = "2".into()),
        ),
    ] {
        let mut spec = h.target_spec("mp");
        change(&mut spec);
        spec.token.clear();
        spec.service_account_secret.clear();
        let refused = client
            .update_target(v1::UpdateTargetRequest {
                id: target.id.clone(),
                target: Some(spec),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        assert!(
            refused
                .message()
                .contains("target.token, target.service_account_secret")
                && refused
                    .message()
                    .contains("never sent to a new destination"),
            "{what}: {refused:?}"
        );
        let mut spec = h.target_spec("mp");
        change(&mut spec);
        spec.service_account_secret.clear();
        let refused = client
            .update_target(v1::UpdateTargetRequest {
                id: target.id.clone(),
                target: Some(spec),
            })
            .await
            .unwrap_err();
        assert!(
            refused
                .message()
                .starts_with("target.service_account_secret: is required"),
            "{what}: {refused:?}"
        );
    }

    // Empty secrets keep the stored ones, which the update's test uses.
    let mut spec = h.target_spec("mixpanel");
    spec.token.clear();
    spec.service_account_secret.clear();
    let updated = client
        .update_target(v1::UpdateTargetRequest {
            id: target.id.clone(),
            target: Some(spec),
        })
        .await
        .unwrap()
        .into_inner()
        .target
        .unwrap();
    assert_eq!(updated.name, "mixpanel");
    assert!(updated.has_token && updated.has_service_account_secret);
    let by_id = client
        .test_target(v1::TestTargetRequest {
            target: Some(test_target_request::Target::Id(target.id.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(by_id.ok, "{by_id:?}");
    let listed = client
        .list_targets(v1::ListTargetsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.targets.len(), 1);
    client
        .delete_target(v1::DeleteTargetRequest {
            id: target.id.clone(),
        })
        .await
        .unwrap();
    let gone = client
        .get_target(v1::GetTargetRequest { id: target.id })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    h.stop().await;
}

#[tokio::test]
async fn plain_http_to_another_machine_needs_allow_insecure_http_and_failures_are_named() {
    let h = Harness::start(None).await;
    let mut client = h.client().await;
    let mut spec = h.target_spec("insecure");
    spec.base_url = "http://mixpanel.invalid:8080".into();
    let refused = client
        .create_target(v1::CreateTargetRequest {
            target: Some(spec.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().starts_with("target.base_url:")
            && refused.message().contains("allow_insecure_http"),
        "{refused:?}"
    );

    // Allowed, the URL passes validation and TestTarget says what failed, in words.
    spec.allow_insecure_http = true;
    let report = client
        .test_target(v1::TestTargetRequest {
            target: Some(test_target_request::Target::Spec(spec.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    let failed = report.checks.iter().find(|c| !c.ok).unwrap();
    assert_eq!(
        failed.message,
        "cannot reach Mixpanel at http://mixpanel.invalid:8080/api/app/me: the host name does not resolve",
        "{report:?}"
    );

    // Nothing listening: refused, named as such.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    spec.base_url = format!("http://127.0.0.1:{port}");
    let report = client
        .test_target(v1::TestTargetRequest {
            target: Some(test_target_request::Target::Spec(spec.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    let failed = report.checks.iter().find(|c| !c.ok).unwrap();
    assert!(
        failed
            .message
            .ends_with("the connection was refused (nothing listens on that port)"),
        "{report:?}"
    );

    // The emulator, stored with the flag: it comes back on the target.
    let mut spec = h.target_spec("emulator");
    spec.allow_insecure_http = true;
    let target = client
        .create_target(v1::CreateTargetRequest { target: Some(spec) })
        .await
        .unwrap()
        .into_inner()
        .target
        .unwrap();
    assert!(target.allow_insecure_http);

    // An update to plain http on another host without the flag is refused too.
    let mut spec = h.target_spec("emulator");
    spec.base_url = "http://10.1.2.3".into();
    let refused = client
        .update_target(v1::UpdateTargetRequest {
            id: target.id,
            target: Some(spec),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("allow_insecure_http"),
        "{refused:?}"
    );
    h.stop().await;
}
