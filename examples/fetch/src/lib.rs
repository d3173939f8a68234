//! `fetch`: GET a URL inside the step `fetch` and return what came back.
//!
//! Input `{"url": "<absolute URL>"}`; output `{"status": <int>, "body":
//! "<response text>"}` (a body that is not UTF-8 is decoded lossily).
//!
//! The request goes through the host's egress broker, so the URL must lie
//! under a resource the deployment was granted:
//!
//! ```text
//! tidebase-host resources connect example --base-url https://example.com
//! tidebase-host run fetch.wasm --allow example --input '{"url": "https://example.com/"}'
//! ```
//!
//! The step's checkpoint is the durable record: a resumed run returns the
//! recorded response and does not fetch again.

use serde::{Deserialize, Serialize};
use tidebase_guest::{Error, Run, http};

#[derive(Deserialize)]
struct Input {
    url: String,
}

#[derive(Serialize, Deserialize)]
struct Fetched {
    status: u16,
    body: String,
}

fn fetch(run: &Run, input: Input) -> Result<Fetched, Error> {
    run.step("fetch", || {
        let response = http::get(&input.url)?;
        Ok::<_, Error>(Fetched {
            status: response.status,
            body: String::from_utf8_lossy(&response.body).into_owned(),
        })
    })
}

tidebase_guest::workflow!(fetch);
