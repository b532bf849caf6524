//! Stopping an apply: the [`Stop`] handle the engine watches, and the SIGINT/SIGTERM
//! listener of the command line that pulls it.
//!
//! The first signal asks for a stop: no new step starts, running step scripts get the
//! grace period to finish and are then ended on their hosts, every lock is released and
//! the summary printed (exit 130). A second signal aborts at once and names the hosts
//! whose lock may remain. The engine never sees signals, only the [`Stop`] handle, so
//! tests pull it directly.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Shared by the signal listener, the command and the engine.
#[derive(Clone, Debug)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    level: watch::Sender<u8>,
    /// Hosts where this run holds the lock right now.
    held: Mutex<BTreeSet<String>>,
}

impl Default for Stop {
    fn default() -> Stop {
        Stop {
            inner: Arc::new(Inner {
                level: watch::channel(0).0,
                held: Mutex::new(BTreeSet::new()),
            }),
        }
    }
}

impl Stop {
    /// Ask for a stop; the number of requests so far (1 = stop, 2 = abort).
    pub fn request(&self) -> u8 {
        let mut now = 0;
        self.inner.level.send_modify(|l| {
            *l = l.saturating_add(1);
            now = *l;
        });
        now
    }

    pub fn requested(&self) -> bool {
        *self.inner.level.borrow() > 0
    }

    /// Resolves once a stop was asked for.
    pub async fn wait(&self) {
        let mut rx = self.inner.level.subscribe();
        let _ = rx.wait_for(|l| *l > 0).await;
    }

    /// Record the hosts where this run took the lock.
    pub fn hold(&self, hosts: impl IntoIterator<Item = String>) {
        self.inner.held.lock().expect("held").extend(hosts);
    }

    /// Forget hosts whose lock was released.
    pub fn released(&self, hosts: impl IntoIterator<Item = String>) {
        let mut held = self.inner.held.lock().expect("held");
        for h in hosts {
            held.remove(&h);
        }
    }

    /// Hosts where this run's lock may remain.
    pub fn held(&self) -> Vec<String> {
        self.inner
            .held
            .lock()
            .expect("held")
            .iter()
            .cloned()
            .collect()
    }
}

/// What the first signal prints.
pub fn stopping_message(grace_secs: u32) -> String {
    format!(
        "\nInterrupted: no new step will start; running steps get {grace_secs} s to finish, then they are ended on their hosts; every lock is released. Press Ctrl-C again to abort at once."
    )
}

/// What a second signal prints before closetctl exits.
pub fn abort_message(held: &[String]) -> String {
    if held.is_empty() {
        "\nAborted. This apply holds no lock any more.".to_string()
    } else {
        format!(
            "\nAborted. This apply's lock may remain on: {}. The next plan or apply shows each as stale, with the `closetctl unlock` command that clears it; steps that were running may have stopped half-way, and the next apply finishes them (owed handlers included).",
            held.join(", ")
        )
    }
}

/// Listen for SIGINT and SIGTERM for the rest of the process: the first pulls `stop`,
/// a second prints which locks may remain and exits 130 at once.
pub fn listen(stop: Stop, grace_secs: u32) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if stop.request() == 1 {
                eprintln!("{}", stopping_message(grace_secs));
            } else {
                eprintln!("{}", abort_message(&stop.held()));
                std::process::exit(130);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_count_and_wake_waiters() {
        let stop = Stop::default();
        assert!(!stop.requested());
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.wait().await }
        });
        assert_eq!(stop.request(), 1);
        waiter.await.unwrap();
        assert!(stop.requested());
        assert_eq!(stop.request(), 2);
        stop.hold(["node1".to_string(), "head".to_string()]);
        stop.released(["head".to_string()]);
        assert_eq!(stop.held(), ["node1"]);
        assert!(abort_message(&stop.held()).contains("may remain on: node1."));
    }
}
