//! Transport: how a script reaches a host. One narrow trait, run a POSIX `sh` script
//! (sent on stdin, as root) and get its exit status and output, with an SSH
//! implementation for real hosts and an in-memory fake for tests.

pub mod fake;
pub mod ssh;

use crate::inventory::Host;
use std::future::Future;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("cannot connect to `{host}`: {message}")]
    Connect { host: String, message: String },
    #[error("running a script on `{host}` failed: {message}")]
    Run { host: String, message: String },
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
    /// Run `script` with `sh -s` as root; the script goes on stdin, never in argv.
    fn run(
        &self,
        script: String,
    ) -> impl Future<Output = Result<RemoteOutput, TransportError>> + Send;
}

/// Opens connections to hosts.
pub trait Connector: Send + Sync {
    type Conn: Transport;
    fn connect(
        &self,
        host: &Host,
    ) -> impl Future<Output = Result<Self::Conn, TransportError>> + Send;
}
