//! The operator's lists: runs filtered and paged, and the gates waiting for
//! a person. One method each, used alike by HTTP, the CLI and MCP.
//!
//! Pages are cursor-based: `nextCursor` is the id of the page's last row,
//! and `before` asks for the rows after it in the list's order, so a run or
//! gate created while someone pages never shifts or repeats a row. A cursor
//! that names no row reads as an empty page.

use super::{Engine, Result, limits};
use crate::clock::Micros;
use crate::model::{Gate, Run, RunStatus};
use serde::Serialize;

/// Filters and page of a run list, newest first (`createdAt` descending).
#[derive(Clone, Debug)]
pub struct RunQuery {
    /// Any of these statuses; empty: every status.
    pub statuses: Vec<RunStatus>,
    pub workflow: Option<String>,
    pub queue: Option<String>,
    /// Part of the run id (ids are lower case, so this is matched lower-cased).
    pub search: Option<String>,
    /// Created at or after.
    pub since: Option<Micros>,
    /// Created before.
    pub until: Option<Micros>,
    /// 1–200 ([`limits::LIST_LIMIT`]); 100 by default.
    pub limit: i64,
    /// The `nextCursor` of the previous page.
    pub before: Option<String>,
}

impl Default for RunQuery {
    fn default() -> Self {
        RunQuery {
            statuses: Vec::new(),
            workflow: None,
            queue: None,
            search: None,
            since: None,
            until: None,
            limit: limits::LIST_LIMIT_DEFAULT,
            before: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPage {
    pub runs: Vec<Run>,
    /// Pass as `before` for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// Which gates a gate list holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GateFilter {
    /// Waiting for a decision, oldest first: the operator's inbox.
    #[default]
    Pending,
    /// Decided or timed out, newest first.
    Resolved,
    /// Every gate, newest first.
    All,
}

impl GateFilter {
    pub const NAMES: [&str; 3] = ["pending", "resolved", "all"];

    pub fn named(name: &str) -> Option<GateFilter> {
        match name {
            "pending" => Some(GateFilter::Pending),
            "resolved" => Some(GateFilter::Resolved),
            "all" => Some(GateFilter::All),
            _ => None,
        }
    }

    /// Whether the list runs oldest first.
    pub fn oldest_first(self) -> bool {
        self == GateFilter::Pending
    }
}

#[derive(Clone, Debug)]
pub struct GateQuery {
    pub filter: GateFilter,
    /// 1–200; 100 by default.
    pub limit: i64,
    pub before: Option<String>,
}

impl Default for GateQuery {
    fn default() -> Self {
        GateQuery {
            filter: GateFilter::Pending,
            limit: limits::LIST_LIMIT_DEFAULT,
            before: None,
        }
    }
}

/// A gate as an operator sees it: no resolve token, and the workflow of
/// its run. Gates of wasm runs, SDK runs and grant approvals look alike.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedGate {
    #[serde(flatten)]
    pub gate: Gate,
    pub workflow_name: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatePage {
    pub gates: Vec<ListedGate>,
    pub next_cursor: Option<String>,
}

impl RunQuery {
    /// The limits on a run list, whichever door it came through.
    pub fn check(&self) -> Result<()> {
        limits::LIST_LIMIT.check("limit", self.limit)?;
        for (field, value) in [
            ("workflow", &self.workflow),
            ("queue", &self.queue),
            ("q", &self.search),
            ("before", &self.before),
        ] {
            if let Some(v) = value {
                limits::check_name(field, v)?;
            }
        }
        Ok(())
    }
}

/// Keep the first `limit` rows; the cursor names the last one kept when
/// the store found more.
fn page<T>(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let cursor = more.then(|| rows.last().map(|r| id(r).to_string()));
    (rows, cursor.flatten())
}

impl Engine {
    /// Runs matching `q`, newest first.
    pub async fn find_runs(&self, mut q: RunQuery) -> Result<RunPage> {
        q.check()?;
        q.search = q.search.map(|s| s.to_lowercase());
        let rows = self.read().await?.find_runs(&q, q.limit + 1).await?;
        let (runs, next_cursor) = page(rows, q.limit, |r: &Run| &r.id);
        Ok(RunPage { runs, next_cursor })
    }

    /// The 100 most recently created runs (v0.5's `GET /runs`): the first
    /// page of the unfiltered list.
    pub async fn list_runs(&self) -> Result<Vec<Run>> {
        Ok(self.find_runs(RunQuery::default()).await?.runs)
    }

    /// Gates across every run: by default the pending ones, oldest first.
    pub async fn list_gates(&self, q: GateQuery) -> Result<GatePage> {
        limits::LIST_LIMIT.check("limit", q.limit)?;
        if let Some(before) = &q.before {
            limits::check_name("before", before)?;
        }
        let rows = self.read().await?.list_gates(&q, q.limit + 1).await?;
        let gates = rows
            .into_iter()
            .map(|(mut gate, workflow_name)| {
                gate.resolve_token.clear();
                ListedGate {
                    gate,
                    workflow_name,
                }
            })
            .collect();
        let (gates, next_cursor) = page(gates, q.limit, |g: &ListedGate| &g.gate.id);
        Ok(GatePage { gates, next_cursor })
    }
}
