//! The rate limit shared by every loader process: grants taken through several stores (as
//! several processes would) never put more than the cap into one window, a request larger than
//! the cap waits for an empty window, and a 429's hold and ramp apply to every process.

use std::time::Duration;

use futures_util::future::join_all;
use mixsync_state::{RateRequest, StateStore};
use mixsync_test_support::TestDb;

const WINDOW: Duration = Duration::from_millis(1_020);

fn request(records: u64, per_second: u64) -> RateRequest {
    RateRequest {
        records,
        bytes: records * 100,
        per_second,
        bytes_per_minute: 2_000_000_000,
        second: WINDOW,
        minute: Duration::from_secs(60) + Duration::from_millis(20),
        ramp: Duration::from_secs(10),
    }
}

/// The grants of `project` as (microseconds since the first, records), in time order.
async fn grants(db: &TestDb, project: &str) -> Vec<(i64, i64)> {
    db.client()
        .await
        .query(
            "SELECT (extract(epoch FROM granted_at - min(granted_at) OVER ()) * 1e6)::bigint,
                    records
               FROM rate_grants WHERE project = $1 ORDER BY granted_at",
            &[&project],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The most records any window of `window` holds, windows starting at each grant.
fn busiest(grants: &[(i64, i64)], window: Duration) -> i64 {
    let span = window.as_micros() as i64;
    (0..grants.len())
        .map(|i| {
            grants[i..]
                .iter()
                .take_while(|(at, _)| *at < grants[i].0 + span)
                .map(|(_, n)| n)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn processes_together_never_put_more_than_the_cap_in_a_window() {
    let db = TestDb::create().await;
    let first = db.state().await;
    // Four "processes", each with its own pool, sending 10 requests of 100 records at once.
    let mut stores: Vec<StateStore> = vec![first];
    for _ in 0..3 {
        stores.push(db.state().await);
    }
    let project = "http://127.0.0.1:3900#1";
    let results = join_all(stores.iter().flat_map(|store| {
        (0..10).map(move |_| async move { store.rate_grant(project, &request(100, 1_000)).await })
    }))
    .await;
    let grants_taken: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert!(grants_taken.iter().all(|g| g.in_window <= 1_000));
    // 4000 records at 1000 a window: some grants wait three windows.
    let longest = grants_taken.iter().map(|g| g.wait).max().unwrap();
    assert!(
        longest >= 3 * WINDOW - Duration::from_millis(200),
        "{longest:?}"
    );

    let log = grants(&db, project).await;
    assert_eq!(log.len(), 40);
    assert_eq!(log.iter().map(|(_, n)| n).sum::<i64>(), 4_000);
    assert_eq!(busiest(&log, WINDOW), 1_000, "{log:?}");
    // Used fully: the last grant is three windows after the first, not later.
    let last = Duration::from_micros(log.last().unwrap().0 as u64);
    assert!(last >= 3 * WINDOW && last < 4 * WINDOW, "{last:?}");

    // Another project has its own budget.
    let other = stores[1]
        .rate_grant("http://127.0.0.1:3900#2", &request(1_000, 1_000))
        .await
        .unwrap();
    assert_eq!(other.wait, Duration::ZERO);
}

#[tokio::test]
async fn a_request_larger_than_the_cap_waits_for_an_empty_window() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let project = "big#1";
    store.rate_grant(project, &request(10, 100)).await.unwrap();
    let big = store.rate_grant(project, &request(500, 100)).await.unwrap();
    assert!(big.wait > WINDOW - Duration::from_millis(200), "{big:?}");
    assert_eq!(big.in_window, 500);
    let after = store.rate_grant(project, &request(1, 100)).await.unwrap();
    assert!(
        after.wait > 2 * WINDOW - Duration::from_millis(200),
        "{after:?}"
    );
    let log = grants(&db, project).await;
    assert_eq!(
        log.iter().map(|(_, n)| n).collect::<Vec<_>>(),
        [&10, &500, &1]
    );
}

#[tokio::test]
async fn a_429_holds_every_process_and_takes_a_fifth_off_the_cap_for_a_while() {
    let db = TestDb::create().await;
    let a = db.state().await;
    let b = db.state().await;
    let project = "held#1";
    let ramp = Duration::from_secs(10);
    a.rate_throttled(project, Duration::from_millis(600), ramp)
        .await
        .unwrap();
    // The other process waits for the hold too.
    let first = b.rate_grant(project, &request(100, 1_000)).await.unwrap();
    assert!(
        first.wait > Duration::from_millis(200) && first.wait <= Duration::from_millis(600),
        "{first:?}"
    );
    // Right after the hold, about four fifths of the cap fit in a window.
    for _ in 0..9 {
        b.rate_grant(project, &request(100, 1_000)).await.unwrap();
    }
    let log = grants(&db, project).await;
    let most = busiest(&log, WINDOW);
    assert!((800..=900).contains(&most), "{most} in {log:?}");
    // Another 429 takes a fifth off what is in force: about two thirds of the cap.
    a.rate_throttled(project, Duration::ZERO, ramp)
        .await
        .unwrap();
    let factor: f64 = db
        .client()
        .await
        .query_one(
            "SELECT base_factor FROM rate_holds WHERE project = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert!((0.64..0.70).contains(&factor), "{factor}");
}
