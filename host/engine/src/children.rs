//! Child runs, idempotent by `(parent, edge name)`.

use super::runs::NewRun;
use super::{Engine, EngineError, Entity, Result, limits};
use crate::ids;
use crate::model::{Run, RunEdge};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct NewChild {
    pub edge_name: String,
    pub run: NewRun,
    pub edge_type: String,
    pub edge_metadata: Value,
}

impl NewChild {
    /// The limits on a child, whichever door it came through.
    pub fn check(&self) -> Result<()> {
        limits::check_name("name", &self.edge_name)?;
        limits::check_nonempty("edgeType", &self.edge_type)?;
        self.run.check()
    }
}

impl Engine {
    /// Returns the child run, its edge, and whether this call created it.
    pub async fn create_child(
        &self,
        parent_id: &str,
        req: NewChild,
    ) -> Result<(Run, RunEdge, bool)> {
        req.check()?;
        let now = self.now();
        let mut w = self.write().await?;
        // The parent row lock serialises concurrent creations of one edge.
        w.tx.run(parent_id, true)
            .await?
            .ok_or(EngineError::NotFound(Entity::ParentRun))?;
        if let Some(edge) = w.tx.edge(parent_id, &req.edge_name).await? {
            let child =
                w.tx.run(&edge.child_run_id, false)
                    .await?
                    .ok_or_else(EngineError::run_not_found)?;
            return Ok((child, edge, false));
        }
        let mut new = req.run;
        let mut metadata = match new.metadata {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        metadata.insert("parentRunId".into(), json!(parent_id));
        metadata.insert("parentEdgeName".into(), json!(req.edge_name));
        new.metadata = Value::Object(metadata);
        let extra = json!({"parentRunId": parent_id, "edgeName": req.edge_name});
        let child = self.insert_run(&mut w, new, extra, now).await?;
        let edge = RunEdge {
            id: ids::new_id("edge"),
            parent_run_id: parent_id.to_string(),
            child_run_id: child.id.clone(),
            name: req.edge_name,
            edge_type: req.edge_type,
            metadata: req.edge_metadata,
            created_at: now,
        };
        w.tx.insert_edge(&edge).await?;
        w.event(
            parent_id,
            "run.child.created",
            json!({"childRun": child, "edge": edge}),
            now,
        )
        .await?;
        self.commit(w).await?;
        Ok((child, edge, true))
    }
}
