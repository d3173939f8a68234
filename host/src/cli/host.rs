//! Opening the engine and wasm runtime the way every verb does.

use super::DbArgs;
use crate::config::Settings;
use crate::engine::{Engine, limits};
use crate::runtime::{Runtime, RuntimeConfig};
use std::sync::Arc;

pub async fn engine(db: &DbArgs, settings: Settings) -> anyhow::Result<Engine> {
    let opts = db.connect_options(super::auto_migrate());
    let store = crate::store::connect(&opts).await?;
    eprintln!("store: {}", opts.describe()?);
    Ok(Engine::new(store, crate::clock::system(), settings))
}

/// The wasm runtime, caching compiled components under the data directory.
pub fn runtime(db: &DbArgs, instances: u32) -> anyhow::Result<Arc<Runtime>> {
    let config = RuntimeConfig {
        cache_dir: Some(db.data_dir.join("cache")),
        instances,
        ..RuntimeConfig::default()
    };
    Ok(Arc::new(Runtime::new(config)?))
}

/// The engine of a verb that deploys or runs components, with the runtime
/// that checks and runs them.
pub async fn wasm_engine(
    db: &DbArgs,
    settings: Settings,
    instances: u32,
) -> anyhow::Result<(Engine, Arc<Runtime>)> {
    let runtime = runtime(db, instances)?;
    let engine = engine(db, settings).await?;
    Ok((engine.with_component_check(runtime.clone()), runtime))
}

/// Settings from the environment, for verbs other than `serve`; a value
/// out of range is an error naming the variable and its range.
pub fn env_settings() -> anyhow::Result<Settings> {
    let mut s = Settings::default();
    if let Ok(ms) = std::env::var("TIDEBASE_LEASE_MS") {
        s.lease_ms = limits::LEASE_MS.parse("TIDEBASE_LEASE_MS", &ms)?;
    }
    if let Ok(url) = std::env::var("TIDEBASE_PUBLIC_URL") {
        s.public_url = url.trim_end_matches('/').to_string();
    }
    Ok(s)
}
