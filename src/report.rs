//! The reporter: turns engine events into output. On a terminal, one progress line per
//! host (indicatif, on stderr); otherwise plain lines on stdout that read well in logs.

use crate::engine::{Event, INSTALL_FIRST};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::task::JoinHandle;

pub struct Reporter {
    tx: UnboundedSender<Event>,
    task: JoinHandle<()>,
}

impl Reporter {
    /// Start rendering events in the background.
    pub fn start() -> Reporter {
        let (tx, mut rx) = unbounded_channel::<Event>();
        let fancy =
            std::io::stderr().is_terminal() && std::env::var_os("CLOSETCTL_PLAIN").is_none();
        let task = tokio::spawn(async move {
            let multi = MultiProgress::new();
            let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
            while let Some(event) = rx.recv().await {
                if fancy {
                    let host = match &event {
                        Event::StepStarted { host, .. }
                        | Event::StepFinished { host, .. }
                        | Event::InstallDeferred { host, .. }
                        | Event::PassedOver { host, .. }
                        | Event::HostFailed { host, .. } => host.clone(),
                        Event::FactsGathered { host, .. } | Event::HostUnreachable { host, .. } => {
                            host.clone()
                        }
                    };
                    let bar = bars.entry(host.clone()).or_insert_with(|| {
                        let b = multi.add(ProgressBar::new_spinner());
                        b.set_style(
                            ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                                .expect("valid template"),
                        );
                        b.set_prefix(host);
                        b.enable_steady_tick(std::time::Duration::from_millis(120));
                        b
                    });
                    match &event {
                        Event::HostFailed { .. } => bar.finish_with_message(line(&event)),
                        _ => bar.set_message(line(&event)),
                    }
                } else {
                    println!("{}", line(&event));
                }
            }
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.finish();
                }
            }
        });
        Reporter { tx, task }
    }

    pub fn sender(&self) -> UnboundedSender<Event> {
        self.tx.clone()
    }

    /// Wait until every event sent so far is rendered.
    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// One event as one plain line.
pub fn line(event: &Event) -> String {
    match event {
        Event::FactsGathered { host, millis } => format!("{host}: facts gathered in {millis} ms"),
        Event::HostUnreachable { host, error } => format!("{host}: unreachable: {error}"),
        Event::StepStarted {
            host,
            step,
            operations,
        } => format!("{host}: step {step}: running {operations} operations"),
        Event::StepFinished { host, step } => format!("{host}: step {step}: done"),
        Event::InstallDeferred { host, error } => format!(
            "{host}: step {INSTALL_FIRST}: apt could not install them at once ({}); each step installs its own",
            error.lines().next().unwrap_or("")
        ),
        Event::PassedOver {
            host,
            step,
            operations,
        } => format!(
            "{host}: step {step}: passed over (a home that is not usable): {}",
            operations.join("; ")
        ),
        Event::HostFailed { host, step, error } => {
            format!(
                "{host}: step {step}: FAILED: {}",
                error.lines().next().unwrap_or("")
            )
        }
    }
}
