//! Throw-away databases for tests, shared by the contract suite and the HTTP tests.
//!
//! PostgreSQL tests never touch an existing database: each test creates its own, named
//! `stride_test_<pid>_<n>_<random>`, and drops only that one (also when the test panics), so
//! two concurrent test runs on one server never drop each other's. The server comes from
//! `STRIDE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); if it is
//! unreachable the test fails, naming the URL — it is never silently skipped.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use stride_concurrency::Deadline;

use crate::dialect::{Dialect, Param};
use crate::{Backend, PgStore, RepoResult, SqliteStore, SqlxUnitOfWork, Store, StoreConfig};

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn admin_url() -> String {
    std::env::var("STRIDE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// A database that exists for the lifetime of this value.
pub struct TestDatabase {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("stride.db").display());
        Self { url, backend: Backend::Sqlite, cleanup: Cleanup::Sqlite(dir) }
    }

    pub async fn postgres() -> Self {
        let admin_url = admin_url();
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL test server at {admin_url} is unreachable ({e}). Start it (`cargo xtask ci` does) \
                 or point STRIDE_TEST_DATABASE_URL at one."
            )
        });
        let name = format!(
            "stride_test_{}_{}_{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand_suffix()
        );
        // The name is built above from digits and a fixed prefix only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
        let _ = admin.close().await;
        let url = replace_database(&admin_url, &name);
        Self { url, backend: Backend::Postgres, cleanup: Cleanup::Postgres { admin_url, name } }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn config(&self) -> StoreConfig {
        StoreConfig::new(self.url.clone())
    }

    /// A migrated store of this database's backend.
    pub async fn store<S: Store>(&self) -> S {
        assert_eq!(S::BACKEND, self.backend, "a {:?} store over a {:?} database", S::BACKEND, self.backend);
        let store = S::connect(&self.config()).await.expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        store
    }

    pub async fn sqlite_store(&self) -> SqliteStore {
        self.store().await
    }

    pub async fn postgres_store(&self) -> PgStore {
        self.store().await
    }
}

/// A deadline roomy enough for set-up on a loaded machine; tests that probe a deadline make
/// their own.
pub fn deadline() -> Deadline {
    Deadline::after(std::time::Duration::from_secs(10))
}

/// Runs `test` against a fresh migrated store of `S`'s backend, then closes the store.
pub async fn with_store<S: Store, F: Future<Output = ()>>(test: impl FnOnce(S) -> F) {
    let db = TestDatabase::create(S::BACKEND).await;
    let store: S = db.store().await;
    test(store.clone()).await;
    store.close().await;
}

/// Runs each named test once per backend, as `sqlite::name` and `postgres::name`:
/// `each_backend!(store: a, b)` for `async fn a<S: Store>(store: S)` (given a fresh migrated
/// store), `each_backend!(backend: c)` for `async fn c(backend: Backend)` (tests that start a
/// whole application).
#[macro_export]
macro_rules! each_backend {
    (store: $($name:ident),* $(,)?) => {
        $crate::each_backend!(@suite sqlite, $crate::SqliteStore, $(
            $name => $crate::testing::with_store::<$crate::SqliteStore, _>(super::$name)
        ),*);
        $crate::each_backend!(@suite postgres, $crate::PgStore, $(
            $name => $crate::testing::with_store::<$crate::PgStore, _>(super::$name)
        ),*);
    };
    (backend: $($name:ident),* $(,)?) => {
        $crate::each_backend!(@suite sqlite, $crate::SqliteStore, $(
            $name => super::$name($crate::Backend::Sqlite)
        ),*);
        $crate::each_backend!(@suite postgres, $crate::PgStore, $(
            $name => super::$name($crate::Backend::Postgres)
        ),*);
    };
    (@suite $module:ident, $store:ty, $($name:ident => $run:expr),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $run.await;
                }
            )*
        }
    };
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    nanos ^ (std::process::id().rotate_left(16))
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs outside any async context we may block: use a private thread and runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop a test database; it is named stride_test_* and safe to remove");
        }
    }
}

/// Arbitrary SQL inside a unit of work, for tests that need a slow statement or a look behind
/// the repository API. A trait, so generic tests can ask `S::Uow: RawSql`.
pub trait RawSql {
    fn raw(&mut self, sql: &'static str) -> impl Future<Output = RepoResult<()>> + Send;
}

impl<DB: Dialect> RawSql for SqlxUnitOfWork<DB> {
    async fn raw(&mut self, sql: &'static str) -> RepoResult<()> {
        self.on_the_wire(|conn| DB::execute_script(conn, sql.to_owned())).await
    }
}

/// The benchmark's floor (`testing` feature): the same rows taken off the same table by a bare
/// batched `DELETE … RETURNING` — no state, no lease, no fencing. Nothing in the product calls it.
pub trait JobsFloor {
    /// Deletes up to `limit` jobs of `kind`, oldest first; returns how many.
    fn take_jobs(&mut self, kind: &str, limit: u32) -> impl Future<Output = RepoResult<u64>> + Send;
}

impl<DB: Dialect> JobsFloor for SqlxUnitOfWork<DB> {
    async fn take_jobs(&mut self, kind: &str, limit: u32) -> RepoResult<u64> {
        const LOCKING: &str = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE kind = $1 \
             ORDER BY run_at_us, id LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id";
        const SINGLE_WRITER: &str = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE kind = $1 \
             ORDER BY run_at_us, id LIMIT $2) RETURNING id";
        let sql = crate::dialect::read_for_update::<DB>(LOCKING, SINGLE_WRITER);
        let taken =
            self.fetch_all(sql, &[Param::Text(kind), Param::BigInt(limit.into())], |cols| Ok(cols.uuid()?)).await?;
        Ok(taken.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_database_replaces_only_the_path() {
        assert_eq!(replace_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            replace_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
