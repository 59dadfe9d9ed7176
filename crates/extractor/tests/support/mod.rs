//! The extractor tests' own helpers on top of `mixsync-test-support`, whose `TestDb` is the
//! warehouse (and the state database) of each test.

#![allow(dead_code)]

pub mod stack;

use mixsync_extractor::warehouse::{self, Warehouse};
use mixsync_test_support::TestDb;

/// A warehouse connection to `db`.
pub async fn warehouse_on(db: &TestDb) -> Warehouse {
    warehouse::connect(&mixsync_state::WarehouseConnection::from_dsn(db.dsn()))
        .await
        .unwrap()
}

/// `SELECT count(*) FROM <table>` in `db`.
pub async fn count(db: &TestDb, table: &str) -> i64 {
    db.client()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}
