//! SQL behind the operator's lists: runs by filters and gates across runs,
//! each a keyset page after a cursor row.

use super::Result;
use super::rows::{GATES, RUNS};
use super::sql::{Query, SqlTx, q};
use crate::model::{Gate, Run};
use sqlx::Row;
use tidebase_engine::{GateQuery, RunQuery};

/// A parameter of a built query.
enum Arg {
    Text(String),
    Int(i64),
}

/// A `WHERE` clause of optional conditions, numbering its parameters.
#[derive(Default)]
struct Filter {
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl Filter {
    /// The placeholder of a new parameter.
    fn param(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn text(&mut self, value: &str) -> String {
        self.param(Arg::Text(value.to_string()))
    }

    fn and(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    fn clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    fn bind(self, sql: &str) -> Query<'_> {
        self.args.into_iter().fold(q(sql), |query, arg| match arg {
            Arg::Text(t) => query.bind(t),
            Arg::Int(i) => query.bind(i),
        })
    }
}

/// Rows of `alias` after the row of `table` with id `cursor` in the order
/// `created_at` (`newer_first`: descending), then id (`id_op`: `>` for
/// ascending ids). A cursor naming no row compares with NULL: no rows.
fn after_cursor(
    f: &mut Filter,
    table: &str,
    alias: &str,
    cursor: &str,
    newer_first: bool,
    id_op: &str,
) {
    let c = f.text(cursor);
    let at = format!("(SELECT created_at FROM {table} WHERE id = {c})");
    let time_op = if newer_first { "<" } else { ">" };
    f.and(format!(
        "({alias}created_at {time_op} {at} OR ({alias}created_at = {at} AND {alias}id {id_op} {c}))"
    ));
}

/// `%` and `_` taken literally in a `LIKE` pattern (escape character `\`).
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(super) async fn find_runs(tx: &mut SqlTx, rq: &RunQuery, limit: i64) -> Result<Vec<Run>> {
    let mut f = Filter::default();
    if !rq.statuses.is_empty() {
        let list: Vec<String> = rq.statuses.iter().map(|s| f.text(s.as_str())).collect();
        f.and(format!("status IN ({})", list.join(", ")));
    }
    if let Some(w) = &rq.workflow {
        let p = f.text(w);
        f.and(format!("workflow_name = {p}"));
    }
    if let Some(queue) = &rq.queue {
        let p = f.text(queue);
        f.and(format!("queue_name = {p}"));
    }
    if let Some(search) = &rq.search {
        let p = f.text(&format!("%{}%", like_literal(search)));
        f.and(format!("id LIKE {p} ESCAPE '\\'"));
    }
    if let Some(since) = rq.since {
        let p = f.param(Arg::Int(since));
        f.and(format!("created_at >= {p}"));
    }
    if let Some(until) = rq.until {
        let p = f.param(Arg::Int(until));
        f.and(format!("created_at < {p}"));
    }
    // v0.5's order: newest first, ties by ascending id.
    if let Some(cursor) = &rq.before {
        after_cursor(&mut f, "runs", "", cursor, true, ">");
    }
    let limit_p = f.param(Arg::Int(limit));
    let sql = format!(
        "SELECT {} FROM runs{} ORDER BY created_at DESC, id LIMIT {limit_p}",
        RUNS.select(),
        f.clause()
    );
    tx.all(f.bind(&sql), RUNS.decode).await
}

pub(super) async fn list_gates(
    tx: &mut SqlTx,
    gq: &GateQuery,
    limit: i64,
) -> Result<Vec<(Gate, String)>> {
    use tidebase_engine::GateFilter;
    let mut f = Filter::default();
    match gq.filter {
        GateFilter::Pending => f.and("g.status = 'pending'".into()),
        GateFilter::Resolved => f.and("g.status <> 'pending'".into()),
        GateFilter::All => {}
    }
    let oldest_first = gq.filter.oldest_first();
    let (dir, id_op) = if oldest_first {
        ("", ">")
    } else {
        (" DESC", "<")
    };
    if let Some(cursor) = &gq.before {
        after_cursor(&mut f, "gates", "g.", cursor, !oldest_first, id_op);
    }
    let limit_p = f.param(Arg::Int(limit));
    let sql = format!(
        "SELECT {}, r.workflow_name FROM gates g JOIN runs r ON r.id = g.run_id{} \
         ORDER BY g.created_at{dir}, g.id{dir} LIMIT {limit_p}",
        GATES.select_from("g"),
        f.clause()
    );
    tx.all(f.bind(&sql), |row| {
        Ok(((GATES.decode)(row)?, row.try_get("workflow_name")?))
    })
    .await
}
