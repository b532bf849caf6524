//! The fake host's script interpreter: it carries out the real step scripts by
//! reading their `cc_op N FUNC ARGS...` lines (the functions of the ops prelude,
//! [`closetctl_core::ops`]) and the journal's `cc_owe`/`cc_paid`, with the lock check of
//! `cc_begin`, the backups and restores of `cc_write`/`cc_restore_marked`, the owner's
//! operations as the kernel would allow them, and the injected failures (a kill, a hang,
//! a cut link, a hook, a unit or command that rejects a file).

use super::lock::{lock_file, locked, set_lock_file};
use super::slurmdb::run_command;
use super::state::{FakeFile, FakeState};
use crate::facts::probe::MARKER;
use crate::facts::{FileKind, GroupEntry, PasswdEntry, UnitState};
use base64::Engine as _;
use closetctl_core::journal::OWED_DIR;
use closetctl_core::ops::BACKUP_DIR;
use closetctl_exec::transport::RemoteOutput;
use std::fmt::Write;

/// How a fake step script ended early.
pub(crate) enum Stopped {
    No,
    Killed,
    Hung,
    Cut,
}

pub(crate) fn apply(s: &mut FakeState, script: &str) -> (RemoteOutput, Stopped) {
    let mut out = RemoteOutput::default();
    if let Some(line) = script.lines().find(|l| l.starts_with("cc_begin ")) {
        // The step's lock check: refuse unless the lock is this run's; record the step.
        let words = shlex::split(line).unwrap_or_default();
        let (run, step) = (&words[1], &words[2]);
        if !(locked(s) && lock_file(s, "run").as_deref() == Some(run.as_str())) {
            out.stdout = format!("{MARKER} lost-lock\n");
            out.status = 3;
            return (out, Stopped::No);
        }
        set_lock_file(s, "step", &format!("1 1 1 {step}"));
    }
    for line in script.lines() {
        let Some(func) = line.split_whitespace().next() else {
            continue;
        };
        match func {
            "cc_op" => {
                if s.kill_after_ops == Some(0) {
                    return (out, Stopped::Killed);
                }
                if s.hang_after_ops == Some(0) {
                    s.hang_after_ops = None;
                    return (out, Stopped::Hung);
                }
                if s.cut_after_ops == Some(0) {
                    s.cut_after_ops = None;
                    return (out, Stopped::Cut);
                }
                if let Some((0, hook)) = &s.hook_after_ops {
                    let hook = hook.clone();
                    s.hook_after_ops = None;
                    (hook.0)();
                }
                for k in [
                    &mut s.kill_after_ops,
                    &mut s.hang_after_ops,
                    &mut s.cut_after_ops,
                ]
                .into_iter()
                .flatten()
                {
                    *k -= 1;
                }
                if let Some((k, _)) = &mut s.hook_after_ops {
                    *k -= 1;
                }
            }
            // The journal of owed handlers, as journal::PRELUDE keeps it.
            "cc_owe" => {
                let words = shlex::split(line).unwrap_or_default();
                let path = format!("{OWED_DIR}/{}", words[1]);
                s.files.entry(path).or_insert_with(|| {
                    FakeFile::root(
                        FileKind::File,
                        0o644,
                        format!("{}\n", words[2]).into_bytes(),
                    )
                });
                continue;
            }
            "cc_paid" => {
                let id = line.split_whitespace().nth(1).unwrap_or_default();
                s.files.remove(&format!("{OWED_DIR}/{id}"));
                s.handlers_paid.push(id.to_string());
                continue;
            }
            "cc_end" => {
                if locked(s) {
                    set_lock_file(s, "step", "");
                }
                continue;
            }
            _ => continue,
        }
        let words = shlex::split(line).unwrap_or_default();
        let n = &words[1];
        let result = run_op(s, &words[2], &words[3..]);
        for p in std::mem::take(&mut s.restored) {
            let _ = writeln!(out.stdout, "{MARKER} restored {p}");
        }
        match result {
            Ok(()) => {
                let _ = writeln!(out.stdout, "{MARKER} ok {n}");
            }
            // As cc_op: an owner's operation that fails is passed over.
            Err(e) if words[2].starts_with("cc_owner_") => {
                let _ = writeln!(out.stdout, "{MARKER} skipped {n}");
                out.stderr.push_str(&e);
                out.stderr.push('\n');
            }
            Err(e) => {
                let _ = writeln!(out.stdout, "{MARKER} failed {n}");
                out.stderr = e;
                out.status = 1;
                return (out, Stopped::No);
            }
        }
    }
    (out, Stopped::No)
}

fn run_op(s: &mut FakeState, func: &str, a: &[String]) -> Result<(), String> {
    s.journal.push(format!(
        "{func} {}",
        a.iter()
            .map(|w| if w.len() > 40 { "<data>" } else { w })
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let mode = |m: &str| u32::from_str_radix(m, 8).map_err(|e| e.to_string());
    let owner_exists = |s: &FakeState, u: &str, g: &str| {
        if !s.users.contains_key(u) {
            return Err(format!("chown: invalid user: '{u}:{g}'"));
        }
        if !s.groups.contains_key(g) {
            return Err(format!("chown: invalid group: '{u}:{g}'"));
        }
        Ok(())
    };
    match func {
        "cc_install" => {
            for p in a {
                let effect = s
                    .available
                    .get(p)
                    .cloned()
                    .ok_or_else(|| format!("E: Unable to locate package {p}"))?;
                s.installed.insert(p.clone(), "1.0".into());
                for (u, id) in &effect.system_users {
                    s.add_system_user(u, *id);
                }
                for (path, content) in &effect.files {
                    s.files.insert(
                        path.clone(),
                        FakeFile::root(FileKind::File, 0o400, content.clone()),
                    );
                }
                for u in &effect.units {
                    s.units.insert(
                        u.clone(),
                        UnitState {
                            load: "loaded".into(),
                            active: "active".into(),
                            enabled: "enabled".into(),
                        },
                    );
                    s.started(u);
                }
            }
        }
        "cc_groupadd" => {
            let gid: u32 = a[1].parse().map_err(|_| "bad gid")?;
            if s.groups.contains_key(&a[0]) || s.groups.values().any(|g| g.gid == gid) {
                return Err(format!(
                    "groupadd: group '{}' or GID {gid} already exists",
                    a[0]
                ));
            }
            s.groups.insert(
                a[0].clone(),
                GroupEntry {
                    gid,
                    members: Vec::new(),
                },
            );
        }
        "cc_useradd" | "cc_usermod" => {
            let add = func == "cc_useradd";
            let (name, rest) = (&a[0], if add { &a[2..] } else { &a[1..] });
            let gid: u32 = rest[0].parse().map_err(|_| "bad gid")?;
            if !s.groups.values().any(|g| g.gid == gid) {
                return Err(format!("useradd: group '{gid}' does not exist"));
            }
            let uid = if add {
                let uid: u32 = a[1].parse().map_err(|_| "bad uid")?;
                if s.users.contains_key(name) || s.users.values().any(|u| u.uid == uid) {
                    return Err(format!(
                        "useradd: user '{name}' or UID {uid} already exists"
                    ));
                }
                uid
            } else {
                s.users
                    .get(name)
                    .ok_or(format!("usermod: user '{name}' does not exist"))?
                    .uid
            };
            let groups: Vec<&str> = rest[1].split(',').filter(|g| !g.is_empty()).collect();
            if let Some(g) = groups.iter().find(|g| !s.groups.contains_key(**g)) {
                return Err(format!("useradd: group '{g}' does not exist"));
            }
            for (gname, g) in s.groups.iter_mut() {
                g.members.retain(|m| m != name);
                if groups.contains(&gname.as_str()) {
                    g.members.push(name.clone());
                }
            }
            s.users.insert(
                name.clone(),
                PasswdEntry {
                    uid,
                    gid,
                    gecos: rest[4].clone(),
                    home: rest[3].clone(),
                    shell: rest[2].clone(),
                },
            );
            if add {
                // Debian's useradd: no password (`!`), no expiry.
                s.shadow
                    .insert(name.clone(), super::accounts::Shadow::default());
            }
            if add && rest.get(5).map(String::as_str) == Some("1") {
                let group = s
                    .groups
                    .iter()
                    .find(|(_, g)| g.gid == gid)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default();
                s.files.entry(rest[3].clone()).or_insert(FakeFile {
                    kind: FileKind::Directory,
                    mode: 0o700,
                    owner: name.clone(),
                    group,
                    content: Vec::new(),
                });
            }
        }
        "cc_dir" => {
            owner_exists(s, &a[1], &a[2])?;
            root_may_work_on(s, &a[0], true)?;
            s.files.insert(
                a[0].clone(),
                FakeFile {
                    kind: FileKind::Directory,
                    mode: mode(&a[3])?,
                    owner: a[1].clone(),
                    group: a[2].clone(),
                    content: Vec::new(),
                },
            );
        }
        "cc_write" => {
            owner_exists(s, &a[1], &a[2])?;
            root_may_work_on(s, &a[0], false)?;
            let content = base64::engine::general_purpose::STANDARD
                .decode(&a[4])
                .map_err(|e| e.to_string())?;
            // As cc_backup: keep the previous file, or mark that there was none.
            let (backup, absent) = (
                format!("{BACKUP_DIR}{}", a[0]),
                format!("{BACKUP_DIR}{}.absent", a[0]),
            );
            match s.files.get(&a[0]).cloned() {
                Some(old) => {
                    s.files.insert(backup, old);
                    s.files.remove(&absent);
                }
                None => {
                    s.files.remove(&backup);
                    s.files
                        .insert(absent, FakeFile::root(FileKind::File, 0o600, Vec::new()));
                }
            }
            s.files.insert(
                a[0].clone(),
                FakeFile {
                    kind: FileKind::File,
                    mode: mode(&a[3])?,
                    owner: a[1].clone(),
                    group: a[2].clone(),
                    content,
                },
            );
        }
        "cc_attr" => {
            owner_exists(s, &a[1], &a[2])?;
            root_may_work_on(s, &a[0], true)?;
            let m = mode(&a[3])?;
            let f = s
                .files
                .get_mut(&a[0])
                .ok_or(format!("chown: cannot access '{}'", a[0]))?;
            (f.owner, f.group, f.mode) = (a[1].clone(), a[2].clone(), m);
        }
        "cc_systemctl" => {
            let (verb, unit) = (a[0].as_str(), &a[1]);
            if verb == "start" {
                check_broken(s, unit)?;
            }
            let starts = verb == "start" && !s.active(unit);
            let u = s
                .units
                .get_mut(unit)
                .ok_or(format!("Failed to {verb} {unit}: Unit {unit} not found."))?;
            match verb {
                "enable" => u.enabled = "enabled".into(),
                "disable" => u.enabled = "disabled".into(),
                "start" => u.active = "active".into(),
                "stop" => u.active = "inactive".into(),
                _ => {}
            }
            if starts {
                s.started(unit);
            }
        }
        "cc_restart" => {
            let unit = &a[0];
            if let Err(e) = check_broken(s, unit) {
                for p in &a[1..] {
                    restore(s, p);
                }
                return Err(format!(
                    "{unit} did not come back; its last log lines:\n{e}"
                ));
            }
            let u = s
                .units
                .get_mut(unit)
                .ok_or(format!("Failed to restart {unit}: Unit {unit} not found."))?;
            u.active = "active".into();
            s.started(unit);
        }
        "cc_owner_dir" | "cc_owner_write" | "cc_owner_attr" => {
            owner_exists(s, &a[1], &a[2])?;
            owner_works_on(s, func, a)?;
        }
        "cc_command" => {
            if !super::accounts::run_command(s, &a[0])? {
                run_command(s, &a[0])?
            }
        }
        "cc_owner_archive" => {
            super::accounts::archive(s, &a[0], &a[1], &a[2])?;
        }
        "cc_owner_stash" => {
            owner_exists(s, &a[1], &a[2])?;
            super::accounts::stash(s, &a[0], &a[1])?;
        }
        "cc_activate" => {
            let cmd = &a[0];
            if let Err(e) = check_command(s, cmd).and_then(|()| run_command(s, cmd)) {
                for p in &a[1..] {
                    restore(s, p);
                }
                return Err(format!(
                    "{e}\n`{cmd}` failed; putting the previous files back and running it again"
                ));
            }
        }
        "cc_restore_marked" => restore(s, &a[0]),
        "cc_check" => {
            if let Err(e) = check_command(s, &a[0]) {
                restore(s, &a[1]);
                return Err(format!(
                    "{e}\nthe new {} did not pass the check; putting the previous one back",
                    a[1]
                ));
            }
        }
        other => return Err(format!("fake host: unknown operation {other}")),
    }
    Ok(())
}

/// A person's account (Debian's 1000–59999, and nobody): root never works under a
/// directory such an account can change, as `cc_safe` in the prelude.
fn is_person(uid: u32) -> bool {
    uid >= 1000 && !(60000..65534).contains(&uid)
}

/// As the prelude's `cc_safe` (and `cc_nolink` when `no_link`): every directory above
/// `path` is a real directory no person owns and only its owner can write, and `path`
/// itself is not a link (a write replaces a link rather than following it).
fn root_may_work_on(s: &FakeState, path: &str, no_link: bool) -> Result<(), String> {
    let mut dir = path;
    while let Some(i) = dir.rfind('/') {
        dir = &dir[..i];
        if dir.is_empty() {
            break;
        }
        let Some(f) = s.files.get(dir) else { continue };
        let person = s.users.get(&f.owner).is_some_and(|u| is_person(u.uid));
        if f.kind != FileKind::Directory || person || f.mode & 0o022 != 0 {
            return Err(format!(
                "closetctl: refusing to work as root under {dir}: it is a {:?} owned by {}",
                f.kind, f.owner
            ));
        }
    }
    if no_link
        && s.files
            .get(path)
            .is_some_and(|f| f.kind == FileKind::Symlink)
    {
        return Err(format!("closetctl: refusing {path}: it is a symbolic link"));
    }
    Ok(())
}

/// `cc_owner_dir|write|attr PATH OWNER GROUP MODE [DATA]`, as the owner would: never
/// through a link, and only in a directory she owns (the kernel's check, simplified).
fn owner_works_on(s: &mut FakeState, func: &str, a: &[String]) -> Result<(), String> {
    let (path, owner, group) = (&a[0], &a[1], &a[2]);
    if s.owner_ops_fail {
        return Err(format!("{path}: Disk quota exceeded"));
    }
    let mode = u32::from_str_radix(&a[3], 8).map_err(|e| e.to_string())?;
    let parent = path.rsplit_once('/').map_or("/", |(p, _)| p);
    let is_link = |p: &str| s.files.get(p).is_some_and(|f| f.kind == FileKind::Symlink);
    if func == "cc_owner_write" && is_link(parent) {
        return Err(format!(
            "closetctl: refusing to write {path}: {parent} is a symbolic link"
        ));
    }
    if func != "cc_owner_write" && is_link(path) {
        return Err(format!("closetctl: refusing {path}: it is a symbolic link"));
    }
    let denied = || format!("{path}: Permission denied");
    match s.files.get(parent) {
        Some(d) if d.kind == FileKind::Directory && &d.owner == owner => {}
        _ => return Err(denied()),
    }
    match func {
        "cc_owner_attr" => {
            let f = s.files.get_mut(path.as_str()).ok_or_else(denied)?;
            if &f.owner != owner {
                return Err(denied());
            }
            (f.group, f.mode) = (group.clone(), mode);
        }
        "cc_owner_dir"
            if s.files
                .get(path.as_str())
                .is_some_and(|f| f.kind != FileKind::Directory) =>
        {
            return Err(format!(
                "mkdir: cannot create directory '{path}': File exists"
            ));
        }
        _ => {
            let (kind, content) = if func == "cc_owner_dir" {
                (FileKind::Directory, Vec::new())
            } else {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&a[4])
                    .map_err(|e| e.to_string())?;
                (FileKind::File, data)
            };
            s.files.insert(
                path.clone(),
                FakeFile {
                    kind,
                    mode,
                    owner: owner.clone(),
                    group: group.clone(),
                    content,
                },
            );
        }
    }
    Ok(())
}

/// As `cc_restore_marked`: the previous content from the backup, or no file if there
/// was none; noted for the script's `@@closetctl restored` lines.
fn restore(s: &mut FakeState, p: &str) {
    if let Some(b) = s.files.get(&format!("{BACKUP_DIR}{p}")).cloned() {
        s.files.insert(p.to_string(), b);
    } else if s.files.contains_key(&format!("{BACKUP_DIR}{p}.absent")) {
        s.files.remove(p);
    } else {
        return;
    }
    s.restored.push(p.to_string());
}

/// A command that rejects a file's content (`scontrol reconfigure` and a slurm.conf
/// slurmctld will not take).
fn check_command(s: &FakeState, cmd: &str) -> Result<(), String> {
    if let Some((c, path, needle)) = &s.failing_command {
        let content = s.text(path);
        if cmd.contains(c.as_str()) && content.contains(needle.as_str()) {
            return Err(format!("{c}: error: {path} is not accepted"));
        }
    }
    Ok(())
}

fn check_broken(s: &FakeState, unit: &str) -> Result<(), String> {
    if let Some((u, path, needle)) = &s.broken_unit {
        let content = s.text(path);
        if u == unit && content.contains(needle.as_str()) {
            return Err(format!("{unit}: fatal: error in {path}"));
        }
    }
    Ok(())
}
