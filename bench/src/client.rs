//! The load generator's HTTP client: the SDK's wire protocol, driven as an
//! SDK worker drives it, over one keep-alive connection per worker.
//!
//! It shares the machine's cores with the server it measures, so it does
//! as little as a client can: requests are built from their path (no URL
//! parsing, no pool lookup per request, which took 30% of the bench
//! process through reqwest in a replay profile) and answers are decoded
//! into the few fields it checks.

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Instant;
use tidebase_host::engine::input_hash;

use crate::report::Latencies;

/// Where the workers connect, and what their steps output.
pub struct Client {
    /// `host:port` of the server.
    addr: String,
    host: HeaderValue,
    /// Size of each step's output JSON.
    output_bytes: usize,
}

/// One worker's connection.
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    output_bytes: usize,
}

/// Step `i`'s output: `{"i":i,"pad":"x…"}` padded so its JSON is `bytes`
/// long (as the `steps` fixture pads its own).
fn step_output(i: usize, bytes: usize) -> Value {
    let bare = format!(r#"{{"i":{i},"pad":""}}"#).len();
    json!({"i": i, "pad": "x".repeat(bytes.saturating_sub(bare))})
}

/// The fields of a step begin's answer the workers check.
#[derive(Deserialize, Debug)]
struct Began {
    action: String,
    step: Option<StepId>,
    output: Option<Output>,
}

#[derive(Deserialize, Debug)]
struct StepId {
    id: String,
}

#[derive(Deserialize, Debug)]
struct Output {
    i: Option<usize>,
}

#[derive(Deserialize)]
struct Created {
    run: StepId,
}

#[derive(Deserialize)]
struct RunBegun {
    #[serde(rename = "leaseOwner")]
    lease_owner: Option<String>,
}

/// Any JSON answer, unread.
#[derive(Deserialize)]
struct Ignored {}

impl Client {
    /// A client of the server at `base` (`http://host:port`).
    pub fn new(base: &str, output_bytes: usize) -> Result<Client> {
        let addr = base
            .strip_prefix("http://")
            .with_context(|| format!("{base}: the bench speaks plain http:// only"))?
            .trim_end_matches('/');
        if addr.contains('/') {
            bail!("{base}: give the server's root URL, without a path");
        }
        Ok(Client {
            addr: addr.to_string(),
            host: HeaderValue::from_str(addr).context("server address")?,
            output_bytes,
        })
    }

    /// A new keep-alive connection, as a worker holds one.
    pub async fn connect(&self) -> Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("connect to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        Ok(Conn {
            send,
            host: self.host.clone(),
            output_bytes: self.output_bytes,
        })
    }
}

impl Conn {
    async fn post<T: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &Value,
        owner: Option<&str>,
    ) -> Result<T> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(owner) = owner {
            req = req.header("x-tidebase-worker", owner);
        }
        let req = req.body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
        self.send
            .ready()
            .await
            .with_context(|| format!("POST {path}"))?;
        let res = self
            .send
            .send_request(req)
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("POST {path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "POST {path}: unexpected answer: {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// Create and begin a run; returns its id.
    async fn start(&mut self, workflow: &str, owner: &str) -> Result<String> {
        let body = json!({"input": {"bench": true}});
        let created: Created = self.post(&format!("/runs/{workflow}"), &body, None).await?;
        self.rebegin(&created.run.id, owner).await?;
        Ok(created.run.id)
    }

    /// `POST /runs/:id/begin` as `owner`.
    pub async fn rebegin(&mut self, run_id: &str, owner: &str) -> Result<()> {
        let path = format!("/runs/{run_id}/begin");
        let begun: RunBegun = self.post(&path, &json!({}), Some(owner)).await?;
        if begun.lease_owner.as_deref() != Some(owner) {
            bail!("begin of {run_id}: lease owner {:?}", begun.lease_owner);
        }
        Ok(())
    }

    /// `POST /runs/:id/steps/begin` of step `i` (`step-i`, input `{"i": i}`).
    async fn begin_step(&mut self, run_id: &str, i: usize, owner: &str) -> Result<Began> {
        let input = json!({ "i": i });
        let hash = input_hash(Some(&input));
        let begin = json!({"name": format!("step-{i}"), "inputHash": hash, "input": input, "leaseOwner": owner});
        self.post(&format!("/runs/{run_id}/steps/begin"), &begin, None)
            .await
    }

    /// One workflow as an SDK worker runs it; each step's begin + complete
    /// round trip pair goes into `lat`. Without `complete` the run is left
    /// running with every step completed (a worker that crashed at the end).
    pub async fn workflow(
        &mut self,
        workflow: &str,
        owner: &str,
        steps: usize,
        complete: bool,
        lat: &mut Latencies,
    ) -> Result<String> {
        let id = self.start(workflow, owner).await?;
        for i in 0..steps {
            let t0 = Instant::now();
            let began = self.begin_step(&id, i, owner).await?;
            let sid = match began {
                Began {
                    step: Some(step), ..
                } if began.action == "execute" => step.id,
                _ => bail!("step {i} of {id}: expected execute, got {began:?}"),
            };
            let output = step_output(i, self.output_bytes);
            let done = json!({"leaseOwner": owner, "output": output});
            let path = format!("/runs/{id}/steps/{sid}/complete");
            self.post::<Ignored>(&path, &done, None).await?;
            lat.push(t0.elapsed());
        }
        if complete {
            let result = json!({"result": {"steps": steps}});
            self.post::<Ignored>(&format!("/runs/{id}/complete"), &result, None)
                .await?;
        }
        Ok(id)
    }

    /// Begin every step of a run again: each must answer `return` with the
    /// step's recorded output.
    pub async fn replay(
        &mut self,
        run_id: &str,
        owner: &str,
        steps: usize,
        lat: &mut Latencies,
    ) -> Result<()> {
        for i in 0..steps {
            let t0 = Instant::now();
            let began = self.begin_step(run_id, i, owner).await?;
            lat.push(t0.elapsed());
            let replayed =
                began.action == "return" && began.output.as_ref().and_then(|o| o.i) == Some(i);
            if !replayed {
                bail!("replay of step {i} of {run_id}: expected return, got {began:?}");
            }
        }
        Ok(())
    }
}
