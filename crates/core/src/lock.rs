//! The apply lock on each host: who holds it, whether that holder is provably gone, and
//! the small scripts that take, refresh, release and break it.
//!
//! The lock is the directory `/var/lib/closetctl/lock` (`mkdir` is atomic). The fact
//! probe takes it first thing, before it reads any fact, and writes into it the holder
//! (user, machine, machine id, boot id, pid and that process's start time, run id, start
//! time), the run id alone, and the host's clock as the last refresh. While apply runs,
//! closetctl refreshes it every [`REFRESH_EVERY`]; each step script checks, before it
//! changes anything, that the lock is still this run's and records its own process group
//! there, so that a step left running can be ended later.
//!
//! A holder is provably gone when it ran on this machine and its process no longer
//! exists (or its pid now belongs to another process, or the machine restarted), or when
//! the lock was not refreshed for [`STALE_AFTER`] by the host's own clock. Only such a
//! lock is reported as stale, with the `closetctl unlock` command that breaks it; a live
//! holder is never broken. Releasing and breaking remove the lock only while it still
//! carries the run id closetctl saw, so neither can remove a lock someone took since.

use crate::shell::quote;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The lock directory on every host.
pub const LOCK_DIR: &str = "/var/lib/closetctl/lock";

/// How often a running apply refreshes its locks.
pub const REFRESH_EVERY: Duration = Duration::from_secs(20);

/// A lock not refreshed for this long (by the host's clock) belongs to an apply that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// Who holds a lock: written into the lock when it is taken, one line of `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub user: String,
    /// Host name of the machine closetctl runs on (for people).
    pub machine: String,
    /// `/etc/machine-id` of that machine (to know it is this one).
    pub machine_id: String,
    /// Its `/proc/sys/kernel/random/boot_id` (a restart ends every process).
    pub boot_id: String,
    pub pid: u32,
    /// Start time of the process in clock ticks since boot (`/proc/PID/stat` field 22),
    /// so that a reused pid is not mistaken for the holder.
    pub pid_start: u64,
    /// A random id for this run of closetctl.
    pub run: String,
    /// Epoch seconds (this machine's clock) when the run started.
    pub started: i64,
}

impl Owner {
    /// The one line written into the lock.
    pub fn line(&self) -> String {
        format!(
            "user={} machine={} machine_id={} boot_id={} pid={} pid_start={} run={} started={}",
            word(&self.user),
            word(&self.machine),
            word(&self.machine_id),
            word(&self.boot_id),
            self.pid,
            self.pid_start,
            word(&self.run),
            self.started
        )
    }

    /// Read [`Owner::line`] back; `None` for anything else (an older closetctl's text).
    pub fn parse(line: &str) -> Option<Owner> {
        let mut kv = std::collections::BTreeMap::new();
        for w in line.split_whitespace() {
            let (k, v) = w.split_once('=')?;
            kv.insert(k, v);
        }
        let get = |k: &str| kv.get(k).map(|v| v.to_string());
        Some(Owner {
            user: get("user")?,
            machine: get("machine")?,
            machine_id: get("machine_id").unwrap_or_default(),
            boot_id: get("boot_id").unwrap_or_default(),
            pid: get("pid")?.parse().ok()?,
            pid_start: get("pid_start").and_then(|s| s.parse().ok()).unwrap_or(0),
            run: get("run")?,
            started: get("started")?.parse().ok()?,
        })
    }

    /// `alice@laptop (closetctl pid 4242, run 3f9a0c1d) since 2026-11-29T23:30:00Z`
    pub fn describe(&self) -> String {
        format!(
            "{}@{} (closetctl pid {}, run {}) since {}",
            self.user,
            self.machine,
            self.pid,
            short_run(&self.run),
            utc_timestamp(self.started)
        )
    }
}

/// `2026-11-29T23:40:00Z` from epoch seconds (civil-from-days, no time zone data needed).
pub fn utc_timestamp(epoch: i64) -> String {
    let days = epoch.div_euclid(86400);
    let secs = epoch.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The first 8 characters of a run id, for people.
pub fn short_run(run: &str) -> &str {
    &run[..run.len().min(8)]
}

/// A value as one word with no `=` confusion: whitespace becomes `_`.
pub fn word(s: &str) -> String {
    let w: String = s
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    if w.is_empty() {
        "-".into()
    } else {
        w
    }
}

/// 16 random hex digits.
pub fn new_run_id() -> String {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("the OS has randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a probe found in a lock it did not take.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldLock {
    /// The holder, when written by this version of closetctl.
    pub owner: Option<Owner>,
    /// The holder line as found (an older closetctl wrote free text).
    pub holder_text: String,
    /// The run id in the lock (empty when the lock was left half-taken).
    pub run: String,
    /// Host epoch of the last refresh (or of the lock's creation), if known.
    pub refreshed: Option<f64>,
    /// The step its holder was running when it last started one (`pid pgrp start name`).
    pub step: Option<String>,
    /// Filled in on this machine after the probe: is the holder still there?
    pub verdict: Option<Verdict>,
}

impl HeldLock {
    /// `alice@laptop (closetctl pid 4242, run 3f9a0c1d) since ...` or the raw text.
    pub fn describe(&self) -> String {
        match &self.owner {
            Some(o) => o.describe(),
            None if self.holder_text.trim().is_empty() => "an unknown holder".into(),
            None => self.holder_text.trim().to_string(),
        }
    }

    /// The step the holder's last step script ran, if any.
    pub fn step_name(&self) -> Option<&str> {
        let s = self.step.as_deref()?;
        let name = s.splitn(4, ' ').nth(3)?;
        Some(name).filter(|n| !n.is_empty())
    }
}

/// Whether a lock's holder is still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "holder", content = "why")]
pub enum Verdict {
    /// It may be running: never broken. The text says why closetctl thinks so.
    Live(String),
    /// Provably gone, and why.
    Stale(String),
}

/// What closetctl can learn about processes on the machine it runs on.
pub trait Machine {
    fn machine_id(&self) -> Option<String>;
    fn boot_id(&self) -> Option<String>;
    /// Start time (clock ticks since boot) of a running process, `None` if there is none.
    fn process_start(&self, pid: u32) -> Option<u64>;
}

/// Field 22 (starttime) of a `/proc/PID/stat` line; the command name may hold spaces.
pub fn stat_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 (state) on: starttime is the 20th of them.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Decide whether `lock`'s holder is provably gone. `host_now` is the host's epoch at
/// the probe; ages use only the host's clock.
pub fn verdict(lock: &HeldLock, host_now: f64, machine: &dyn Machine) -> Verdict {
    if let Some(o) = &lock.owner {
        let here = machine.machine_id();
        if !o.machine_id.is_empty() && here.as_deref() == Some(o.machine_id.as_str()) {
            if machine.boot_id().is_some_and(|b| b != o.boot_id) {
                return Verdict::Stale(format!("{} restarted since that apply started", o.machine));
            }
            return match machine.process_start(o.pid) {
                None => Verdict::Stale(format!(
                    "its process (pid {}) no longer runs on {}",
                    o.pid, o.machine
                )),
                Some(start) if o.pid_start != 0 && start != o.pid_start => Verdict::Stale(format!(
                    "pid {} on {} is now another process",
                    o.pid, o.machine
                )),
                Some(_) => Verdict::Live(format!("its process (pid {}) is running here", o.pid)),
            };
        }
    }
    match lock.refreshed {
        Some(at) => {
            let age = (host_now - at).max(0.0);
            if age > STALE_AFTER.as_secs_f64() {
                Verdict::Stale(format!(
                    "not refreshed for {} (a running apply refreshes it every {} s)",
                    human_age(age),
                    REFRESH_EVERY.as_secs()
                ))
            } else {
                Verdict::Live(format!("refreshed {} ago", human_age(age)))
            }
        }
        None => Verdict::Live("its age is unknown".into()),
    }
}

impl HeldLock {
    /// Why its holder is provably gone, once judged.
    pub fn stale_reason(&self) -> Option<&str> {
        match &self.verdict {
            Some(Verdict::Stale(why)) => Some(why),
            _ => None,
        }
    }
}

/// The exact command that breaks the stale locks on `hosts`.
pub fn unlock_command(inventory: &std::path::Path, hosts: &[&str]) -> String {
    let mut cmd = String::from("closetctl unlock");
    if inventory != std::path::Path::new("inventory.toml") {
        cmd.push_str(" -i ");
        cmd.push_str(&shell_word(&inventory.display().to_string()));
    }
    for h in hosts {
        cmd.push_str(" --host ");
        cmd.push_str(h);
    }
    cmd
}

/// A path quoted only when a shell needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@".contains(c))
    {
        s.to_string()
    } else {
        quote(s)
    }
}

/// `42 s`, `12 min`, `3 h 5 min`.
pub fn human_age(secs: f64) -> String {
    let s = secs.round() as u64;
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    }
}

/// The lock section of the fact probe and of [`inspect_script`]: take the lock when
/// `$LOCK_RUN` is set (holder line in `$LOCK`), else report a lock someone holds.
/// Only shell builtins, except `date` when taking the lock and `stat` for a lock that
/// has no refresh time (left half-taken, or by an older closetctl).
pub const SECTION: &str = r#"printf '@@closetctl lock\n'
L=/var/lib/closetctl/lock
if [ -n "$LOCK_RUN" ] && { [ -d /var/lib/closetctl ] || mkdir -p /var/lib/closetctl; } && mkdir "$L" 2>/dev/null; then
  printf '%s\n' "$LOCK" > "$L/holder" && printf '%s\n' "$LOCK_RUN" > "$L/run" && date +%s > "$L/refreshed" && echo acquired
elif [ -d "$L" ]; then
  r=; h=; f=; s=
  { read -r r < "$L/run"; } 2>/dev/null; { read -r h < "$L/holder"; } 2>/dev/null
  { read -r f < "$L/refreshed"; } 2>/dev/null; { read -r s < "$L/step"; } 2>/dev/null
  [ -n "$f" ] || f=$(stat -c %Y "$L" 2>/dev/null)
  printf 'held\nrun=%s\nrefreshed=%s\nstep=%s\nholder=%s\n' "$r" "$f" "$s" "$h"
else echo free; fi
"#;

/// What the lock section printed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LockAnswer {
    pub acquired: bool,
    pub held: Option<HeldLock>,
}

/// Parse the body of a lock section. An empty body (an older probe or a host that
/// printed nothing) is "free".
pub fn parse_section(body: &str) -> LockAnswer {
    let mut lines = body.lines();
    match lines.next().map(str::trim) {
        Some("acquired") => LockAnswer {
            acquired: true,
            held: None,
        },
        Some("held") => {
            let mut held = HeldLock::default();
            for l in lines {
                let Some((k, v)) = l.split_once('=') else {
                    continue;
                };
                let v = v.trim();
                match k {
                    "run" => held.run = v.to_string(),
                    "refreshed" => held.refreshed = v.parse().ok(),
                    "step" => held.step = Some(v.to_string()).filter(|s| !s.is_empty()),
                    "holder" => {
                        held.holder_text = v.to_string();
                        held.owner = Owner::parse(v);
                    }
                    _ => {}
                }
            }
            LockAnswer {
                acquired: false,
                held: Some(held),
            }
        }
        _ => LockAnswer::default(),
    }
}

/// How every lock script begins: `SCRIPT_HEADER VERB RUN` on its first line.
pub const SCRIPT_HEADER: &str = "# closetctl lock: ";

/// Header line of every lock script; the fake host reads the verb and the run id here.
fn header(verb: &str, run: &str) -> String {
    format!(
        "{SCRIPT_HEADER}{verb} {run}\nL={LOCK_DIR}\nR={}\n",
        quote(run)
    )
}

/// Shell: `r` = the run id in the lock (empty if none).
const READ_RUN: &str = "r=; { read -r r < \"$L/run\"; } 2>/dev/null\n";

/// End the step script recorded in the lock, if that very process still runs: TERM to
/// its process group, up to 10 s, then KILL. Prints `@@closetctl ended STEP`.
const END_STEP: &str = r#"cc_alive() { c=; { read -r c < "/proc/$1/stat"; } 2>/dev/null; [ -n "$c" ] || return 1; c=${c##*) }; [ "${c%% *}" != Z ]; }
cc_end_step() {
  s=; { read -r s < "$L/step"; } 2>/dev/null; [ -n "$s" ] || return 0
  set -- $s; pid=$1 pg=$2 st=$3; shift 3; name=$*
  cur=; { read -r cur < "/proc/$pid/stat"; } 2>/dev/null; [ -n "$cur" ] || return 0
  cur=${cur##*) }; set -- $cur
  [ "${20}" = "$st" ] || return 0
  kill -TERM "-$pg" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  i=0; while cc_alive "$pid" && [ "$i" -lt 10 ]; do sleep 1; i=$((i+1)); done
  cc_alive "$pid" && { kill -KILL "-$pg" 2>/dev/null || kill -KILL "$pid" 2>/dev/null; }
  : > "$L/step"
  printf '@@closetctl ended %s\n' "$name"
}
"#;

/// Refresh this run's lock; prints `@@closetctl refreshed`, or `@@closetctl lost` when
/// the lock is no longer this run's.
pub fn refresh_script(run: &str) -> String {
    format!(
        "{}{READ_RUN}if [ \"$r\" = \"$R\" ]; then date +%s > \"$L/refreshed\" && echo '@@closetctl refreshed'; else echo '@@closetctl lost'; fi\n",
        header("refresh", run)
    )
}

/// Release this run's lock (only if it is still this run's).
pub fn release_script(run: &str) -> String {
    format!(
        "{}{READ_RUN}if [ \"$r\" = \"$R\" ]; then rm -rf \"$L\" && echo '@@closetctl released'; else echo '@@closetctl not-ours'; fi\n",
        header("release", run)
    )
}

/// End this run's running step script on a host (after a timeout or the grace period
/// of an interrupted apply); the lock stays.
pub fn end_step_script(run: &str) -> String {
    format!(
        "{}{END_STEP}{READ_RUN}[ \"$r\" = \"$R\" ] && cc_end_step\nexit 0\n",
        header("end-step", run)
    )
}

/// Break a stale lock whose run id is `run` (empty for a lock left without one): end
/// its step script if that still runs, then remove the lock.
pub fn break_script(run: &str) -> String {
    format!(
        "{}{END_STEP}{READ_RUN}if [ -d \"$L\" ] && [ \"$r\" = \"$R\" ]; then cc_end_step; rm -rf \"$L\" && echo '@@closetctl broken'; else echo '@@closetctl changed'; fi\n",
        header("break", run)
    )
}

/// Read a host's lock without taking it: the lock section and the host's clock.
pub fn inspect_script() -> String {
    format!("{SCRIPT_HEADER}inspect -\nset -u\nLOCK_RUN=\nLOCK=\n{SECTION}printf '@@closetctl now\\n'; date +%s\n")
}

/// Parse [`inspect_script`]'s answer: the lock and the host's clock.
pub fn parse_inspect(out: &str) -> Option<(LockAnswer, f64)> {
    let (_, rest) = out.split_once("@@closetctl lock\n")?;
    let (body, now) = rest.split_once("@@closetctl now\n")?;
    Some((parse_section(body), now.trim().parse().ok()?))
}

/// The shell prelude a step script needs to hold its lock: `cc_begin RUN STEP` refuses
/// to go on unless the lock is this run's (exit 3, `@@closetctl lost-lock`) and records
/// the script's pid, process group and start time in it; `cc_end` clears that record.
pub const STEP_PRELUDE: &str = r#"cc_begin() {
  r=; { read -r r < /var/lib/closetctl/lock/run; } 2>/dev/null
  if [ "$r" != "$1" ]; then printf '@@closetctl lost-lock\n'; exit 3; fi
  st=; read -r st < /proc/$$/stat; st=${st##*) }; set -- "$2" $st
  printf '%s %s %s %s\n' "$$" "$4" "${21}" "$1" > /var/lib/closetctl/lock/step
}
cc_end() { : > /var/lib/closetctl/lock/step; }
"#;

/// What a lock script printed: `refreshed`, `lost`, `released`, `not-ours`, `broken`,
/// `changed`, `ended STEP`.
pub fn answer(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("@@closetctl "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_795_995_000), "2026-11-29T23:30:00Z");
    }

    struct Here {
        id: &'static str,
        boot: &'static str,
        procs: Vec<(u32, u64)>,
    }

    impl Machine for Here {
        fn machine_id(&self) -> Option<String> {
            Some(self.id.into())
        }
        fn boot_id(&self) -> Option<String> {
            Some(self.boot.into())
        }
        fn process_start(&self, pid: u32) -> Option<u64> {
            self.procs.iter().find(|(p, _)| *p == pid).map(|(_, s)| *s)
        }
    }

    fn owner(machine_id: &str) -> Owner {
        Owner {
            user: "alice".into(),
            machine: "laptop".into(),
            machine_id: machine_id.into(),
            boot_id: "boot-1".into(),
            pid: 4242,
            pid_start: 777,
            run: "3f9a0c1d22aa0011".into(),
            started: 1_795_995_000,
        }
    }

    fn held(o: Owner, refreshed: f64) -> HeldLock {
        HeldLock {
            holder_text: o.line(),
            run: o.run.clone(),
            owner: Some(o),
            refreshed: Some(refreshed),
            step: None,
            verdict: None,
        }
    }

    #[test]
    fn the_holder_line_reads_back() {
        let o = owner("m-1");
        assert_eq!(Owner::parse(&o.line()), Some(o.clone()));
        assert_eq!(
            o.describe(),
            "alice@laptop (closetctl pid 4242, run 3f9a0c1d) since 2026-11-29T23:30:00Z"
        );
        assert_eq!(
            Owner::parse("carol@laptop (closetctl pid 4242) since 2026-11-29T23:30:00Z"),
            None
        );
        let spaced = Owner {
            user: "a b".into(),
            ..o
        };
        assert_eq!(Owner::parse(&spaced.line()).unwrap().user, "a_b");
    }

    #[test]
    fn a_holder_on_this_machine_is_gone_when_its_process_is() {
        let here = Here {
            id: "m-1",
            boot: "boot-1",
            procs: vec![(4242, 777)],
        };
        let lock = held(owner("m-1"), 0.0);
        // Running: live, however old the refresh.
        assert!(matches!(verdict(&lock, 1e9, &here), Verdict::Live(_)));
        let gone = Here {
            procs: vec![],
            ..here
        };
        assert_eq!(
            verdict(&lock, 10.0, &gone),
            Verdict::Stale("its process (pid 4242) no longer runs on laptop".into())
        );
        let reused = Here {
            procs: vec![(4242, 999)],
            id: "m-1",
            boot: "boot-1",
        };
        assert_eq!(
            verdict(&lock, 10.0, &reused),
            Verdict::Stale("pid 4242 on laptop is now another process".into())
        );
        let rebooted = Here {
            boot: "boot-2",
            id: "m-1",
            procs: vec![(4242, 777)],
        };
        assert_eq!(
            verdict(&lock, 10.0, &rebooted),
            Verdict::Stale("laptop restarted since that apply started".into())
        );
    }

    #[test]
    fn a_holder_elsewhere_is_gone_only_without_refresh() {
        let here = Here {
            id: "m-2",
            boot: "b",
            procs: vec![],
        };
        let lock = held(owner("m-1"), 1000.0);
        assert_eq!(
            verdict(&lock, 1030.0, &here),
            Verdict::Live("refreshed 30 s ago".into())
        );
        assert_eq!(
            verdict(&lock, 1000.0 + 600.0, &here),
            Verdict::Live("refreshed 10 min ago".into()),
            "exactly the limit is still live"
        );
        assert_eq!(
            verdict(&lock, 1000.0 + 601.0, &here),
            Verdict::Stale(
                "not refreshed for 10 min (a running apply refreshes it every 20 s)".into()
            )
        );
        // An older closetctl's free-text holder: judged by age alone.
        let old = HeldLock {
            holder_text: "carol@laptop (closetctl pid 4242) since 2026-11-29T23:30:00Z".into(),
            refreshed: Some(0.0),
            ..HeldLock::default()
        };
        assert!(matches!(verdict(&old, 4000.0, &here), Verdict::Stale(_)));
        assert_eq!(
            old.describe(),
            "carol@laptop (closetctl pid 4242) since 2026-11-29T23:30:00Z"
        );
        let unknown = HeldLock::default();
        assert!(matches!(verdict(&unknown, 1e9, &here), Verdict::Live(_)));
    }

    #[test]
    fn start_time_is_field_22_even_with_spaces_in_the_name() {
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 4 0 777 1000 10";
        assert_eq!(stat_start_time(stat), Some(777));
    }

    fn sh(script: &str) -> (i32, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The real scripts against a temp dir standing in for /var/lib/closetctl.
    fn in_dir(script: &str, dir: &std::path::Path) -> String {
        script.replace("/var/lib/closetctl", dir.to_str().unwrap())
    }

    #[test]
    fn the_lock_scripts_take_refresh_release_and_break() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let o = owner("m-1");
        let take = format!(
            "LOCK_RUN={}\nLOCK={}\n{SECTION}",
            quote(&o.run),
            quote(&o.line())
        );
        let (_, out) = sh(&in_dir(&take, &state));
        assert_eq!(
            parse_section(out.strip_prefix("@@closetctl lock\n").unwrap()),
            LockAnswer {
                acquired: true,
                held: None
            }
        );
        // A second taker finds it held, with the holder and a refresh time.
        let other = format!("LOCK_RUN=other\nLOCK=x\n{SECTION}");
        let (_, out) = sh(&in_dir(&other, &state));
        let answer = parse_section(out.strip_prefix("@@closetctl lock\n").unwrap());
        let h = answer.held.unwrap();
        assert_eq!(h.owner, Some(o.clone()));
        assert_eq!(h.run, o.run);
        assert!(h.refreshed.unwrap() > 1e9);
        // Inspect reads the same without taking.
        let (_, out) = sh(&in_dir(&inspect_script(), &state));
        let (answer, now) = parse_inspect(&out).unwrap();
        assert_eq!(answer.held.unwrap().run, o.run);
        assert!(now > 1e9);
        // Another run can neither refresh nor release it.
        let (_, out) = sh(&in_dir(&refresh_script("other"), &state));
        assert_eq!(answer_of(&out), "lost");
        let (_, out) = sh(&in_dir(&release_script("other"), &state));
        assert_eq!(answer_of(&out), "not-ours");
        assert!(state.join("lock").is_dir());
        let (_, out) = sh(&in_dir(&refresh_script(&o.run), &state));
        assert_eq!(answer_of(&out), "refreshed");
        // A step script records itself and clears the record.
        let step = format!(
            "{STEP_PRELUDE}cc_begin {} 'munge step'\ncat /var/lib/closetctl/lock/step\ncc_end\n",
            quote(&o.run)
        );
        let (rc, out) = sh(&in_dir(&step, &state));
        assert_eq!(rc, 0, "{out}");
        let fields: Vec<&str> = out.trim().splitn(4, ' ').collect();
        assert_eq!(fields[3], "munge step", "{out}");
        assert!(fields[0].parse::<u32>().is_ok() && fields[2].parse::<u64>().is_ok());
        let (rc, out) = sh(&in_dir(
            &format!("{STEP_PRELUDE}cc_begin other x\necho ran\n"),
            &state,
        ));
        assert_eq!((rc, out.as_str()), (3, "@@closetctl lost-lock\n"));
        // Breaking needs the run id that was shown.
        let (_, out) = sh(&in_dir(&break_script("other"), &state));
        assert_eq!(answer_of(&out), "changed");
        let (_, out) = sh(&in_dir(&break_script(&o.run), &state));
        assert_eq!(answer_of(&out), "broken");
        assert!(!state.join("lock").exists());
        // And taking it again works; release removes it.
        sh(&in_dir(&take, &state));
        let (_, out) = sh(&in_dir(&release_script(&o.run), &state));
        assert_eq!(answer_of(&out), "released");
        assert!(!state.join("lock").exists());
    }

    #[test]
    fn ending_a_step_kills_its_process_group_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let o = owner("m-1");
        sh(&in_dir(
            &format!(
                "LOCK_RUN={}\nLOCK={}\n{SECTION}",
                quote(&o.run),
                quote(&o.line())
            ),
            &state,
        ));
        // A step script in its own session (as sshd starts it) that would run for a minute.
        let step = in_dir(
            &format!(
                "{STEP_PRELUDE}cc_begin {} slow\nsleep 60\necho finished\n",
                quote(&o.run)
            ),
            &state,
        );
        let mut child = std::process::Command::new("setsid")
            .arg("sh")
            .arg("-c")
            .arg(&step)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let record = state.join("lock/step");
        for _ in 0..100 {
            if std::fs::read_to_string(&record).is_ok_and(|s| !s.is_empty()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let (_, out) = sh(&in_dir(&end_step_script(&o.run), &state));
        assert_eq!(answer_of(&out), "ended slow", "{out}");
        let status = child.wait().unwrap();
        assert!(!status.success());
        let mut rest = String::new();
        use std::io::Read;
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut rest)
            .unwrap();
        assert!(!rest.contains("finished"));
        assert!(state.join("lock").is_dir(), "ending a step keeps the lock");
        // Nothing recorded any more: ending again does nothing.
        let (_, out) = sh(&in_dir(&end_step_script(&o.run), &state));
        assert_eq!(answer(&out), None);
    }

    fn answer_of(out: &str) -> &str {
        answer(out).unwrap_or("")
    }
}
