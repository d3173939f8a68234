//! One engine per test, over its own in-memory SQLite database, with a
//! clock that moves only when the test says so.

use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use tidebase_engine::clock::{Clock, Micros};
use tidebase_engine::config::Settings;
use tidebase_engine::model::{Run, Step};
use tidebase_engine::{
    ComponentCheck, Conflict, DeployLimits, Engine, EngineError, NewRun, StepAction, StepBegin,
    Vault,
};
use tidebase_store_sql::{self as store, ConnectOptions};

/// Where every test's clock starts (2023-11-14T22:13:20Z).
pub const T0: Micros = 1_700_000_000_000_000;
/// The lease every test runs with, in microseconds.
pub const LEASE: Micros = 30_000_000;

/// A clock that stands still until moved.
pub struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Micros {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct Rig {
    pub engine: Engine,
    clock: Arc<ManualClock>,
}

/// Accepts every deployment: these tests pin runs to a component but never
/// instantiate one.
struct AnyBytes;

#[async_trait::async_trait]
impl ComponentCheck for AnyBytes {
    async fn check(&self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

impl Rig {
    pub async fn new() -> Rig {
        Rig::open(None, false).await
    }

    /// A rig over the SQLite file `db` (else its own in-memory database),
    /// whose egress broker may reach internal addresses such as the tests'
    /// upstreams on 127.0.0.1 when `allow_private_egress`.
    pub async fn open(db: Option<&Path>, allow_private_egress: bool) -> Rig {
        let settings = Settings {
            allow_private_egress,
            ..Settings::default()
        };
        Rig::with_settings(db, settings).await
    }

    /// A rig whose engine has `settings` (the lease is always [`LEASE`]).
    pub async fn with_settings(db: Option<&Path>, settings: Settings) -> Rig {
        Rig::build(db, settings, Some(random_vault())).await
    }

    /// A rig over its own in-memory database with these settings (the
    /// lease is always [`LEASE`]) and vault.
    pub async fn with(settings: Settings, vault: Option<Vault>) -> Rig {
        Rig::build(None, settings, vault).await
    }

    async fn build(db: Option<&Path>, settings: Settings, vault: Option<Vault>) -> Rig {
        // A named shared-cache memory database: every pooled connection
        // opens the same one, and no other test's. (SQLite shares it only
        // when named in URI form, hence `file:`.)
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let url = db.map_or_else(
            || {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let name = format!("tidebase-rules-{}-{n}", std::process::id());
                format!("sqlite:file:{name}?mode=memory&cache=shared")
            },
            |path| format!("sqlite://{}", path.display()),
        );
        let store = store::connect(&ConnectOptions {
            database_url: Some(url),
            data_dir: std::env::temp_dir(),
            auto_migrate: true,
            max_connections: 4,
        })
        .await
        .expect("open the store");
        let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
        let settings = Settings {
            lease_ms: LEASE / 1000,
            ..settings
        };
        let engine = Engine::new(store, clock.clone(), settings)
            .with_component_check(Arc::new(AnyBytes))
            .with_vault(vault);
        Rig { engine, clock }
    }

    pub fn now(&self) -> Micros {
        self.clock.now()
    }

    pub fn set(&self, at: Micros) {
        self.clock.0.store(at, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Micros) {
        self.clock.0.fetch_add(by, Ordering::SeqCst);
    }

    /// A new `pending` run of a workflow nobody deployed (an SDK-driven run).
    pub async fn run(&self) -> Run {
        self.engine
            .create_run(NewRun::named("wf", json!({})))
            .await
            .unwrap()
    }

    /// A new run the host executes itself: pinned to a deployed component.
    /// The bytes are never instantiated here, so any will do.
    pub async fn hosted_run(&self) -> Run {
        self.engine
            .deploy("hosted", b"component", DeployLimits::default())
            .await
            .unwrap();
        let run = self
            .engine
            .create_run(NewRun::named("hosted", json!({})))
            .await
            .unwrap();
        assert!(run.component_digest.is_some());
        run
    }

    /// Kinds of a run's events, in order.
    pub async fn events(&self, run_id: &str) -> Vec<String> {
        let detail = self.engine.run_detail(run_id).await.unwrap();
        detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn step_begin(
        &self,
        run_id: &str,
        name: &str,
        hash: &str,
        owner: &str,
    ) -> StepAction {
        self.engine
            .begin_step(run_id, begin(name, hash, owner))
            .await
            .unwrap()
    }

    /// A step begin that must be answered `execute`: its step row.
    pub async fn execute(&self, run_id: &str, name: &str, owner: &str) -> Step {
        match self.step_begin(run_id, name, "h", owner).await {
            StepAction::Execute { step, lease_owner } => {
                assert_eq!(lease_owner, owner);
                step
            }
            other => panic!("expected execute, got {other:?}"),
        }
    }
}

/// A step begin by `owner` with no options.
pub fn begin(name: &str, hash: &str, owner: &str) -> StepBegin {
    StepBegin {
        id: None,
        name: name.into(),
        input_hash: hash.into(),
        input: json!({}),
        options: json!({}),
        lease_owner: Some(owner.into()),
    }
}

/// A vault with a fresh random master key.
pub fn random_vault() -> Vault {
    Vault::new(Vault::parse_key(&Vault::generate_key_text()).unwrap())
}

/// A refusal that conflicts with the run's current record (the 409 family:
/// a conflict, a lost lease, a cancelled run), or a panic naming what came
/// instead.
pub fn conflict<T: std::fmt::Debug>(result: Result<T, EngineError>) -> EngineError {
    match result {
        Err(
            e @ (EngineError::Conflict(_)
            | EngineError::LeaseLost(_)
            | EngineError::RunCancelled(_)),
        ) => e,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Who holds the lease a refused `begin_run` ran into.
pub fn leased_by(e: EngineError) -> String {
    match e {
        EngineError::Conflict(Conflict::RunLeased { owner }) => owner,
        other => panic!("expected a leased run, got {other:?}"),
    }
}
