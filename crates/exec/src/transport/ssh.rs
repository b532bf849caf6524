//! SSH transport: the `openssh` crate over the system `ssh`, one multiplexed master
//! per host. ssh_config is honoured (an inventory `[ssh] config` file is read first,
//! then `~/.ssh/config` and the system file), as are known_hosts with strict checking
//! and the agent. With `become`, scripts run through `sudo -n`.

use super::{Cause, Connector, RemoteOutput, Transport, TransportError};
use crate::inventory::{Host, Ssh};
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct SshConnector {
    settings: Ssh,
    /// A generated ssh_config that includes the inventory's file and the usual ones.
    config: Option<PathBuf>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl SshConnector {
    pub fn new(settings: &Ssh) -> std::io::Result<SshConnector> {
        let (config, dir) = match &settings.config {
            None => (None, None),
            Some(extra) => {
                // `ssh -F` replaces the user's config; include everything so it only adds.
                let dir = tempfile::Builder::new().prefix("closetctl-ssh").tempdir()?;
                let path = dir.path().join("ssh_config");
                let mut text = format!("Include {}\n", extra.display());
                if let Some(home) = std::env::var_os("HOME") {
                    text.push_str(&format!(
                        "Include {}/.ssh/config\n",
                        PathBuf::from(home).display()
                    ));
                }
                text.push_str("Include /etc/ssh/ssh_config\n");
                std::fs::write(&path, text)?;
                (Some(path), Some(Arc::new(dir)))
            }
        };
        Ok(SshConnector {
            settings: settings.clone(),
            config,
            _dir: dir,
        })
    }
}

pub struct SshHost {
    name: String,
    session: Session,
    become_root: bool,
}

impl Connector for SshConnector {
    type Conn = SshHost;

    async fn connect(&self, host: &Host) -> Result<SshHost, TransportError> {
        let mut b = SessionBuilder::default();
        b.known_hosts_check(if self.settings.strict_host_key_checking {
            KnownHosts::Strict
        } else {
            KnownHosts::Add
        })
        .connect_timeout(Duration::from_secs(
            self.settings.connect_timeout_secs.into(),
        ))
        .server_alive_interval(Duration::from_secs(5));
        if let Some(user) = &self.settings.user {
            b.user(user.clone());
        }
        if let Some(port) = self.settings.port {
            b.port(port);
        }
        if let Some(key) = &self.settings.identity_file {
            b.keyfile(key);
        }
        if let Some(cfg) = &self.config {
            b.config_file(cfg);
        }
        let session = b
            .connect_mux(&host.address)
            .await
            .map_err(|e| TransportError::Connect {
                host: host.name.clone(),
                source: e.into(),
            })?;
        Ok(SshHost {
            name: host.name.clone(),
            session,
            become_root: self.settings.become_root,
        })
    }
}

impl Transport for SshHost {
    fn host(&self) -> &str {
        &self.name
    }

    async fn run(&self, script: String) -> Result<RemoteOutput, TransportError> {
        let buffers = Buffers::default();
        let status = self.run_into(script, &buffers).await?;
        Ok(buffers.output(status))
    }

    async fn run_for(
        &self,
        script: String,
        limit: Duration,
    ) -> Result<RemoteOutput, TransportError> {
        let buffers = Buffers::default();
        match tokio::time::timeout(limit, self.run_into(script, &buffers)).await {
            Ok(Ok(status)) => Ok(buffers.output(status)),
            Ok(Err(TransportError::Run { host, source })) => Err(TransportError::Lost {
                host,
                source,
                partial: buffers.output(-1),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TransportError::Timeout {
                host: self.name.clone(),
                after: limit,
                partial: buffers.output(-1),
            }),
        }
    }
}

/// What a remote script printed so far, filled while it runs (so a timeout can still
/// tell how far the script got).
#[derive(Default, Clone)]
struct Buffers {
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Buffers {
    fn output(&self, status: i32) -> RemoteOutput {
        let text = |b: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&b.lock().expect("buffer lock")).into_owned()
        };
        RemoteOutput {
            status,
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
        }
    }
}

async fn drain<R: tokio::io::AsyncRead + Unpin>(
    reader: Option<R>,
    into: Arc<Mutex<Vec<u8>>>,
) -> std::io::Result<()> {
    let Some(mut reader) = reader else {
        return Ok(());
    };
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        into.lock()
            .expect("buffer lock")
            .extend_from_slice(&chunk[..n]);
    }
}

impl SshHost {
    /// Run the script, streaming its output into `buffers`; the exit status.
    async fn run_into(&self, script: String, buffers: &Buffers) -> Result<i32, TransportError> {
        let err = |e: Cause| TransportError::Run {
            host: self.name.clone(),
            source: e,
        };
        let mut cmd = if self.become_root {
            let mut c = self.session.command("sudo");
            c.args(["-n", "sh", "-s"]);
            c
        } else {
            let mut c = self.session.command("sh");
            c.arg("-s");
            c
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().await.map_err(|e| err(e.into()))?;
        let mut stdin = child.stdin().take().expect("stdin is piped");
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        let writer = async move {
            stdin.write_all(script.as_bytes()).await?;
            stdin.shutdown().await
        };
        let (written, out, errs) = tokio::join!(
            writer,
            drain(stdout, buffers.stdout.clone()),
            drain(stderr, buffers.stderr.clone())
        );
        let status = child.wait().await.map_err(|e| err(e.into()))?;
        out.map_err(|e| err(e.into()))?;
        errs.map_err(|e| err(e.into()))?;
        match (status.code(), written) {
            (Some(code), _) => Ok(code),
            (None, Err(e)) => Err(err(e.into())),
            // No exit status: killed by a signal, or the connection went away.
            (None, Ok(())) => Err(err(Cause::NoExitStatus)),
        }
    }
}
