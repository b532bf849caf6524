//! Accounts beyond `/etc/passwd` on the fake host: `/etc/shadow` as the probe's `awk`
//! prints it (the password field's first character and the expiry day), the commands
//! that lock, expire and unlock an account (`usermod -L -e 1`, `usermod -U`,
//! `chage -E DATE|-1`), a person's processes (`ps -e -o uid= -o pid=`, ended by
//! `loginctl terminate-user` and `pkill -KILL -u`), `scancel`, and moving a file out
//! of a home into the root-only backup as its owner (`cc_owner_stash`), and who owns
//! what at the top of `/home` (the users concern's `home-owners`).

use super::state::{FakeFile, FakeState};
use crate::facts::FileKind;
use closetctl_core::inventory::Expiry;
use closetctl_core::ops::BACKUP_DIR;
use closetctl_core::resource::login::{PROCESSES_COMMAND, SHADOW_COMMAND};

/// One `/etc/shadow` entry, as much as closetctl looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shadow {
    /// The password field starts with `!` (Debian's useradd leaves `!`: no password).
    pub locked: bool,
    /// Expiry day since 1970-01-01; `None`: never.
    pub expires: Option<i64>,
}

impl Default for Shadow {
    fn default() -> Shadow {
        Shadow {
            locked: true,
            expires: None,
        }
    }
}

/// The probe's shadow and process commands (matched exactly), else `None`.
pub(crate) fn answer(s: &FakeState, cmd: &str) -> Option<(i32, String)> {
    if cmd == SHADOW_COMMAND {
        let mut rows: Vec<String> = vec!["root:*:".into()];
        rows.extend(s.shadow.iter().map(|(n, e)| {
            format!(
                "{n}:{}:{}",
                if e.locked { "!" } else { "$" },
                e.expires.map(|d| d.to_string()).unwrap_or_default()
            )
        }));
        return Some((0, rows.join("\n")));
    }
    if let Some(rest) = cmd.strip_prefix("known=") {
        return Some((0, home_owners(s, rest)));
    }
    if cmd == PROCESSES_COMMAND {
        let rows: Vec<String> = std::iter::once((0, 1))
            .chain(s.processes.iter().copied())
            .map(|(uid, pid)| format!("{uid:>5} {pid:>7}"))
            .collect();
        return Some((0, rows.join("\n")));
    }
    None
}

/// The users concern's `home-owners` command (`known='…'; while … /etc/passwd`): when
/// a people-range account (from the `-ge N` in the command up to 60000) is not among the
/// known names, `uid path` for every entry directly under `/home`, as `stat -c '%u %n'`.
fn home_owners(s: &FakeState, rest: &str) -> String {
    let known_word = rest.split(';').next().unwrap_or_default();
    let known: Vec<String> = shlex::split(known_word)
        .and_then(|w| w.first().cloned())
        .map(|k| k.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let id_min: u32 = rest
        .split("-ge ")
        .nth(1)
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .unwrap_or(1000);
    let stranger = s
        .users
        .iter()
        .any(|(n, e)| e.uid >= id_min && e.uid < 60000 && !known.contains(n));
    if !stranger {
        return String::new();
    }
    s.files
        .iter()
        .filter(|(p, _)| {
            p.strip_prefix("/home/")
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
        })
        .map(|(p, f)| {
            let uid = s.users.get(&f.owner).map_or(0, |e| e.uid);
            format!("{uid} {p}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Carry out the account commands closetctl runs through `cc_command`; `Ok(false)`
/// for a command that is none of them.
pub(crate) fn run_command(s: &mut FakeState, cmd: &str) -> Result<bool, String> {
    let first = cmd.split(';').next().unwrap_or_default();
    let first = first.split(" 2>").next().unwrap_or_default();
    let mut w = shlex::split(first).ok_or_else(|| format!("fake sh: cannot parse {cmd}"))?;
    w.retain(|x| !x.starts_with('>'));
    let user = |name: &str| -> Result<(), String> {
        if s.users.contains_key(name) {
            Ok(())
        } else {
            Err(format!("usermod: user '{name}' does not exist"))
        }
    };
    match w.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["usermod", "-L", "-e", "1", name] => {
            user(name)?;
            let e = s.shadow.entry(name.to_string()).or_default();
            (e.locked, e.expires) = (true, Some(1));
        }
        ["usermod", "-U", name] => {
            user(name)?;
            // Unlocking a `!`-only password would leave none: usermod refuses (and
            // closetctl's `|| :` passes over it); the account stays as it was.
        }
        ["chage", "-E", day, name] => {
            user(name)?;
            let expires = match *day {
                "-1" => None,
                d => Some(
                    Expiry::parse(d)
                        .ok_or_else(|| format!("chage: invalid date '{d}'"))?
                        .day,
                ),
            };
            s.shadow.entry(name.to_string()).or_default().expires = expires;
        }
        ["loginctl", "terminate-user", name] => {
            let uid = s.users.get(*name).map(|u| u.uid);
            s.processes.retain(|(u, _)| Some(*u) != uid);
        }
        ["scancel", ids @ ..] => {
            s.slurmdb
                .jobs
                .retain(|(id, _, _)| !ids.contains(&id.to_string().as_str()));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `cc_owner_archive HOME ARCHIVE OWNER GROUP`: `tar` as the owner (her home must be
/// hers to read), the archive root-only; its content on the fake is the list of paths
/// under the home, one per line, as `tar -t` would print them.
pub(crate) fn archive(
    s: &mut FakeState,
    home: &str,
    archive: &str,
    owner: &str,
) -> Result<(), String> {
    match s.files.get(home) {
        Some(d) if d.kind == FileKind::Directory && d.owner == owner => {}
        Some(_) => return Err(format!("tar: {home}: Cannot open: Permission denied")),
        None => {
            return Err(format!(
                "tar: {home}: Cannot stat: No such file or directory"
            ))
        }
    }
    let base = home.rsplit_once('/').map_or("", |(p, _)| p);
    let listing: Vec<String> = s
        .files
        .keys()
        .filter(|p| *p == home || p.starts_with(&format!("{home}/")))
        .map(|p| p[base.len() + 1..].to_string())
        .collect();
    s.files.insert(
        archive.to_string(),
        FakeFile {
            kind: FileKind::File,
            mode: 0o600,
            owner: "root".into(),
            group: "root".into(),
            content: (listing.join("\n") + "\n").into_bytes(),
        },
    );
    Ok(())
}

/// `cc_owner_stash PATH OWNER GROUP`: read as the owner (only in a directory of hers),
/// stored under the backup (the previous copy kept as `.1`), removed as the owner.
pub(crate) fn stash(s: &mut FakeState, path: &str, owner: &str) -> Result<(), String> {
    let parent = path.rsplit_once('/').map_or("/", |(p, _)| p);
    match s.files.get(parent) {
        Some(d) if d.kind == FileKind::Directory && d.owner == owner => {}
        Some(_) => return Err(format!("cat: {path}: Permission denied")),
        None => return Ok(()),
    }
    let Some(f) = s.files.get(path).cloned() else {
        return Ok(());
    };
    let content = match f.kind {
        FileKind::File => f.content,
        _ => Vec::new(),
    };
    let b = format!("{BACKUP_DIR}{path}");
    if let Some(old) = s.files.remove(&b) {
        s.files.insert(format!("{b}.1"), old);
    }
    s.files.insert(
        b,
        FakeFile {
            kind: FileKind::File,
            mode: 0o600,
            owner: "root".into(),
            group: "root".into(),
            content,
        },
    );
    s.files.remove(path);
    Ok(())
}
