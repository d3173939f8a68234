//! Clock and randomness: durable sleep, and `now` and `random` values
//! recorded on first execution and replayed on resume.

use super::super::ctx::RunCtx;
use super::super::interrupt::Interrupt;
use super::errors::trap;
use crate::engine::Sleep;
use std::time::Duration;
use tokio::time::Instant;
use wasmtime::Result as Wt;

/// How often a sleep inside step code checks for cancellation.
const SLEEP_SLICE: Duration = Duration::from_millis(100);

pub async fn sleep(cx: &mut RunCtx, duration_ms: u64) -> Wt<()> {
    cx.live()?;
    match cx.run.sleep(duration_ms).await.map_err(trap)? {
        Sleep::InPlace => {
            // In slices, so a cancellation ends even a sleep of years.
            let end = Instant::now().checked_add(Duration::from_millis(duration_ms));
            loop {
                let left = end.map_or(SLEEP_SLICE, |e| e.saturating_duration_since(Instant::now()));
                if left.is_zero() {
                    return Ok(());
                }
                tokio::time::sleep(left.min(SLEEP_SLICE)).await;
                cx.live()?;
            }
        }
        Sleep::Over => Ok(()),
        Sleep::Until { key, at } => {
            cx.say(format!("{key}: sleeping until {}", crate::clock::iso(at)));
            Err(Interrupt::Suspend {
                until: at,
                reason: key,
            }
            .trap())
        }
    }
}

pub async fn now(cx: &mut RunCtx) -> Wt<u64> {
    cx.live()?;
    cx.run.now_ms().await.map_err(trap)
}

pub async fn random(cx: &mut RunCtx) -> Wt<u64> {
    cx.live()?;
    cx.run.random().await.map_err(trap)
}
