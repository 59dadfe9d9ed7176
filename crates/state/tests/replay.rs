//! Replays read failed records a page at a time, each row once.

use mixsync_proto::v1;
use mixsync_state::{ReplayCursor, ReplaySelection};
use mixsync_test_support::TestDb;
use mixsync_test_support::fixtures::seeded;

fn failure(row_number: u64) -> v1::FailedRow {
    v1::FailedRow {
        row_number,
        field: "time".into(),
        rule: "required".into(),
        message: format!("row {row_number}: missing"),
        row: Some(v1::Row {
            values: vec![v1::Value {
                kind: Some(v1::value::Kind::IntValue(row_number as i64)),
            }],
        }),
        ..Default::default()
    }
}

fn failed(run_id: &str, activation_id: &str, stage: v1::Stage, rows: &[u64]) -> v1::Progress {
    v1::Progress {
        run_id: run_id.into(),
        activation_id: activation_id.into(),
        batch_id: format!("{run_id}-{}", rows[0]),
        stage: stage.into(),
        failed: rows.len() as u64,
        columns: vec!["id".into()],
        failures: rows.iter().map(|n| failure(*n)).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_run_is_read_page_by_page_and_each_row_once() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    let map = failed(&run.id, &activation, v1::Stage::Map, &[1, 2, 3, 5, 8]);
    store.apply_progress(&map).await.unwrap();
    // Row 3 failed again at load (a second record of the same row), in another batch.
    let load = failed(&run.id, &activation, v1::Stage::Load, &[3]);
    store.apply_progress(&load).await.unwrap();

    let selection = ReplaySelection::Run(run.id.clone());
    let mut seen = Vec::new();
    let mut cursor: Option<ReplayCursor> = None;
    let mut pages = 0;
    loop {
        let (rows, next) = store
            .replay_rows(&selection, cursor.as_ref(), 2)
            .await
            .unwrap();
        pages += 1;
        assert!(rows.len() <= 2);
        seen.extend(rows.iter().map(|r| r.row_number));
        for r in &rows {
            assert_eq!(r.columns, ["id"]);
            assert_eq!(
                r.row.values[0].kind,
                Some(v1::value::Kind::IntValue(r.row_number as i64))
            );
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, [1, 2, 3, 5, 8]);
    assert!(pages >= 3, "{pages} pages");

    // All at once gives the same rows.
    let (all, next) = store.replay_rows(&selection, None, 100).await.unwrap();
    assert!(next.is_none());
    let numbers: Vec<u64> = all.iter().map(|r| r.row_number).collect();
    assert_eq!(numbers, [1, 2, 3, 5, 8]);

    // By ids: just those.
    let ids = vec![all[1].id.clone(), all[4].id.clone()];
    let (picked, _) = store
        .replay_rows(&ReplaySelection::Ids(ids), None, 2)
        .await
        .unwrap();
    let numbers: Vec<u64> = picked.iter().map(|r| r.row_number).collect();
    assert_eq!(numbers, [2, 8]);
    drop(store);
}
