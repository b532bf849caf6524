//! The machine closetctl runs on: who is running it (the holder written into each
//! host's lock), whether a holder that ran here is still alive, whether an inventory
//! host is this machine, and [`LocalShell`], a [`Transport`] that runs scripts here
//! with `sh -s` as the user running closetctl (`status` on the controller itself).

use crate::inventory::Host;
use crate::lock::{new_run_id, word, Machine, Owner};
use crate::transport::{Cause, RemoteOutput, Transport, TransportError};
use tokio::io::AsyncWriteExt;

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The running closetctl, with a fresh run id.
pub fn current_owner() -> Owner {
    let machine = read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".into());
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".into());
    let pid = std::process::id();
    Owner {
        user: word(&user),
        machine: word(&machine),
        machine_id: LocalMachine.machine_id().unwrap_or_default(),
        boot_id: LocalMachine.boot_id().unwrap_or_default(),
        pid,
        pid_start: LocalMachine.process_start(pid).unwrap_or(0),
        run: new_run_id(),
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    }
}

/// This machine, read from `/etc/machine-id` and `/proc`.
pub struct LocalMachine;

impl Machine for LocalMachine {
    fn machine_id(&self) -> Option<String> {
        read_trimmed("/etc/machine-id").or_else(|| read_trimmed("/var/lib/dbus/machine-id"))
    }
    fn boot_id(&self) -> Option<String> {
        read_trimmed("/proc/sys/kernel/random/boot_id")
    }
    fn process_start(&self, pid: u32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        crate::lock::stat_start_time(&stat)
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`).
pub fn hostname() -> Option<String> {
    read_trimmed("/proc/sys/kernel/hostname")
}

/// Whether `host` is the machine closetctl runs on: its inventory name or address is
/// this machine's host name (or the address's first label is).
pub fn is_this_machine(host: &Host, hostname: Option<&str>) -> bool {
    let Some(me) = hostname.filter(|h| !h.is_empty()) else {
        return false;
    };
    let me_short = me.split('.').next().unwrap_or(me);
    host.name == me
        || host.name == me_short
        || host.address == me
        || host.address.split('.').next() == Some(me_short)
            && host.address.parse::<std::net::IpAddr>().is_err()
}

/// The login name of the user running closetctl (`USER`, else `LOGNAME`).
pub fn login_name() -> Option<String> {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
}

/// Whether closetctl runs as root (the effective UID in `/proc/self/status`).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Scripts run on this machine with `sh -s`, as the user running closetctl (no sudo):
/// an inventory host that is this machine, asked without SSH.
pub struct LocalShell {
    pub name: String,
}

impl Transport for LocalShell {
    fn host(&self) -> &str {
        &self.name
    }

    async fn run(&self, script: String) -> Result<RemoteOutput, TransportError> {
        let err = |e: std::io::Error| TransportError::Run {
            host: self.name.clone(),
            source: Cause::Io(e),
        };
        let mut child = tokio::process::Command::new("sh")
            .arg("-s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(err)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let writer = async move {
            stdin.write_all(script.as_bytes()).await?;
            stdin.shutdown().await
        };
        let (written, output) = tokio::join!(writer, child.wait_with_output());
        let output = output.map_err(err)?;
        written.map_err(err)?;
        Ok(RemoteOutput {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_shell_runs_the_script_from_stdin() {
        let sh = LocalShell {
            name: "head".into(),
        };
        let out = sh
            .run("echo \"$0 out\"; echo err >&2; exit 3\n".into())
            .await
            .unwrap();
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (3, "sh out\n", "err\n")
        );
    }

    #[test]
    fn this_machine_by_name_or_address() {
        let host = |name: &str, address: &str| Host {
            name: name.into(),
            address: address.into(),
            roles: Vec::new(),
            gpus: None,
            circuit: None,
            base_watts: None,
            psu_watts: None,
            tailscale: Default::default(),
        };
        assert!(is_this_machine(&host("head", "10.0.0.1"), Some("head")));
        assert!(is_this_machine(
            &host("login", "head.closet.example"),
            Some("head")
        ));
        assert!(is_this_machine(
            &host("head", "10.0.0.1"),
            Some("head.closet.example")
        ));
        assert!(!is_this_machine(&host("node1", "10.0.0.2"), Some("head")));
        assert!(!is_this_machine(&host("node1", "10.0.0.2"), Some("10")));
        assert!(!is_this_machine(&host("head", "10.0.0.1"), None));
    }

    #[test]
    fn this_process_is_alive_here() {
        let me = current_owner();
        assert_eq!(LocalMachine.process_start(me.pid), Some(me.pid_start));
        assert!(me.pid_start > 0);
    }
}
