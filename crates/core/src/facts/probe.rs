//! The fact probe: one generated POSIX `sh` script per host, one round trip.
//!
//! The request (packages, units, paths, extra commands) is written as shell variables
//! at the top of the script; the body is fixed. Every external program it runs is run
//! once for all items (one `dpkg-query`, one `systemctl show`, one `stat`, one `cat`
//! piped into one `base64`, ...), files are read with shell builtins where possible,
//! and answers that change only with some file's time are kept on the host under those
//! times ([`GPU_CACHE`], [`FACTS_CACHE`]), because on a slow or busy host each process
//! costs. The answer is a series of sections, each opened by a `@@closetctl <name>`
//! line, parsed by [`parse`].

use super::*;
use crate::shell::quote;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use thiserror::Error;

/// Files at most this large are read back whole (for diffs); larger ones only hashed.
pub const CONTENT_LIMIT: u64 = 65536;

/// The marker that opens each section of the probe's answer.
pub const MARKER: &str = "@@closetctl";

/// What the plan needs to know about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeRequest {
    pub packages: BTreeSet<String>,
    pub units: BTreeSet<String>,
    pub files: BTreeSet<String>,
    /// Paths whose content is secret: hashed on the host, never read back.
    pub secret_files: BTreeSet<String>,
    /// Paths inside a home, looked at by their owner (`owner`, `group`) rather than by
    /// root, so that a link she planted cannot make root read anything for her.
    pub owned_files: BTreeMap<(String, String), BTreeSet<String>>,
    /// Extra read-only commands by name, e.g. `tailscale status --json`.
    pub commands: BTreeMap<String, String>,
    /// Take the apply lock first thing, for this holder.
    pub lock: Option<crate::lock::Owner>,
    /// CPU topology and GPUs (`nvidia-smi` costs most of a probe on a busy host).
    pub hardware: bool,
    /// Ask `nvidia-smi` even when the GPU answer cached on the host is still current
    /// (see [`GPU_CACHE`]): for `check --live` and `facts`, which show power draw.
    pub gpus_fresh: bool,
    /// NTP synchronisation (`timedatectl` wakes systemd-timedated over D-Bus).
    pub time_sync: bool,
    /// The cluster interface and its link speed (`ip -o addr`).
    pub link: bool,
}

impl ProbeRequest {
    /// Everything the probe can tell, for `facts` and the preflight checks.
    pub fn everything() -> ProbeRequest {
        ProbeRequest {
            hardware: true,
            gpus_fresh: true,
            time_sync: true,
            link: true,
            ..ProbeRequest::default()
        }
    }

    pub fn merge(&mut self, other: ProbeRequest) {
        self.packages.extend(other.packages);
        self.units.extend(other.units);
        self.files.extend(other.files);
        self.secret_files.extend(other.secret_files);
        for (who, paths) in other.owned_files {
            self.owned_files.entry(who).or_default().extend(paths);
        }
        self.commands.extend(other.commands);
        self.hardware |= other.hardware;
        self.gpus_fresh |= other.gpus_fresh;
        self.time_sync |= other.time_sync;
        self.link |= other.link;
    }
}

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("the probe's answer has no `{0}` section; is the remote shell POSIX sh?")]
    MissingSection(&'static str),
    #[error("cannot parse the probe's `{section}` section: {detail}")]
    Malformed { section: String, detail: String },
}

/// Directory of closetctl's state on each host (lock, backups).
pub const STATE_DIR: &str = "/var/lib/closetctl";

/// Where the probe keeps the last `nvidia-smi` answer, under the key it was valid for:
/// the boot id, the `/dev/nvidia*` device nodes and the driver's version line. GPUs do
/// not come or go without those changing, so while they match the probe reads the file
/// with shell builtins instead of starting `nvidia-smi` (about a second on a busy
/// host, more without persistence mode). Root-only directory; written atomically.
pub const GPU_CACHE: &str = "/var/lib/closetctl/gpus";

/// Where the probe keeps its last answer about packages (`dpkg-query`) and unit
/// enablement (`systemctl show`'s `UnitFileState`), under the key it was valid for:
/// what was asked and the modification times, to the nanosecond (`stat %.9Y`; a `stat`
/// without that precision disables the cache), of everything those answers are read
/// from: dpkg's `status` file and `updates` directory, the unit directories under
/// `/etc`, `/run`, `/usr/local/lib` and `/lib` (with the `*.wants`, `*.requires` and
/// `*.upholds` directories of `/etc/systemd/system` and `/run/systemd/system`) and each
/// asked unit's file in them. `dpkg` installing or removing a package, `systemctl
/// enable`, `disable` or `mask`, a new or edited unit file: each changes one of those
/// times, and the next probe asks again. The key is taken before the questions, so a
/// change made while they run is seen next time. While the key matches, one `stat` and
/// one `busctl` call (load and active state, which change all the time and are never
/// cached) replace `dpkg-query` and `systemctl show` (a quarter to half a second on a
/// slow host). `/run/systemd/transient` is left out: every login writes a session
/// scope there, and no unit closetctl manages is transient. Root-only directory;
/// written atomically; a key that does not match is simply asked again.
pub const FACTS_CACHE: &str = "/var/lib/closetctl/facts";

/// Marks each section's start (`/proc/uptime`, a builtin `read`: no process) for the
/// `timings` section at the end, with the host's fork counter (`processes` in
/// `/proc/stat`) before and after.
const TIMING: &str = r#"cc_t0=; cc_times=
{ read -r cc_t0 cc_ < /proc/uptime; } 2>/dev/null
cc_forks() { cc_f=; while read -r cc_k cc_v; do [ "$cc_k" != processes ] || { cc_f=$cc_v; break; }; done < /proc/stat; } 2>/dev/null
cc_forks; cc_p0=$cc_f
cc_mark() {
  cc_t=; { read -r cc_t cc_ < /proc/uptime; } 2>/dev/null
  case $1 in command|owned) cc_times="$cc_times $1:$2=$cc_t" ;; *) cc_times="$cc_times $1=$cc_t" ;; esac
}
"#;

/// The `timings` section, last.
const TIMINGS_END: &str = r#"cc_mark end; cc_forks
printf '%s timings\nstart=%s\npids=%s %s\n' "$S" "$cc_t0" "$cc_p0" "$cc_f"; for cc_m in $cc_times; do printf '%s\n' "$cc_m"; done
"#;

const BODY: &str = r#"
S=@@closetctl
NL='
'
sec() { cc_mark "$1" "${2:-}"; printf '%s %s\n' "$S" "$*"; }
cc_gpus() {
  k=; v=; { read -r k < /proc/sys/kernel/random/boot_id; read -r v < /proc/driver/nvidia/version; } 2>/dev/null
  for d in /dev/nvidia*; do [ ! -e "$d" ] || k="$k $d"; done
  k="key $k|$v"
  if [ -z "$GPUS_FRESH" ] && [ -f "$GPU_CACHE" ]; then
    c=; { IFS= read -r c < "$GPU_CACHE"; } 2>/dev/null
    if [ "$c" = "$k" ]; then
      { IFS= read -r c; while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done; } < "$GPU_CACHE"
      return 0
    fi
  fi
  if o=$(nvidia-smi --query-gpu=index,name,memory.total,power.limit,power.draw --format=csv,noheader,nounits 2>/dev/null); then
    printf '%s\n' "$o"
    d=${GPU_CACHE%/*}
    { [ -d "$d" ] || mkdir -p "$d"; } 2>/dev/null && t=$(mktemp "$d/.gpus.XXXXXX" 2>/dev/null) || return 0
    if printf '%s\n%s\n' "$k" "$o" > "$t"; then mv -f "$t" "$GPU_CACHE"; else rm -f "$t"; fi
  else
    [ -z "$o" ] || printf '%s\n' "$o"
  fi
}
cc_key() {
  cc_k=; [ -n "$PACKAGES$UNITS" ] || return 0
  set -- /var/lib/dpkg/status /var/lib/dpkg/updates /etc/systemd/system /etc/systemd/system/*.wants /etc/systemd/system/*.requires /etc/systemd/system/*.upholds /run/systemd/system /run/systemd/system/*.wants /run/systemd/system/*.requires /run/systemd/generator /run/systemd/generator.early /run/systemd/generator.late /usr/local/lib/systemd/system /lib/systemd/system /usr/lib/systemd/system
  for u in $UNITS; do set -- "$@" "/etc/systemd/system/$u" "/run/systemd/system/$u" "/usr/local/lib/systemd/system/$u" "/lib/systemd/system/$u" "/usr/lib/systemd/system/$u"; done
  k=$(stat --printf '%.9Y;' -- "$@" 2>/dev/null)
  case $k in [0-9]*.[0-9]*) cc_k="key $PACKAGES|$UNITS|$k" ;; esac
}
cc_load() {
  cc_c=; cc_pc=; cc_uf=; [ -f "$FACTS_CACHE" ] || return 0
  { IFS= read -r cc_c; while IFS= read -r l || [ -n "$l" ]; do case $l in "p "*) cc_pc="$cc_pc${l#p }$NL" ;; "u "*) cc_uf="$cc_uf${l#u }$NL" ;; esac; done; } < "$FACTS_CACHE" 2>/dev/null
}
cc_units_bus() { busctl --json=short call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager ListUnitsByNames as $# "$@" 2>/dev/null; }
cc_store() {
  [ -n "$cc_k" ] && { [ -z "$UNITS" ] || [ -n "$cc_u" ]; } || return 0
  d=${FACTS_CACHE%/*}
  { [ -d "$d" ] || mkdir -p "$d"; } 2>/dev/null && t=$(mktemp "$d/.facts.XXXXXX" 2>/dev/null) || return 0
  if {
    printf '%s\n' "$cc_k"
    [ -z "$cc_p" ] || while IFS= read -r l; do printf 'p %s\n' "$l"; done <<CLOSETCTL_P
$cc_p
CLOSETCTL_P
    id=; [ -z "$cc_u" ] || while IFS= read -r l; do case $l in Id=*) id=${l#Id=} ;; UnitFileState=*) printf 'u %s %s\n' "$id" "${l#UnitFileState=}" ;; esac; done <<CLOSETCTL_U
$cc_u
CLOSETCTL_U
  } > "$t"; then mv -f "$t" "$FACTS_CACHE"; else rm -f "$t"; fi
}
emit() { [ -r "$1" ] || return 0; while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done < "$1"; }
sec os; emit /etc/os-release
sec hostname; emit /proc/sys/kernel/hostname
sec passwd; getent passwd
sec group; getent group
cc_mark facts-cache; cc_key; cc_hit=
if [ -n "$cc_k" ]; then cc_load; [ "$cc_c" != "$cc_k" ] || cc_hit=1; fi
[ -z "$cc_hit" ] || [ -z "$UNITS" ] || { cc_bus=$(cc_units_bus $UNITS) && case $cc_bus in '{"type":"a(ssssssouso)",'*) ;; *) false ;; esac; } || cc_hit=
sec packages
if [ -n "$cc_hit" ]; then printf '%s' "$cc_pc"
else cc_p=; [ -z "$PACKAGES" ] || cc_p=$(dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\t${Version}\n' $PACKAGES 2>/dev/null); [ -z "$cc_p" ] || printf '%s\n' "$cc_p"; fi
if [ -n "$cc_hit" ]; then sec units bus; [ -z "$UNITS" ] || printf '%s\n' "$cc_bus"; sec unit-files; printf '%s' "$cc_uf"
else sec units; cc_u=; [ -z "$UNITS" ] || cc_u=$(systemctl show -p Id,LoadState,ActiveState,UnitFileState $UNITS 2>/dev/null); [ -z "$cc_u" ] || printf '%s\n' "$cc_u"; cc_store; fi
st=; [ -z "$FILES" ] || st=$(stat -c '%n|%F|%a|%U|%G|%s' $FILES 2>/dev/null)
sec stat; [ -z "$st" ] || printf '%s\n' "$st"
small=; hashed=
while IFS='|' read -r n t a u g s; do
  case "$t" in regular*) ;; *) continue ;; esac
  case " $SECRETS " in *" $n "*) hashed="$hashed $n"; continue ;; esac
  if [ "$s" -le 65536 ]; then small="$small $n"; else hashed="$hashed $n"; fi
done <<CLOSETCTL_STAT
$st
CLOSETCTL_STAT
sec content $small; [ -z "$small" ] || cat $small | base64 -w0; echo
sec sha256; [ -z "$hashed" ] || sha256sum $hashed
sec cpu; [ -z "$HARDWARE" ] || grep -E '^(processor|physical id|core id)[[:space:]]*:' /proc/cpuinfo
sec memory; read -r l < /proc/meminfo; printf '%s\n' "$l"
sec gpus; [ -z "$HARDWARE" ] || ! command -v nvidia-smi >/dev/null 2>&1 || cc_gpus
sec time; date +%s.%N; [ -z "$TIME_SYNC" ] || timedatectl show -p NTPSynchronized --value 2>/dev/null
sec ssh; printf '%s\n' "${SSH_CONNECTION:-}"
sec addrs; [ -z "$LINK" ] || ip -o addr show 2>/dev/null
sec speeds; for f in /sys/class/net/*/speed; do sp=; { read -r sp < "$f"; } 2>/dev/null; i=${f%/speed}; printf '%s %s\n' "${i##*/}" "$sp"; done
"#;

/// Files in a home, read by their owner: `owned OWNER GROUP PATH...` runs `stat` and
/// `cat` as her (setpriv: her uid, gid and groups, no new privileges, a clean
/// environment, five seconds, 1 MiB of output) into a root-owned temp file, which root
/// prints base64-encoded under one `owned OWNER` line, so that nothing she makes those
/// processes print can pass for a section of the answer. Placed last in the script.
const OWNED: &str = r#"
OWNED_SH='st=$(stat -c "%n|%F|%a|%U|%G|%s" -- "$@" 2>/dev/null); printf "%s\n" "$st"; echo --; small=
while IFS="|" read -r n t a u g s; do case "$t" in regular*) [ "$s" -gt 65536 ] || small="$small $n" ;; esac; done <<E
$st
E
[ -z "$small" ] || cat -- $small'
ow=$(mktemp)
owned() { u=$1 g=$2; shift 2; (ulimit -f 2048; exec timeout -s KILL 5 setpriv --reuid="$u" --regid="$g" --init-groups --no-new-privs --reset-env -- sh -c "$OWNED_SH" closetctl "$@") >"$ow" 2>/dev/null </dev/null; sec owned "$u"; base64 -w0 <"$ow"; echo; }
"#;

/// The first line of every probe script (the fake host recognises the probe by it).
pub const HEADER: &str = "# closetctl fact probe";

/// The probe script for one request.
pub fn script(req: &ProbeRequest) -> String {
    let join = |set: &BTreeSet<String>| quote(&set.iter().cloned().collect::<Vec<_>>().join(" "));
    let mut s = format!("{HEADER}\nset -u\nexport LC_ALL=C\n");
    s.push_str(&format!("PACKAGES={}\n", join(&req.packages)));
    s.push_str(&format!("UNITS={}\n", join(&req.units)));
    s.push_str(&format!("FILES={}\n", join(&req.files)));
    s.push_str(&format!("SECRETS={}\n", join(&req.secret_files)));
    // The lock comes first, before any fact is read: facts gathered under the lock
    // cannot predate another apply's changes.
    let (run, holder) = req
        .lock
        .as_ref()
        .map_or((String::new(), String::new()), |o| {
            (o.run.clone(), o.line())
        });
    s.push_str(&format!(
        "LOCK_RUN={}\nLOCK={}\n",
        quote(&run),
        quote(&holder)
    ));
    let flag = |on: bool| if on { "1" } else { "" };
    s.push_str(&format!(
        "HARDWARE={}\nGPUS_FRESH={}\nGPU_CACHE={GPU_CACHE}\nFACTS_CACHE={FACTS_CACHE}\nTIME_SYNC={}\nLINK={}\n",
        flag(req.hardware),
        flag(req.gpus_fresh),
        flag(req.time_sync),
        flag(req.link)
    ));
    s.push_str(TIMING);
    s.push_str(crate::lock::SECTION);
    s.push_str(crate::journal::SECTION);
    s.push_str(BODY);
    for (name, command) in &req.commands {
        s.push_str(&command_section(name, command));
    }
    if !req.owned_files.is_empty() {
        s.push_str(OWNED);
        for ((owner, group), paths) in &req.owned_files {
            let paths: Vec<String> = paths.iter().map(|p| quote(p)).collect();
            s.push_str(&format!(
                "owned {} {} {}\n",
                quote(owner),
                quote(group),
                paths.join(" ")
            ));
        }
        s.push_str("rm -f -- \"$ow\"\n");
    }
    s.push_str(TIMINGS_END);
    s
}

/// One command's part of a probe: its output between `command NAME` and
/// `command-exit NAME STATUS` marks. Commands come from closetctl's own code and
/// playbooks, never from the inventory.
fn command_section(name: &str, command: &str) -> String {
    format!(
        "sec command {name}\n( {command} ) 2>/dev/null; rc=$?; echo; sec command-exit {name} $rc\n"
    )
}

/// A second, small probe for commands whose need only the first answer showed (an
/// association to remove needs the controller's active jobs): the commands alone, no
/// lock, no other fact, answered as in the probe. Read with [`parse_commands`].
pub fn commands_script(commands: &BTreeMap<String, String>) -> String {
    let mut s = format!(
        "{HEADER} (commands)\nset -u\nexport LC_ALL=C\nS={MARKER}\nsec() {{ printf '%s %s\\n' \"$S\" \"$*\"; }}\n"
    );
    for (name, command) in commands {
        s.push_str(&command_section(name, command));
    }
    s
}

/// The commands' outputs in a probe's answer (or a [`commands_script`]'s), by name.
pub fn parse_commands(out: &str) -> BTreeMap<String, CommandOutput> {
    commands_of(&sections(out))
}

fn commands_of(secs: &[Section<'_>]) -> BTreeMap<String, CommandOutput> {
    let mut commands = BTreeMap::new();
    for (header, body) in secs {
        if header.first() == Some(&"command") {
            let name = header.get(1).copied().unwrap_or_default();
            let exit_code = secs
                .iter()
                .find(|(h, _)| h.first() == Some(&"command-exit") && h.get(1) == Some(&name))
                .and_then(|(h, _)| h.get(2)?.parse().ok())
                .unwrap_or(-1);
            let stdout = body.strip_suffix('\n').unwrap_or(body).to_string();
            commands.insert(name.to_string(), CommandOutput { exit_code, stdout });
        }
    }
    commands
}

/// Split the answer into `(header words, body)` sections.
fn sections(out: &str) -> Vec<(Vec<&str>, String)> {
    let mut result: Vec<(Vec<&str>, String)> = Vec::new();
    for line in out.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(MARKER).filter(|r| r.starts_with(' ')) {
            result.push((rest.split_whitespace().collect(), String::new()));
        } else if let Some((_, body)) = result.last_mut() {
            body.push_str(line);
        }
    }
    result
}

fn malformed(section: &str, detail: impl Into<String>) -> ProbeError {
    ProbeError::Malformed {
        section: section.into(),
        detail: detail.into(),
    }
}

type Section<'a> = (Vec<&'a str>, String);

fn section<'s, 'a>(
    secs: &'s [Section<'a>],
    name: &'static str,
) -> Result<&'s Section<'a>, ProbeError> {
    secs.iter()
        .find(|(h, _)| h.first() == Some(&name))
        .ok_or(ProbeError::MissingSection(name))
}

/// Parse the probe's answer. `secret_files` are never given content even if a host
/// (or a buggy fake) returned some.
pub fn parse(out: &str, req: &ProbeRequest) -> Result<HostFacts, ProbeError> {
    let secs = sections(out);
    let get = |name: &'static str| section(&secs, name);
    let mut f = HostFacts {
        os: parse_os(&get("os")?.1),
        hostname: get("hostname")?.1.trim().to_string(),
        users: parse_passwd(&get("passwd")?.1)?,
        groups: parse_groups(&get("group")?.1)?,
        packages: parse_packages(&get("packages")?.1),
        units: parse_units_section(&secs)?,
        files: parse_stat(&get("stat")?.1)?,
        cpu: parse_cpu(&get("cpu")?.1),
        gpus: parse_gpus(&get("gpus")?.1),
        link: parse_link(&get("ssh")?.1, &get("addrs")?.1, &get("speeds")?.1),
        ..HostFacts::default()
    };
    let content = get("content")?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(content.1.trim())
        .map_err(|e| malformed("content", e.to_string()))?;
    let paths: Vec<&str> = content.0[1..].to_vec();
    fill_content(&mut f.files, &paths, &blob, &req.secret_files)?;
    for ((owner, _), wanted) in &req.owned_files {
        // The first `owned OWNER` section is root's; anything else is not trusted.
        let body = secs
            .iter()
            .find(|(h, _)| h.first() == Some(&"owned") && h.get(1) == Some(&owner.as_str()))
            .map(|(_, b)| b.trim());
        for (path, state) in body.map(|b| parse_owned(b, wanted)).unwrap_or_default() {
            f.files.insert(path, state);
        }
    }
    for line in get("sha256")?.1.lines() {
        if let Some((hash, path)) = line.split_once("  ") {
            if let Some(file) = f.files.get_mut(path) {
                file.sha256 = Some(hash.to_string());
            }
        }
    }
    f.memory_mib = get("memory")?
        .1
        .split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024);
    let time = &get("time")?.1;
    let mut lines = time.lines();
    f.time.epoch = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed("time", "no epoch"))?;
    f.time.ntp_synchronized = match lines.next().map(str::trim) {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    };
    let lock = crate::lock::parse_section(&get("lock")?.1);
    f.lock_acquired = lock.acquired;
    f.lock_held = lock.held;
    if let Some((_, body)) = secs
        .iter()
        .rev()
        .find(|(h, _)| h.first() == Some(&"timings"))
    {
        f.probe = parse_timings(body);
    }
    if let Some((_, body)) = secs.iter().find(|(h, _)| h.first() == Some(&"owed")) {
        (f.owed, f.owed_unreadable) = crate::journal::parse_section(body);
    }
    f.commands = commands_of(&secs);
    Ok(f)
}

/// The `timings` section: the start, the pid counter before and after, and each
/// section's start mark, into each section's share (a `command-exit` mark's few
/// milliseconds go to its command).
fn parse_timings(body: &str) -> ProbeStats {
    let mut start = None;
    let mut pids = None;
    let mut marks: Vec<(&str, f64)> = Vec::new();
    for line in body.lines() {
        if let Some(v) = line.strip_prefix("start=") {
            start = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("pids=") {
            let p: Vec<u64> = v
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [before, after] = p[..] {
                pids = after.checked_sub(before);
            }
        } else if let Some((label, t)) = line.rsplit_once('=') {
            if let Ok(t) = t.trim().parse::<f64>() {
                marks.push((label, t));
            }
        }
    }
    let mut sections: Vec<(String, f64)> = Vec::new();
    if let (Some(start), Some((_, first))) = (start, marks.first()) {
        sections.push(("lock".into(), (first - start).max(0.0)));
    }
    for pair in marks.windows(2) {
        let ((label, from), (_, to)) = (pair[0], pair[1]);
        let took = (to - from).max(0.0);
        match sections.last_mut() {
            Some(last) if label.starts_with("command-exit") => last.1 += took,
            _ => sections.push((label.to_string(), took)),
        }
    }
    ProbeStats {
        sections,
        pids,
        ..ProbeStats::default()
    }
}

/// One line for the log and `facts --timings`: connect, round trip, the host's pid
/// count and every section that took at least 10 ms, slowest first.
pub fn timings_line(stats: &ProbeStats) -> String {
    let mut slow: Vec<&(String, f64)> =
        stats.sections.iter().filter(|(_, t)| *t >= 0.005).collect();
    slow.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = stats.sections.iter().map(|(_, t)| t).sum();
    let parts: Vec<String> = slow.iter().map(|(l, t)| format!("{l} {t:.2}s")).collect();
    format!(
        "connect {:.2}s, probe {:.2}s (on the host {total:.2}s: {}), processes {}",
        stats.connect_millis as f64 / 1000.0,
        stats.probe_millis as f64 / 1000.0,
        if parts.is_empty() {
            "no section over 10 ms".to_string()
        } else {
            parts.join(", ")
        },
        stats.pids.map_or("unknown".to_string(), |p| p.to_string())
    )
}

/// Hash (and keep, unless secret) the content of `paths`, concatenated in `blob` in
/// that order with the sizes `stat` reported.
fn fill_content(
    files: &mut BTreeMap<String, FileState>,
    paths: &[&str],
    blob: &[u8],
    secret: &BTreeSet<String>,
) -> Result<(), ProbeError> {
    let mut offset = 0usize;
    for path in paths {
        let Some(file) = files.get_mut(*path) else {
            return Err(malformed(
                "content",
                format!("`{path}` was not in the stat section"),
            ));
        };
        let end = offset + file.size as usize;
        let bytes = blob
            .get(offset..end)
            .ok_or_else(|| malformed("content", "shorter than the sizes stat reported"))?;
        offset = end;
        file.sha256 = Some(format!("{:x}", Sha256::digest(bytes)));
        if !secret.contains(*path) {
            file.content = String::from_utf8(bytes.to_vec()).ok();
            file.bytes = Some(bytes.to_vec());
        }
    }
    Ok(())
}

/// What an owner's `stat` and `cat` printed: `stat` lines, `--`, the small regular
/// files' content. Only the paths asked for are taken. An answer that does not add up
/// (her `cat` was stopped, a file changed under it) gives the files without content,
/// so the plan sees them as differing and apply rewrites them, as her.
fn parse_owned(b64: &str, wanted: &BTreeSet<String>) -> BTreeMap<String, FileState> {
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return BTreeMap::new();
    };
    let Some(split) = raw.windows(4).position(|w| w == b"\n--\n") else {
        return BTreeMap::new();
    };
    let stat = String::from_utf8_lossy(&raw[..split + 1]);
    let Ok(mut files) = parse_stat(&stat) else {
        return BTreeMap::new();
    };
    files.retain(|p, _| wanted.contains(p));
    let small: Vec<String> = files
        .iter()
        .filter(|(_, s)| s.kind == FileKind::File && s.size <= CONTENT_LIMIT)
        .map(|(p, _)| p.clone())
        .collect();
    // `cat` read them in the order stat printed them, which is the order asked for.
    let order: Vec<&str> = stat
        .lines()
        .filter_map(|l| l.split('|').next())
        .filter(|p| small.iter().any(|s| s == p))
        .collect();
    if fill_content(&mut files, &order, &raw[split + 4..], &BTreeSet::new()).is_err() {
        for p in &small {
            if let Some(f) = files.get_mut(p) {
                (f.sha256, f.content, f.bytes) = (None, None, None);
            }
        }
    }
    files
}

fn parse_os(body: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in body.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim_matches('"').to_string();
            match k {
                "ID" => os.id = v,
                "VERSION_ID" => os.version_id = v,
                "PRETTY_NAME" => os.pretty_name = v,
                _ => {}
            }
        }
    }
    os
}

fn parse_passwd(body: &str) -> Result<BTreeMap<String, PasswdEntry>, ProbeError> {
    let mut users = BTreeMap::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let p: Vec<&str> = line.split(':').collect();
        if p.len() < 7 {
            return Err(malformed("passwd", line));
        }
        let num = |s: &str| s.parse::<u32>().map_err(|_| malformed("passwd", line));
        users.insert(
            p[0].to_string(),
            PasswdEntry {
                uid: num(p[2])?,
                gid: num(p[3])?,
                gecos: p[4].into(),
                home: p[5].into(),
                shell: p[6].into(),
            },
        );
    }
    Ok(users)
}

fn parse_groups(body: &str) -> Result<BTreeMap<String, GroupEntry>, ProbeError> {
    let mut groups = BTreeMap::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let p: Vec<&str> = line.split(':').collect();
        if p.len() < 4 {
            return Err(malformed("group", line));
        }
        let gid = p[2].parse::<u32>().map_err(|_| malformed("group", line))?;
        let members = p[3]
            .split(',')
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect();
        groups.insert(p[0].to_string(), GroupEntry { gid, members });
    }
    Ok(groups)
}

fn parse_packages(body: &str) -> BTreeMap<String, PackageState> {
    body.lines()
        .filter_map(|line| {
            let mut p = line.split('\t');
            let name = p.next()?.to_string();
            let status = p.next()?;
            let version = p.next().unwrap_or("").to_string();
            Some((
                name,
                PackageState {
                    installed: status.starts_with("ii"),
                    version,
                },
            ))
        })
        .collect()
}

/// The `units` section: `systemctl show`'s answer, or (`units bus`, the facts cache
/// current) `busctl`'s `ListUnitsByNames` in JSON for load and active state, with each
/// unit's enablement from the cache in the `unit-files` section (`UNIT STATE` lines).
fn parse_units_section(secs: &[Section<'_>]) -> Result<BTreeMap<String, UnitState>, ProbeError> {
    let (header, body) = section(secs, "units")?;
    if header.get(1) != Some(&"bus") {
        return Ok(parse_units(body));
    }
    let files = &section(secs, "unit-files")?.1;
    let enabled: BTreeMap<&str, &str> = files
        .lines()
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect();
    parse_bus_units(body, &enabled)
}

/// `busctl --json=short call ... ListUnitsByNames`: `{"type":"a(ssssssouso)","data":
/// [[[name, description, load, active, sub, following, path, job id, job type, job
/// path], ...]]}`.
fn parse_bus_units(
    body: &str,
    enabled: &BTreeMap<&str, &str>,
) -> Result<BTreeMap<String, UnitState>, ProbeError> {
    #[derive(serde::Deserialize)]
    struct Reply {
        data: (Vec<Row>,),
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Row(
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        u32,
        String,
        String,
    );
    if body.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let reply: Reply =
        serde_json::from_str(body.trim()).map_err(|e| malformed("units", e.to_string()))?;
    Ok(reply
        .data
        .0
        .into_iter()
        .map(|Row(name, _, load, active, ..)| {
            let enabled = enabled
                .get(name.as_str())
                .copied()
                .unwrap_or("")
                .to_string();
            (
                name,
                UnitState {
                    load,
                    active,
                    enabled,
                },
            )
        })
        .collect())
}

fn parse_units(body: &str) -> BTreeMap<String, UnitState> {
    let mut units = BTreeMap::new();
    for block in body.split("\n\n") {
        let mut id = None;
        let mut u = UnitState::default();
        for line in block.lines() {
            if let Some((k, v)) = line.split_once('=') {
                match k {
                    "Id" => id = Some(v.to_string()),
                    "LoadState" => u.load = v.into(),
                    "ActiveState" => u.active = v.into(),
                    "UnitFileState" => u.enabled = v.into(),
                    _ => {}
                }
            }
        }
        if let Some(id) = id {
            units.insert(id, u);
        }
    }
    units
}

fn parse_stat(body: &str) -> Result<BTreeMap<String, FileState>, ProbeError> {
    let mut files = BTreeMap::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let p: Vec<&str> = line.split('|').collect();
        if p.len() != 6 {
            return Err(malformed("stat", line));
        }
        let kind = match p[1] {
            t if t.starts_with("regular") => FileKind::File,
            "directory" => FileKind::Directory,
            "symbolic link" => FileKind::Symlink,
            _ => FileKind::Other,
        };
        let mode = u32::from_str_radix(p[2], 8).map_err(|_| malformed("stat", line))?;
        let size = p[5].parse().map_err(|_| malformed("stat", line))?;
        files.insert(
            p[0].to_string(),
            FileState {
                kind,
                mode,
                owner: p[3].into(),
                group: p[4].into(),
                size,
                sha256: None,
                content: None,
                bytes: None,
            },
        );
    }
    Ok(files)
}

fn parse_cpu(body: &str) -> CpuTopology {
    let mut cpus = 0u32;
    let mut sockets = BTreeSet::new();
    let mut cores = BTreeSet::new();
    let mut socket = String::new();
    for line in body.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "processor" => cpus += 1,
            "physical id" => {
                socket = v.clone();
                sockets.insert(v);
            }
            "core id" => {
                cores.insert((socket.clone(), v));
            }
            _ => {}
        }
    }
    let sockets_n = (sockets.len() as u32).max(1);
    let cores_n = (cores.len() as u32).max(1).max(sockets_n);
    let cpus = cpus.max(1);
    CpuTopology {
        cpus,
        sockets: sockets_n,
        cores_per_socket: (cores_n / sockets_n).max(1),
        threads_per_core: (cpus / cores_n).max(1),
    }
}

/// Parse `nvidia-smi --query-gpu=index,name,memory.total,power.limit,power.draw
/// --format=csv,noheader,nounits`; fields may read `[N/A]` or `[Not Supported]`.
pub fn parse_gpus(body: &str) -> Vec<Gpu> {
    let num = |s: &str| s.trim().parse::<f64>().ok();
    body.lines()
        .filter_map(|line| {
            let p: Vec<&str> = line.split(',').map(str::trim).collect();
            if p.len() < 2 {
                return None;
            }
            Some(Gpu {
                index: p[0].parse().ok()?,
                name: p[1].to_string(),
                memory_mib: p.get(2).and_then(|s| s.parse().ok()),
                power_limit_watts: p.get(3).and_then(|s| num(s)),
                power_draw_watts: p.get(4).and_then(|s| num(s)),
            })
        })
        .collect()
}

/// The interface that carries the address the SSH connection arrived on.
fn parse_link(ssh: &str, addrs: &str, speeds: &str) -> Option<Link> {
    let server_ip = ssh.split_whitespace().nth(2)?;
    let interface = addrs.lines().find_map(|line| {
        let p: Vec<&str> = line.split_whitespace().collect();
        let addr = p.get(3)?.split('/').next()?;
        if addr == server_ip {
            p.get(1).map(|i| i.trim_end_matches(':').to_string())
        } else {
            None
        }
    })?;
    let speed_mbps = speeds.lines().find_map(|line| {
        let (name, speed) = line.split_once(' ')?;
        if name != interface {
            return None;
        }
        Some(
            speed
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|s| *s > 0)
                .map(|s| s as u32),
        )
    })?;
    Some(Link {
        interface,
        address: server_ip.to_string(),
        speed_mbps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_values_are_quoted_in_the_script() {
        let owner = crate::lock::Owner::parse(
            "user=o'brien machine=laptop pid=4242 run=3f9a0c1d started=0",
        )
        .unwrap();
        let req = ProbeRequest {
            packages: ["munge".to_string(), "slurmd".to_string()].into(),
            lock: Some(owner),
            ..Default::default()
        };
        let s = script(&req);
        assert!(s.contains("PACKAGES='munge slurmd'\n"), "{s}");
        assert!(s.contains(r#"LOCK='user=o'"'"'brien machine="#), "{s}");
        // The lock is taken before any fact is read.
        let lock = s.find("@@closetctl lock").unwrap();
        let first_fact = s.find("sec os").unwrap();
        assert!(lock < first_fact, "{s}");
    }

    #[test]
    fn cpu_topology_from_cpuinfo() {
        let mut body = String::new();
        for socket in 0..2 {
            for core in 0..8 {
                for _thread in 0..2 {
                    body.push_str(&format!(
                        "processor\t: x\nphysical id\t: {socket}\ncore id\t\t: {core}\n"
                    ));
                }
            }
        }
        let t = parse_cpu(&body);
        assert_eq!(
            t,
            CpuTopology {
                cpus: 32,
                sockets: 2,
                cores_per_socket: 8,
                threads_per_core: 2
            }
        );
    }

    #[test]
    fn gpus_parse_defensively() {
        let gpus = parse_gpus(
            "0, NVIDIA A100-SXM4-80GB, 81920, 400.00, 61.23\n1, NVIDIA GeForce RTX 4090, 24564, [N/A], [Not Supported]\n",
        );
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].power_limit_watts, Some(400.0));
        assert_eq!(gpus[1].power_limit_watts, None);
        assert_eq!(gpus[1].memory_mib, Some(24564));
    }

    #[test]
    fn link_is_the_interface_with_the_ssh_address() {
        let link = parse_link(
            "10.77.0.1 40000 10.77.0.11 22\n",
            "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 10.77.0.11/24 brd 10.77.0.255 scope global eth0\n",
            "eth0 10000\nlo \n",
        )
        .unwrap();
        assert_eq!(
            link,
            Link {
                interface: "eth0".into(),
                address: "10.77.0.11".into(),
                speed_mbps: Some(10000)
            }
        );
        let unknown = parse_link(
            "a 1 10.0.0.2 22",
            "2: eth0    inet 10.0.0.2/24",
            "eth0 -1\n",
        )
        .unwrap();
        assert_eq!(unknown.speed_mbps, None);
    }

    /// The script with its caches in `dir` (a test never writes the host's).
    fn sandboxed(script: &str, dir: &std::path::Path) -> String {
        script
            .replace(
                &format!("GPU_CACHE={GPU_CACHE}\n"),
                &format!("GPU_CACHE={}/gpus\n", dir.display()),
            )
            .replace(
                &format!("FACTS_CACHE={FACTS_CACHE}\n"),
                &format!("FACTS_CACHE={}/facts\n", dir.display()),
            )
    }

    /// Stand-ins for `dpkg-query`, `systemctl` and `busctl` that log their runs, with
    /// dpkg's status file at `DIR/status`: the probe under `sh`, `(facts, runs so far)`.
    fn probe_with_cache(dir: &std::path::Path, req: &ProbeRequest) -> (HostFacts, Vec<String>) {
        let text = sandboxed(&script(req), dir)
            .replace("/var/lib/dpkg/status", &format!("{}/status", dir.display()));
        run_with_stand_ins(dir, &text, req)
    }

    /// `text` under `sh` with `DIR/bin` first on the PATH: the facts, and the runs the
    /// stand-ins logged in `DIR/runs` so far.
    fn run_with_stand_ins(
        dir: &std::path::Path,
        text: &str,
        req: &ProbeRequest,
    ) -> (HostFacts, Vec<String>) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(text)
            .env("PATH", format!("{}/bin:/usr/bin:/bin", dir.display()))
            .output()
            .unwrap();
        let facts = parse(&String::from_utf8_lossy(&out.stdout), req).expect("parses");
        let runs = std::fs::read_to_string(dir.join("runs")).unwrap_or_default();
        (facts, runs.lines().map(String::from).collect())
    }

    fn stand_in(dir: &std::path::Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("bin").join(name);
        let log = dir.join("runs");
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho {name} >> {}\n{body}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn packages_and_enablement_are_asked_again_only_when_their_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("bin")).unwrap();
        std::fs::write(d.join("status"), "Package: alpha\n").unwrap();
        stand_in(d, "dpkg-query", "printf 'alpha\\tii \\t1.0\\n'; exit 1");
        stand_in(
            d,
            "systemctl",
            "printf 'Id=a.service\\nLoadState=loaded\\nActiveState=active\\nUnitFileState=enabled\\n\\nId=b.service\\nLoadState=not-found\\nActiveState=inactive\\nUnitFileState=\\n'",
        );
        // busctl's real answer, with a.service stopped since.
        stand_in(
            d,
            "busctl",
            r#"echo '{"type":"a(ssssssouso)","data":[[["a.service","A \"quoted\" one","loaded","inactive","dead","","/org/freedesktop/systemd1/unit/a_2eservice",0,"","/"],["b.service","b.service","not-found","inactive","dead","","/org/freedesktop/systemd1/unit/b_2eservice",0,"","/"]]]}'"#,
        );
        let req = ProbeRequest {
            packages: ["alpha".to_string(), "beta".to_string()].into(),
            units: ["a.service".to_string(), "b.service".to_string()].into(),
            ..ProbeRequest::default()
        };
        let (first, runs) = probe_with_cache(d, &req);
        assert_eq!(runs, ["dpkg-query", "systemctl"]);
        assert_eq!(first.packages["alpha"].version, "1.0");
        assert!(!first.packages.contains_key("beta"));
        let a = &first.units["a.service"];
        assert_eq!(
            (a.load.as_str(), a.active.as_str(), a.enabled.as_str()),
            ("loaded", "active", "enabled")
        );
        assert_eq!(first.units["b.service"].load, "not-found");

        // Nothing changed: one busctl call, no dpkg-query, no systemctl.
        let (second, runs) = probe_with_cache(d, &req);
        assert_eq!(runs, ["dpkg-query", "systemctl", "busctl"]);
        assert_eq!(second.packages, first.packages);
        let a = &second.units["a.service"];
        assert_eq!(
            (a.load.as_str(), a.active.as_str(), a.enabled.as_str()),
            ("loaded", "inactive", "enabled"),
            "the active state is always asked, enablement comes from the cache"
        );
        assert_eq!(second.units["b.service"], first.units["b.service"]);

        // dpkg wrote its status file: asked again.
        std::fs::write(d.join("status"), "Package: alpha\nPackage: beta\n").unwrap();
        let (_, runs) = probe_with_cache(d, &req);
        assert_eq!(runs[3..], ["dpkg-query", "systemctl"]);
        let (_, runs) = probe_with_cache(d, &req);
        assert_eq!(runs[5..], ["busctl"], "and cached again");

        // Another question (a package more): asked again.
        let more = ProbeRequest {
            packages: ["alpha".to_string(), "gamma".to_string()].into(),
            ..req.clone()
        };
        let (_, runs) = probe_with_cache(d, &more);
        assert_eq!(runs[6..], ["dpkg-query", "systemctl"]);

        // busctl failing or answering something else: systemctl after all.
        stand_in(d, "busctl", "echo 'Failed to connect to bus'; exit 1");
        let (third, runs) = probe_with_cache(d, &more);
        assert_eq!(runs[8..], ["busctl", "dpkg-query", "systemctl"]);
        assert_eq!(third.units["a.service"].active, "active");

        // A cache some other key wrote is not read; no temp file is left.
        let cache = d.join("facts");
        let text = std::fs::read_to_string(&cache).unwrap();
        let (key, rest) = text.split_once('\n').unwrap();
        assert!(
            key.starts_with("key alpha gamma|a.service b.service|"),
            "{key}"
        );
        assert!(rest.contains("u a.service enabled\n"), "{rest}");
        std::fs::write(&cache, format!("key other\n{rest}")).unwrap();
        let (_, runs) = probe_with_cache(d, &more);
        assert_eq!(runs[11..], ["dpkg-query", "systemctl"]);
        let names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.starts_with(".facts.")), "{names:?}");
    }

    #[test]
    fn the_probe_runs_under_sh_and_parses() {
        // The real script against this machine: it must be valid POSIX sh and parse.
        let req = ProbeRequest {
            packages: ["dpkg".to_string(), "no-such-package-xyz".to_string()].into(),
            units: ["no-such-unit-xyz.service".to_string()].into(),
            files: [
                "/etc/hostname".to_string(),
                "/etc".to_string(),
                "/nonexistent".to_string(),
            ]
            .into(),
            commands: [("echo".to_string(), "echo hello".to_string())].into(),
            ..ProbeRequest::everything()
        };
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(sandboxed(&script(&req), dir.path()))
            .output()
            .expect("sh runs");
        let facts = parse(&String::from_utf8_lossy(&out.stdout), &req).expect("parses");
        assert!(facts.users.contains_key("root"));
        assert_eq!(facts.users["root"].uid, 0);
        assert!(facts.packages["dpkg"].installed);
        assert!(!facts.packages.contains_key("no-such-package-xyz"));
        assert_eq!(facts.files["/etc"].kind, FileKind::Directory);
        assert!(facts.files["/etc/hostname"].content.is_some());
        assert!(!facts.files.contains_key("/nonexistent"));
        assert!(facts.cpu.cpus >= 1);
        assert!(facts.memory_mib > 0);
        assert!(facts.time.epoch > 1.0e9);
        assert_eq!(facts.commands["echo"].stdout, "hello\n");
        assert_eq!(facts.commands["echo"].exit_code, 0);
    }

    #[test]
    fn the_follow_up_probe_runs_its_commands_alone_under_real_sh() {
        let commands: BTreeMap<String, String> = [
            ("jobs".to_string(), "printf '41 alice lab\\n'".to_string()),
            ("gone".to_string(), "echo partial; exit 3".to_string()),
        ]
        .into();
        let text = commands_script(&commands);
        assert!(
            text.starts_with(HEADER),
            "the fake and logs know it as a probe"
        );
        assert!(!text.contains("LOCK="), "no lock, no other fact: {text}");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&text)
            .output()
            .expect("sh runs");
        assert!(out.status.success());
        let got = parse_commands(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            got,
            [
                (
                    "gone".to_string(),
                    CommandOutput {
                        exit_code: 3,
                        stdout: "partial\n".into()
                    }
                ),
                (
                    "jobs".to_string(),
                    CommandOutput {
                        exit_code: 0,
                        stdout: "41 alice lab\n".into()
                    }
                ),
            ]
            .into()
        );
    }

    /// The probe script run by `sh` with `nvidia-smi` a stand-in that counts its runs
    /// and the GPU cache in a temp dir: `(facts, runs so far)`.
    fn probe_with_gpus(dir: &std::path::Path, req: &ProbeRequest) -> (HostFacts, usize) {
        let text = script(req).replace(
            &format!("GPU_CACHE={GPU_CACHE}\n"),
            &format!("GPU_CACHE={}/state/gpus\n", dir.display()),
        );
        let (facts, runs) = run_with_stand_ins(dir, &text, req);
        (facts, runs.len())
    }

    #[test]
    fn nvidia_smi_runs_once_while_the_boot_and_the_device_nodes_are_unchanged() {
        let dir = std::env::temp_dir().join(format!("closetctl-gpu-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let smi = dir.join("bin/nvidia-smi");
        std::fs::write(
            &smi,
            format!(
                "#!/bin/sh\necho run >> {}/runs\necho '0, NVIDIA A100-SXM4-80GB, 81920, 400.00, 61.00'\necho '1, NVIDIA A100-SXM4-80GB, 81920, 400.00, 70.00'\n",
                dir.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plan = ProbeRequest {
            hardware: true,
            ..ProbeRequest::default()
        };
        let (first, runs) = probe_with_gpus(&dir, &plan);
        assert_eq!(runs, 1);
        assert_eq!(first.gpus.len(), 2);
        // Cached: the same GPUs, nvidia-smi not started again.
        let (second, runs) = probe_with_gpus(&dir, &plan);
        assert_eq!(runs, 1, "a second plan reads the cache");
        assert_eq!(second.gpus, first.gpus);
        // `check --live` and `facts` always ask (and refresh the cache).
        let live = ProbeRequest {
            gpus_fresh: true,
            ..plan.clone()
        };
        let (fresh, runs) = probe_with_gpus(&dir, &live);
        assert_eq!((runs, fresh.gpus.len()), (2, 2));
        // A cache written under another key (another boot, other device nodes) is not used.
        let cache = dir.join("state/gpus");
        let text = std::fs::read_to_string(&cache).unwrap();
        assert!(text.starts_with("key "), "{text}");
        let (_, rest) = text.split_once('\n').unwrap();
        std::fs::write(&cache, format!("key another-boot|\n{rest}")).unwrap();
        let (after_reboot, runs) = probe_with_gpus(&dir, &plan);
        assert_eq!((runs, after_reboot.gpus.len()), (3, 2));
        let (_, runs) = probe_with_gpus(&dir, &plan);
        assert_eq!(runs, 3, "the cache was rewritten under the current key");
        // A failing nvidia-smi is never cached.
        std::fs::write(
            &smi,
            format!("#!/bin/sh\necho run >> {}/runs\nexit 9\n", dir.display()),
        )
        .unwrap();
        std::fs::remove_file(&cache).unwrap();
        let (failed, runs) = probe_with_gpus(&dir, &plan);
        assert_eq!((runs, failed.gpus.len()), (4, 0));
        assert!(!cache.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_answer_says_where_the_time_went() {
        let req = ProbeRequest {
            commands: [("nap".to_string(), "sleep 0.3".to_string())].into(),
            ..ProbeRequest::default()
        };
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script(&req))
            .output()
            .unwrap();
        let facts = parse(&String::from_utf8_lossy(&out.stdout), &req).expect("parses");
        let sections = &facts.probe.sections;
        let names: Vec<&str> = sections.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"lock"), "{names:?}");
        for expected in [
            "os",
            "passwd",
            "packages",
            "stat",
            "content",
            "gpus",
            "command:nap",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.starts_with("command-exit")),
            "{names:?}"
        );
        let nap = sections.iter().find(|(n, _)| n == "command:nap").unwrap().1;
        assert!((0.25..5.0).contains(&nap), "the nap took {nap}s");
        let slowest = sections.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        assert_eq!(slowest.0, "command:nap");
        // getent, getent and sleep at least.
        assert!(facts.probe.pids.unwrap() >= 3, "{:?}", facts.probe.pids);
        let line = timings_line(&facts.probe);
        assert!(line.contains("command:nap 0."), "{line}");
    }

    #[test]
    fn timings_parse_into_each_sections_share() {
        let stats = parse_timings(
            "start=100.00\npids=500 530\nos=100.10\ngpus=100.20\ncommand:x=101.20\ncommand-exit=101.70\nend=101.75\n",
        );
        let want: Vec<(String, f64)> = vec![
            ("lock".into(), 0.10),
            ("os".into(), 0.10),
            ("gpus".into(), 1.00),
            ("command:x".into(), 0.55),
        ];
        assert_eq!(stats.sections.len(), want.len(), "{:?}", stats.sections);
        for ((n, t), (wn, wt)) in stats.sections.iter().zip(&want) {
            assert_eq!(n, wn);
            assert!((t - wt).abs() < 1e-6, "{n}: {t} vs {wt}");
        }
        assert_eq!(stats.pids, Some(30));
    }

    #[test]
    fn costly_facts_are_gathered_only_when_asked() {
        let req = ProbeRequest::default();
        let text = script(&req);
        assert!(
            text.contains(
                "HARDWARE=\nGPUS_FRESH=\nGPU_CACHE=/var/lib/closetctl/gpus\nFACTS_CACHE=/var/lib/closetctl/facts\nTIME_SYNC=\nLINK=\n"
            ),
            "{text}"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&text)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let facts = parse(&stdout, &req).expect("parses");
        assert_eq!(facts.link, None, "no `ip -o addr` without `link`");
        assert_eq!(
            facts.time.ntp_synchronized, None,
            "no timedatectl without `time_sync`"
        );
        let cpu = stdout.split("@@closetctl cpu\n").nth(1).unwrap();
        assert!(
            cpu.starts_with("@@closetctl memory"),
            "no cpuinfo without `hardware`: {cpu}"
        );
        assert!(
            facts.memory_mib > 0,
            "memory is read with a shell builtin, always"
        );
    }
}
