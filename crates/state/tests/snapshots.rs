//! Incremental syncs: the key claims write the snapshot, control puts back what fails to load
//! (or was sent by a run that failed), the snapshot is emptied when the settings change, and
//! claims detect duplicates and decide the same way on every redelivery.

use mixsync_domain::Source;
use mixsync_proto::v1::{self, progress::Terminal};
use mixsync_state::{KeyToClaim, ProgressOutcome, RunState, Schedule, StateStore};
use mixsync_test_support::TestDb;
use mixsync_test_support::fixtures::{activation_spec, seeded};

fn loaded(run_id: &str, batch: &str, loaded: u64) -> v1::Progress {
    v1::Progress {
        run_id: run_id.into(),
        batch_id: format!("{run_id}-{batch}"),
        stage: v1::Stage::Load.into(),
        loaded,
        ..Default::default()
    }
}

/// A LOAD report of batch `batch` in which Mixpanel refused the records of `keys`.
fn refused(run_id: &str, batch: &str, keys: &[&str]) -> v1::Progress {
    v1::Progress {
        failed: keys.len() as u64,
        failures: keys
            .iter()
            .enumerate()
            .map(|(i, key)| v1::FailedRow {
                row_number: i as u64 + 1,
                key: (*key).into(),
                rule: "mixpanel_rejected".into(),
                message: "refused".into(),
                ..Default::default()
            })
            .collect(),
        ..loaded(run_id, batch, 0)
    }
}

/// Claims `(key, hash)` pairs as batch `batch` of `run_id`.
async fn claim(
    store: &StateStore,
    run_id: &str,
    batch: &str,
    records: &[(&str, &[u8])],
) -> std::collections::HashMap<String, mixsync_state::KeyClaim> {
    let plan = store.run_plan(run_id).await.unwrap();
    let records: Vec<KeyToClaim<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, (key, hash))| KeyToClaim {
            key,
            row_number: i as u64 + 1,
            row_hash: hash,
        })
        .collect();
    store
        .claim_keys(&plan, &format!("{run_id}-{batch}"), &records)
        .await
        .unwrap()
}

fn extracted(run_id: &str, rows: u64) -> v1::Progress {
    v1::Progress {
        run_id: run_id.into(),
        batch_id: format!("{run_id}-0"),
        stage: v1::Stage::Extract.into(),
        extracted: rows,
        terminal: Some(Terminal::ExtractionFinished(v1::ExtractionFinished {
            total_rows: rows,
            batches: 1,
            total_unknown: false,
        })),
        ..Default::default()
    }
}

/// The hashes the activation's snapshot holds for `keys`, read from the table, by key. A key is
/// looked up as the state store writes it (Postgres text cannot hold U+0000; it is stored as
/// U+FFFD); keys without a hash (never synced, or put back) are absent.
async fn snapshot(db: &TestDb, activation: &str, keys: &[&str]) -> Vec<(String, Vec<u8>)> {
    let keys: Vec<String> = keys.iter().map(|k| k.replace('\0', "\u{FFFD}")).collect();
    let mut found: Vec<(String, Vec<u8>)> = db
        .client()
        .await
        .query(
            "SELECT key, row_hash FROM sync_snapshots
             WHERE activation_id = $1 AND key = ANY($2) AND row_hash IS NOT NULL",
            &[&activation, &keys],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    found.sort();
    found
}

/// Keys claimed by `run_id`.
async fn claimed(db: &TestDb, run_id: &str) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM sync_snapshots WHERE claim_run = $1",
            &[&run_id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn changing_the_mapping_or_query_empties_the_snapshot_but_name_and_schedule_do_not() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;

    let run = store.create_run(&activation, false, None).await.unwrap();
    let first = store.run_plan(&run.id).await.unwrap();
    assert_eq!(first.fingerprint.len(), 64);
    claim(&store, &run.id, "0", &[("k1", b"h1"), ("k2", b"h2")]).await;
    store.cancel_run(&run.id).await.unwrap();
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 2);

    // Same settings, another name and schedule: the snapshot stays.
    let mut spec = store.get_activation(&activation).await.unwrap().spec;
    spec.name = "renamed".into();
    spec.schedule = Schedule::Manual;
    store.update_activation(&activation, &spec).await.unwrap();
    let run = store.create_run(&activation, false, None).await.unwrap();
    assert_eq!(
        store.run_plan(&run.id).await.unwrap().fingerprint,
        first.fingerprint
    );
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 2);
    store.cancel_run(&run.id).await.unwrap();

    // A full resync keeps the snapshot too (loads still update it).
    let run = store.create_run(&activation, true, None).await.unwrap();
    let plan = store.run_plan(&run.id).await.unwrap();
    assert!(plan.full_resync);
    assert_eq!(plan.fingerprint, first.fingerprint);
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 2);
    store.cancel_run(&run.id).await.unwrap();

    // Another mapping: emptied when the next run is created.
    spec.mapping.distinct_id = Some(Source::Column("id".into()));
    store.update_activation(&activation, &spec).await.unwrap();
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 2);
    let run = store.create_run(&activation, false, None).await.unwrap();
    let second = store.run_plan(&run.id).await.unwrap();
    assert_ne!(second.fingerprint, first.fingerprint);
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 0);
    claim(&store, &run.id, "0", &[("k1", b"h1")]).await;
    store.cancel_run(&run.id).await.unwrap();
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 1);

    // Another query: emptied again.
    spec.query = "SELECT id, user_id, ts FROM signups WHERE id > 10".into();
    store.update_activation(&activation, &spec).await.unwrap();
    let run = store.create_run(&activation, false, None).await.unwrap();
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 0);
    let stored: Option<String> = db
        .client()
        .await
        .query_one(
            "SELECT snapshot_fingerprint FROM activations WHERE id = $1",
            &[&activation],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stored,
        Some(store.run_plan(&run.id).await.unwrap().fingerprint)
    );
    drop(store);
}

#[tokio::test]
async fn claims_write_the_snapshot_and_what_fails_to_load_is_put_back() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    claim(
        &store,
        &run.id,
        "0",
        &[("k1", b"h1"), ("k2", b"h2"), ("k3", b"h3")],
    )
    .await;
    // Ahead of the load, the snapshot says what is being sent.
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 3);
    // Mixpanel refuses k2 (twice: the redelivered report counts once, changes nothing).
    let report = refused(&run.id, "0", &["k2"]);
    store.apply_progress(&report).await.unwrap();
    assert_eq!(
        store.apply_progress(&report).await.unwrap(),
        ProgressOutcome::Duplicate
    );
    assert_eq!(
        snapshot(&db, &activation, &["k1", "k2", "k3"]).await,
        [("k1".into(), b"h1".to_vec()), ("k3".into(), b"h3".to_vec())]
    );
    store.cancel_run(&run.id).await.unwrap();

    // The next run: k1 changed, k2 (never loaded) is sent again, k3 is unchanged.
    let run = store.create_run(&activation, false, None).await.unwrap();
    let claims = claim(
        &store,
        &run.id,
        "0",
        &[("k1", b"h1'"), ("k2", b"h2"), ("k3", b"h3")],
    )
    .await;
    assert!(claims["k1"].send && claims["k2"].send && !claims["k3"].send);
    // k1 fails this time: its last loaded hash comes back, so it is sent again next time.
    store
        .apply_progress(&refused(&run.id, "0", &["k1"]))
        .await
        .unwrap();
    assert_eq!(
        snapshot(&db, &activation, &["k1"]).await,
        [("k1".into(), b"h1".to_vec())]
    );
    store.cancel_run(&run.id).await.unwrap();

    // A run that ends FAILED puts back everything it sent, and only that.
    let run = store.create_run(&activation, false, None).await.unwrap();
    let claims = claim(
        &store,
        &run.id,
        "0",
        &[("k1", b"h1'"), ("k3", b"h3"), ("k4", b"h4")],
    )
    .await;
    assert!(claims["k1"].send && !claims["k3"].send && claims["k4"].send);
    store
        .fail_run(&run.id, "Mixpanel refused the credentials (401)")
        .await
        .unwrap();
    assert_eq!(
        snapshot(&db, &activation, &["k1", "k2", "k3", "k4"]).await,
        [
            ("k1".into(), b"h1".to_vec()),
            ("k2".into(), b"h2".to_vec()),
            ("k3".into(), b"h3".to_vec())
        ]
    );
    // Also when the failure comes as a fatal report.
    let run = store.create_run(&activation, false, None).await.unwrap();
    claim(&store, &run.id, "0", &[("k4", b"h4")]).await;
    let fatal = v1::Progress {
        terminal: Some(Terminal::Fatal(v1::FatalError {
            message: "401".into(),
        })),
        ..loaded(&run.id, "fatal", 0)
    };
    store.apply_progress(&fatal).await.unwrap();
    // A failing run drains first: it ends once its extraction is over and its rows add up.
    assert_eq!(
        store.get_run(&run.id).await.unwrap().state,
        RunState::Running
    );
    let finished = v1::Progress {
        run_id: run.id.clone(),
        batch_id: format!("{}-0", run.id),
        stage: v1::Stage::Extract.into(),
        terminal: Some(Terminal::ExtractionFinished(v1::ExtractionFinished {
            total_rows: 0,
            batches: 1,
            total_unknown: false,
        })),
        ..v1::Progress::default()
    };
    store.apply_progress(&finished).await.unwrap();
    assert_eq!(
        store.get_run(&run.id).await.unwrap().state,
        RunState::Failed
    );
    assert!(snapshot(&db, &activation, &["k4"]).await.is_empty());

    // A dead-lettered row batch (rule `dead_letter` at MAP): what it claimed is put back.
    let run = store.create_run(&activation, false, None).await.unwrap();
    claim(&store, &run.id, "7", &[("k5", b"h5")]).await;
    claim(&store, &run.id, "8", &[("k6", b"h6")]).await;
    let dead = v1::Progress {
        run_id: run.id.clone(),
        batch_id: format!("{}-7", run.id),
        stage: v1::Stage::Map.into(),
        failed: 1,
        failures: vec![v1::FailedRow {
            row_number: 1,
            rule: mixsync_state::DEAD_LETTER_RULE.into(),
            message: "the mapper gave up".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    store.apply_progress(&dead).await.unwrap();
    assert_eq!(
        snapshot(&db, &activation, &["k5", "k6"]).await,
        [("k6".into(), b"h6".to_vec())]
    );
    drop(store);
}

#[tokio::test]
async fn a_run_made_with_settings_the_snapshot_no_longer_has_claims_nothing() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    let plan = store.run_plan(&run.id).await.unwrap();
    store.cancel_run(&run.id).await.unwrap();
    let mut spec = activation_spec("a", "", "");
    let current = store.get_activation(&activation).await.unwrap().spec;
    spec.warehouse_id = current.warehouse_id;
    spec.target_id = current.target_id;
    spec.query = "SELECT 2".into();
    store.update_activation(&activation, &spec).await.unwrap();
    let next = store.create_run(&activation, false, None).await.unwrap();
    // A late batch of the old run: sent, not recorded.
    let record = [KeyToClaim {
        key: "k9",
        row_number: 1,
        row_hash: b"h9",
    }];
    let late = store
        .claim_keys(&plan, &format!("{}-0", run.id), &record)
        .await
        .unwrap();
    assert!(late["k9"].send);
    assert!(snapshot(&db, &activation, &["k9"]).await.is_empty());
    claim(&store, &next.id, "0", &[("k9", b"h9")]).await;
    assert_eq!(snapshot(&db, &activation, &["k9"]).await.len(), 1);
    drop(store);
}

#[tokio::test]
async fn claims_detect_duplicates_skip_unchanged_records_and_repeat_their_decisions() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let previous = store.create_run(&activation, false, None).await.unwrap();
    claim(
        &store,
        &previous.id,
        "0",
        &[("same", b"h-same"), ("changed", b"h-old")],
    )
    .await;
    store.cancel_run(&previous.id).await.unwrap();
    let run = store.create_run(&activation, false, None).await.unwrap();
    let plan = store.run_plan(&run.id).await.unwrap();
    let batch = format!("{}-0", run.id);
    let records = [
        KeyToClaim {
            key: "same",
            row_number: 1,
            row_hash: b"h-same",
        },
        KeyToClaim {
            key: "changed",
            row_number: 2,
            row_hash: b"h-new",
        },
        KeyToClaim {
            key: "new",
            row_number: 3,
            row_hash: b"h-x",
        },
        KeyToClaim {
            key: "nul\0key",
            row_number: 4,
            row_hash: b"h-y",
        },
    ];
    let claims = store.claim_keys(&plan, &batch, &records).await.unwrap();
    assert_eq!(claims.len(), 4);
    assert!(claims.values().all(|c| !c.is_duplicate_for(&batch)));
    let send = |key: &str| claims[key].send;
    assert!(!send("same") && send("changed") && send("new") && send("nul\0key"));

    // Another batch with a key already claimed: a duplicate, pointing at the first row.
    let other = format!("{}-1", run.id);
    let later = [
        KeyToClaim {
            key: "new",
            row_number: 501,
            row_hash: b"h-x",
        },
        KeyToClaim {
            key: "fresh",
            row_number: 502,
            row_hash: b"h-z",
        },
    ];
    let claims2 = store.claim_keys(&plan, &other, &later).await.unwrap();
    assert!(claims2["new"].is_duplicate_for(&other));
    assert_eq!(
        (claims2["new"].batch_id.as_str(), claims2["new"].row_number),
        (batch.as_str(), 3)
    );
    assert!(!claims2["fresh"].is_duplicate_for(&other));

    // The first batch's records were loaded (the snapshot holds them), then the batch is
    // redelivered: same owners, same decisions.
    store
        .apply_progress(&loaded(&run.id, "0", 3))
        .await
        .unwrap();
    assert_eq!(
        snapshot(&db, &activation, &["nul\0key", "changed"]).await,
        [
            ("changed".into(), b"h-new".to_vec()),
            ("nul\u{FFFD}key".into(), b"h-y".to_vec())
        ]
    );
    let again = store.claim_keys(&plan, &batch, &records).await.unwrap();
    assert_eq!(again, claims);
    assert_eq!(claimed(&db, &run.id).await, 5);
    drop(store);
}

#[tokio::test]
async fn a_full_resync_sends_unchanged_records() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    claim(&store, &run.id, "0", &[("k", b"h")]).await;
    store.cancel_run(&run.id).await.unwrap();
    let run = store.create_run(&activation, true, None).await.unwrap();
    let plan = store.run_plan(&run.id).await.unwrap();
    let record = [KeyToClaim {
        key: "k",
        row_number: 1,
        row_hash: b"h",
    }];
    let claims = store
        .claim_keys(&plan, &format!("{}-0", run.id), &record)
        .await
        .unwrap();
    assert!(claims["k"].send);
    drop(store);
}

#[tokio::test]
async fn an_ended_run_claims_nothing_new_and_the_next_run_takes_the_keys_over() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    let records: [(&str, &[u8]); 2] = [("a", b"1"), ("b", b"2")];
    claim(&store, &run.id, "0", &records).await;
    assert_eq!(claimed(&db, &run.id).await, 2);
    store.apply_progress(&extracted(&run.id, 2)).await.unwrap();
    let outcome = store
        .apply_progress(&loaded(&run.id, "0", 2))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ProgressOutcome::Applied {
            state: RunState::Succeeded
        }
    );

    // A redelivered batch of the ended run gets its claims back; a new key is not recorded.
    let late = claim(&store, &run.id, "0", &[("a", b"1"), ("c", b"3")]).await;
    assert!(!late["a"].is_duplicate_for(&format!("{}-0", run.id)));
    assert!(late["c"].send);
    assert!(snapshot(&db, &activation, &["c"]).await.is_empty());

    // The next run takes the keys over: unchanged, skipped.
    let next = store.create_run(&activation, false, None).await.unwrap();
    let claims = claim(&store, &next.id, "0", &records).await;
    assert!(claims.values().all(|c| !c.send));
    assert_eq!(
        (claimed(&db, &run.id).await, claimed(&db, &next.id).await),
        (0, 2)
    );

    // Deleting the activation takes the snapshot with it.
    store.delete_activation(&activation).await.unwrap();
    assert_eq!(claimed(&db, &next.id).await, 0);
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 0);
    drop(store);
}

#[tokio::test]
async fn concurrent_batches_sharing_keys_get_one_owner_per_key() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    let plan = store.run_plan(&run.id).await.unwrap();
    // 8 batches of 200 keys over 400 distinct keys, in different orders.
    let keys: Vec<String> = (0..400).map(|i| format!("k{i:03}")).collect();
    let batches: Vec<(String, Vec<&str>)> = (0..8u64)
        .map(|b| {
            let mut mine: Vec<&str> = keys
                .iter()
                .skip((b as usize * 50) % 400)
                .chain(keys.iter())
                .take(200)
                .map(String::as_str)
                .collect();
            if b % 2 == 1 {
                mine.reverse();
            }
            (format!("{}-{b}", run.id), mine)
        })
        .collect();
    let results = futures_util::future::join_all(batches.iter().map(|(batch, mine)| {
        let store = store.clone();
        let plan = plan.clone();
        async move {
            let records: Vec<KeyToClaim<'_>> = mine
                .iter()
                .enumerate()
                .map(|(i, key)| KeyToClaim {
                    key,
                    row_number: i as u64 + 1,
                    row_hash: b"h",
                })
                .collect();
            store.claim_keys(&plan, batch, &records).await.unwrap()
        }
    }))
    .await;
    let mut owners = std::collections::HashMap::new();
    for claims in &results {
        for (key, claim) in claims {
            let owner = owners.entry(key.clone()).or_insert(claim.batch_id.clone());
            assert_eq!(*owner, claim.batch_id, "two owners for {key}");
        }
    }
    let owned: usize = batches
        .iter()
        .zip(&results)
        .map(|((batch, _), claims)| {
            claims
                .values()
                .filter(|c| !c.is_duplicate_for(batch))
                .count()
        })
        .sum();
    assert_eq!(owned, owners.len());
    assert_eq!(claimed(&db, &run.id).await, owners.len() as i64);
    drop(store);
}
