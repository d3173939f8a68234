//! Opening the engine and wasm runtime the way every verb does.

use super::DbArgs;
use crate::config::{IdentitySettings, Settings};
use crate::engine::broker::Custody;
use crate::engine::{DEFAULT_KEY_LABEL, Engine, GroupCommit, Vault, limits};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::ConnectOptions;
use anyhow::Context;
use std::env::VarError;
use std::path::Path;
use std::sync::Arc;

pub async fn engine(db: &DbArgs, settings: Settings) -> anyhow::Result<Engine> {
    let opts = db.connect_options(super::auto_migrate());
    warn_if_new(&opts)?;
    let store = crate::store::connect(&opts).await?;
    eprintln!("store: {}", opts.describe()?);
    Ok(Engine::new(store, crate::clock::system(), settings))
}

/// Say so before an SQLite store is created where none was: a verb run
/// from an unexpected directory would otherwise show an empty store as if
/// it were the real one.
pub fn warn_if_new(opts: &ConnectOptions) -> anyhow::Result<()> {
    if let Some(file) = opts.sqlite_file()?.filter(|f| !f.exists()) {
        eprintln!(
            "warning: no store at {}; creating an empty one (pass --data-dir or --database-url to use another)",
            file.display()
        );
    }
    Ok(())
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
    s.allow_private_egress = allow_private_egress()?;
    s.wasm_group_commit = group_commit()?;
    s.identity = identity_settings()?;
    s.custody = custody(s.identity.production);
    Ok(s)
}

/// `TIDEBASE_WASM_GROUP_COMMIT`: `off`, or how many pure step checkpoints
/// a wasm activation writes together.
pub fn group_commit() -> anyhow::Result<GroupCommit> {
    let text = std::env::var(GroupCommit::VAR).ok();
    GroupCommit::from_var(text.as_deref()).map_err(anyhow::Error::msg)
}

/// The broker's identity settings from upstream's variables
/// (`TIDEBASE_CHALLENGE_SECRET`, `TIDEBASE_PROVE_RATE`, …).
pub fn identity_settings() -> anyhow::Result<IdentitySettings> {
    IdentitySettings::from_vars(|name| std::env::var(name).ok()).map_err(anyhow::Error::msg)
}

/// The escape hatch from the address guard, under our name and upstream's
/// (`TIDEBASE_ALLOW_PRIVATE_PROXY`, broker.md §8.4).
const ALLOW_PRIVATE: [&str; 2] = [
    "TIDEBASE_ALLOW_PRIVATE_EGRESS",
    "TIDEBASE_ALLOW_PRIVATE_PROXY",
];

/// `TIDEBASE_ALLOW_PRIVATE_EGRESS` or `TIDEBASE_ALLOW_PRIVATE_PROXY`: `1`
/// lets egress and proxied calls reach private and loopback addresses.
/// Anything but `1`, `0` or unset is refused rather than guessed at, since
/// it switches off the SSRF defence.
pub fn allow_private_egress() -> anyhow::Result<bool> {
    let mut allow = false;
    for var in ALLOW_PRIVATE {
        match std::env::var(var).as_deref() {
            Err(VarError::NotPresent) | Ok("" | "0") => {}
            Ok("1") => allow = true,
            _ => anyhow::bail!("{var} must be 1 or 0"),
        }
    }
    Ok(allow)
}

/// A variable that is set to something other than the empty string.
fn set(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// The broker API's credential backends, from the environment (§7.1), in
/// production mode or not.
pub fn custody(production: bool) -> Custody {
    Custody {
        dev_reference: !production
            || std::env::var("TIDEBASE_ALLOW_DEV_REFERENCE").is_ok_and(|v| v == "1"),
        nango: set("NANGO_SECRET_KEY").is_some(),
        openbao: set("OPENBAO_ADDR").is_some() && set("OPENBAO_TOKEN").is_some(),
        unsupported_kms: set("TIDEBASE_KMS").filter(|kms| kms != "local"),
    }
}

const MASTER_KEY: &str = "TIDEBASE_MASTER_KEY";
const MASTER_KEY_FILE: &str = "master.key";

/// The vault that encrypts resource secrets, under `TIDEBASE_MASTER_KEY`
/// or, when that is unset, the key in `<data-dir>/master.key`, created
/// (owner-only) the first time it is needed outside production. Its key id
/// is `local:<TIDEBASE_MASTER_KEY_LABEL>` (default `local:v1`). `None`:
/// no custody, because production mode found no key, or `TIDEBASE_KMS`
/// names a key service this build does not implement.
pub fn vault(db: &DbArgs) -> anyhow::Result<Option<Vault>> {
    let production = identity_settings()?.production;
    if custody(production).unsupported_kms.is_some() {
        return Ok(None);
    }
    let key = match std::env::var(MASTER_KEY) {
        Ok(text) => Vault::parse_key(text.trim())
            .map_err(|why| anyhow::anyhow!("{MASTER_KEY} is not a usable key: {why}"))?,
        Err(VarError::NotUnicode(_)) => anyhow::bail!("{MASTER_KEY} is not valid UTF-8"),
        Err(VarError::NotPresent) => {
            let file = db.data_dir.join(MASTER_KEY_FILE);
            if production && !file.exists() {
                return Ok(None);
            }
            let text = read_or_create_key(&file)?;
            Vault::parse_key(text.trim()).map_err(|why| {
                anyhow::anyhow!(
                    "{} is not a usable key: {why} (or set {MASTER_KEY})",
                    file.display()
                )
            })?
        }
    };
    let label = set("TIDEBASE_MASTER_KEY_LABEL");
    Ok(Some(Vault::labelled(
        key,
        label.as_deref().unwrap_or(DEFAULT_KEY_LABEL),
    )))
}

/// The text of the key file, after writing a fresh random key to it if it
/// did not exist. The key is written to a private file and linked into place,
/// so two processes starting at once agree on one key and neither reads a
/// half-written file.
fn read_or_create_key(file: &Path) -> anyhow::Result<String> {
    if !file.exists() {
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        let fresh = file.with_extension(format!("key.{}", std::process::id()));
        write_private(&fresh, &new_key_text()?)
            .with_context(|| format!("cannot write a new master key to {}", fresh.display()))?;
        let linked = std::fs::hard_link(&fresh, file);
        let _ = std::fs::remove_file(&fresh);
        match linked {
            // A log line, so that a JSON log (`serve --log-format json`) stays JSON.
            Ok(()) => tracing::info!(file = %file.display(), "created master key"),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", file.display()));
            }
        }
    }
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

/// 32 random bytes from the operating system, as hex.
fn new_key_text() -> anyhow::Result<String> {
    use rand::TryRngCore;
    let mut key = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut key)
        .context("the operating system's random number generator failed")?;
    Ok(format!("{}\n", hex::encode(key)))
}

/// Create `file` readable and writable by its owner only.
fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(file)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
