//! Incremental syncs: the snapshot follows what was loaded, is emptied when the settings
//! change, and key claims detect duplicates and decide the same way on every redelivery.

mod common;

use common::{TestDb, activation_spec, seeded};
use mixsync_domain::Source;
use mixsync_proto::v1::{self, progress::Terminal};
use mixsync_state::{KeyToClaim, ProgressOutcome, RunState, Schedule, StateStore};

fn loaded(run_id: &str, batch: &str, synced: &[(&str, &[u8])]) -> v1::Progress {
    v1::Progress {
        run_id: run_id.into(),
        batch_id: format!("{run_id}-{batch}"),
        stage: v1::Stage::Load.into(),
        loaded: synced.len() as u64,
        synced: synced
            .iter()
            .map(|(key, hash)| v1::SyncedRecord {
                key: (*key).into(),
                row_hash: hash.to_vec(),
            })
            .collect(),
        ..Default::default()
    }
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

async fn snapshot(store: &StateStore, activation: &str, keys: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<_> = store
        .snapshot_hashes(activation, keys)
        .await
        .unwrap()
        .into_iter()
        .collect();
    found.sort();
    found
}

async fn run_keys(db: &TestDb, run_id: &str) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM run_keys WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn changing_the_mapping_or_query_empties_the_snapshot_but_name_and_schedule_do_not() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let activation = seeded(&store).await;

    let run = store.create_run(&activation, false, None).await.unwrap();
    let first = store.run_plan(&run.id).await.unwrap();
    assert_eq!(first.fingerprint.len(), 64);
    store
        .apply_progress(&loaded(&run.id, "0", &[("k1", b"h1"), ("k2", b"h2")]))
        .await
        .unwrap();
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
    store
        .apply_progress(&loaded(&run.id, "0", &[("k1", b"h1")]))
        .await
        .unwrap();
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
    db.drop().await;
}

#[tokio::test]
async fn loads_update_the_snapshot_once_per_report_and_only_for_the_current_settings() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();

    let first = loaded(&run.id, "0", &[("k1", b"old"), ("k2", b"h2")]);
    let second = loaded(&run.id, "1", &[("k1", b"new")]);
    // Both in one transaction, then the first again: the redelivery is not counted and does
    // not bring the old hash back.
    let outcomes = store
        .apply_progress_batch(&[first.clone(), second])
        .await
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ProgressOutcome::Applied { .. }))
    );
    assert_eq!(
        store.apply_progress(&first).await.unwrap(),
        ProgressOutcome::Duplicate
    );
    assert_eq!(
        snapshot(&store, &activation, &["k1", "k2", "k3"]).await,
        [
            ("k1".into(), b"new".to_vec()),
            ("k2".into(), b"h2".to_vec())
        ]
    );
    assert_eq!(store.get_run(&run.id).await.unwrap().counts.loaded, 3);

    // A late report of a run made with settings the snapshot no longer belongs to is counted
    // for that run but stays out of the snapshot.
    let mut spec = activation_spec("a", "", "");
    let current = store.get_activation(&activation).await.unwrap().spec;
    spec.warehouse_id = current.warehouse_id;
    spec.target_id = current.target_id;
    spec.query = "SELECT 2".into();
    store.cancel_run(&run.id).await.unwrap();
    store.update_activation(&activation, &spec).await.unwrap();
    let next = store.create_run(&activation, false, None).await.unwrap();
    store
        .apply_progress(&loaded(&run.id, "late", &[("k9", b"h9")]))
        .await
        .unwrap();
    assert!(snapshot(&store, &activation, &["k9"]).await.is_empty());
    store
        .apply_progress(&loaded(&next.id, "0", &[("k9", b"h9")]))
        .await
        .unwrap();
    assert_eq!(snapshot(&store, &activation, &["k9"]).await.len(), 1);
    drop(store);
    db.drop().await;
}

#[tokio::test]
async fn claims_detect_duplicates_skip_unchanged_records_and_repeat_their_decisions() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    store
        .apply_progress(&loaded(
            &run.id,
            "previous",
            &[("same", b"h-same"), ("changed", b"h-old")],
        ))
        .await
        .unwrap();
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

    // The first batch's records were loaded (the snapshot now holds them), then the batch is
    // redelivered: same owners, same decisions.
    store
        .apply_progress(&loaded(
            &run.id,
            "0",
            &[("changed", b"h-new"), ("new", b"h-x"), ("nul\0key", b"h-y")],
        ))
        .await
        .unwrap();
    assert_eq!(
        snapshot(&store, &activation, &["nul\0key"]).await,
        [("nul\0key".into(), b"h-y".to_vec())]
    );
    let again = store.claim_keys(&plan, &batch, &records).await.unwrap();
    assert_eq!(again, claims);
    assert_eq!(run_keys(&db, &run.id).await, 5);
    drop(store);
    db.drop().await;
}

#[tokio::test]
async fn a_full_resync_sends_unchanged_records() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    store
        .apply_progress(&loaded(&run.id, "0", &[("k", b"h")]))
        .await
        .unwrap();
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
    db.drop().await;
}

#[tokio::test]
async fn a_run_forgets_its_keys_when_it_ends() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    let plan = store.run_plan(&run.id).await.unwrap();
    let batch = format!("{}-0", run.id);
    let records = [
        KeyToClaim {
            key: "a",
            row_number: 1,
            row_hash: b"1",
        },
        KeyToClaim {
            key: "b",
            row_number: 2,
            row_hash: b"2",
        },
    ];
    store.claim_keys(&plan, &batch, &records).await.unwrap();
    assert_eq!(run_keys(&db, &run.id).await, 2);
    store.apply_progress(&extracted(&run.id, 2)).await.unwrap();
    assert_eq!(run_keys(&db, &run.id).await, 2);
    let outcome = store
        .apply_progress(&loaded(&run.id, "0", &[("a", b"1"), ("b", b"2")]))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ProgressOutcome::Applied {
            state: RunState::Succeeded
        }
    );
    assert_eq!(run_keys(&db, &run.id).await, 0);

    // A redelivered batch of the ended run claims nothing and is told to send.
    let late = store.claim_keys(&plan, &batch, &records).await.unwrap();
    assert!(late.values().all(|c| c.send && !c.is_duplicate_for(&batch)));
    assert_eq!(run_keys(&db, &run.id).await, 0);

    // Cancelling (or failing) a run forgets its keys too.
    let run = store.create_run(&activation, false, None).await.unwrap();
    let plan = store.run_plan(&run.id).await.unwrap();
    store
        .claim_keys(&plan, &format!("{}-0", run.id), &records)
        .await
        .unwrap();
    assert_eq!(run_keys(&db, &run.id).await, 2);
    store.cancel_run(&run.id).await.unwrap();
    assert_eq!(run_keys(&db, &run.id).await, 0);

    // Deleting the activation takes a running run's keys and the snapshot with it.
    let run = store.create_run(&activation, false, None).await.unwrap();
    let plan = store.run_plan(&run.id).await.unwrap();
    store
        .claim_keys(&plan, &format!("{}-0", run.id), &records)
        .await
        .unwrap();
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 2);
    store.delete_activation(&activation).await.unwrap();
    assert_eq!(run_keys(&db, &run.id).await, 0);
    assert_eq!(store.snapshot_size(&activation).await.unwrap(), 0);
    drop(store);
    db.drop().await;
}

#[tokio::test]
async fn concurrent_batches_sharing_keys_get_one_owner_per_key() {
    let db = TestDb::create().await;
    let store = db.store().await;
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
    assert_eq!(run_keys(&db, &run.id).await, owners.len() as i64);
    drop(store);
    db.drop().await;
}
