//! Transport: how a script reaches a host. One narrow trait, run a POSIX `sh` script
//! (sent on stdin, as root) and get its exit status and output, with an SSH
//! implementation for real hosts (the fake for tests is in closetctl-testkit).

pub mod reuse;
pub mod ssh;

use crate::inventory::Host;
use std::future::Future;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("cannot connect to `{host}`: {}", chain(source))]
    Connect {
        host: String,
        #[source]
        source: Cause,
    },
    #[error("running a script on `{host}` failed: {}", chain(source))]
    Run {
        host: String,
        #[source]
        source: Cause,
    },
    /// The connection broke while the script ran; `partial` is what it printed.
    #[error(
        "the connection to `{host}` broke while the script ran: {}",
        chain(source)
    )]
    Lost {
        host: String,
        #[source]
        source: Cause,
        partial: RemoteOutput,
    },
    /// The script did not finish in time; `partial` is what it printed until then.
    #[error("`{host}` did not finish the script within {} s", after.as_secs())]
    Timeout {
        host: String,
        after: Duration,
        partial: RemoteOutput,
    },
}

impl TransportError {
    /// The host the error is about.
    pub fn host(&self) -> &str {
        match self {
            TransportError::Connect { host, .. }
            | TransportError::Run { host, .. }
            | TransportError::Lost { host, .. }
            | TransportError::Timeout { host, .. } => host,
        }
    }
}

/// What went wrong underneath a [`TransportError`]: the SSH layer, an I/O error on the
/// script's pipes, or a script that ended without an exit status.
#[derive(Debug, Error)]
pub enum Cause {
    #[error(transparent)]
    Ssh(#[from] openssh::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the remote script ended without an exit status (killed, or the connection was lost)")]
    NoExitStatus,
}

/// An error and its sources in one line, `outer: inner: innermost`, leaving out a
/// source whose text its outer error already shows.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(text.trim());
        }
        cur = c.source();
    }
    s
}

/// What a remote script returned.
#[derive(Debug, Clone, Default)]
pub struct RemoteOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl RemoteOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// A connected host.
pub trait Transport: Send + Sync + 'static {
    /// The host's inventory name.
    fn host(&self) -> &str;

    /// Run `script` with `sh -s` as root; the script goes on stdin, never in argv.
    fn run(
        &self,
        script: String,
    ) -> impl Future<Output = Result<RemoteOutput, TransportError>> + Send;

    /// [`Transport::run`], giving up after `limit` with [`TransportError::Timeout`]. The
    /// remote script is not ended here (the engine does that over its lock); an
    /// implementation that streams returns what the script printed so far.
    fn run_for(
        &self,
        script: String,
        limit: Duration,
    ) -> impl Future<Output = Result<RemoteOutput, TransportError>> + Send {
        async move {
            match tokio::time::timeout(limit, self.run(script)).await {
                Ok(result) => result,
                Err(_) => Err(TransportError::Timeout {
                    host: self.host().to_string(),
                    after: limit,
                    partial: RemoteOutput::default(),
                }),
            }
        }
    }
}

/// Opens connections to hosts.
pub trait Connector: Send + Sync {
    type Conn: Transport;
    fn connect(
        &self,
        host: &Host,
    ) -> impl Future<Output = Result<Self::Conn, TransportError>> + Send;
}
