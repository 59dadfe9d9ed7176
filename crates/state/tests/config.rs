//! Warehouses, targets, activations and runs: names unique, references checked, one run at a
//! time per activation, settings frozen into each run.

use mixsync_domain::Source;
use mixsync_state::{ActivationFilter, PageRequest, RunFilter, RunState, Schedule, StateError};
use mixsync_test_support::TestDb;
use mixsync_test_support::fixtures::{activation_spec, seeded, target_spec, warehouse_spec};

#[tokio::test]
async fn names_are_unique_and_used_objects_cannot_be_deleted() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation_id = seeded(&store).await;
    let err = store
        .create_warehouse(&warehouse_spec("w"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StateError::NameTaken {
                kind: "warehouse",
                ..
            }
        ),
        "{err}"
    );
    let err = store.create_target(&target_spec("t")).await.unwrap_err();
    assert!(
        matches!(err, StateError::NameTaken { kind: "target", .. }),
        "{err}"
    );

    let activation = store.get_activation(&activation_id).await.unwrap();
    let err = store
        .delete_warehouse(&activation.spec.warehouse_id)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "warehouse `{}` is used by activation(s) a; delete or change those first",
            activation.spec.warehouse_id
        )
    );
    assert!(matches!(
        store.delete_target(&activation.spec.target_id).await,
        Err(StateError::InUse { .. })
    ));
    let err = store
        .create_activation(&activation_spec("b", "nope", &activation.spec.target_id))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "warehouse_id: warehouse `nope` does not exist"
    );

    store.delete_activation(&activation_id).await.unwrap();
    store
        .delete_warehouse(&activation.spec.warehouse_id)
        .await
        .unwrap();
    store
        .delete_target(&activation.spec.target_id)
        .await
        .unwrap();
    assert!(matches!(
        store.get_warehouse(&activation.spec.warehouse_id).await,
        Err(StateError::NotFound { .. })
    ));
    drop(store);
}

#[tokio::test]
async fn activations_round_trip_and_list_by_page() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let first = seeded(&store).await;
    let a = store.get_activation(&first).await.unwrap();
    assert_eq!(
        a.spec,
        activation_spec("a", &a.spec.warehouse_id, &a.spec.target_id)
    );
    for name in ["c", "b", "d"] {
        store
            .create_activation(&activation_spec(
                name,
                &a.spec.warehouse_id,
                &a.spec.target_id,
            ))
            .await
            .unwrap();
    }
    let page = PageRequest {
        page_size: 3,
        page_token: String::new(),
    };
    let one = store
        .list_activations(&ActivationFilter::default(), &page)
        .await
        .unwrap();
    let names: Vec<_> = one.items.iter().map(|a| a.spec.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let two = store
        .list_activations(
            &ActivationFilter {
                target_id: Some(a.spec.target_id.clone()),
                ..Default::default()
            },
            &PageRequest {
                page_size: 3,
                page_token: one.next_page_token.unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!(two.items.len(), 1);
    assert_eq!(two.next_page_token, None);

    let mut spec = a.spec.clone();
    spec.schedule = Schedule::Cron("*/5 * * * *".into());
    let updated = store.update_activation(&a.id, &spec).await.unwrap();
    assert_eq!(updated.spec.schedule, Schedule::Cron("*/5 * * * *".into()));
    assert!(
        store
            .set_activation_paused(&a.id, true)
            .await
            .unwrap()
            .paused
    );
    drop(store);
}

#[tokio::test]
async fn runs_snapshot_settings_and_one_runs_at_a_time() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation_id = seeded(&store).await;
    let run = store.create_run(&activation_id, true, None).await.unwrap();
    let err = store
        .create_run(&activation_id, false, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::RunInProgress { .. }), "{err}");

    // Changing the activation does not change the run's plan.
    let mut spec = store.get_activation(&activation_id).await.unwrap().spec;
    spec.query = "SELECT 1".into();
    spec.mapping.time = Some(Source::Column("created_at".into()));
    store
        .update_activation(&activation_id, &spec)
        .await
        .unwrap();
    let plan = store.run_plan(&run.id).await.unwrap();
    assert_eq!(plan.query, "SELECT id, user_id, ts FROM signups");
    assert_eq!(
        plan.mapping,
        mixsync_test_support::fixtures::events_mapping()
    );
    assert!(plan.full_resync);
    assert!(plan.options.ip_zero);
    assert_eq!(plan.activation_id, activation_id);
    assert_eq!(plan.warehouse_id, spec.warehouse_id);

    let failed = store.fail_run(&run.id, "cannot publish").await.unwrap();
    assert_eq!(failed.state, RunState::Failed);
    let second = store.create_run(&activation_id, false, None).await.unwrap();
    assert_eq!(store.run_plan(&second.id).await.unwrap().query, "SELECT 1");

    let listed = store
        .list_runs(
            &RunFilter {
                activation_id: Some(activation_id.clone()),
                states: vec![],
            },
            &PageRequest {
                page_size: 1,
                page_token: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.items[0].id, second.id, "newest first");
    let rest = store
        .list_runs(
            &RunFilter::default(),
            &PageRequest {
                page_size: 1,
                page_token: listed.next_page_token.unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items[0].id, run.id);
    let failed_only = store
        .list_runs(
            &RunFilter {
                activation_id: None,
                states: vec![RunState::Failed],
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(failed_only.items.len(), 1);
    drop(store);
}
