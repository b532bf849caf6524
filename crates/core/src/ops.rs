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

/// Where previous versions of written files are kept on each host (a root-only tree).
pub const BACKUP_DIR: &str = "/var/lib/closetctl/backup";
/// Where homes of people who left are archived (root-only).
pub const ARCHIVE_DIR: &str = "/var/lib/closetctl/archive";

/// How many versions of each file [`BACKUP_DIR`] keeps: the newest as `PATH`, older
/// ones as `PATH.1` … `PATH.4`.
pub const BACKUP_VERSIONS: u32 = 5;

/// Who carries out a filesystem operation on the host.
///
/// Root works only where no person can change the path under it: every directory above
/// the target is a real directory that only root or a system account can write, and the
/// target is never a symbolic link. Anything inside a person's own directories (her
/// `~/.ssh`) is done by that person, through `setpriv` with her uid, gid and groups, so
/// the kernel's own permission checks apply and a link she planted leads nowhere she
/// could not already write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Actor {
    #[default]
    Root,
    /// The owner named in the operation.
    Owner,
}

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
        actor: Actor,
    },
    /// Atomic write: a `mktemp` file (0600 from creation) beside the target, content,
    /// owner, mode, fsync, rename, directory fsync. As root, the previous content is
    /// kept under [`BACKUP_DIR`].
    WriteFile {
        path: String,
        owner: String,
        group: String,
        mode: u32,
        content: Vec<u8>,
        actor: Actor,
    },
    /// Move a file out of a home into [`BACKUP_DIR`] (root-only, the last
    /// [`BACKUP_VERSIONS`] kept): read and removed by its owner, stored by root, so
    /// root never opens anything inside the home.
    Stash {
        path: String,
        owner: String,
        group: String,
    },
    /// Tar a home into [`ARCHIVE_DIR`] (root-only): `tar` runs as the owner, so the
    /// archive holds what she can read and root never opens anything inside the home;
    /// root writes the stream into a temp file it renames when complete.
    ArchiveHome {
        home: String,
        archive: String,
        owner: String,
        group: String,
    },
    /// Owner and mode only.
    SetAttributes {
        path: String,
        owner: String,
        group: String,
        mode: u32,
        actor: Actor,
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
            Op::Directory { path, actor, .. } => format!("directory {path}{}", actor.note(self)),
            Op::WriteFile { path, actor, .. } => format!("write {path}{}", actor.note(self)),
            Op::SetAttributes { path, actor, .. } => {
                format!("chmod/chown {path}{}", actor.note(self))
            }
            Op::Stash { path, owner, .. } => {
                format!("move {path} into the backup (read as {owner})")
            }
            Op::ArchiveHome {
                home,
                archive,
                owner,
                ..
            } => format!("archive {home} into {archive} (read as {owner})"),
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
        self.words_as(Content::Sent)
    }

    /// The shell words after `cc_op N`, with file content as `content` says.
    fn words_as(&self, shown: Content) -> String {
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
                actor,
            } => {
                format!(
                    "{} {} {} {} {}",
                    actor.function("dir"),
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
                actor,
            } => format!(
                "{} {} {} {} {} {}",
                actor.function("write"),
                quote(path),
                quote(owner),
                quote(group),
                mode(m),
                match shown {
                    Content::Sent =>
                        quote(&base64::engine::general_purpose::STANDARD.encode(content)),
                    Content::Logged => quote(&format!(
                        "<{} bytes, {}, not shown>",
                        content.len(),
                        crate::resource::fingerprint(content)
                    )),
                }
            ),
            Op::SetAttributes {
                path,
                owner,
                group,
                mode: m,
                actor,
            } => {
                format!(
                    "{} {} {} {} {}",
                    actor.function("attr"),
                    quote(path),
                    quote(owner),
                    quote(group),
                    mode(m)
                )
            }
            Op::Stash { path, owner, group } => format!(
                "cc_owner_stash {} {} {}",
                quote(path),
                quote(owner),
                quote(group)
            ),
            Op::ArchiveHome {
                home,
                archive,
                owner,
                group,
            } => format!(
                "cc_owner_archive {} {} {} {}",
                quote(home),
                quote(archive),
                quote(owner),
                quote(group)
            ),
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

impl Actor {
    /// ` (as alice)` for an operation done by its owner.
    fn note(self, op: &Op) -> String {
        match (self, op) {
            (
                Actor::Owner,
                Op::Directory { owner, .. }
                | Op::WriteFile { owner, .. }
                | Op::SetAttributes { owner, .. },
            ) => format!(" (as {owner})"),
            _ => String::new(),
        }
    }

    /// The prelude function for `what` (`dir`, `write`, `attr`) done by this actor.
    fn function(self, what: &str) -> String {
        match self {
            Actor::Root => format!("cc_{what}"),
            Actor::Owner => format!("cc_owner_{what}"),
        }
    }
}

const PRELUDE: &str = r#"set -u
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
umask 022
B=/var/lib/closetctl/backup
K=5
[ ! -d "$B" ] || chmod 0700 -- "$B"
cc_op() {
  n=$1; shift
  if "$@"; then printf '@@closetctl ok %s\n' "$n"; return 0; fi
  case $1 in cc_owner_*) printf '@@closetctl skipped %s\n' "$n"; return 0 ;; esac
  printf '@@closetctl failed %s\n' "$n"; exit 1
}
cc_install() {
  e=$(mktemp) || return 1
  if apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null 2>"$e"; then rm -f -- "$e"; return 0; fi
  apt-get update -q >/dev/null 2>&1
  if apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null 2>"$e"; then rm -f -- "$e"; return 0; fi
  cat -- "$e" >&2; rm -f -- "$e"; return 1
}
cc_groupadd() { groupadd -g "$2" "$1"; }
cc_useradd() {
  set -- "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8"
  if [ "$8" = 1 ]; then m=-m; else m=-M; fi
  if [ -n "$4" ]; then useradd $m -u "$2" -g "$3" -G "$4" -s "$5" -d "$6" -c "$7" "$1"
  else useradd $m -u "$2" -g "$3" -s "$5" -d "$6" -c "$7" "$1"; fi
}
cc_usermod() { usermod -g "$2" -G "$3" -s "$4" -d "$5" -c "$6" "$1"; }
cc_refuse() { printf 'closetctl: refusing %s\n' "$*" >&2; return 1; }
cc_person() { [ "$1" -ge 1000 ] && { [ "$1" -lt 60000 ] || [ "$1" -ge 65534 ]; }; }
cc_safe() (
  case $1 in /*) ;; *) cc_refuse "$1: not an absolute path"; exit 1 ;; esac
  depth=${2:-0}
  [ "$depth" -le 8 ] || { cc_refuse "$1: too many levels of links above it"; exit 1; }
  p=${1%/*}; set --
  while [ -n "$p" ]; do if [ -e "$p" ] || [ -L "$p" ]; then set -- "$p" "$@"; fi; p=${p%/*}; done
  [ $# -gt 0 ] || exit 0
  n=$#; last=; eval "last=\${$#}"
  stat -c '%u|%g|%a|%F|%n' -- "$@" 2>/dev/null | {
    seen=0
    while IFS='|' read -r u g a t d; do
      seen=$((seen + 1)); m=$((0$a))
      case $t in
        directory)
          if cc_person "$u" || [ $((m & 18)) -ne 0 ]; then
            cc_refuse "to work as root under $d: others can change it (owner uid $u, group gid $g, mode $a)"; exit 1
          fi ;;
        "symbolic link")
          [ "$u" = 0 ] || { cc_refuse "to work as root under $d: it is a symbolic link owned by uid $u"; exit 1; }
          l=$(readlink -- "$d") || exit 1
          case $l in /*) ;; *) l=${d%/*}/$l ;; esac
          cc_safe "$l/." $((depth + 1)) || exit 1 ;;
        *) cc_refuse "to work as root under $d: it is a $t"; exit 1 ;;
      esac
    done
    [ "$seen" = "$n" ] || { cc_refuse "to work as root under ${last}: stat could not report every directory above it"; exit 1; }
  }
)
cc_nolink() { if [ -L "$1" ]; then cc_refuse "$1: it is a symbolic link"; return 1; fi; }
cc_backup() (
  umask 077; b=$B$1
  mkdir -p -- "${b%/*}" && chmod 0700 -- "$B" || exit 1
  i=$((K - 2))
  while [ "$i" -ge 1 ]; do
    if [ -e "$b.$i" ] || [ -L "$b.$i" ]; then mv -f -T -- "$b.$i" "$b.$((i + 1))" || exit 1; fi
    i=$((i - 1))
  done
  if [ -e "$b" ] || [ -L "$b" ]; then mv -f -T -- "$b" "$b.1" || exit 1; fi
  if [ -e "$1" ] || [ -L "$1" ]; then cp -a -- "$1" "$b" && rm -f -- "$b.absent"; else : > "$b.absent"; fi
)
cc_restore() {
  if [ -e "$B$1" ] || [ -L "$B$1" ]; then
    cc_safe "$1" || return 1
    r=$(mktemp -d "${1%/*}/.closetctl.XXXXXXXX") || return 1
    if cp -a -- "$B$1" "$r/f" && mv -f -T -- "$r/f" "$1"; then rm -rf -- "$r"; else rm -rf -- "$r"; return 1; fi
  elif [ -e "$B$1.absent" ]; then cc_safe "$1" && cc_nolink "$1" && rm -f -- "$1"
  fi
}
cc_dir() {
  cc_safe "$1" && cc_nolink "$1" || return 1
  [ -d "$1" ] || mkdir -p -- "$1" || return 1
  chown -h -- "$2:$3" "$1" && chmod -- "$4" "$1"
}
cc_write() {
  d=${1%/*}; [ -n "$d" ] || d=/
  cc_safe "$1" || return 1
  [ -d "$d" ] || mkdir -p -- "$d" || return 1
  cc_backup "$1" || return 1
  t=$(mktemp "$d/.closetctl.XXXXXXXX") || return 1
  if printf '%s' "$5" | base64 -d > "$t" && chown -h -- "$2:$3" "$t" && chmod -- "$4" "$t" && sync -- "$t" && mv -f -T -- "$t" "$1"; then sync -- "$d"; return 0; fi
  rm -f -- "$t"; return 1
}
cc_attr() { cc_safe "$1" && cc_nolink "$1" && chown -h -- "$2:$3" "$1" && chmod -- "$4" "$1"; }
CC_AS_OWNER='set -u; umask 077; op=$1 f=$2 g=$3 m=$4; d=${f%/*}
refuse() { printf "closetctl: refusing %s\n" "$*" >&2; exit 1; }
case $op in
dir) if [ -L "$f" ]; then refuse "$f: it is a symbolic link"; fi
  [ -d "$f" ] || mkdir -- "$f" || exit 1
  chgrp -- "$g" "$f" && chmod -- "$m" "$f" ;;
attr) if [ -L "$f" ]; then refuse "$f: it is a symbolic link"; fi
  chgrp -- "$g" "$f" && chmod -- "$m" "$f" ;;
remove) rm -f -- "$f" ;;
write) if [ -L "$d" ]; then refuse "to write $f: $d is a symbolic link"; fi
  t=$(mktemp "$d/.closetctl.XXXXXXXX") || exit 1
  if cat > "$t" && chgrp -- "$g" "$t" && chmod -- "$m" "$t" && sync -- "$t" && mv -f -T -- "$t" "$f"; then sync -- "$d"; exit 0; fi
  rm -f -- "$t"; exit 1 ;;
esac'
cc_as_owner() (
  o=$(mktemp) || exit 1
  (ulimit -f 2048; timeout -s KILL 60 setpriv --reuid="$3" --regid="$4" --init-groups --no-new-privs --reset-env -- sh -c "$CC_AS_OWNER" closetctl "$1" "$2" "$4" "$5") >"$o" 2>&1
  rc=$?
  [ "$rc" != 137 ] || printf 'closetctl: %s as %s did not finish in 60 s\n' "$1 $2" "$3" >>"$o"
  tr -cd '[:print:]\n' <"$o" | head -c 2000 >&2; rm -f -- "$o"
  exit "$rc"
)
cc_owner_dir() { cc_as_owner dir "$1" "$2" "$3" "$4" </dev/null; }
cc_owner_attr() { cc_as_owner attr "$1" "$2" "$3" "$4" </dev/null; }
cc_owner_write() { printf '%s' "$5" | base64 -d | cc_as_owner write "$1" "$2" "$3" "$4"; }
cc_owner_stash() (
  umask 077; b=$B$1
  mkdir -p -- "${b%/*}" && chmod 0700 -- "$B" || exit 1
  t=$(mktemp "${b%/*}/.closetctl.XXXXXXXX") || exit 1
  e=$(mktemp) || { rm -f -- "$t"; exit 1; }
  (ulimit -f 2048; timeout -s KILL 60 setpriv --reuid="$2" --regid="$3" --init-groups --no-new-privs --reset-env -- sh -c '[ ! -e "$1" ] || cat -- "$1"' closetctl "$1") <"/dev/null" >"$t" 2>"$e" && sync -- "$t" || {
    tr -cd '[:print:]\n' <"$e" | head -c 2000 >&2; rm -f -- "$t" "$e"; exit 1; }
  rm -f -- "$e"
  i=$((K - 2))
  while [ "$i" -ge 1 ]; do
    if [ -e "$b.$i" ] || [ -L "$b.$i" ]; then mv -f -T -- "$b.$i" "$b.$((i + 1))" || exit 1; fi
    i=$((i - 1))
  done
  if [ -e "$b" ] || [ -L "$b" ]; then mv -f -T -- "$b" "$b.1" || exit 1; fi
  mv -f -T -- "$t" "$b" && rm -f -- "$b.absent" && sync -- "${b%/*}" || exit 1
  cc_as_owner remove "$1" "$2" "$3" 0600 </dev/null
)
cc_owner_archive() (
  umask 077; h=$1 a=$2; d=${a%/*}
  mkdir -p -- "$d" && chmod 0700 -- "$d" || exit 1
  rm -f -- "$a".partial.*
  t=$(mktemp "$a.partial.XXXXXXXX") || exit 1
  e=$(mktemp) || { rm -f -- "$t"; exit 1; }
  timeout -s KILL 3600 setpriv --reuid="$3" --regid="$4" --init-groups --no-new-privs --reset-env -- tar -C "${h%/*}" -czf - -- "${h##*/}" <"/dev/null" >"$t" 2>"$e"
  rc=$?
  tr -cd '[:print:]\n' <"$e" | head -c 2000 >&2; rm -f -- "$e"
  # tar: 1 = a file changed while read, 2 = some could not be read (not hers to read);
  # the archive holds the rest. Anything else (killed, no space) leaves no archive.
  if [ "$rc" -le 2 ] && [ -s "$t" ] && sync -- "$t" && mv -f -T -- "$t" "$a"; then sync -- "$d"; exit 0; fi
  rm -f -- "$t"; exit 1
)
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

/// How file content appears in a rendered script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// Base64, as the host needs it.
    Sent,
    /// Its size and fingerprint only: file content may be a secret (the MUNGE key,
    /// slurmdbd.conf's password, the Tailscale auth key), and logs must never show it.
    Logged,
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
    framed(Content::Sent, title, functions, before, ops, after, end)
}

/// [`framed_script`] as logs show it: the same text, except that each file's content is
/// replaced by its size and fingerprint. The one place a script is made fit for a log:
/// file content is the only way a secret travels in a script.
pub fn loggable_framed_script(
    title: &str,
    functions: &str,
    before: &str,
    ops: &[Op],
    after: impl Fn(usize) -> String,
    end: &str,
) -> String {
    framed(Content::Logged, title, functions, before, ops, after, end)
}

fn framed(
    shown: Content,
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
        s.push_str(&format!("cc_op {n} {}\n", op.words_as(shown)));
        s.push_str(&after(n));
    }
    s.push_str(end);
    s
}

/// Operations done as a home's owner that failed and were passed over (her `~/.ssh`
/// is not usable): the batch went on without them.
pub fn skipped_ops(stdout: &str) -> Vec<usize> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@@closetctl skipped ")?.trim().parse().ok())
        .collect()
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
    fn the_loggable_script_is_the_sent_one_without_file_content() {
        let ops = [
            Op::InstallPackages(vec!["munge".into()]),
            Op::WriteFile {
                path: "/etc/munge/munge.key".into(),
                owner: "munge".into(),
                group: "munge".into(),
                mode: 0o400,
                content: b"TOP-SECRET".to_vec(),
                actor: Actor::Root,
            },
        ];
        let frame = |logged: bool| {
            let f = if logged {
                loggable_framed_script
            } else {
                framed_script
            };
            f(
                "t",
                "fn\n",
                "begin\n",
                &ops,
                |n| format!("after {n}\n"),
                "end\n",
            )
        };
        let (sent, logged) = (frame(false), frame(true));
        let encoded = base64::engine::general_purpose::STANDARD.encode(b"TOP-SECRET");
        assert!(sent.contains(&encoded));
        assert!(!logged.contains(&encoded) && !logged.contains("TOP-SECRET"));
        let shown = format!(
            "'<10 bytes, {}, not shown>'",
            crate::resource::fingerprint(b"TOP-SECRET")
        );
        assert!(logged.contains(&format!(
            "cc_op 1 cc_write '/etc/munge/munge.key' 'munge' 'munge' 0400 {shown}\n"
        )));
        assert_eq!(logged, sent.replace(&format!("'{encoded}'"), &shown));
    }

    #[test]
    fn debug_never_shows_file_content() {
        let op = Op::WriteFile {
            path: "/etc/munge/munge.key".into(),
            owner: "munge".into(),
            group: "munge".into(),
            mode: 0o400,
            content: b"TOP-SECRET".to_vec(),
            actor: Actor::Root,
        };
        assert_eq!(
            format!("{op:?}"),
            "WriteFile(/etc/munge/munge.key, 10 bytes)"
        );
        assert!(!script("t", std::slice::from_ref(&op)).contains("TOP-SECRET"));
    }

    #[test]
    fn the_prelude_has_no_predictable_temp_name_and_no_link_following_chown() {
        assert!(!PRELUDE.contains("$$"));
        assert!(!PRELUDE.contains("/tmp/"));
        assert!(!PRELUDE.contains("cp -p"));
        for line in PRELUDE.lines().filter(|l| l.contains("chown ")) {
            assert!(line.contains("chown -h"), "{line}");
        }
    }

    #[test]
    fn files_in_a_home_are_written_by_their_owner() {
        let op = Op::WriteFile {
            path: "/home/alice/.ssh/authorized_keys".into(),
            owner: "alice".into(),
            group: "alice".into(),
            mode: 0o600,
            content: b"k".to_vec(),
            actor: Actor::Owner,
        };
        assert_eq!(
            op.words(),
            "cc_owner_write '/home/alice/.ssh/authorized_keys' 'alice' 'alice' 0600 'aw=='"
        );
    }

    #[test]
    fn a_failing_op_stops_the_batch_and_is_named() {
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
}
