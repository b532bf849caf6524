//! `closetctl tailscale policy [--push]`: print the tailnet policy rendered from the
//! inventory, or push it through the Tailscale API (or a headscale-style server at
//! `[tailscale] api_url`).
//!
//! A push validates first (`POST .../acl/validate`, which answers 200 even for a bad
//! policy, with the error in `message`), reads the current policy for its ETag, and
//! replaces it with `If-Match`, so an edit made meanwhile (in the admin console) is
//! never overwritten: the server answers 412 and nothing changes. The API key comes
//! from `api_key_file` or the variable named by `api_key_env`, and is never printed.
//!
//! The key only travels over https: the inventory refuses any other `api_url` but plain
//! http to a loopback address literal (a test server on this machine). Redirects are not
//! followed (the API has none; following one would turn the If-Match POST into a GET
//! and report a push that did not happen): any answer other than 2xx is an error.
//!
//! The HTTP client (`ureq`) blocks, so the command runs on tokio's blocking pool.

use super::{CliError, InventoryArgs};
use crate::concerns::tailscale as module;
use crate::inventory::{Inventory, Tailscale};
use base64::Engine as _;
use clap::{Args, Subcommand};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Args)]
pub struct TailscaleArgs {
    #[command(subcommand)]
    pub command: TailscaleCommand,
}

#[derive(Debug, Subcommand)]
pub enum TailscaleCommand {
    /// Print the tailnet policy (HuJSON) rendered from the inventory; --push replaces the tailnet's.
    Policy(PolicyArgs),
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Validate the policy and replace the tailnet's through the API (If-Match on its ETag).
    #[arg(long)]
    pub push: bool,
}

#[derive(Debug, Error)]
pub enum PushError {
    #[error("the tailnet policy is not valid according to {url}: {message}")]
    Invalid { url: String, message: String },
    #[error("the tailnet policy changed since closetctl read it (an edit in the admin console?); nothing was changed. Look at the current policy, fold what should stay into the inventory, and push again")]
    Changed,
    #[error("{what} {url}: HTTP {status}: {body}")]
    Http {
        what: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{what} {url}: {message}")]
    Transport {
        what: &'static str,
        url: String,
        message: String,
    },
    #[error("GET {url} answered without an ETag; refusing to push without If-Match")]
    NoEtag { url: String },
    #[error("the tailscale API key is needed for --push: {0}")]
    Key(#[from] crate::secrets::SecretError),
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The tailnet already had exactly this policy.
    Unchanged,
    /// Replaced; the policy it had before and the new ETag.
    Replaced {
        previous: String,
        etag: Option<String>,
    },
}

/// The API key's name in errors (it is a secret like the others).
const API_KEY: &str = "tailscale API key";

fn api_key(ts: &Tailscale) -> Result<Vec<u8>, PushError> {
    if ts.api_key_file.is_none() && ts.api_key_env.is_none() {
        return Err(crate::secrets::SecretError::NoSource {
            name: API_KEY.into(),
            hint: "set `api_key_file` or `api_key_env` in [tailscale]".into(),
        }
        .into());
    }
    Ok(crate::secrets::load_external(
        API_KEY,
        ts.api_key_file.as_deref(),
        ts.api_key_env.as_deref(),
    )?)
}

/// A small client for the policy endpoints of one tailnet.
pub struct PolicyApi {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl PolicyApi {
    pub fn new(api_url: &str, tailnet: &str, key: &[u8]) -> PolicyApi {
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode([key, b":"].concat())
        );
        PolicyApi {
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .redirects(0)
                .build(),
            base: format!(
                "{}/api/v2/tailnet/{tailnet}/acl",
                api_url.trim_end_matches('/')
            ),
            auth,
        }
    }

    fn call(
        &self,
        what: &'static str,
        url: &str,
        req: ureq::Request,
        body: Option<&str>,
    ) -> Result<ureq::Response, PushError> {
        let req = req
            .set("Authorization", &self.auth)
            .set("Accept", "application/hujson");
        let result = match body {
            Some(b) => req.set("Content-Type", "application/hujson").send_string(b),
            None => req.call(),
        };
        match result {
            Ok(r) if (200..300).contains(&r.status()) => Ok(r),
            Ok(r) => {
                let status = r.status();
                let location = r.header("Location").unwrap_or("").to_string();
                Err(PushError::Http {
                    what,
                    url: url.to_string(),
                    status,
                    body: format!("not followed: a redirect to `{location}`"),
                })
            }
            Err(ureq::Error::Status(412, _)) => Err(PushError::Changed),
            Err(ureq::Error::Status(status, r)) => {
                let body = r.into_string().unwrap_or_default();
                Err(PushError::Http {
                    what,
                    url: url.to_string(),
                    status,
                    body: body.trim().chars().take(500).collect(),
                })
            }
            Err(ureq::Error::Transport(t)) => Err(PushError::Transport {
                what,
                url: url.to_string(),
                message: t.to_string(),
            }),
        }
    }

    /// `POST .../acl/validate`: an error in `message` (even with HTTP 200) fails.
    pub fn validate(&self, policy: &str) -> Result<(), PushError> {
        let url = format!("{}/validate", self.base);
        let r = self.call("POST", &url, self.agent.post(&url), Some(policy))?;
        let text = r.into_string().map_err(|e| PushError::Transport {
            what: "POST",
            url: url.clone(),
            message: e.to_string(),
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => match v
                .get("message")
                .and_then(|m| m.as_str())
                .filter(|m| !m.is_empty())
            {
                None => Ok(()),
                Some(m) => {
                    let details = v.get("data").map(|d| format!(" ({d})")).unwrap_or_default();
                    Err(PushError::Invalid {
                        url,
                        message: format!("{m}{details}"),
                    })
                }
            },
            Err(_) => Err(PushError::Invalid {
                url,
                message: text.chars().take(500).collect(),
            }),
        }
    }

    /// `GET .../acl`: the current policy and its ETag.
    pub fn current(&self) -> Result<(String, Option<String>), PushError> {
        let r = self.call("GET", &self.base, self.agent.get(&self.base), None)?;
        let etag = r.header("ETag").map(str::to_string);
        let text = r.into_string().map_err(|e| PushError::Transport {
            what: "GET",
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        Ok((text, etag))
    }

    /// Validate, read the ETag, replace with `If-Match`.
    pub fn push(&self, policy: &str) -> Result<Pushed, PushError> {
        self.validate(policy)?;
        let (current, etag) = self.current()?;
        if current.trim() == policy.trim() {
            return Ok(Pushed::Unchanged);
        }
        let etag = etag.ok_or_else(|| PushError::NoEtag {
            url: self.base.clone(),
        })?;
        let quoted = if etag.starts_with('"') || etag.starts_with("W/") {
            etag
        } else {
            format!("\"{etag}\"")
        };
        let req = self.agent.post(&self.base).set("If-Match", &quoted);
        let r = self.call("POST", &self.base, req, Some(policy))?;
        Ok(Pushed::Replaced {
            previous: current,
            etag: r.header("ETag").map(str::to_string),
        })
    }
}

/// `ureq` blocks: the command runs on tokio's blocking pool, never on a worker thread
/// of the runtime.
pub async fn run(args: TailscaleArgs) -> Result<i32, CliError> {
    match args.command {
        TailscaleCommand::Policy(a) => tokio::task::spawn_blocking(move || policy(a))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
    }
}

fn policy(args: PolicyArgs) -> Result<i32, CliError> {
    let mut inventory = Inventory::load(&args.inventory.inventory)?;
    inventory.run.today = Some(closetctl_core::loaded::today());
    let Some(ts) = &inventory.tailscale else {
        return Err(CliError::refused(
            "the inventory has no [tailscale] section: there is no tailnet policy to render",
        ));
    };
    let (p, notes) = module::policy(&inventory);
    for n in notes.iter().chain(&module::check(&p, &inventory)) {
        eprintln!("warning: {n}");
    }
    let text = module::render(&inventory, &p);
    if !args.push {
        print!("{text}");
        return Ok(0);
    }
    let key = api_key(ts).map_err(|e| CliError::refused(e.to_string()))?;
    let api = PolicyApi::new(&ts.api_url, &ts.tailnet, &key);
    match api.push(&text) {
        Ok(Pushed::Unchanged) => {
            println!(
                "The tailnet policy of `{}` already matches the inventory; nothing pushed.",
                ts.tailnet
            );
            Ok(0)
        }
        Ok(Pushed::Replaced { previous, .. }) => {
            // The policy holds no secret (emails, tags, hosts): the diff is what changed
            // for people, e.g. a leaver's email gone from her groups.
            print!(
                "{}",
                closetctl_core::resource::unified(&previous, &text, "tailnet policy")
            );
            println!(
                "Validated and pushed the tailnet policy to `{}` at {}.",
                ts.tailnet, ts.api_url
            );
            Ok(0)
        }
        Err(e) => Err(CliError::refused(e.to_string())),
    }
}
