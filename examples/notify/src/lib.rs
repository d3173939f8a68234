//! `notify`: post a build summary to a chat webhook, then its details as a
//! thread reply, optionally after a person signs off.
//!
//! Input:
//!
//! ```json
//! {"url": "https://chat.example.com/api/messages", "title": "Nightly build",
//!  "items": [{"name": "api", "ok": true}, {"name": "web", "ok": false, "note": "2 tests failed"}],
//!  "signOff": false}
//! ```
//!
//! step `post-summary` POSTs `{"text": "Nightly build: 1 of 2 passed"}` and
//! keeps the message id the API answers (`{"id": …}`); with `signOff`, gate
//! `sign-off` asks before the details go out; step `post-details` POSTs
//! `{"text": "- api: ok\n- web: FAILED (2 tests failed)", "thread": <id>}`.
//! Output `{"messageId": …, "summary": …, "details": <posted?>}`.
//!
//! The API's token never enters the workflow: the host's broker adds it to
//! every request under the granted resource, and removes it from anything
//! the API echoes back.
//!
//! ```text
//! TIDEBASE_CHAT_TOKEN=… tidebase-host resources connect chat \
//!     --base-url https://chat.example.com/api --secret-env TIDEBASE_CHAT_TOKEN --methods POST
//! tidebase-host run notify.wasm --allow chat --input-file build.json
//! ```
//!
//! Each post is a step with an idempotency key (sent as `Idempotency-Key`),
//! so a resumed run never posts a checkpointed message again, and an API
//! that honours the key drops the repeat of a post whose checkpoint a crash
//! prevented.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tidebase_guest::{Error, Run, StepOptions, http};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    url: String,
    title: String,
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    sign_off: bool,
}

#[derive(Deserialize)]
struct Item {
    name: String,
    ok: bool,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    message_id: Option<String>,
    summary: String,
    details: bool,
}

fn summary(input: &Input) -> String {
    let passed = input.items.iter().filter(|i| i.ok).count();
    format!("{}: {passed} of {} passed", input.title, input.items.len())
}

fn details(items: &[Item]) -> String {
    let line = |i: &Item| match (i.ok, &i.note) {
        (true, _) => format!("- {}: ok", i.name),
        (false, Some(note)) => format!("- {}: FAILED ({note})", i.name),
        (false, None) => format!("- {}: FAILED", i.name),
    };
    items.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// POSTs `message` as JSON; the message id the API answers, if any.
fn post(url: &str, message: &Value) -> Result<Option<String>, Error> {
    let body = serde_json::to_vec(message)?;
    let headers = [("content-type", "application/json")];
    let response = http::request("POST", url, &headers, &body)?;
    if !response.ok() {
        return Err(Error::new(
            "NotifyFailed",
            format!("{url} answered {}: {}", response.status, response.text()?),
        ));
    }
    let answer: Value = response.json().unwrap_or(Value::Null);
    Ok(answer["id"].as_str().map(str::to_owned))
}

fn notify(run: &Run, input: Input) -> Result<Output, Error> {
    // Recorded once, so every execution of this run uses the same keys.
    let run_key = format!("notify-{:016x}", run.random());
    let summary = summary(&input);
    let step = |name: &str, text: &str| {
        StepOptions::new()
            .input(text)
            .side_effects(["chat.post"])
            .idempotency_key(format!("{run_key}-{name}"))
    };
    let message_id: Option<String> =
        run.step_with("post-summary", step("summary", &summary), || {
            post(&input.url, &json!({ "text": summary }))
        })?;
    if input.sign_off {
        let prompt = format!("Post the details of {:?}?", input.title);
        if !run.gate("sign-off", &prompt)?.approved() {
            return Ok(Output {
                message_id,
                summary,
                details: false,
            });
        }
    }
    let text = details(&input.items);
    run.step_with("post-details", step("details", &text), || {
        post(&input.url, &json!({ "text": text, "thread": message_id }))
    })?;
    Ok(Output {
        message_id,
        summary,
        details: true,
    })
}

tidebase_guest::workflow!(notify);
