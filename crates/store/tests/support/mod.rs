//! The database a store test works in: its own, created, migrated and dropped by the store's own
//! provisioning, so tests run in parallel.

// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use pulse_store::{
    migrate,
    provision::{drop_database, ensure_database},
};
use pulse_testkit::TestDatabase;

pub struct Db {
    pub database: TestDatabase,
    pub pool: pulse_store::Pool,
}

impl Db {
    /// A new database with every migration applied.
    pub async fn new(tag: &str) -> Self {
        Self::at_version(tag, i64::MAX).await
    }

    /// A new database migrated up to `last` (an older release's schema); checks that exactly
    /// the migrations up to `last` ran.
    pub async fn at_version(tag: &str, last: i64) -> Self {
        let database = TestDatabase::unique(tag);
        assert!(
            ensure_database(&database.url)
                .await
                .expect("create database")
        );
        let pool = pulse_store::connect_pool(&database.url, 8).expect("pool");
        let mut client = pool.get().await.expect("connect");
        let expected: Vec<i64> = migrate::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| *v <= last)
            .collect();
        assert_eq!(
            migrate::run_until(&mut client, last)
                .await
                .expect("migrate"),
            expected
        );
        Db { database, pool }
    }

    pub async fn client(&self) -> pulse_store::pool::Client {
        self.pool.get().await.expect("connect")
    }

    /// The first column of the first row of `sql`.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.client()
            .await
            .query_one(sql, &[])
            .await
            .expect(sql)
            .get(0)
    }

    pub async fn drop(self) {
        drop(self.pool);
        drop_database(&self.database.url)
            .await
            .expect("drop database");
    }
}
