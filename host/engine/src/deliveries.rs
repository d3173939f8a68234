//! Sending channel deliveries (`semantics.md` §16): after the transaction
//! that recorded them commits, one at a time and in order, each claimed,
//! sent and recorded `delivered`/`failed` in transactions of its own, so a
//! receiver never waits on a lock and may call the API for the same run.

use super::outbound::CHANNEL_USER_AGENT;
use super::{Engine, Result};
use crate::clock::Micros;
use serde::Serialize;
use serde_json::Value;

/// The channel envelope, fields in protocol order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    run_id: Option<&'a str>,
    gate_id: Option<&'a str>,
    delivery_id: &'a str,
    payload: &'a Value,
}

impl Engine {
    /// Send committed deliveries one at a time, in the order they were
    /// recorded, each recorded `delivered`/`failed` before the next; returns
    /// when all are final. Called after commit, holding nothing.
    pub(crate) async fn deliver(&self, ids: &[String]) {
        for id in ids {
            self.deliver_one(id).await;
        }
    }

    pub(crate) async fn deliver_one(&self, id: &str) {
        if let Err(e) = self.send_delivery(id).await {
            tracing::warn!(delivery = %id, error = format!("{e:#}"), "channel delivery not recorded");
        }
    }

    /// Claim, send and record one delivery; a delivery someone else holds
    /// or already finished is left alone.
    async fn send_delivery(&self, id: &str) -> Result<()> {
        let now = self.now();
        let hold = now + (self.outbound.timeout.as_micros() as i64) + 60_000_000;
        let claimed = {
            let mut w = self.store.write().await?;
            let d = w.claim_delivery(id, now, hold).await?;
            w.commit().await?;
            d
        };
        let Some(d) = claimed else { return Ok(()) };
        let envelope = Envelope {
            kind: &d.event_type,
            run_id: d.run_id.as_deref(),
            gate_id: d.gate_id.as_deref(),
            delivery_id: &d.id,
            payload: &d.payload,
        };
        let body = serde_json::to_vec(&envelope).map_err(anyhow::Error::from)?;
        let outcome = self
            .outbound
            .post(
                "channel",
                &d.url,
                body,
                CHANNEL_USER_AGENT,
                d.secret.as_deref(),
            )
            .await;
        let mut w = self.store.write().await?;
        w.finish_delivery(&d.id, &outcome, self.now()).await?;
        w.commit().await?;
        Ok(())
    }

    /// Pending deliveries that no sender picked up (e.g. left by a process
    /// that stopped before sending): the oldest of each run, so one tick
    /// keeps each run's order and sends to every run at once.
    pub(crate) async fn stale_deliveries(&self, now: Micros) -> Result<Vec<String>> {
        let stale = self
            .read()
            .await?
            .stale_deliveries(now - 30_000_000, now, 100)
            .await?;
        let mut runs: Vec<Option<String>> = Vec::new();
        let mut ids = Vec::new();
        for d in stale {
            if !runs.contains(&d.run_id) {
                runs.push(d.run_id);
                ids.push(d.id);
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_envelope_keeps_protocol_field_order() {
        let payload = json!({"a": 1});
        let env = Envelope {
            kind: "run.completed",
            run_id: Some("run_1"),
            gate_id: None,
            delivery_id: "del_1",
            payload: &payload,
        };
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            r#"{"type":"run.completed","runId":"run_1","gateId":null,"deliveryId":"del_1","payload":{"a":1}}"#
        );
    }
}
