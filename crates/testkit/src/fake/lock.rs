//! The apply lock on the fake host, as [`closetctl_core::lock`]'s scripts keep it in
//! [`LOCK_DIR`]: the probe's lock section, and the `# closetctl lock:` scripts (refresh,
//! release, end-step, break, inspect).

use super::state::{FakeFile, FakeState};
use crate::facts::probe::MARKER;
use crate::facts::FileKind;
use closetctl_core::lock::LOCK_DIR;
use closetctl_exec::transport::RemoteOutput;
use std::fmt::Write;

pub(crate) fn lock_file(s: &FakeState, name: &str) -> Option<String> {
    s.files
        .get(&format!("{LOCK_DIR}/{name}"))
        .map(|f| String::from_utf8_lossy(&f.content).trim().to_string())
}

pub(crate) fn set_lock_file(s: &mut FakeState, name: &str, content: &str) {
    s.files.insert(
        format!("{LOCK_DIR}/{name}"),
        FakeFile::root(FileKind::File, 0o644, format!("{content}\n").into_bytes()),
    );
}

/// Whether the lock exists (a test may plant only `holder`, as an older closetctl wrote).
pub(crate) fn locked(s: &FakeState) -> bool {
    s.files.contains_key(LOCK_DIR) || s.files.contains_key(&format!("{LOCK_DIR}/holder"))
}

fn remove_lock(s: &mut FakeState) {
    let prefix = format!("{LOCK_DIR}/");
    s.files
        .retain(|p, _| p != LOCK_DIR && !p.starts_with(&prefix));
}

/// Take the lock for `run` (the probe's `mkdir`); false when it is held.
fn take_lock(s: &mut FakeState, run: &str, holder: &str) -> bool {
    if locked(s) {
        return false;
    }
    s.files.insert(
        LOCK_DIR.into(),
        FakeFile::root(FileKind::Directory, 0o755, Vec::new()),
    );
    set_lock_file(s, "holder", holder);
    set_lock_file(s, "run", run);
    let now = format!("{}", s.epoch as i64);
    set_lock_file(s, "refreshed", &now);
    true
}

/// The lock section's answer, as [`closetctl_core::lock::SECTION`] prints it.
pub(crate) fn lock_section(s: &mut FakeState, run: &str, holder: &str, o: &mut String) {
    let _ = writeln!(o, "{MARKER} lock");
    if !run.is_empty() && take_lock(s, run, holder) {
        let _ = writeln!(o, "acquired");
    } else if locked(s) {
        let get = |n: &str| lock_file(s, n).unwrap_or_default();
        let _ = writeln!(
            o,
            "held\nrun={}\nrefreshed={}\nstep={}\nholder={}",
            get("run"),
            get("refreshed"),
            get("step"),
            get("holder")
        );
    } else {
        let _ = writeln!(o, "free");
    }
}

/// `# closetctl lock: VERB RUN` scripts: refresh, release, end-step, break, inspect.
pub(crate) fn lock_script(s: &mut FakeState, header: &str) -> RemoteOutput {
    let first = header.lines().next().unwrap_or_default();
    let (verb, run) = first.split_once(' ').unwrap_or((first, ""));
    let ours = locked(s) && lock_file(s, "run").unwrap_or_default() == run;
    let mut out = RemoteOutput::default();
    let say = |out: &mut RemoteOutput, what: &str| {
        let _ = writeln!(out.stdout, "{MARKER} {what}");
    };
    let end_step = |s: &mut FakeState, out: &mut RemoteOutput| {
        let step = lock_file(s, "step").unwrap_or_default();
        if let Some(name) = step.splitn(4, ' ').nth(3) {
            let name = name.to_string();
            s.journal.push(format!("end-step {name}"));
            set_lock_file(s, "step", "");
            let _ = writeln!(out.stdout, "{MARKER} ended {name}");
        }
    };
    match verb {
        "refresh" if ours => {
            let now = format!("{}", s.epoch as i64);
            set_lock_file(s, "refreshed", &now);
            say(&mut out, "refreshed");
        }
        "refresh" => say(&mut out, "lost"),
        "release" if ours => {
            remove_lock(s);
            say(&mut out, "released");
        }
        "release" => say(&mut out, "not-ours"),
        "end-step" => {
            if ours {
                end_step(s, &mut out);
            }
        }
        "break" if locked(s) && lock_file(s, "run").unwrap_or_default() == run => {
            end_step(s, &mut out);
            remove_lock(s);
            say(&mut out, "broken");
        }
        "break" => say(&mut out, "changed"),
        "inspect" => {
            lock_section(s, "", "", &mut out.stdout);
            let _ = writeln!(out.stdout, "{MARKER} now\n{}", s.epoch as i64);
        }
        other => {
            out.status = 2;
            out.stderr = format!("fake host: unknown lock script {other}");
        }
    }
    out
}
