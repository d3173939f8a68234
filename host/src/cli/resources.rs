//! `tidebase-host resources …`: the upstreams workflows may call through the
//! egress broker, each with its pinned base URL and optional vaulted secret.
//! Secrets come from an environment variable or standard input, never from
//! a flag value (which other users could read in the process list), and
//! nothing here ever prints one.

use super::{DbArgs, ReadArgs};
use crate::engine::{Injection, NewResource, Resource};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::Read;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum ResourcesCmd {
    /// Connect a resource, or update the one of that name: a pinned base
    /// URL, optional allowed methods and paths, and an optional secret the
    /// broker adds to each call.
    Connect(ConnectArgs),
    /// Every resource, without secret material (`--json`: `{"resources": [...]}`).
    List(ReadArgs),
    /// Revoke a resource: calls through it are denied from now on.
    Revoke(RevokeArgs),
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// The resource's name, as `deploy --allow` grants it.
    name: String,
    /// Absolute http(s) URL every call through this resource must fall under.
    #[arg(long, value_name = "URL")]
    base_url: String,
    /// Read the secret from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "secret_stdin")]
    secret_env: Option<String>,
    /// Read the secret from standard input (a trailing newline is dropped).
    #[arg(long)]
    secret_stdin: bool,
    /// Header that carries the secret [default: authorization].
    #[arg(long, value_name = "NAME", conflicts_with = "query_param")]
    header: Option<String>,
    /// The header's value, `{secret}` standing for the secret [default: "{secret}" with
    /// --header, else "Bearer {secret}"].
    #[arg(long, value_name = "FORMAT", conflicts_with = "query_param")]
    format: Option<String>,
    /// Send the secret as this query parameter instead of a header.
    #[arg(long, value_name = "PARAM")]
    query_param: Option<String>,
    /// Allowed HTTP methods, comma-separated [default: any].
    #[arg(long, value_name = "M,..", value_delimiter = ',')]
    methods: Vec<String>,
    /// Allowed path prefixes under the base URL's path, comma-separated [default: any].
    #[arg(long, value_name = "P,..", value_delimiter = ',')]
    paths: Vec<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    name: String,
    #[command(flatten)]
    db: DbArgs,
}

impl ConnectArgs {
    /// The secret from `--secret-env` or `--secret-stdin`, if either was given.
    fn secret(&self) -> anyhow::Result<Option<String>> {
        if let Some(var) = &self.secret_env {
            let Ok(secret) = std::env::var(var) else {
                bail!("--secret-env {var}: that environment variable is not set");
            };
            if secret.is_empty() {
                bail!("--secret-env {var}: that environment variable is empty");
            }
            return Ok(Some(secret));
        }
        if !self.secret_stdin {
            return Ok(None);
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("--secret-stdin: cannot read standard input")?;
        let line = text.strip_suffix('\n').unwrap_or(&text);
        let secret = line.strip_suffix('\r').unwrap_or(line);
        if secret.is_empty() {
            bail!("--secret-stdin: standard input held no secret");
        }
        Ok(Some(secret.to_string()))
    }

    /// Where the secret goes: a query parameter, or a header. Without
    /// flags that is `authorization: Bearer {secret}`; a header of the
    /// user's own naming carries the bare secret unless `--format` says
    /// otherwise.
    fn injection(&self) -> Injection {
        match (&self.query_param, &self.header) {
            (Some(param), _) => Injection::Query {
                param: param.clone(),
            },
            (None, Some(name)) => Injection::Header {
                name: name.clone(),
                format: self.format.clone().unwrap_or_else(|| "{secret}".into()),
            },
            (None, None) => Injection::Header {
                name: "authorization".into(),
                format: self
                    .format
                    .clone()
                    .unwrap_or_else(|| "Bearer {secret}".into()),
            },
        }
    }
}

pub async fn resources(cmd: ResourcesCmd) -> anyhow::Result<ExitCode> {
    let settings = super::host::env_settings()?;
    match cmd {
        ResourcesCmd::Connect(a) => {
            // The secret and its key before the database, so a bad flag or
            // key fails before anything is opened.
            let secret = a.secret()?;
            let vault = match secret {
                Some(_) => super::host::vault(&a.db)?,
                None => None,
            };
            let engine = super::host::engine(&a.db, settings).await?;
            let resource = engine
                .with_vault(vault)
                .connect_resource(NewResource {
                    name: a.name.clone(),
                    base_url: Some(a.base_url.clone()),
                    methods: a.methods.iter().map(|m| m.to_uppercase()).collect(),
                    paths: a.paths.clone(),
                    secret,
                    injection: a.injection(),
                    ..NewResource::default()
                })
                .await?;
            eprintln!(
                "connected resource {} to {} ({})",
                resource.name,
                a.base_url,
                secret_column(&resource)
            );
            super::show::json(&json!({"resource": resource}))
        }
        ResourcesCmd::List(a) => {
            let engine = super::host::engine(&a.db, settings).await?;
            let resources = engine.resources().await?;
            if a.json {
                return super::show::json(&json!({"resources": resources}));
            }
            print_table(&resources);
            Ok(ExitCode::SUCCESS)
        }
        ResourcesCmd::Revoke(a) => {
            let engine = super::host::engine(&a.db, settings).await?;
            let resource = engine
                .revoke_resource(&a.name)
                .await
                .with_context(|| format!("resource {}", a.name))?;
            eprintln!(
                "revoked resource {}: calls and grants through it are denied",
                resource.name
            );
            super::show::json(&json!({"resource": resource}))
        }
    }
}

/// One line per resource under a header; "any" for an unrestricted list.
fn print_table(resources: &[Resource]) {
    if resources.is_empty() {
        eprintln!(
            "no resources (add one with: tidebase-host resources connect NAME --base-url URL)"
        );
        return;
    }
    let width = resources
        .iter()
        .map(|r| shown_name(r).chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let list = |items: &[String]| {
        if items.is_empty() {
            "any".to_string()
        } else {
            items.join(",")
        }
    };
    println!(
        "{:<width$}  {:<7}  {:<24}  {:<8}  {:<8}  BASE URL",
        "NAME", "STATUS", "SECRET", "METHODS", "PATHS"
    );
    for r in resources {
        println!(
            "{:<width$}  {:<7}  {:<24}  {:<8}  {:<8}  {}",
            shown_name(r),
            r.status,
            secret_column(r),
            list(&r.methods),
            list(&r.paths),
            r.base_url.as_deref().unwrap_or("-")
        );
    }
}

/// A tenant's resource (connected through the broker API) as
/// `principal/name`; the operator's by name.
fn shown_name(r: &Resource) -> String {
    match &r.principal {
        Some(p) => format!("{p}/{}", r.name),
        None => r.name.clone(),
    }
}

/// Whether a secret is vaulted and where it goes out, never its value.
fn secret_column(r: &Resource) -> String {
    if !r.has_secret {
        return "no secret".into();
    }
    let i = &r.injection;
    match (i["header"].as_str(), i["query"].as_str()) {
        (Some(header), _) => format!("secret in header {header}"),
        (None, Some(param)) => format!("secret in query {param}"),
        (None, None) => "secret".into(),
    }
}
