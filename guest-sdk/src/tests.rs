//! Native unit tests: the SDK's logic against a fake host.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bindings::tidebase::workflow::types as wit;
use crate::host::Host;
use crate::*;

/// A host that keeps checkpoints in memory, like the server would, and records
/// every call so tests can assert on the exact protocol sequence.
#[derive(Default)]
struct FakeHost {
    next_id: Cell<u32>,
    running: RefCell<HashMap<String, String>>,
    completed: RefCell<HashMap<String, String>>,
    calls: RefCell<Vec<String>>,
    options: RefCell<Vec<wit::StepOptions>>,
    fail_completes: Cell<u32>,
    state: RefCell<Option<String>>,
}

impl FakeHost {
    fn calls(&self) -> Vec<String> {
        self.calls.take()
    }
    fn record(&self, call: String) {
        self.calls.borrow_mut().push(call);
    }
}

impl Host for FakeHost {
    fn step_begin(&self, name: &str, options: &wit::StepOptions) -> Result<wit::StepStart, Error> {
        self.options.borrow_mut().push(options.clone());
        if let Some(output) = self.completed.borrow().get(name) {
            self.record(format!("begin {name} -> replay"));
            return Ok(wit::StepStart::Replay(output.clone()));
        }
        self.next_id.set(self.next_id.get() + 1);
        let id = format!("s{}", self.next_id.get());
        self.record(format!("begin {name} -> {id}"));
        self.running
            .borrow_mut()
            .insert(id.clone(), name.to_owned());
        Ok(wit::StepStart::Execute(id))
    }
    fn step_complete(&self, step_id: &str, output: &str) -> Result<(), Error> {
        self.record(format!("complete {step_id} {output}"));
        if self.fail_completes.get() > 0 {
            self.fail_completes.set(self.fail_completes.get() - 1);
            return Err(Error::new("LeaseLost", "step lease expired"));
        }
        let name = self
            .running
            .borrow_mut()
            .remove(step_id)
            .expect("known step");
        self.completed.borrow_mut().insert(name, output.to_owned());
        Ok(())
    }
    fn step_fail(&self, step_id: &str, err: &Error, retryable: bool) -> Result<(), Error> {
        self.record(format!(
            "fail {step_id} retryable={retryable} {}: {}",
            err.name, err.message
        ));
        Ok(())
    }
    fn gate(&self, request: &wit::GateRequest) -> Result<wit::GateOutcome, Error> {
        self.record(format!(
            "gate {} {:?} data={:?} timeout={:?}",
            request.name, request.prompt, request.data, request.timeout_ms
        ));
        Ok(wit::GateOutcome {
            gate_id: "g1".into(),
            decision: wit::Decision::Approved,
            actor: Some("ana".into()),
            payload: r#"{"note":"ok"}"#.into(),
        })
    }
    fn state_get(&self) -> Option<String> {
        self.state.borrow().clone()
    }
    fn state_set(&self, value: &str, options: &wit::StateOptions) -> Result<u32, Error> {
        self.record(format!(
            "state-set {value} stream={:?} importance={:?}",
            options.stream, options.importance
        ));
        *self.state.borrow_mut() = Some(value.to_owned());
        Ok(1)
    }
    fn state_patch(&self, value: &str, _: &wit::StateOptions) -> Result<u32, Error> {
        self.record(format!("state-patch {value}"));
        Ok(2)
    }
    fn state_save(&self, label: &str, _: &wit::StateOptions) -> Result<u32, Error> {
        self.record(format!("state-save {label}"));
        Ok(3)
    }
    fn usage_record(&self, usage: &str) -> Result<(), Error> {
        self.record(format!("usage {usage}"));
        Ok(())
    }
    fn child(&self, edge: &str, workflow: &str, input: &str) -> Result<String, Error> {
        self.record(format!("child {edge} {workflow} {input}"));
        Ok(r#"{"doubled":4}"#.into())
    }
    fn sleep(&self, duration_ms: u64) {
        self.record(format!("sleep {duration_ms}"));
    }
    fn log(&self, _: wit::LogLevel, message: &str) {
        self.record(format!("log {message}"));
    }
    fn now(&self) -> u64 {
        1_700_000_000_000
    }
    fn random(&self) -> u64 {
        42
    }
}

fn run_on(host: &Rc<FakeHost>) -> Run {
    Run::new(host.clone())
}

#[test]
fn completed_step_replays_without_running_code() {
    let host = Rc::new(FakeHost::default());
    let first: Vec<u32> = run_on(&host)
        .step("plan", || Ok::<_, Error>(vec![1, 2]))
        .unwrap();
    assert_eq!(first, [1, 2]);
    assert_eq!(host.calls(), ["begin plan -> s1", "complete s1 [1,2]"]);

    let replayed: Vec<u32> = run_on(&host)
        .step("plan", || -> Result<Vec<u32>, Error> {
            panic!("must not run")
        })
        .unwrap();
    assert_eq!(replayed, [1, 2]);
    assert_eq!(host.calls(), ["begin plan -> replay"]);
}

#[test]
fn retries_begin_each_attempt_afresh() {
    let host = Rc::new(FakeHost::default());
    let mut attempts = 0;
    let out: String = run_on(&host)
        .step_with("flaky", StepOptions::new().retries(2), || {
            attempts += 1;
            if attempts < 3 {
                Err(Error::new("Glitch", format!("attempt {attempts}")))
            } else {
                Ok("done".to_owned())
            }
        })
        .unwrap();
    assert_eq!(out, "done");
    assert_eq!(
        host.calls(),
        [
            "begin flaky -> s1",
            "fail s1 retryable=true Glitch: attempt 1",
            "begin flaky -> s2",
            "fail s2 retryable=true Glitch: attempt 2",
            "begin flaky -> s3",
            r#"complete s3 "done""#,
        ]
    );
}

#[test]
fn last_failure_is_not_retryable_and_is_returned() {
    let host = Rc::new(FakeHost::default());
    let err = run_on(&host)
        .step_with("doomed", StepOptions::new().retries(1), || {
            Err::<u8, _>(Error::new("Broken", "always"))
        })
        .unwrap_err();
    assert_eq!(err, Error::new("Broken", "always"));
    assert_eq!(
        host.calls(),
        [
            "begin doomed -> s1",
            "fail s1 retryable=true Broken: always",
            "begin doomed -> s2",
            "fail s2 retryable=false Broken: always",
        ]
    );

    let err = run_on(&host)
        .step("once", || Err::<u8, _>(Error::msg("nope")))
        .unwrap_err();
    assert_eq!(err.message, "nope");
    assert_eq!(
        host.calls(),
        ["begin once -> s3", "fail s3 retryable=false Error: nope"]
    );
}

#[test]
fn failed_complete_counts_as_a_failed_attempt() {
    let host = Rc::new(FakeHost::default());
    host.fail_completes.set(1);
    let out: u8 = run_on(&host)
        .step_with("write", StepOptions::new().retries(1), || Ok::<_, Error>(7))
        .unwrap();
    assert_eq!(out, 7);
    assert_eq!(
        host.calls(),
        [
            "begin write -> s1",
            "complete s1 7",
            "fail s1 retryable=true LeaseLost: step lease expired",
            "begin write -> s2",
            "complete s2 7",
        ]
    );
}

#[test]
fn mismatched_replay_output_is_an_error() {
    let host = Rc::new(FakeHost::default());
    host.completed
        .borrow_mut()
        .insert("plan".into(), r#""text""#.into());
    let err = run_on(&host)
        .step("plan", || Ok::<u32, Error>(1))
        .unwrap_err();
    assert_eq!(err.name, "ReplayError");
}

#[test]
fn step_options_reach_the_host_with_an_input_hash() {
    let host = Rc::new(FakeHost::default());
    let run = run_on(&host);
    run.step_with(
        "send",
        StepOptions::new()
            .input(&json!({"topic": "tides"}))
            .retries(3)
            .timeout(Duration::from_millis(1500))
            .side_effects(["email.send"])
            .idempotency_key("mail:1")
            .replay(Replay::Never)
            .checkpoint_invariant("sent once")
            .verified_by(&json!({"kind": "receipt"}))
            .credentials(&["smtp"]),
        || Ok::<_, Error>(()),
    )
    .unwrap();
    run.step("bare", || Ok::<_, Error>(())).unwrap();
    run.step_with("pinned", StepOptions::new().input_hash("abc"), || {
        Ok::<_, Error>(())
    })
    .unwrap();

    let options = host.options.take();
    let sent = &options[0];
    assert_eq!(sent.input.as_deref(), Some(r#"{"topic":"tides"}"#));
    // Same vector as `python_sdk_hash_vectors` below.
    assert_eq!(
        sent.input_hash.as_deref(),
        Some("c05ef271265d2515d7d0407fab5632661a0b805b0d6b047b902b61a08c86732b")
    );
    assert_eq!(sent.retries, 3);
    assert_eq!(sent.timeout_ms, Some(1500));
    assert_eq!(sent.side_effects, ["email.send"]);
    assert_eq!(sent.idempotency_key.as_deref(), Some("mail:1"));
    assert_eq!(sent.replay, Some(wit::ReplayPolicy::Never));
    assert_eq!(sent.checkpoint_invariant.as_deref(), Some(r#""sent once""#));
    assert_eq!(sent.verified_by.as_deref(), Some(r#"{"kind":"receipt"}"#));
    assert_eq!(sent.credentials.as_deref(), Some(r#"["smtp"]"#));

    let bare = &options[1];
    assert_eq!(bare.input, None);
    // sha256("null"): the Python SDK hashes a missing input as JSON null.
    assert_eq!(
        bare.input_hash.as_deref(),
        Some("74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b")
    );
    assert_eq!((bare.retries, bare.replay), (0, None));
    assert_eq!(options[2].input_hash.as_deref(), Some("abc"));
}

#[test]
fn unserializable_option_fails_the_step_before_beginning_it() {
    let host = Rc::new(FakeHost::default());
    let mut bad = HashMap::new();
    bad.insert((1, 2), "tuple keys are not JSON");
    let err = run_on(&host)
        .step_with("x", StepOptions::new().input(&bad), || Ok::<_, Error>(()))
        .unwrap_err();
    assert_eq!(err.name, "Error");
    assert!(host.calls().is_empty());
}

#[test]
fn current_step_id_is_set_only_inside_step_code() {
    let host = Rc::new(FakeHost::default());
    let run = run_on(&host);
    assert_eq!(run.current_step_id(), None);
    let seen = run
        .step("outer", || {
            let inner = run.step("inner", || Ok::<_, Error>(run.current_step_id()))?;
            Ok::<_, Error>((run.current_step_id(), inner))
        })
        .unwrap();
    assert_eq!(seen, (Some("s1".into()), Some("s2".into())));
    assert_eq!(run.current_step_id(), None);
}

#[test]
fn gate_state_usage_child_and_clock() {
    let host = Rc::new(FakeHost::default());
    let run = run_on(&host);

    let decision = run
        .gate_with(
            "approve",
            "Ship it?",
            GateOptions::new()
                .data(&json!({"v": 1}))
                .timeout(Duration::from_secs(2)),
        )
        .unwrap();
    assert!(decision.approved());
    assert_eq!(decision.gate_id, "g1");
    assert_eq!(decision.name, "approve");
    assert_eq!(decision.actor.as_deref(), Some("ana"));
    assert_eq!(decision.payload, json!({"note": "ok"}));

    #[derive(Deserialize, PartialEq, Debug)]
    struct Note {
        note: String,
    }
    assert_eq!(decision.payload_as::<Note>().unwrap().note, "ok");

    let state = run.state();
    assert_eq!(state.get::<Value>().unwrap(), None);
    state
        .set_with(
            &json!({"phase": "draft"}),
            StateOptions::new()
                .stream("ui")
                .importance(Importance::Checkpoint),
        )
        .unwrap();
    assert_eq!(
        state.get::<Value>().unwrap(),
        Some(json!({"phase": "draft"}))
    );
    assert_eq!(state.patch(&json!({"n": 1})).unwrap(), 2);
    assert_eq!(state.save("final").unwrap(), 3);

    run.usage()
        .record(Usage {
            kind: Some("llm".into()),
            input_tokens: Some(10),
            cost_usd: Some(0.5),
            step_id: Some("s9".into()),
            ..Usage::default()
        })
        .unwrap();

    #[derive(Serialize)]
    struct In {
        value: u32,
    }
    #[derive(Deserialize)]
    struct Out {
        doubled: u32,
    }
    let out: Out = run.child("c1", "child-echo", &In { value: 2 }).unwrap();
    assert_eq!(out.doubled, 4);

    run.sleep(Duration::from_micros(2_500_900));
    run.info("hi");
    assert_eq!((run.now(), run.random()), (1_700_000_000_000, 42));

    assert_eq!(
        host.calls(),
        [
            r#"gate approve "Ship it?" data=Some("{\"v\":1}") timeout=Some(2000)"#,
            r#"state-set {"phase":"draft"} stream=Some("ui") importance=Some(Importance::Checkpoint)"#,
            r#"state-patch {"n":1}"#,
            "state-save final",
            r#"usage {"kind":"llm","inputTokens":10,"costUsd":0.5,"stepId":"s9"}"#,
            r#"child c1 child-echo {"value":2}"#,
            "sleep 2500",
            "log hi",
        ]
    );
}

#[test]
fn workflow_entry_decodes_input_and_encodes_outcome() {
    #[derive(Deserialize)]
    struct In {
        n: u32,
    }
    fn double(run: &Run, input: In) -> Result<Value, Error> {
        let n: u32 = run.step("double", || Ok::<_, Error>(input.n * 2))?;
        if n > 10 {
            return Err(Error::new("TooBig", n.to_string()));
        }
        Ok(json!({"n": n}))
    }
    let host = Rc::new(FakeHost::default());
    let ok = __private::run_with(host.clone(), r#"{"n":2}"#, double).unwrap();
    assert_eq!(ok, r#"{"n":4}"#);

    let host = Rc::new(FakeHost::default());
    let err = __private::run_with(host.clone(), r#"{"n":6}"#, double).unwrap_err();
    assert_eq!(err, Error::new("TooBig", "12"));

    let err = __private::run_with(host, r#"{"m":1}"#, double).unwrap_err();
    assert_eq!(err.name, "InputError");

    let host = Rc::new(FakeHost::default());
    let unit = __private::run_with(host, "", |_: &Run, input: Option<u8>| {
        Ok::<_, Error>(input.is_none())
    })
    .unwrap();
    assert_eq!(unit, "true");
}

/// Typed inputs hash like their JSON: a Rust `f64` field is a float (`2.0`), an
/// integer field an int (`2`), as with Python's float and int.
#[test]
fn typed_inputs_hash_like_python() {
    #[derive(Serialize)]
    struct Input {
        z: f64,
        a: u32,
    }
    let value = serde_json::to_value(Input { z: 2.0, a: 2 }).unwrap();
    assert_eq!(stable_json(&value), r#"{"a":2,"z":2.0}"#);
}
