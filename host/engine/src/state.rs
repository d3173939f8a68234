//! Live run state, named version streams, labels and snapshots.

use super::limits;
use super::write::Write;
use super::{Engine, EngineError, Entity, Result};
use crate::clock::Micros;
use crate::ids;
use crate::model::{LiveState, StateStream, StateVersion};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Replace,
    Merge,
}

/// Version metadata shared by state writes, saves and snapshots.
#[derive(Clone, Debug, Default)]
pub struct StateWrite {
    pub stream: Option<String>,
    pub label: Option<String>,
    pub reason: Option<String>,
    pub importance: Option<String>,
    pub metadata: Option<Value>,
    pub created_by: Option<String>,
}

impl StateWrite {
    /// The limits on version metadata, whichever door it came through: the
    /// stream is a name (streams are looked up by it), a label is not empty.
    pub fn check(&self) -> Result<()> {
        if let Some(stream) = &self.stream {
            limits::check_name("stream", stream)?;
        }
        if let Some(label) = &self.label {
            limits::check_nonempty("label", label)?;
        }
        limits::check_opt_text("reason", self.reason.as_deref())?;
        limits::check_opt_text("createdBy", self.created_by.as_deref())?;
        Ok(())
    }
}

/// `jsonb ||`: shallow merge of two objects, otherwise array concatenation.
fn merge(old: Value, patch: &Value) -> Value {
    match (old, patch) {
        (Value::Object(mut a), Value::Object(b)) => {
            a.extend(b.clone());
            Value::Object(a)
        }
        (old, patch) => {
            let as_list = |v: Value| match v {
                Value::Array(items) => items,
                other => vec![other],
            };
            let mut items = as_list(old);
            items.extend(as_list(patch.clone()));
            Value::Array(items)
        }
    }
}

struct Target<'a> {
    kind: &'a str,
    id: Option<&'a str>,
}

impl<'a> NewVersion<'a> {
    /// A labelled version that leaves live state alone (saves, snapshots).
    fn milestone(stream: &'a str, target: Target<'a>, value: Value, meta: StateWrite) -> Self {
        NewVersion {
            stream,
            target,
            value,
            patch: None,
            meta,
            default_importance: "milestone",
        }
    }
}

/// One version to append: where, what, and its metadata.
struct NewVersion<'a> {
    stream: &'a str,
    target: Target<'a>,
    value: Value,
    patch: Option<Value>,
    meta: StateWrite,
    default_importance: &'a str,
}

impl Engine {
    /// Append the next version to a stream (creating it), moving its current
    /// value. Versions are gap-free per stream: the stream row is locked.
    async fn record_version(
        &self,
        w: &mut Write,
        run_id: &str,
        new: NewVersion<'_>,
        now: Micros,
    ) -> Result<StateVersion> {
        let NewVersion {
            stream: stream_name,
            target,
            value,
            patch,
            meta,
            default_importance,
        } = new;
        // The row lock below cannot cover a stream that does not exist yet.
        w.tx.lock_key(&format!("{run_id}:stream:{stream_name}"))
            .await?;
        let existing = w.tx.stream(run_id, stream_name, true).await?;
        let insert = existing.is_none();
        let mut stream = existing.unwrap_or_else(|| StateStream {
            id: ids::new_id("stream"),
            run_id: Some(run_id.to_string()),
            name: stream_name.to_string(),
            target_type: String::new(),
            target_id: None,
            current_version: 0,
            current_value: json!({}),
            metadata: json!({}),
            created_at: now,
            updated_at: now,
        });
        stream.current_version = limits::next_version(stream.current_version)?;
        stream.current_value = value.clone();
        stream.target_type = target.kind.to_string();
        stream.target_id = target.id.map(String::from);
        stream.updated_at = now;
        w.tx.put_stream(&stream, insert).await?;
        let version = StateVersion {
            id: ids::new_id("ver"),
            stream_id: stream.id.clone(),
            run_id: Some(run_id.to_string()),
            step_id: None,
            version: stream.current_version,
            value,
            patch,
            label: meta.label,
            reason: meta.reason,
            importance: meta.importance.unwrap_or_else(|| default_importance.into()),
            metadata: meta.metadata.unwrap_or_else(|| json!({})),
            created_by: meta.created_by,
            created_at: now,
        };
        w.tx.insert_version(&version).await?;
        Ok(version)
    }

    /// PUT (replace) or PATCH (merge) the live state. `value` is `None` when
    /// the request carried none.
    pub async fn write_state(
        &self,
        run_id: &str,
        mode: WriteMode,
        value: Option<Value>,
        meta: StateWrite,
    ) -> Result<LiveState> {
        let now = self.now();
        let mut w = self.write().await?;
        w.tx.run(run_id, false)
            .await?
            .ok_or_else(EngineError::run_not_found)?;
        let state = self
            .put_state(&mut w, run_id, mode, value, meta, now)
            .await?;
        self.commit(w).await?;
        Ok(state)
    }

    /// [`Engine::write_state`] inside `w`, for a run known to exist.
    pub(crate) async fn put_state(
        &self,
        w: &mut Write,
        run_id: &str,
        mode: WriteMode,
        value: Option<Value>,
        meta: StateWrite,
        now: Micros,
    ) -> Result<LiveState> {
        meta.check()?;
        // Serialise writers of this run's live state, including the first
        // ones (before the row exists, `FOR UPDATE` locks nothing).
        w.tx.lock_key(&format!("{run_id}:state")).await?;
        let given = value
            .clone()
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| json!({}));
        let current = w.tx.live_state(run_id, true).await?;
        let version = current
            .as_ref()
            .map_or(Ok(1), |s| limits::next_version(s.version))?;
        let new_value = match (mode, current) {
            (WriteMode::Merge, Some(cur)) => merge(cur.value, &given),
            _ => given.clone(),
        };
        let state = LiveState {
            run_id: run_id.to_string(),
            value: new_value.clone(),
            version,
            updated_at: now,
        };
        w.tx.put_live_state(&state).await?;
        let stream = meta.stream.clone().unwrap_or_else(|| "run".into());
        let patch = (mode == WriteMode::Merge).then(|| given.clone());
        let target = Target {
            kind: "run",
            id: Some(run_id),
        };
        let new = NewVersion {
            stream: &stream,
            target,
            value: new_value.clone(),
            patch,
            meta,
            default_importance: "normal",
        };
        let ver = self.record_version(w, run_id, new, now).await?;
        let mut payload = json!({"stateVersion": ver.public()});
        match mode {
            WriteMode::Replace => {
                if let Some(v) = value {
                    payload["value"] = v;
                }
            }
            WriteMode::Merge => {
                payload["value"] = new_value;
                payload["patch"] = given;
            }
        }
        w.event(run_id, "state.updated", payload, now).await?;
        Ok(state)
    }

    /// Label the current value of a stream as a new version.
    pub async fn save_state(
        &self,
        run_id: &str,
        label: String,
        meta: StateWrite,
    ) -> Result<StateVersion> {
        let now = self.now();
        let mut w = self.write().await?;
        w.tx.run(run_id, false)
            .await?
            .ok_or_else(EngineError::run_not_found)?;
        let ver = self.put_saved(&mut w, run_id, label, meta, now).await?;
        self.commit(w).await?;
        Ok(ver)
    }

    /// [`Engine::save_state`] inside `w`, for a run known to exist.
    pub(crate) async fn put_saved(
        &self,
        w: &mut Write,
        run_id: &str,
        label: String,
        meta: StateWrite,
        now: Micros,
    ) -> Result<StateVersion> {
        let meta = StateWrite {
            label: Some(label),
            ..meta
        };
        meta.check()?;
        let stream_name = meta.stream.clone().unwrap_or_else(|| "run".into());
        let not_found = || EngineError::NotFound(Entity::RunState);
        let (value, kind, id) = if stream_name == "run" {
            let live = w.tx.live_state(run_id, true).await?.ok_or_else(not_found)?;
            (live.value, "run".to_string(), Some(run_id.to_string()))
        } else {
            let s =
                w.tx.stream(run_id, &stream_name, true)
                    .await?
                    .ok_or_else(not_found)?;
            (s.current_value, s.target_type, s.target_id)
        };
        let target = Target {
            kind: &kind,
            id: id.as_deref(),
        };
        let new = NewVersion::milestone(&stream_name, target, value, meta);
        self.milestone(w, run_id, new, "state.saved", now).await
    }

    /// Append a labelled version and announce it with `event`.
    async fn milestone(
        &self,
        w: &mut Write,
        run_id: &str,
        new: NewVersion<'_>,
        event: &str,
        now: Micros,
    ) -> Result<StateVersion> {
        let ver = self.record_version(w, run_id, new, now).await?;
        w.event(run_id, event, json!({"stateVersion": ver.public()}), now)
            .await?;
        Ok(ver)
    }

    pub async fn state_versions(
        &self,
        run_id: &str,
        stream: Option<&str>,
        labeled_only: bool,
    ) -> Result<Vec<StateVersion>> {
        Ok(self
            .read()
            .await?
            .versions(run_id, stream, labeled_only)
            .await?)
    }

    /// The live state of a run, if it has ever been written.
    pub async fn live_state(&self, run_id: &str) -> Result<Option<LiveState>> {
        Ok(self.read().await?.live_state(run_id, false).await?)
    }

    /// A labelled milestone version in stream `<type>:<id>`; live state untouched.
    pub async fn create_snapshot(
        &self,
        run_id: &str,
        label: String,
        state: Value,
        target: Option<(String, String)>,
        meta: StateWrite,
    ) -> Result<StateVersion> {
        let meta = StateWrite {
            label: Some(label),
            importance: Some("milestone".into()),
            ..meta
        };
        meta.check()?;
        let now = self.now();
        let mut w = self.write().await?;
        w.tx.run(run_id, false)
            .await?
            .ok_or_else(EngineError::run_not_found)?;
        let (kind, id) = target.unwrap_or_else(|| ("run".into(), run_id.to_string()));
        let stream = format!("{kind}:{id}");
        let value = if state.is_null() { json!({}) } else { state };
        let target = Target {
            kind: &kind,
            id: Some(&id),
        };
        let new = NewVersion::milestone(&stream, target, value, meta);
        let ver = self
            .milestone(&mut w, run_id, new, "snapshot.created", now)
            .await?;
        self.commit(w).await?;
        Ok(ver)
    }

    pub async fn snapshots(&self, run_id: &str) -> Result<Vec<StateVersion>> {
        Ok(self.read().await?.snapshots(run_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::merge;
    use serde_json::json;

    #[test]
    fn merge_matches_jsonb_concatenation() {
        assert_eq!(
            merge(json!({"a": 1, "b": 2}), &json!({"b": null, "c": 3})),
            json!({"a": 1, "b": null, "c": 3})
        );
        assert_eq!(merge(json!([1]), &json!([2, 3])), json!([1, 2, 3]));
        assert_eq!(merge(json!({"a": 1}), &json!(5)), json!([{"a": 1}, 5]));
        assert_eq!(merge(json!("x"), &json!({"a": 1})), json!(["x", {"a": 1}]));
    }
}
