//! Validation: spanned raw structs in, validated [`Inventory`] or every problem out.
//!
//! All checks run before any host is contacted, and all problems are collected so the
//! admin fixes the file in one pass. Each problem points at a line and column and names
//! the offending value; a collision names both entries.

use super::machines::{check_circuits, check_cooling, check_hosts, check_ssh};
use super::raw::*;
use super::*;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// The pattern every name (host, user, group, circuit, partition, ...) must match.
pub const NAME_PATTERN: &str = "^[a-z_][a-z0-9_-]{0,31}$";

/// The pattern of a Slurm parameter name in `options` (`slurm.conf` keys).
pub const SLURM_KEY_PATTERN: &str = "^[A-Za-z][A-Za-z0-9]*$";

/// Where homes live when `[cluster] home_bases` is not given.
pub const DEFAULT_HOME_BASE: &str = "/home";

/// The characters a value in `slurm.conf` or `/etc/exports` options may use besides
/// letters and digits: no space, `#`, quote or control character can get through.
pub(crate) const OPTION_PUNCTUATION: &str = "=,:._-/+[]@";

/// Top-level directories of the system. No home and no home base may be one of them or
/// lie inside one, whatever `home_bases` says (`/lib*` is matched by prefix).
const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lost+found",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
];

/// `s` fit to quote in a message: control characters (and the invisible ones that
/// reorder or hide text) are shown escaped, `\u{1b}`, `\n`, so a value cannot redraw
/// the admin's terminal or hide what it is. Everything else is kept, `ü` included.
pub fn shown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible_format(c) => {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

/// Zero-width and bidirectional formatting characters (Unicode category Cf in use).
pub(crate) fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// The system directory `path` is or is inside, if any.
pub(crate) fn system_dir(path: &str) -> Option<String> {
    if path == "/" {
        return Some("/".into());
    }
    let top = path.split('/').nth(1).unwrap_or("");
    if top.starts_with("lib") {
        return Some(format!("/{top}"));
    }
    SYSTEM_DIRS
        .iter()
        .find(|d| path == **d || path.strip_prefix(**d).is_some_and(|r| r.starts_with('/')))
        .map(|d| d.to_string())
}

/// Whether `inner` is strictly inside the directory `outer` (both normalized).
pub(crate) fn is_inside(inner: &str, outer: &str) -> bool {
    if outer == "/" {
        return inner.len() > 1 && inner.starts_with('/');
    }
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'))
}

/// Whether `s` matches [`NAME_PATTERN`].
pub fn is_valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

pub(crate) struct Checker<'a> {
    source: &'a str,
    base_dir: PathBuf,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        // Columns count characters, as editors do, not bytes.
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// Record a problem at `span`. Control characters in the message (from a quoted
    /// value) are escaped here, once for every message.
    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.problems.push(Problem {
            line,
            column,
            message: shown(&message.into()),
        });
    }

    pub(crate) fn where_(&self, span: &Range<usize>) -> String {
        let (line, column) = self.position(span.start);
        format!("line {line}, column {column}")
    }

    pub(crate) fn name(&mut self, what: &str, name: &S<String>) -> String {
        let value = name.get_ref();
        if !is_valid_name(value) {
            self.at(
                name.span(),
                format!("{what} name `{value}` does not match `{NAME_PATTERN}`"),
            );
        }
        value.clone()
    }

    /// Record a problem for each value seen twice; the message names both places.
    pub(crate) fn unique(
        &mut self,
        what: &str,
        items: impl IntoIterator<Item = (String, Range<usize>)>,
    ) {
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        for (value, span) in items {
            if let Some(first) = seen.get(&value) {
                let first = self.where_(first);
                self.at(
                    span,
                    format!("duplicate {what} `{value}`: already declared at {first}"),
                );
            } else {
                seen.insert(value, span);
            }
        }
    }

    pub(crate) fn abs_path(&mut self, what: &str, path: &S<String>) -> String {
        let value = path.get_ref();
        if let Err(why) = check_abs_path(value) {
            self.at(path.span(), format!("{what} `{value}` {why}"));
        }
        value.clone()
    }

    /// A local file path: `~` expands to $HOME, relative paths are relative to the inventory.
    pub(crate) fn local_path(&self, value: &str) -> PathBuf {
        if let Some(rest) = value.strip_prefix("~/") {
            if let Some(home) = std::env::var_os("HOME") {
                return PathBuf::from(home).join(rest);
            }
        }
        self.base_dir.join(value)
    }

    pub(crate) fn id(&mut self, what: &str, id: &S<u32>, min: u32) -> u32 {
        let value = *id.get_ref();
        if value < min || value >= 60000 {
            self.at(
                id.span(),
                format!("{what} `{value}` is outside the range for people and labs ({min}..59999); system accounts are not managed here"),
            );
        }
        value
    }
}

/// A remote absolute path closetctl can write into shell scripts, fstab and exports.
pub(crate) fn check_abs_path(value: &str) -> Result<(), &'static str> {
    if !value.starts_with('/') {
        return Err("is not an absolute path");
    }
    if value.split('/').any(|c| c == ".." || c == ".") {
        return Err("contains `.` or `..` components");
    }
    if value.len() > 1 && value.ends_with('/') {
        return Err("ends with `/`");
    }
    if value.contains("//") {
        return Err("contains an empty component (`//`)");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c))
    {
        return Err("contains characters other than letters, digits and `/._-+@`");
    }
    Ok(())
}

/// `a.b.c.d/n` with sane parts.
pub fn is_valid_cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// An IP address, or a DNS name whose last label is not all digits (`10.0.0.300` is a
/// mistyped address, not a name).
pub(crate) fn is_valid_address(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
}

/// The form two addresses are compared in: an IP address in its canonical text
/// (`fd00:0::1` is `fd00::1`), a DNS name in lower case (names are case-insensitive).
pub(crate) fn address_key(s: &str) -> String {
    match s.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => s.to_ascii_lowercase(),
    }
}

/// A Slurm time string, as `slurm.conf` takes it for `PriorityDecayHalfLife` and
/// `MaxTime`: `minutes`, `minutes:seconds`, `hours:minutes:seconds`, `days-hours`,
/// `days-hours:minutes` or `days-hours:minutes:seconds`, every part digits.
pub fn is_slurm_time(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit());
    let rest = match s.split_once('-') {
        Some((days, rest)) if digits(days) => rest,
        Some(_) => return false,
        None => s,
    };
    let parts: Vec<&str> = rest.split(':').collect();
    parts.len() <= 3 && parts.iter().all(|p| digits(p))
}

/// Whether `s` matches [`SLURM_KEY_PATTERN`].
pub(crate) fn is_slurm_key(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A tailnet in the API's path: its name (`example.com`, `alice@gmail.com`), its ID, or
/// `-` for the API key's own tailnet. Nothing that could change the URL (`/?#%`).
pub(crate) fn is_valid_tailnet(s: &str) -> bool {
    s == "-"
        || s.len() <= 253
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
}

/// `api_url` normalized (no trailing `/`), or why it is refused. https only; plain http
/// only to a loopback address literal (`127.0.0.1`, `[::1]`): a test server on this
/// machine, where the key never crosses a network. `localhost` is a name and is not
/// taken for loopback.
pub(crate) fn check_api_url(value: &str) -> Result<String, String> {
    let example = "a URL like `https://api.tailscale.com`";
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "contains spaces or control characters; give {example}"
        ));
    }
    let url = url::Url::parse(value).map_err(|e| format!("is not {example} ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(_)) => false,
        None => return Err(format!("has no host; give {example}")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must start with https:// (the API key would cross the network in clear text; plain http is taken only for a loopback address literal such as `http://127.0.0.1:8080`)".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("may not carry a user or password (the API key comes from `api_key_file` or `api_key_env`)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("may not have a query or fragment; give {example}"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

pub(crate) fn is_valid_tag(s: &str) -> bool {
    s.strip_prefix("tag:")
        .is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// A tailnet login: `name@domain`, one `@`, no space, quote or control character.
fn is_valid_login(s: &str) -> bool {
    s.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && !s.contains(|ch: char| ch.is_whitespace() || ch.is_control() || "'\"\\".contains(ch))
}

pub(crate) fn is_valid_ssh_key(s: &str) -> bool {
    let mut parts = s.split_whitespace();
    let kind = parts.next().unwrap_or("");
    let blob = parts.next().unwrap_or("");
    !s.chars().any(char::is_control)
        && (kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-"))
        && blob.len() >= 16
        && blob
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
}

/// The first character of `s` outside the conservative set for option strings that end
/// up in config files (letters, digits and [`OPTION_PUNCTUATION`]).
pub(crate) fn unsafe_option_char(s: &str) -> Option<char> {
    s.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || OPTION_PUNCTUATION.contains(*c)))
}

/// Whether `s` is a non-empty option string of the conservative set.
pub(crate) fn is_safe_option_text(s: &str) -> bool {
    !s.is_empty() && unsafe_option_char(s).is_none()
}

pub(super) fn parse_and_validate(path: &Path, source: &str) -> Result<Inventory, Vec<Problem>> {
    let base_dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let base_dir = std::path::absolute(&base_dir).unwrap_or(base_dir);
    let mut c = Checker {
        source,
        base_dir,
        problems: Vec::new(),
    };
    let raw: RawInventory = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            c.at(span, e.message().trim().to_string());
            return Err(c.problems);
        }
    };
    let mut inventory = check(&mut c, raw);
    inventory.sections = check_sections(&mut c);
    if c.problems.is_empty() {
        Ok(inventory)
    } else {
        c.problems.sort_by_key(|p| (p.line, p.column));
        Err(c.problems)
    }
}

/// The top-level keys that are neither closetctl's own nor a concern's section are
/// refused; each concern with a section present reads and checks it.
fn check_sections(c: &mut Checker) -> super::sections::Sections {
    let mut sections = super::sections::Sections::default();
    let Ok(doc) = toml_edit::ImDocument::parse(c.source) else {
        return sections; // reported already: the same text failed to parse
    };
    let owners: Vec<(&'static str, &dyn crate::concerns::Concern)> = crate::concerns::REGISTRY
        .iter()
        .filter_map(|k| Some((k.section()?, *k)))
        .collect();
    for (key, _) in doc.as_table().iter() {
        if TOP_LEVEL.contains(&key) {
            continue;
        }
        let span = doc
            .as_table()
            .key(key)
            .and_then(|k| k.span())
            .unwrap_or(0..0);
        let Some((name, concern)) = owners.iter().find(|(n, _)| *n == key) else {
            let expected: Vec<String> = TOP_LEVEL
                .iter()
                .chain(owners.iter().map(|(n, _)| n))
                .map(|k| format!("`{k}`"))
                .collect();
            c.at(
                span,
                format!(
                    "unknown field `{key}`, expected one of {}",
                    expected.join(", ")
                ),
            );
            continue;
        };
        let mut check = super::sections::SectionCheck {
            source: c.source,
            found: Vec::new(),
        };
        let section = concern.read_section(&mut check);
        for (span, message) in check.found {
            c.at(span, message);
        }
        if let Some(section) = section {
            sections.insert(name, section);
        }
    }
    sections
}

fn check(c: &mut Checker, raw: RawInventory) -> Inventory {
    let cluster_span = raw.cluster.span();
    let rc = raw.cluster.into_inner();
    let cluster_name = c.name("cluster", &rc.name);
    let id_min = rc.id_min.as_ref().map_or(1000, |v| *v.get_ref());
    if let Some(v) = &rc.id_min {
        if *v.get_ref() < 500 {
            c.at(
                v.span(),
                format!(
                    "id_min `{}` would reach into system accounts (below 500)",
                    v.get_ref()
                ),
            );
        }
    }
    let secrets_dir = c.local_path(rc.secrets_dir.as_ref().map_or("secrets", |s| s.get_ref()));
    let _ = cluster_span;
    let home_bases = check_home_bases(c, rc.home_bases.as_ref());

    let ssh = check_ssh(c, &raw.ssh);
    let circuits = check_circuits(c, &raw.power);
    let circuit_names: Vec<String> = circuits.iter().map(|x| x.name.clone()).collect();
    let hosts = check_hosts(c, &raw.hosts, &circuit_names);
    let groups = check_groups(c, &raw.groups, id_min);
    let users = check_users(c, &raw.users, &raw.groups, id_min, &home_bases);

    let user_names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let nfs = raw
        .nfs
        .as_ref()
        .map(|n| crate::concerns::nfs::section::check_nfs(c, n, &hosts));
    let slurm = raw.slurm.as_ref().map(|s| {
        crate::concerns::slurm::section::check_slurm(c, s, &hosts, &user_names, &cluster_name)
    });
    let tailscale = raw
        .tailscale
        .as_ref()
        .map(|t| crate::concerns::tailscale::section::check_tailscale(c, t));
    let cooling = raw.cooling.as_ref().map(|k| check_cooling(c, k));
    let timeouts = check_timeouts(c, &raw.timeouts);

    Inventory {
        path: PathBuf::new(),
        cluster: Cluster {
            name: cluster_name,
            id_min,
            secrets_dir,
            home_bases,
        },
        ssh,
        hosts,
        groups,
        users,
        nfs,
        slurm,
        tailscale,
        circuits,
        cooling,
        timeouts,
        sections: Default::default(),
        run: Default::default(),
    }
}

/// `[timeouts]`: every value a positive number of seconds; step names are checked
/// against the playbooks once those are loaded.
fn check_timeouts(c: &mut Checker, t: &RawTimeouts) -> Timeouts {
    let mut out = Timeouts::default();
    let secs = |c: &mut Checker, key: &str, v: &S<u32>| {
        if *v.get_ref() == 0 {
            c.at(
                v.span(),
                format!("timeouts.{key} `0` would give up at once; give seconds, e.g. 600"),
            );
        }
        *v.get_ref()
    };
    for (key, value, slot) in [
        ("probe", &t.probe, &mut out.probe_secs),
        ("step", &t.step, &mut out.step_secs),
        ("install", &t.install, &mut out.install_secs),
        ("grace", &t.grace, &mut out.grace_secs),
    ] {
        if let Some(v) = value {
            *slot = secs(c, key, v);
        }
    }
    for (name, v) in &t.steps {
        let n = secs(c, &format!("steps.{name}"), v);
        out.steps.insert(name.clone(), n);
    }
    out
}

/// `[cluster] home_bases`: absolute, normalized, not `/`, not a system directory, not
/// inside one another, at least one.
fn check_home_bases(c: &mut Checker, raw: Option<&S<Vec<S<String>>>>) -> Vec<String> {
    let Some(raw) = raw else {
        return vec![DEFAULT_HOME_BASE.to_string()];
    };
    if raw.get_ref().is_empty() {
        c.at(
            raw.span(),
            "`home_bases` is empty; list the directories homes live in, like `[\"/home\"]`",
        );
        return vec![DEFAULT_HOME_BASE.to_string()];
    }
    let mut bases = Vec::new();
    for b in raw.get_ref() {
        let value = b.get_ref();
        if let Err(why) = check_abs_path(value) {
            c.at(b.span(), format!("home base `{value}` {why}"));
        } else if let Some(sys) = system_dir(value) {
            let phrase = system_dir_phrase(value, &sys);
            c.at(
                b.span(),
                format!("home base `{value}` {phrase}; homes may not be there"),
            );
        } else if let Some(outer) = raw.get_ref().iter().find(|o| {
            // Against the bases that are valid themselves (`/` is refused already).
            let o = o.get_ref();
            is_inside(value, o) && check_abs_path(o).is_ok() && system_dir(o).is_none()
        }) {
            let at = c.where_(&outer.span());
            c.at(
                b.span(),
                format!(
                    "home base `{value}` is inside home base `{}` at {at}; list only `{}`",
                    outer.get_ref(),
                    outer.get_ref()
                ),
            );
        }
        bases.push(value.clone());
    }
    c.unique(
        "home base",
        raw.get_ref()
            .iter()
            .map(|b| (b.get_ref().clone(), b.span())),
    );
    bases
}

/// How `value` relates to the system directory `sys`: it or inside it.
fn system_dir_phrase(value: &str, sys: &str) -> String {
    if value == sys {
        "is a system directory".to_string()
    } else {
        format!("is inside the system directory `{sys}`")
    }
}

fn check_groups(c: &mut Checker, raw: &[S<RawGroup>], id_min: u32) -> Vec<Group> {
    let groups = raw
        .iter()
        .map(|g| {
            let g = g.get_ref();
            let name = c.name("group", &g.name);
            let gid = c.id(&format!("group `{name}`: gid"), &g.gid, id_min);
            Group { name, gid }
        })
        .collect();
    c.unique(
        "group name",
        raw.iter()
            .map(|g| (g.get_ref().name.get_ref().clone(), g.get_ref().name.span())),
    );
    groups
}

fn check_users(
    c: &mut Checker,
    raw: &[S<RawUser>],
    raw_groups: &[S<RawGroup>],
    id_min: u32,
    home_bases: &[String],
) -> Vec<User> {
    // Declared groups by name: gid and where the name is written.
    let declared: BTreeMap<&str, (u32, Range<usize>)> = raw_groups
        .iter()
        .map(|g| {
            (
                g.get_ref().name.get_ref().as_str(),
                (*g.get_ref().gid.get_ref(), g.get_ref().name.span()),
            )
        })
        .collect();
    let mut users = Vec::new();
    // Each user's valid home with where it is written (the name when it is the default).
    let mut homes: Vec<(String, String, Range<usize>)> = Vec::new();
    // gid -> owner description and span for every group id in use, declared or private.
    // The last field: whether the gid is a user's uid (a private group without `gid`).
    let mut gids: Vec<(u32, String, Range<usize>, bool)> = raw_groups
        .iter()
        .map(|g| {
            (
                *g.get_ref().gid.get_ref(),
                format!("group `{}`", g.get_ref().name.get_ref()),
                g.get_ref().gid.span(),
                false,
            )
        })
        .collect();
    for ru in raw {
        let u = ru.get_ref();
        let name = c.name("user", &u.name);
        let uid = c.id(&format!("user `{name}`: uid"), &u.uid, id_min);
        let (gid, primary_group, private_group) = match &u.gid {
            Some(g) => {
                let gid = c.id(&format!("user `{name}`: gid"), g, id_min);
                match declared.iter().find(|(_, (d, _))| *d == gid) {
                    Some((group, _)) => (gid, group.to_string(), false),
                    None => (gid, name.clone(), true),
                }
            }
            None => (uid, name.clone(), true),
        };
        if private_group {
            if let Some((_, span)) = declared.get(name.as_str()) {
                let other = c.where_(span);
                c.at(u.name.span(), format!("user `{name}` needs a private group `{name}`, but a `[[group]]` of that name is declared at {other}; set the user's `gid` to that group's gid"));
            }
            let span = u.gid.as_ref().map_or(u.uid.span(), |g| g.span());
            // Two users with the same uid and no `gid` also share a private group id;
            // that is one mistake, reported once as a duplicate uid.
            let implicit = u.gid.is_none();
            let duplicate_uid = |from_uid: bool| implicit && from_uid;
            if let Some((_, owner, first, _)) = gids
                .iter()
                .find(|(g, _, _, from_uid)| *g == gid && !duplicate_uid(*from_uid))
            {
                let first = c.where_(first);
                c.at(span.clone(), format!("user `{name}`: private group id `{gid}` is already used by {owner} at {first}"));
            }
            gids.push((
                gid,
                format!("user `{name}`'s private group"),
                span,
                implicit,
            ));
        }
        let mut groups = Vec::new();
        for g in &u.groups {
            if !declared.contains_key(g.get_ref().as_str()) {
                c.at(
                    g.span(),
                    format!(
                        "user `{name}`: group `{}` is not declared in `[[group]]`",
                        g.get_ref()
                    ),
                );
            }
            groups.push(g.get_ref().clone());
        }
        let shell = u.shell.as_ref().map_or("/bin/bash".to_string(), |s| {
            c.abs_path(&format!("user `{name}`: shell"), s)
        });
        let home = match &u.home {
            None => {
                let base = home_bases.first().map_or(DEFAULT_HOME_BASE, |b| b.as_str());
                homes.push((name.clone(), format!("{base}/{name}"), u.name.span()));
                format!("{base}/{name}")
            }
            Some(h) => {
                if check_home(c, &name, h, home_bases) {
                    homes.push((name.clone(), h.get_ref().clone(), h.span()));
                }
                h.get_ref().clone()
            }
        };
        let comment = u.comment.as_ref().map(|s| {
            if s.get_ref().contains([':', '\'', '"']) || s.get_ref().chars().any(char::is_control) {
                c.at(
                    s.span(),
                    format!(
                        "user `{name}`: comment `{}` may not contain `:`, quotes or control characters",
                        s.get_ref()
                    ),
                );
            }
            s.get_ref().clone()
        });
        let mut ssh_keys = Vec::new();
        for k in &u.ssh_keys {
            if !is_valid_ssh_key(k.get_ref()) {
                let shown: String = k.get_ref().chars().take(40).collect();
                c.at(k.span(), format!("user `{name}`: `{shown}` is not an OpenSSH public key (`ssh-ed25519 AAAA... comment`)"));
            }
            ssh_keys.push(k.get_ref().clone());
        }
        let disabled = u.disabled.as_ref().is_some_and(|d| *d.get_ref());
        let disabled_reason = u.disabled_reason.as_ref().map(|r| {
            if !disabled {
                c.at(
                    r.span(),
                    format!("user `{name}`: `disabled_reason` without `disabled = true`"),
                );
            } else if r.get_ref().chars().any(char::is_control) {
                c.at(
                    r.span(),
                    format!(
                        "user `{name}`: disabled_reason `{}` may not contain control characters",
                        shown(r.get_ref())
                    ),
                );
            }
            r.get_ref().clone()
        });
        let expires = u.expires.as_ref().and_then(|e| {
            let parsed = crate::inventory::Expiry::parse(e.get_ref());
            if parsed.is_none() {
                c.at(
                    e.span(),
                    format!(
                        "user `{name}`: expires `{}` is not a date `YYYY-MM-DD` (from 1970-01-01)",
                        shown(e.get_ref())
                    ),
                );
            }
            parsed
        });
        let email = u.email.as_ref().map(|m| {
            if !is_valid_login(m.get_ref()) {
                c.at(
                    m.span(),
                    format!(
                        "user `{name}`: email `{}` is not a login like `alice@example.edu`",
                        shown(m.get_ref())
                    ),
                );
            }
            m.get_ref().clone()
        });
        users.push(User {
            name,
            uid,
            gid,
            primary_group,
            private_group,
            groups,
            shell,
            home,
            comment,
            ssh_keys,
            disabled,
            disabled_reason,
            expires,
            email,
            archive_home: u.archive_home.as_ref().is_some_and(|a| *a.get_ref()),
        });
    }
    // No home is another's or inside another's: its owner could reach into the other.
    for (i, (name, home, span)) in homes.iter().enumerate() {
        // A user declared twice is reported once, as a duplicate name.
        for (other, other_home, other_span) in homes[..i].iter().filter(|(o, ..)| o != name) {
            let relation = if home == other_home {
                "is already the home of"
            } else if is_inside(home, other_home) {
                "is inside the home of"
            } else if is_inside(other_home, home) {
                "contains the home of"
            } else {
                continue;
            };
            let at = c.where_(other_span);
            let message = format!(
                "user `{name}`: home `{home}` {relation} user `{other}` (`{other_home}`) at {at}"
            );
            c.at(span.clone(), message);
            break;
        }
    }
    c.unique(
        "user name",
        raw.iter()
            .map(|u| (u.get_ref().name.get_ref().clone(), u.get_ref().name.span())),
    );
    c.unique(
        "uid",
        raw.iter().map(|u| {
            (
                u.get_ref().uid.get_ref().to_string(),
                u.get_ref().uid.span(),
            )
        }),
    );
    c.unique(
        "group id",
        raw_groups.iter().map(|g| {
            (
                g.get_ref().gid.get_ref().to_string(),
                g.get_ref().gid.span(),
            )
        }),
    );
    users
}

/// A user's explicit `home`: a normalized absolute path strictly under a home base and
/// not a system directory. Whether it is valid (then it is compared with the others').
pub(crate) fn check_home(c: &mut Checker, user: &str, home: &S<String>, bases: &[String]) -> bool {
    let value = home.get_ref();
    let what = format!("user `{user}`: home");
    if let Err(why) = check_abs_path(value) {
        c.at(home.span(), format!("{what} `{value}` {why}"));
        return false;
    }
    let listed = bases
        .iter()
        .map(|b| format!("`{b}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(sys) = system_dir(value) {
        let phrase = system_dir_phrase(value, &sys);
        c.at(
            home.span(),
            format!("{what} `{value}` {phrase}; a home must be under a home base ({listed})"),
        );
        return false;
    }
    if bases.iter().any(|b| b == value) {
        c.at(
            home.span(),
            format!("{what} `{value}` is a home base itself; give a directory inside it, like `{value}/{user}`"),
        );
        return false;
    }
    if !bases.iter().any(|b| is_inside(value, b)) {
        c.at(
            home.span(),
            format!("{what} `{value}` is not under a home base ({listed}); move it there or list its base in `[cluster] home_bases`"),
        );
        return false;
    }
    true
}

pub fn is_octal_mode(s: &str) -> bool {
    (3..=4).contains(&s.len()) && s.chars().all(|c| ('0'..='7').contains(&c))
}
