//! Mode `ready`: how long the release `tidebase-host serve` takes, from
//! spawn on a fresh SQLite data directory (store created and migrated, key
//! made, runtime built) until `/health` answers.

use crate::report::{Latencies, Table, ms, record};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone, Debug)]
pub struct ReadyArgs {
    /// Servers started, one after another, each on a fresh data directory.
    #[arg(long, default_value_t = 5)]
    pub starts: usize,
    /// The `tidebase-host` binary [default: beside this one].
    #[arg(long)]
    pub host_bin: Option<PathBuf>,
}

/// Give up on a server that is not ready by then.
const LIMIT: Duration = Duration::from_secs(30);

pub async fn run(a: &ReadyArgs) -> Result<()> {
    let bin = match &a.host_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("tidebase-host"),
    };
    if !bin.is_file() {
        bail!(
            "no tidebase-host at {}: build it beside the bench (cargo build --release -p tidebase-host) or pass --host-bin",
            bin.display()
        );
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()?;
    let mut lat = Latencies::default();
    for i in 0..a.starts.max(1) {
        eprintln!("ready: start {} of {}", i + 1, a.starts);
        lat.push(start_once(&bin, &http).await?);
    }
    let mut table = Table::new(
        &format!(
            "serve ready on a fresh SQLite data dir ({}): spawn → /health answers",
            bin.display()
        ),
        &["starts", "p50 ms", "max ms", "mean ms"],
    );
    table.row(vec![
        lat.len().to_string(),
        format!("{:.1}", ms(lat.pct(50.0))),
        format!("{:.1}", ms(lat.pct(100.0))),
        format!("{:.1}", ms(lat.mean())),
    ]);
    table.print();
    record(
        "serve.ready",
        json!({"backend": "sqlite", "latency": lat.summary()}),
    );
    Ok(())
}

async fn start_once(bin: &PathBuf, http: &reqwest::Client) -> Result<Duration> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("tb_ready_{}", &tag[..12]));
    // A port free a moment ago; the server binds it right away.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("http://127.0.0.1:{port}/health");
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .args(["serve", "--port", &port.to_string(), "--data-dir"])
        .arg(&dir)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    let ready = loop {
        if http
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break Ok(t0.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("tidebase-host serve exited: {status}"));
        }
        if t0.elapsed() > LIMIT {
            break Err(anyhow::anyhow!("not ready within {LIMIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
    ready
}
