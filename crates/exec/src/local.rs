//! The machine closetctl runs on: who is running it (the holder written into each
//! host's lock) and whether a holder that ran here is still alive.

use crate::lock::{new_run_id, word, Machine, Owner};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_here() {
        let me = current_owner();
        assert_eq!(LocalMachine.process_start(me.pid), Some(me.pid_start));
        assert!(me.pid_start > 0);
    }
}
