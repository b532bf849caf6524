//! Operations: the small, concrete actions apply runs on a host, and the POSIX `sh`
//! script they are batched into (one script per host per step).
//!
//! Each operation is one line `cc_op N <function> 'arg' ...` over a fixed prelude of
//! shell functions. Every argument is quoted; file content travels base64-encoded in
//! the script, which goes to the remote `sh` on stdin, so secrets never reach any argv.
//! The fake host in [`crate::transport::fake`] interprets the same lines.

use crate::shell::{join, quote};
use base64::Engine as _;
use std::fmt;

/// Where previous versions of written files are kept on each host.
pub const BACKUP_DIR: &str = "/var/lib/closetctl/backup";

#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// One `apt-get install` for every package of a step.
    InstallPackages(Vec<String>),
    GroupAdd {
        name: String,
        gid: u32,
    },
    UserAdd {
        name: String,
        uid: u32,
        gid: u32,
        groups: Vec<String>,
        shell: String,
        home: String,
        comment: String,
        create_home: bool,
    },
    UserMod {
        name: String,
        gid: u32,
        groups: Vec<String>,
        shell: String,
        home: String,
        comment: String,
    },
    Directory {
        path: String,
        owner: String,
        group: String,
        mode: u32,
    },
    /// Atomic write: temp file beside the target, fsync, owner, mode, rename; the
    /// previous content is kept under [`BACKUP_DIR`].
    WriteFile {
        path: String,
        owner: String,
        group: String,
        mode: u32,
        content: Vec<u8>,
    },
    /// Owner and mode only.
    SetAttributes {
        path: String,
        owner: String,
        group: String,
        mode: u32,
    },
    Enable(String),
    Disable(String),
    Start(String),
    Stop(String),
    /// Restart; if the unit does not come back, restore `restore` paths from their
    /// backups, restart again, and fail with the unit's own log lines.
    Restart {
        unit: String,
        restore: Vec<String>,
    },
    Reload(String),
    /// A command from a playbook or closetctl's own code (never inventory text).
    Command(String),
    /// A handler's command that activates files (`exportfs -ra`, `scontrol
    /// reconfigure`): if it fails, restore `restore` from their backups and run it
    /// again, so the service is back on the previous files; then fail.
    Activate {
        command: String,
        restore: Vec<String>,
    },
    /// Put a file back as it was before this apply wrote it (from its backup).
    Restore(String),
    /// Check a file just written before anything activates it; if the check fails, put
    /// `path` back from its backup and fail.
    Check {
        command: String,
        path: String,
    },
}

/// Never prints file content: it may be a secret.
impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::WriteFile { path, content, .. } => {
                write!(f, "WriteFile({path}, {} bytes)", content.len())
            }
            other => write!(f, "{}", other.describe()),
        }
    }
}

impl Op {
    /// A one-line, secret-free description for logs and events.
    pub fn describe(&self) -> String {
        match self {
            Op::InstallPackages(p) => format!("install {}", p.join(" ")),
            Op::GroupAdd { name, gid } => format!("groupadd {name} ({gid})"),
            Op::UserAdd { name, uid, .. } => format!("useradd {name} ({uid})"),
            Op::UserMod { name, .. } => format!("usermod {name}"),
            Op::Directory { path, .. } => format!("directory {path}"),
            Op::WriteFile { path, .. } => format!("write {path}"),
            Op::SetAttributes { path, .. } => format!("chmod/chown {path}"),
            Op::Enable(u) => format!("enable {u}"),
            Op::Disable(u) => format!("disable {u}"),
            Op::Start(u) => format!("start {u}"),
            Op::Stop(u) => format!("stop {u}"),
            Op::Restart { unit, .. } => format!("restart {unit}"),
            Op::Reload(u) => format!("reload {u}"),
            Op::Command(c) => format!("run `{c}`"),
            Op::Activate { command, .. } => format!("run `{command}`"),
            Op::Restore(p) => format!("restore the previous {p}"),
            Op::Check { path, .. } => format!("check {path}"),
        }
    }

    /// The shell words after `cc_op N`.
    fn words(&self) -> String {
        let mode = |m: &u32| format!("{m:04o}");
        match self {
            Op::InstallPackages(p) => format!("cc_install {}", join(p)),
            Op::GroupAdd { name, gid } => format!("cc_groupadd {} {gid}", quote(name)),
            Op::UserAdd {
                name,
                uid,
                gid,
                groups,
                shell,
                home,
                comment,
                create_home,
            } => format!(
                "cc_useradd {} {uid} {gid} {} {} {} {} {}",
                quote(name),
                quote(&groups.join(",")),
                quote(shell),
                quote(home),
                quote(comment),
                if *create_home { "1" } else { "0" }
            ),
            Op::UserMod {
                name,
                gid,
                groups,
                shell,
                home,
                comment,
            } => format!(
                "cc_usermod {} {gid} {} {} {} {}",
                quote(name),
                quote(&groups.join(",")),
                quote(shell),
                quote(home),
                quote(comment)
            ),
            Op::Directory {
                path,
                owner,
                group,
                mode: m,
            } => {
                format!(
                    "cc_dir {} {} {} {}",
                    quote(path),
                    quote(owner),
                    quote(group),
                    mode(m)
                )
            }
            Op::WriteFile {
                path,
                owner,
                group,
                mode: m,
                content,
            } => format!(
                "cc_write {} {} {} {} {}",
                quote(path),
                quote(owner),
                quote(group),
                mode(m),
                quote(&base64::engine::general_purpose::STANDARD.encode(content))
            ),
            Op::SetAttributes {
                path,
                owner,
                group,
                mode: m,
            } => {
                format!(
                    "cc_attr {} {} {} {}",
                    quote(path),
                    quote(owner),
                    quote(group),
                    mode(m)
                )
            }
            Op::Enable(u) => format!("cc_systemctl enable {}", quote(u)),
            Op::Disable(u) => format!("cc_systemctl disable {}", quote(u)),
            Op::Start(u) => format!("cc_systemctl start {}", quote(u)),
            Op::Stop(u) => format!("cc_systemctl stop {}", quote(u)),
            Op::Reload(u) => format!("cc_systemctl reload {}", quote(u)),
            Op::Restart { unit, restore } => {
                format!("cc_restart {} {}", quote(unit), join(restore))
            }
            Op::Command(c) => format!("cc_command {}", quote(c)),
            Op::Activate { command, restore } => {
                format!("cc_activate {} {}", quote(command), join(restore))
            }
            Op::Restore(p) => format!("cc_restore_marked {}", quote(p)),
            Op::Check { command, path } => {
                format!("cc_check {} {}", quote(command), quote(path))
            }
        }
    }
}

const PRELUDE: &str = r#"set -u
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
B=/var/lib/closetctl/backup
cc_op() { n=$1; shift; if "$@"; then printf '@@closetctl ok %s\n' "$n"; else printf '@@closetctl failed %s\n' "$n"; exit 1; fi; }
cc_install() {
  apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null 2>/tmp/closetctl-apt.err && return 0
  apt-get update -q >/dev/null 2>&1
  apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null || { cat /tmp/closetctl-apt.err >&2; return 1; }
}
cc_groupadd() { groupadd -g "$2" "$1"; }
cc_useradd() {
  set -- "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8"
  if [ "$8" = 1 ]; then m=-m; else m=-M; fi
  if [ -n "$4" ]; then useradd $m -u "$2" -g "$3" -G "$4" -s "$5" -d "$6" -c "$7" "$1"
  else useradd $m -u "$2" -g "$3" -s "$5" -d "$6" -c "$7" "$1"; fi
}
cc_usermod() { usermod -g "$2" -G "$3" -s "$4" -d "$5" -c "$6" "$1"; }
cc_backup() {
  mkdir -p "$B${1%/*}" || return 1
  if [ -e "$1" ]; then cp -p "$1" "$B$1" && rm -f "$B$1.absent"; else rm -f "$B$1"; : > "$B$1.absent"; fi
}
cc_restore() {
  if [ -e "$B$1" ]; then cp -p "$B$1" "$1"; elif [ -e "$B$1.absent" ]; then rm -f "$1"; fi
}
cc_dir() { mkdir -p "$1" && chown "$2:$3" "$1" && chmod "$4" "$1"; }
cc_write() {
  d=${1%/*}; [ -n "$d" ] || d=/
  mkdir -p "$d" && cc_backup "$1" || return 1
  t="$d/.closetctl.$$.tmp"
  printf '%s' "$5" | base64 -d > "$t" && chown "$2:$3" "$t" && chmod "$4" "$t" && sync "$t" && mv -f "$t" "$1" || { rm -f "$t"; return 1; }
}
cc_attr() { chown "$2:$3" "$1" && chmod "$4" "$1"; }
cc_systemctl() { systemctl "$1" "$2"; }
cc_restart() {
  u=$1; shift
  systemctl restart "$u" && sleep 2 && systemctl is-active --quiet "$u" && return 0
  printf '%s did not come back; its last log lines:\n' "$u" >&2
  journalctl -u "$u" -n 12 --no-pager -o cat >&2 2>/dev/null
  for p in "$@"; do cc_restore_marked "$p"; done
  [ $# -eq 0 ] || systemctl restart "$u" >/dev/null 2>&1
  return 1
}
cc_command() { sh -c "$1"; }
cc_restore_marked() { cc_restore "$1" && printf '@@closetctl restored %s\n' "$1" && printf 'restored the previous %s\n' "$1" >&2; }
cc_activate() {
  c=$1; shift
  sh -c "$c" && return 0
  printf '`%s` failed; putting the previous files back and running it again\n' "$c" >&2
  for p in "$@"; do cc_restore_marked "$p"; done
  [ $# -eq 0 ] || sh -c "$c" >/dev/null 2>&1
  return 1
}
cc_check() {
  sh -c "$1" && return 0
  printf 'the new %s did not pass `%s`; putting the previous one back\n' "$2" "$1" >&2
  cc_restore_marked "$2"
  return 1
}
cc_dpkg_heal() {
  for f in /var/lib/dpkg/updates/*; do
    [ -e "$f" ] || continue
    printf 'finishing the package installation an interrupted apply left half-done (dpkg --configure -a)\n' >&2
    dpkg --configure -a >/dev/null || return 1
    break
  done
}
"#;

/// The paths a failed script put back from their backups (`@@closetctl restored P`).
pub fn restored(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@@closetctl restored "))
        .map(|p| p.trim().to_string())
        .collect()
}

/// The script for a batch of operations, in order.
pub fn script(title: &str, ops: &[Op]) -> String {
    let mut s = format!("# closetctl apply: {}\n", title.replace('\n', " "));
    s.push_str(PRELUDE);
    for (n, op) in ops.iter().enumerate() {
        s.push_str(&format!("cc_op {n} {}\n", op.words()));
    }
    s
}

/// The script for a step: like [`script`], with the caller's shell functions after the
/// prelude, `before` ahead of the first op, `after(n)` right after op `n`, and `end`
/// after the last (the lock check and the journal of owed handlers live there).
pub fn framed_script(
    title: &str,
    functions: &str,
    before: &str,
    ops: &[Op],
    after: impl Fn(usize) -> String,
    end: &str,
) -> String {
    let mut s = format!("# closetctl apply: {}\n", title.replace('\n', " "));
    s.push_str(PRELUDE);
    s.push_str(functions);
    s.push_str(before);
    for (n, op) in ops.iter().enumerate() {
        s.push_str(&format!("cc_op {n} {}\n", op.words()));
        s.push_str(&after(n));
    }
    s.push_str(end);
    s
}

/// How far a batch got: the index of the failed op, if any.
pub fn failed_op(stdout: &str) -> Option<usize> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("@@closetctl failed ")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_file_content() {
        let op = Op::WriteFile {
            path: "/etc/munge/munge.key".into(),
            owner: "munge".into(),
            group: "munge".into(),
            mode: 0o400,
            content: b"TOP-SECRET".to_vec(),
        };
        assert_eq!(
            format!("{op:?}"),
            "WriteFile(/etc/munge/munge.key, 10 bytes)"
        );
        assert!(!script("t", std::slice::from_ref(&op)).contains("TOP-SECRET"));
    }

    #[test]
    fn prelude_is_valid_sh_and_writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/file.conf");
        let target = target.to_str().unwrap();
        let me = |f: &str| {
            let out = std::process::Command::new("id").arg(f).output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let (user, group) = (me("-un"), me("-gn"));
        let ops = [
            Op::WriteFile {
                path: target.into(),
                owner: user.clone(),
                group: group.clone(),
                mode: 0o640,
                content: b"it's\nhere\n".to_vec(),
            },
            Op::Command(format!(
                "test \"$(cat {target})\" = \"$(printf 'it'\"'\"'s\\nhere')\""
            )),
        ];
        // Point the backup directory into the temp dir so the test touches nothing else.
        let text = script("test", &ops).replace(
            "B=/var/lib/closetctl/backup",
            &format!("B={}/backup", dir.path().display()),
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&text)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(failed_op(&stdout), None);
        assert_eq!(std::fs::read_to_string(target).unwrap(), "it's\nhere\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(target).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(dir.path().join(format!("backup{target}.absent")).exists());
        let failing = script(
            "t",
            &[
                Op::Command("true".into()),
                Op::Command("false".into()),
                Op::Command("true".into()),
            ],
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&failing)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(failed_op(&String::from_utf8_lossy(&out.stdout)), Some(1));
    }

    #[test]
    fn a_failing_activation_puts_the_files_back_and_runs_again() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("exports");
        let target = target.to_str().unwrap();
        let ran = dir.path().join("ran");
        let me = |f: &str| {
            let out = std::process::Command::new("id").arg(f).output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let write = |content: &str| Op::WriteFile {
            path: target.into(),
            owner: me("-un"),
            group: me("-gn"),
            mode: 0o644,
            content: content.as_bytes().to_vec(),
        };
        let in_dir = |ops: &[Op]| {
            let text = script("t", ops).replace(
                "B=/var/lib/closetctl/backup",
                &format!("B={}/backup", dir.path().display()),
            );
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&text)
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        assert!(in_dir(&[write("good v1\n")]).0);
        // The command accepts only files that say "good"; it logs each run.
        let check = format!("echo x >> {}; grep -q good {target}", ran.display());
        let (ok, stdout) = in_dir(&[
            write("bad v2\n"),
            Op::Activate {
                command: check,
                restore: vec![target.into()],
            },
        ]);
        assert!(!ok);
        assert_eq!(failed_op(&stdout), Some(1));
        assert_eq!(restored(&stdout), [target.to_string()]);
        assert_eq!(std::fs::read_to_string(target).unwrap(), "good v1\n");
        assert_eq!(
            std::fs::read_to_string(&ran).unwrap(),
            "x\nx\n",
            "run again on the previous files"
        );
    }
}
