//! The fake host's answer to the real fact probe ([`closetctl_core::facts::probe`]):
//! every section in the order the probe prints it, files up to [`CONTENT_LIMIT`] in full
//! and larger ones (and secrets) as SHA-256, GPUs through the probe's cache, the probe's
//! extra commands, and the files read as their owner.

use super::lock::lock_section;
use super::state::{FakeFile, FakeState};
use crate::facts::probe::{CONTENT_LIMIT, MARKER};
use crate::facts::FileKind;
use base64::Engine as _;
use closetctl_core::journal::OWED_DIR;
use closetctl_exec::transport::RemoteOutput;
use std::fmt::Write;

/// A variable's whole value from a probe script's `NAME='...'` line.
fn raw_var(script: &str, name: &str) -> String {
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .and_then(shlex::split)
        .and_then(|w| w.into_iter().next())
        .unwrap_or_default()
}

fn var(script: &str, name: &str) -> Vec<String> {
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .and_then(shlex::split)
        .and_then(|w| w.into_iter().next())
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

pub(crate) fn probe(s: &mut FakeState, script: &str) -> RemoteOutput {
    let mut o = String::new();
    // The lock first, as the real probe takes it before reading any fact.
    lock_section(
        s,
        &raw_var(script, "LOCK_RUN"),
        &raw_var(script, "LOCK"),
        &mut o,
    );
    let sec = |o: &mut String, name: &str| {
        let _ = writeln!(o, "{MARKER} {name}");
    };
    sec(&mut o, "owed");
    let prefix = format!("{OWED_DIR}/");
    for (path, f) in &s.files {
        if path.starts_with(&prefix) && f.kind == FileKind::File {
            o.push_str(&String::from_utf8_lossy(&f.content));
        }
    }
    sec(&mut o, "os");
    let _ = writeln!(
        o,
        "ID={}\nVERSION_ID=\"{}\"\nPRETTY_NAME=\"{}\"",
        s.os.id, s.os.version_id, s.os.pretty_name
    );
    sec(&mut o, "hostname");
    let _ = writeln!(o, "{}", s.hostname);
    sec(&mut o, "passwd");
    for (n, u) in &s.users {
        let _ = writeln!(
            o,
            "{n}:x:{}:{}:{}:{}:{}",
            u.uid, u.gid, u.gecos, u.home, u.shell
        );
    }
    sec(&mut o, "group");
    for (n, g) in &s.groups {
        let _ = writeln!(o, "{n}:x:{}:{}", g.gid, g.members.join(","));
    }
    sec(&mut o, "packages");
    for p in var(script, "PACKAGES") {
        if let Some(v) = s.installed.get(&p) {
            let _ = writeln!(o, "{p}\tii \t{v}");
        }
    }
    sec(&mut o, "units");
    let units: Vec<String> = var(script, "UNITS")
        .into_iter()
        .map(|u| match s.units.get(&u) {
            Some(st) => format!(
                "Id={u}\nLoadState=loaded\nActiveState={}\nUnitFileState={}\n",
                st.active, st.enabled
            ),
            None => format!("Id={u}\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n"),
        })
        .collect();
    o.push_str(&units.join("\n"));
    sec(&mut o, "stat");
    let secrets = var(script, "SECRETS");
    let (mut small, mut hashed) = (Vec::new(), Vec::new());
    for p in var(script, "FILES") {
        if let Some(f) = s.files.get(&p) {
            o.push_str(&stat_line(&p, f));
            if f.kind == FileKind::File {
                if secrets.contains(&p) || f.content.len() as u64 > CONTENT_LIMIT {
                    hashed.push(p)
                } else {
                    small.push(p)
                }
            }
        }
    }
    let _ = writeln!(o, "{MARKER} content {}", small.join(" "));
    let blob: Vec<u8> = small
        .iter()
        .flat_map(|p| s.files[p].content.clone())
        .collect();
    let _ = writeln!(
        o,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    sec(&mut o, "sha256");
    for p in hashed {
        use sha2::Digest;
        let _ = writeln!(o, "{:x}  {p}", sha2::Sha256::digest(&s.files[&p].content));
    }
    sec(&mut o, "cpu");
    let cores = s.cpu.sockets * s.cpu.cores_per_socket;
    for cpu in 0..s.cpu.cpus {
        let core = cpu % cores.max(1);
        let _ = writeln!(
            o,
            "processor\t: {cpu}\nphysical id\t: {}\ncore id\t\t: {}",
            core / s.cpu.cores_per_socket.max(1),
            core % s.cpu.cores_per_socket.max(1)
        );
    }
    sec(&mut o, "memory");
    let _ = writeln!(o, "MemTotal:       {} kB", s.memory_mib * 1024);
    sec(&mut o, "gpus");
    o.push_str(&gpus(s, !raw_var(script, "GPUS_FRESH").is_empty()));
    sec(&mut o, "time");
    let _ = writeln!(o, "{:.6}\nyes", s.epoch);
    sec(&mut o, "ssh");
    let _ = writeln!(o, "192.0.2.1 50000 192.0.2.10 22");
    sec(&mut o, "addrs");
    let _ = writeln!(
        o,
        "2: eth0    inet 192.0.2.10/24 brd 192.0.2.255 scope global eth0"
    );
    sec(&mut o, "speeds");
    let _ = writeln!(o, "eth0 10000");
    for (name, command) in probe_commands(script) {
        if let Some((rc, out)) = super::accounts::answer(s, &command)
            .or_else(|| super::slurmdb::answer(s, &command))
            .or_else(|| super::resolver::answer(s, &command))
        {
            let _ = writeln!(
                o,
                "{MARKER} command {name}\n{out}\n{MARKER} command-exit {name} {rc}"
            );
        }
    }
    // `owned OWNER GROUP PATH...`: stat and cat as the owner, answered base64-encoded.
    for line in script.lines().filter(|l| l.starts_with("owned '")) {
        let words = shlex::split(line).unwrap_or_default();
        let (mut text, mut content) = (String::new(), Vec::<u8>::new());
        for p in words.iter().skip(3) {
            if let Some(f) = s.files.get(p) {
                text.push_str(&stat_line(p, f));
                if f.kind == FileKind::File && f.content.len() as u64 <= CONTENT_LIMIT {
                    content.extend(&f.content);
                }
            }
        }
        let mut raw = format!("{text}\n--\n").into_bytes();
        raw.extend(content);
        let _ = writeln!(
            o,
            "{MARKER} owned {}\n{}",
            words[1],
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
    }
    RemoteOutput {
        status: 0,
        stdout: o,
        stderr: String::new(),
    }
}

/// The `gpus` section as the probe's cache gives it: the cached answer while the boot
/// id and the device nodes (one `/dev/nvidiaN` per GPU) are those it was written
/// under, unless `fresh`; otherwise `nvidia-smi` runs and its answer is cached. A
/// host without GPUs has no `nvidia-smi`.
fn gpus(s: &mut FakeState, fresh: bool) -> String {
    if s.gpus.is_empty() {
        return String::new(); // no driver, no `nvidia-smi`
    }
    let nodes: Vec<String> = s
        .gpus
        .iter()
        .map(|g| format!("/dev/nvidia{}", g.index))
        .collect();
    let key = format!("key {} {}|", s.boot_id, nodes.join(" "));
    if let Some((cached_key, answer)) = &s.gpu_cache {
        if !fresh && *cached_key == key {
            return answer.clone();
        }
    }
    s.nvidia_smi_runs += 1;
    let mut answer = String::new();
    for g in &s.gpus {
        let num = |v: Option<f64>| v.map_or("[N/A]".to_string(), |v| format!("{v:.2}"));
        let _ = writeln!(
            answer,
            "{}, {}, {}, {}, {}",
            g.index,
            g.name,
            g.memory_mib.unwrap_or(0),
            num(g.power_limit_watts),
            num(g.power_draw_watts)
        );
    }
    s.gpu_cache = Some((key, answer.clone()));
    answer
}

/// A line as `stat -c '%n|%F|%a|%U|%G|%s'` prints it (links are not followed).
pub(crate) fn stat_line(path: &str, f: &FakeFile) -> String {
    let kind = match f.kind {
        FileKind::File if f.content.is_empty() => "regular empty file",
        FileKind::File => "regular file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symbolic link",
        FileKind::Other => "socket",
    };
    let size = if f.kind == FileKind::File {
        f.content.len()
    } else {
        4096
    };
    format!(
        "{path}|{kind}|{:o}|{}|{}|{size}\n",
        f.mode, f.owner, f.group
    )
}

/// The probe's extra commands: `(name, command)` from its `sec command` lines.
fn probe_commands(script: &str) -> Vec<(String, String)> {
    let mut lines = script.lines();
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        let Some(name) = l.strip_prefix("sec command ") else {
            continue;
        };
        let Some(cmd) = lines
            .next()
            .and_then(|c| c.strip_prefix("( "))
            .and_then(|c| c.split_once(" ) 2>/dev/null"))
        else {
            continue;
        };
        out.push((name.to_string(), cmd.0.to_string()));
    }
    out
}
