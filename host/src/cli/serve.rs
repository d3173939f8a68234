//! `tidebase-host serve`.

use super::DbArgs;
use crate::api::ConnLimits;
use crate::config::Settings;
use crate::engine::{Engine, limits};
use anyhow::Context;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 7373)]
    port: u16,
    /// Address to listen on; the default accepts local connections only
    /// (`0.0.0.0` or `::` for every interface).
    #[arg(long, env = "TIDEBASE_BIND", default_value = "127.0.0.1")]
    bind: String,
    #[command(flatten)]
    db: DbArgs,
    /// Require `Authorization: Bearer <key>` on every route but /health;
    /// also switches the credential broker's routes on.
    #[arg(long, env = "TIDEBASE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// HMAC-SHA256 key for recovery and invoke webhooks.
    #[arg(long, env = "TIDEBASE_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Run and step lease duration in milliseconds (100 to 86400000).
    #[arg(long, env = "TIDEBASE_LEASE_MS", default_value_t = 60_000,
          value_parser = limits::LEASE_MS.parser::<i64>(Some("TIDEBASE_LEASE_MS")))]
    lease_ms: i64,
    /// Public base URL used in gate resolve links.
    #[arg(long, env = "TIDEBASE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Timeout of each outbound webhook call (recovery, invoke, channels), in
    /// milliseconds (1 to 300000).
    #[arg(long, env = "TIDEBASE_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = limits::WEBHOOK_TIMEOUT_MS.parser::<u64>(Some("TIDEBASE_WEBHOOK_TIMEOUT_MS")))]
    webhook_timeout_ms: u64,
    /// The one origin browsers may call the API from (`*`: any).
    #[arg(long, env = "TIDEBASE_CORS_ORIGIN", default_value = "*")]
    cors_origin: String,
    /// Reconciler tick interval in milliseconds (10 to 3600000).
    #[arg(long, env = "TIDEBASE_RECONCILE_MS", default_value_t = 5_000,
          value_parser = limits::RECONCILE_MS.parser::<u64>(Some("TIDEBASE_RECONCILE_MS")))]
    reconcile_ms: u64,
    /// How long a grant that needs approval waits for it, in seconds.
    #[arg(long, env = "TIDEBASE_GRANT_APPROVAL_TTL_S", default_value_t = 3600,
          value_parser = limits::GRANT_APPROVAL_TTL_S.parser::<i64>(Some("TIDEBASE_GRANT_APPROVAL_TTL_S")))]
    grant_approval_ttl_s: i64,
    /// `0` disables the reconciler loop.
    #[arg(long, env = "TIDEBASE_RECONCILER", default_value = "1")]
    reconciler: String,
    /// Concurrent wasm activations of the built-in worker (0 disables it; at most 1024).
    #[arg(long, env = "TIDEBASE_WASM_WORKERS", default_value_t = 32,
          value_parser = limits::WASM_WORKERS.parser::<u32>(Some("TIDEBASE_WASM_WORKERS")))]
    wasm_workers: u32,
    /// Time a client has to send a request head, and the longest a
    /// keep-alive connection may sit idle, in milliseconds.
    #[arg(long, env = "TIDEBASE_HEADER_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    header_timeout_ms: u64,
    /// Time a client has to send a request body once its head arrived, in
    /// milliseconds.
    #[arg(long, env = "TIDEBASE_BODY_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    body_timeout_ms: u64,
    /// Open connections at most; when full, the longest-idle one is closed
    /// for a newcomer [default: 10000, less if the open-file limit is low].
    #[arg(long, env = "TIDEBASE_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: Option<u64>,
    /// Log lines as plain text or as one JSON object per line.
    #[arg(long, env = "TIDEBASE_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: super::LogFormat,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Egress settings first: a bad one stops the server before it listens.
    let allow_private_egress = super::host::allow_private_egress()?;
    let identity = super::host::identity_settings()?;
    let wasm_group_commit = super::host::group_commit()?;
    let vault = super::host::vault(&args.db)?;
    let custody = super::host::custody(identity.production);
    let fd_limit = crate::api::conn::raise_fd_limit();
    let limits = ConnLimits {
        header_timeout: Duration::from_millis(args.header_timeout_ms),
        body_timeout: Duration::from_millis(args.body_timeout_ms),
        max_connections: args.max_connections.map_or_else(
            || crate::api::conn::default_max_connections(fd_limit),
            |n| n as usize,
        ),
    };
    let listener = tokio::net::TcpListener::bind((args.bind.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.bind, args.port))?;
    let opts = args.db.connect_options(super::auto_migrate());
    super::host::warn_if_new(&opts)?;
    let store = crate::store::connect(&opts).await?;
    let database = opts.describe()?;
    let settings = Settings {
        lease_ms: args.lease_ms,
        api_key: args.api_key.filter(|k| !k.is_empty()),
        public_url: args
            .public_url
            .unwrap_or_else(|| format!("http://localhost:{}", args.port))
            .trim_end_matches('/')
            .to_string(),
        webhook_secret: args.webhook_secret.filter(|k| !k.is_empty()),
        webhook_timeout_ms: args.webhook_timeout_ms,
        cors_origin: Some(args.cors_origin)
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| "*".into()),
        allow_private_egress,
        custody,
        grant_approval_ttl_s: args.grant_approval_ttl_s,
        identity,
        wasm_group_commit,
    };
    let runtime = super::host::runtime(&args.db, args.wasm_workers.max(1))?;
    let engine = Engine::new(store, crate::clock::system(), settings)
        .with_component_check(runtime.clone())
        .with_vault(vault);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = (args.wasm_workers > 0).then(|| {
        let w =
            crate::worker::Worker::new(engine.clone(), runtime.clone(), args.wasm_workers as usize);
        tokio::spawn(w.run(stop_rx))
    });
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = %database, max_connections = limits.max_connections, "tidebase-host listening");
    if matches!(args.log_format, super::LogFormat::Text) {
        // A JSON log stays all JSON: the line above says the same.
        eprintln!(
            "tidebase-host: serving on http://{addr} (store: {database}); Studio at http://{addr}/"
        );
    }
    let reconciler = (args.reconciler != "0")
        .then(|| engine.spawn_reconciler(std::time::Duration::from_millis(args.reconcile_ms)));
    let stopping = engine.clone();
    let app = crate::api::router(engine);
    crate::api::serve(listener, app, limits, async move {
        shutdown_signal().await;
        stopping.begin_shutdown();
    })
    .await;
    if let Some(reconciler) = reconciler {
        reconciler.abort();
    }
    let _ = stop_tx.send(true);
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    tracing::info!("shut down cleanly");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
