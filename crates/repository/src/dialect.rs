//! What differs between SQLite and PostgreSQL, as data: the handful of operations every
//! repository needs, implemented once per backend.
//!
//! Written generically, sqlx code needs a bound for every type it binds or decodes
//! (`Uuid: Encode<DB> + Type<DB>`, `&mut DB::Connection: Executor`, …), and Rust does not carry
//! such bounds from a trait to its users: every generic repository impl would repeat a dozen
//! lines of them. Instead, statements bind [`Param`]s and read columns through [`Dialect`]'s
//! typed getters, whose bodies are checked against the concrete driver in [`impl_dialect!`].
//! Each repository (`users.rs`, `activities.rs`, …) is then one generic implementation over
//! `DB: Dialect`, and both backends run the same SQL text: both accept `$N` placeholders, and
//! the schemas use the same column names and types.

use std::future::Future;

use sqlx::Database;
use uuid::Uuid;

/// One value bound to a statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Uuid(Uuid),
    BigInt(i64),
    Int(i32),
    Real(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// A `uuid[]` (PostgreSQL only: see [`Dialect::HAS_ARRAYS`]).
    Uuids(&'a [Uuid]),
    /// A NULL of type text.
    NullText,
    /// A double precision value or NULL.
    OptReal(Option<f64>),
    /// A text value or NULL.
    OptText(Option<&'a str>),
    /// A uuid or NULL.
    OptUuid(Option<Uuid>),
    /// A bigint or NULL.
    OptBigInt(Option<i64>),
    /// An `int[]` (PostgreSQL only).
    Ints(&'a [i32]),
}

/// A backend's driver, reduced to what the repositories use. Sealed: public only so that
/// `SqlxUnitOfWork<DB: Dialect>` may be; the module is private, so no one else implements it.
pub trait Dialect: Database {
    /// Whether a `SELECT` of a row that the same write transaction will update needs
    /// `FOR UPDATE`. SQLite's write transactions already hold the database's single write lock
    /// (and SQLite has no such clause).
    const NEEDS_ROW_LOCKS: bool;

    /// Whether the engine takes array parameters (`= ANY($1)`, `unnest($1::uuid[])`); where it
    /// does not, statements over a list name one parameter per element.
    const HAS_ARRAYS: bool;

    /// The statement that wakes job runners when the enqueueing transaction commits, with the
    /// kind as `$1`, where the engine has one.
    const NOTIFY_JOBS: Option<&'static str>;

    fn add_uuids(arguments: &mut Self::Arguments, values: &[Uuid]) -> Result<(), sqlx::Error>;
    fn add_ints(arguments: &mut Self::Arguments, values: &[i32]) -> Result<(), sqlx::Error>;

    fn arguments(params: &[Param<'_>]) -> Result<Self::Arguments, sqlx::Error>;

    /// Runs a prepared statement; returns the rows it changed.
    fn execute(
        conn: &mut Self::Connection,
        sql: &'static str,
        arguments: Self::Arguments,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    fn fetch_all(
        conn: &mut Self::Connection,
        sql: &'static str,
        arguments: Self::Arguments,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;

    /// Runs text that may hold several statements and no parameters (`BEGIN …; SET LOCAL …`).
    fn execute_script(conn: &mut Self::Connection, sql: String)
    -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    fn uuid(row: &Self::Row, column: usize) -> Result<Uuid, sqlx::Error>;
    fn big_int(row: &Self::Row, column: usize) -> Result<i64, sqlx::Error>;
    fn int(row: &Self::Row, column: usize) -> Result<i32, sqlx::Error>;
    fn real(row: &Self::Row, column: usize) -> Result<f64, sqlx::Error>;
    fn text(row: &Self::Row, column: usize) -> Result<String, sqlx::Error>;
    fn optional_big_int(row: &Self::Row, column: usize) -> Result<Option<i64>, sqlx::Error>;
    fn optional_text(row: &Self::Row, column: usize) -> Result<Option<String>, sqlx::Error>;
    fn optional_real(row: &Self::Row, column: usize) -> Result<Option<f64>, sqlx::Error>;
    fn optional_uuid(row: &Self::Row, column: usize) -> Result<Option<Uuid>, sqlx::Error>;
    fn bytes(row: &Self::Row, column: usize) -> Result<Vec<u8>, sqlx::Error>;
}

/// The driver calls behind [`Dialect`] are the same sqlx calls for both backends; only the
/// types they are checked against differ.
macro_rules! impl_dialect {
    ($db:ty, needs_row_locks = $locks:literal, has_arrays = $arrays:literal, notify_jobs = $notify:expr, add_uuids = $add_uuids:expr, add_ints = $add_ints:expr) => {
        impl Dialect for $db {
            const NEEDS_ROW_LOCKS: bool = $locks;
            const HAS_ARRAYS: bool = $arrays;
            const NOTIFY_JOBS: Option<&'static str> = $notify;

            fn add_uuids(arguments: &mut Self::Arguments, values: &[Uuid]) -> Result<(), sqlx::Error> {
                $add_uuids(arguments, values)
            }

            fn add_ints(arguments: &mut Self::Arguments, values: &[i32]) -> Result<(), sqlx::Error> {
                $add_ints(arguments, values)
            }

            fn arguments(params: &[Param<'_>]) -> Result<Self::Arguments, sqlx::Error> {
                use sqlx::Arguments as _;
                let mut arguments = <Self as Database>::Arguments::default();
                for param in params {
                    match *param {
                        Param::Uuid(v) => arguments.add(v),
                        Param::BigInt(v) => arguments.add(v),
                        Param::Int(v) => arguments.add(v),
                        Param::Real(v) => arguments.add(v),
                        Param::Text(v) => arguments.add(v),
                        Param::Bytes(v) => arguments.add(v),
                        Param::NullText => arguments.add(None::<&str>),
                        Param::OptReal(v) => arguments.add(v),
                        Param::OptText(v) => arguments.add(v),
                        Param::OptUuid(v) => arguments.add(v),
                        Param::OptBigInt(v) => arguments.add(v),
                        Param::Uuids(v) => {
                            Self::add_uuids(&mut arguments, v)?;
                            Ok(())
                        }
                        Param::Ints(v) => {
                            Self::add_ints(&mut arguments, v)?;
                            Ok(())
                        }
                    }
                    .map_err(sqlx::Error::Encode)?;
                }
                Ok(arguments)
            }

            async fn execute(
                conn: &mut Self::Connection,
                sql: &'static str,
                arguments: Self::Arguments,
            ) -> Result<u64, sqlx::Error> {
                Ok(sqlx::query_with(sql, arguments).execute(conn).await?.rows_affected())
            }

            async fn fetch_all(
                conn: &mut Self::Connection,
                sql: &'static str,
                arguments: Self::Arguments,
            ) -> Result<Vec<Self::Row>, sqlx::Error> {
                sqlx::query_with(sql, arguments).fetch_all(conn).await
            }

            async fn execute_script(conn: &mut Self::Connection, sql: String) -> Result<(), sqlx::Error> {
                // Scripts are fixed text or carry integers we formatted, never client input.
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(conn).await.map(drop)
            }

            fn uuid(row: &Self::Row, column: usize) -> Result<Uuid, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn big_int(row: &Self::Row, column: usize) -> Result<i64, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn int(row: &Self::Row, column: usize) -> Result<i32, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn real(row: &Self::Row, column: usize) -> Result<f64, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn text(row: &Self::Row, column: usize) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn bytes(row: &Self::Row, column: usize) -> Result<Vec<u8>, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn optional_big_int(row: &Self::Row, column: usize) -> Result<Option<i64>, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn optional_text(row: &Self::Row, column: usize) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn optional_real(row: &Self::Row, column: usize) -> Result<Option<f64>, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn optional_uuid(row: &Self::Row, column: usize) -> Result<Option<Uuid>, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
        }
    };
}

impl_dialect!(
    sqlx::Sqlite,
    needs_row_locks = false,
    has_arrays = false,
    notify_jobs = None,
    add_uuids = |_: &mut sqlx::sqlite::SqliteArguments, _: &[Uuid]| Err(sqlx::Error::Encode(
        "SQLite takes no array parameters; name one parameter per element".into()
    )),
    add_ints = |_: &mut sqlx::sqlite::SqliteArguments, _: &[i32]| Err(sqlx::Error::Encode(
        "SQLite takes no array parameters; name one parameter per element".into()
    ))
);
impl_dialect!(
    sqlx::Postgres,
    needs_row_locks = true,
    has_arrays = true,
    notify_jobs = Some("SELECT pg_notify('stride_jobs', $1)"),
    add_uuids = |arguments: &mut sqlx::postgres::PgArguments, values: &[Uuid]| {
        use sqlx::Arguments as _;
        arguments.add(values).map_err(sqlx::Error::Encode)
    },
    add_ints = |arguments: &mut sqlx::postgres::PgArguments, values: &[i32]| {
        use sqlx::Arguments as _;
        arguments.add(values).map_err(sqlx::Error::Encode)
    }
);

/// The text of a read that the same write transaction will update: `locking` (with
/// `FOR UPDATE`) where the engine needs the clause, `plain` elsewhere.
pub(crate) fn read_for_update<DB: Dialect>(locking: &'static str, plain: &'static str) -> &'static str {
    if DB::NEEDS_ROW_LOCKS { locking } else { plain }
}

/// A result row read column by column, in `SELECT` order.
pub struct Columns<'r, DB: Dialect> {
    row: &'r DB::Row,
    next: usize,
}

impl<'r, DB: Dialect> Columns<'r, DB> {
    pub(crate) fn new(row: &'r DB::Row) -> Self {
        Self { row, next: 0 }
    }

    fn take<T>(&mut self, get: fn(&DB::Row, usize) -> Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        let value = get(self.row, self.next)?;
        self.next += 1;
        Ok(value)
    }

    pub(crate) fn uuid(&mut self) -> Result<Uuid, sqlx::Error> {
        self.take(DB::uuid)
    }
    pub(crate) fn big_int(&mut self) -> Result<i64, sqlx::Error> {
        self.take(DB::big_int)
    }
    pub(crate) fn int(&mut self) -> Result<i32, sqlx::Error> {
        self.take(DB::int)
    }
    pub(crate) fn real(&mut self) -> Result<f64, sqlx::Error> {
        self.take(DB::real)
    }
    pub(crate) fn text(&mut self) -> Result<String, sqlx::Error> {
        self.take(DB::text)
    }
    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, sqlx::Error> {
        self.take(DB::bytes)
    }
    pub(crate) fn optional_big_int(&mut self) -> Result<Option<i64>, sqlx::Error> {
        self.take(DB::optional_big_int)
    }
    pub(crate) fn optional_text(&mut self) -> Result<Option<String>, sqlx::Error> {
        self.take(DB::optional_text)
    }
    pub(crate) fn optional_real(&mut self) -> Result<Option<f64>, sqlx::Error> {
        self.take(DB::optional_real)
    }
    pub(crate) fn optional_uuid(&mut self) -> Result<Option<Uuid>, sqlx::Error> {
        self.take(DB::optional_uuid)
    }
}
