//! One column list per table. [`table!`] declares, for each field of a
//! model type, its column and how it travels ([`Codec`]); the select list,
//! the insert, the full-row update, the upsert, the parameter binding and the
//! row decoding are all derived from that one list.

use super::sql::Query;
use crate::clock::{from_iso, iso};
use crate::model::{RunStatus, Sealed};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

pub(super) type R<T> = std::result::Result<T, sqlx::Error>;

/// How one column is written in SQL, whatever the field's type.
pub(super) trait ColumnSql {
    /// The placeholder for parameter `$n`.
    fn param(n: usize) -> String {
        format!("${n}")
    }
    /// The select expression for `col` of the table aliased `prefix`
    /// (`"v."`, or empty), named `col` in the result.
    fn select(prefix: &str, col: &str) -> String {
        format!("{prefix}{col}")
    }
}

/// How a field of type `T` is bound as a parameter and read from a row.
pub(super) trait Codec<T>: ColumnSql {
    fn bind<'q>(q: Query<'q>, v: &T) -> Query<'q>;
    fn get(row: &AnyRow, col: &str) -> R<T>;
}

/// As the driver encodes and decodes it.
pub(super) struct Plain;
impl ColumnSql for Plain {}
impl<T> Codec<T> for Plain
where
    T: Clone + sqlx::Type<Any> + for<'a> sqlx::Encode<'a, Any> + for<'r> sqlx::Decode<'r, Any>,
{
    fn bind<'q>(q: Query<'q>, v: &T) -> Query<'q> {
        q.bind(v.clone())
    }
    fn get(row: &AnyRow, col: &str) -> R<T> {
        row.try_get(col)
    }
}

/// JSON as TEXT.
pub(super) struct Json;
impl ColumnSql for Json {}
impl Codec<Value> for Json {
    fn bind<'q>(q: Query<'q>, v: &Value) -> Query<'q> {
        q.bind(json_text(v))
    }
    fn get(row: &AnyRow, col: &str) -> R<Value> {
        decode_json(&row.try_get::<String, _>(col)?)
    }
}
impl Codec<Option<Value>> for Json {
    fn bind<'q>(q: Query<'q>, v: &Option<Value>) -> Query<'q> {
        q.bind(v.as_ref().map(json_text))
    }
    fn get(row: &AnyRow, col: &str) -> R<Option<Value>> {
        row.try_get::<Option<String>, _>(col)?
            .map(|t| decode_json(&t))
            .transpose()
    }
}

/// `v` as JSON text. Not `to_string()`: `Display` writes through a
/// formatter that checks every chunk is UTF-8, 6.7% of the host in a wasm
/// profile where every step's output and events are bound as text.
pub(super) fn json_text(v: &Value) -> String {
    serde_json::to_string(v).expect("a JSON value always serializes")
}

fn decode_json(text: &str) -> R<Value> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A run status as its wire name.
pub(super) struct Status;
impl ColumnSql for Status {}
impl Codec<RunStatus> for Status {
    fn bind<'q>(q: Query<'q>, v: &RunStatus) -> Query<'q> {
        q.bind(v.as_str())
    }
    fn get(row: &AnyRow, col: &str) -> R<RunStatus> {
        Ok(RunStatus::parse(&row.try_get::<String, _>(col)?))
    }
}

/// A float bound as text and cast back: sqlx 0.9's `Any` driver binds a
/// null f64 as float4, which breaks the statement its connection cached for
/// later non-null values.
pub(super) struct FloatText;
impl ColumnSql for FloatText {
    fn param(n: usize) -> String {
        format!("CAST(${n} AS DOUBLE PRECISION)")
    }
}
impl Codec<Option<f64>> for FloatText {
    fn bind<'q>(q: Query<'q>, v: &Option<f64>) -> Query<'q> {
        q.bind(v.map(|f| f.to_string()))
    }
    fn get(row: &AnyRow, col: &str) -> R<Option<f64>> {
        row.try_get(col)
    }
}

/// A boolean read back as an integer: sqlx's `Any` driver cannot decode
/// SQLite booleans.
pub(super) struct Flag;
impl ColumnSql for Flag {
    fn select(prefix: &str, col: &str) -> String {
        format!("CAST(CASE WHEN {prefix}{col} THEN 1 ELSE 0 END AS BIGINT) AS {col}")
    }
}
impl Codec<bool> for Flag {
    fn bind<'q>(q: Query<'q>, v: &bool) -> Query<'q> {
        q.bind(*v)
    }
    fn get(row: &AnyRow, col: &str) -> R<bool> {
        Ok(row.try_get::<i64, _>(col)? != 0)
    }
}

/// An optional count stored as INTEGER; saturates rather than wraps (the
/// doors range-check it first).
pub(super) struct Int32;
impl ColumnSql for Int32 {}
impl Codec<Option<i64>> for Int32 {
    fn bind<'q>(q: Query<'q>, v: &Option<i64>) -> Query<'q> {
        q.bind(v.map(|v| i32::try_from(v).unwrap_or(i32::MAX)))
    }
    fn get(row: &AnyRow, col: &str) -> R<Option<i64>> {
        Ok(row.try_get::<Option<i32>, _>(col)?.map(i64::from))
    }
}

/// A list of strings as a JSON array in TEXT.
pub(super) struct JsonList;
impl ColumnSql for JsonList {}
impl Codec<Vec<String>> for JsonList {
    fn bind<'q>(q: Query<'q>, v: &Vec<String>) -> Query<'q> {
        q.bind(serde_json::json!(v).to_string())
    }
    fn get(row: &AnyRow, col: &str) -> R<Vec<String>> {
        let text = row.try_get::<String, _>(col)?;
        serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
}

/// A tenant: `None` is stored as `''`, so `(principal, name)` keys are
/// real keys on both backends (NULLs never conflict).
pub(super) struct Principal;
impl ColumnSql for Principal {}
impl Codec<Option<String>> for Principal {
    fn bind<'q>(q: Query<'q>, v: &Option<String>) -> Query<'q> {
        q.bind(v.clone().unwrap_or_default())
    }
    fn get(row: &AnyRow, col: &str) -> R<Option<String>> {
        Ok(Some(row.try_get::<String, _>(col)?).filter(|p| !p.is_empty()))
    }
}

/// Sealed secret material as a BLOB.
pub(super) struct Blob;
impl ColumnSql for Blob {}
impl Codec<Option<Sealed>> for Blob {
    fn bind<'q>(q: Query<'q>, v: &Option<Sealed>) -> Query<'q> {
        q.bind(v.as_ref().map(|s| s.0.clone()))
    }
    fn get(row: &AnyRow, col: &str) -> R<Option<Sealed>> {
        Ok(row.try_get::<Option<Vec<u8>>, _>(col)?.map(Sealed))
    }
}

/// A wire timestamp (ISO-8601, as [`iso`] writes it) stored as BIGINT
/// microseconds like every other.
pub(super) struct IsoTime;
impl ColumnSql for IsoTime {}
impl Codec<String> for IsoTime {
    fn bind<'q>(q: Query<'q>, v: &String) -> Query<'q> {
        // The engine only writes `iso` output; anything else sorts first.
        q.bind(from_iso(v).unwrap_or(0))
    }
    fn get(row: &AnyRow, col: &str) -> R<String> {
        Ok(iso(row.try_get(col)?))
    }
}

/// An HTTP status as INTEGER (the `Any` driver has no unsigned types).
pub(super) struct Status16;
impl ColumnSql for Status16 {}
impl Codec<Option<u16>> for Status16 {
    fn bind<'q>(q: Query<'q>, v: &Option<u16>) -> Query<'q> {
        q.bind(v.map(i32::from))
    }
    fn get(row: &AnyRow, col: &str) -> R<Option<u16>> {
        let v = row.try_get::<Option<i32>, _>(col)?;
        Ok(v.map(|v| u16::try_from(v).unwrap_or(u16::MAX)))
    }
}

pub(super) struct Column {
    pub name: &'static str,
    pub param: fn(usize) -> String,
    pub select: fn(&str, &str) -> String,
}

/// A table's column list with the row type it maps to.
pub(super) struct Table<T: 'static> {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub decode: fn(&AnyRow) -> R<T>,
    /// Binds every column, in list order, as the next parameters.
    pub bind: for<'q> fn(Query<'q>, &T) -> Query<'q>,
}

impl<T> Table<T> {
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// The select list.
    pub fn select(&self) -> String {
        self.select_from("")
    }

    /// The select list reading from the table aliased `alias`.
    pub fn select_from(&self, alias: &str) -> String {
        let prefix = if alias.is_empty() {
            String::new()
        } else {
            format!("{alias}.")
        };
        self.join(|c| (c.select)(&prefix, c.name))
    }

    /// The column names, for an insert.
    pub fn names(&self) -> String {
        self.join(|c| c.name.to_string())
    }

    /// Placeholders for every column, numbered from `$1`.
    pub fn params(&self) -> String {
        self.params_from(1)
    }

    /// Placeholders for every column, numbered from `$first` (one row of a
    /// multi-row insert).
    pub fn params_from(&self, first: usize) -> String {
        self.numbered(|n, c| (c.param)(first - 1 + n))
    }

    /// Inserts one row bound by [`Table::bind`].
    pub fn insert(&self) -> String {
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.name,
            self.names(),
            self.params()
        )
    }

    /// Replaces every column of the row whose `key` matches.
    pub fn update(&self, key: &str) -> String {
        let at = self.position(key);
        format!(
            "UPDATE {} SET {} WHERE {key} = ${at}",
            self.name,
            self.assignments()
        )
    }

    /// `column = $n` for every column, numbered from `$1` (an UPDATE's SET).
    pub fn assignments(&self) -> String {
        self.numbered(|n, c| format!("{} = {}", c.name, (c.param)(n)))
    }

    /// Inserts, or replaces every other column of the row whose `key`
    /// conflicts.
    pub fn upsert(&self, key: &str) -> String {
        let set = self
            .columns
            .iter()
            .filter(|c| c.name != key)
            .map(|c| format!("{0} = excluded.{0}", c.name))
            .collect::<Vec<_>>()
            .join(", ");
        format!("{} ON CONFLICT ({key}) DO UPDATE SET {set}", self.insert())
    }

    /// The parameter number of column `key` in [`Table::bind`]'s order.
    pub fn position(&self, key: &str) -> usize {
        1 + self
            .columns
            .iter()
            .position(|c| c.name == key)
            .unwrap_or_else(|| panic!("{} has no column {key}", self.name))
    }

    fn join(&self, f: impl Fn(&Column) -> String) -> String {
        self.columns.iter().map(f).collect::<Vec<_>>().join(", ")
    }

    fn numbered(&self, f: impl Fn(usize, &Column) -> String) -> String {
        let cols = self.columns.iter().enumerate();
        cols.map(|(i, c)| f(i + 1, c))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `table!(NAME: Type = "table" { field: "column" [as Codec], … } [+ { field: expr, … }])`
/// declares `NAME: Table<Type>`. A codec defaults to [`Plain`]. The optional
/// second block computes fields that are no column, from the decoded ones
/// (in scope by field name).
macro_rules! table {
    (
        $(#[$meta:meta])*
        $name:ident: $ty:ident = $table:literal {
            $($field:ident: $col:literal $(as $codec:ident)?),+ $(,)?
        }
        $(+ { $($derived:ident: $expr:expr),+ $(,)? })?
    ) => {
        $(#[$meta])*
        pub(super) static $name: $crate::table::Table<$ty> = {
            fn decode(
                row: &sqlx::any::AnyRow,
            ) -> $crate::table::R<$ty> {
                $(
                    let $field = <table!(@codec $($codec)?) as $crate::table::Codec<_>>::get(row, $col)?;
                )+
                $($(let $derived = $expr;)+)?
                Ok($ty { $($field,)+ $($($derived,)+)? })
            }
            fn bind<'q>(
                q: $crate::sql::Query<'q>,
                v: &$ty,
            ) -> $crate::sql::Query<'q> {
                $(
                    let q = <table!(@codec $($codec)?) as $crate::table::Codec<_>>::bind(q, &v.$field);
                )+
                q
            }
            $crate::table::Table {
                name: $table,
                columns: &[$(
                    $crate::table::Column {
                        name: $col,
                        param: <table!(@codec $($codec)?) as $crate::table::ColumnSql>::param,
                        select: <table!(@codec $($codec)?) as $crate::table::ColumnSql>::select,
                    },
                )+],
                decode,
                bind,
            }
        };
    };
    (@codec) => { $crate::table::Plain };
    (@codec $codec:ident) => { $crate::table::$codec };
}
pub(super) use table;
