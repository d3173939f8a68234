//! Live state: read, replace, merge and save the run's state.

use super::super::bindings::{GuestError, Importance, StateOptions};
use super::super::ctx::RunCtx;
use super::errors::{answer, parse, trap};
use crate::engine::{HostCall, StateWrite, WriteMode};
use serde_json::Value;
use wasmtime::Result as Wt;

pub async fn get(cx: &mut RunCtx) -> Wt<Option<String>> {
    cx.live()?;
    let state = cx.run.call(HostCall::StateGet).await.map_err(trap)?;
    Ok((!state.is_null()).then(|| state.to_string()))
}

/// `state-set` (replace) and `state-patch` (merge).
pub async fn write(
    cx: &mut RunCtx,
    mode: WriteMode,
    value: String,
    options: StateOptions,
) -> Wt<Result<u32, GuestError>> {
    cx.live()?;
    cx.check_size("state value", &value)?;
    let (value, meta) = match (parse("state value", &value), state_write(options)) {
        (Ok(v), Ok(m)) => (v, m),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    let call = match mode {
        WriteMode::Replace => "state-set",
        WriteMode::Merge => "state-patch",
    };
    let r = cx
        .run
        .call(HostCall::StateWrite { mode, value, meta })
        .await;
    Ok(answer(call, r)?.map(version))
}

pub async fn save(
    cx: &mut RunCtx,
    label: String,
    options: StateOptions,
) -> Wt<Result<u32, GuestError>> {
    cx.live()?;
    let meta = match state_write(options) {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    let r = cx.run.call(HostCall::StateSave { label, meta }).await;
    Ok(answer("state-save", r)?.map(version))
}

fn state_write(o: StateOptions) -> Result<StateWrite, GuestError> {
    Ok(StateWrite {
        stream: o.stream,
        label: o.label,
        reason: o.reason,
        importance: o.importance.map(|i| {
            match i {
                Importance::Transient => "transient",
                Importance::Normal => "normal",
                Importance::Checkpoint => "checkpoint",
                Importance::Milestone => "milestone",
            }
            .to_string()
        }),
        metadata: o
            .metadata
            .map(|m| parse("state metadata", &m))
            .transpose()?,
        created_by: o.created_by,
    })
}

/// A recorded state version as the guest sees it.
fn version(v: Value) -> u32 {
    v.as_u64()
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}
