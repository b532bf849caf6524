//! `closetctl export skypilot|transformerlab`: the cluster as other tools see it, for
//! the researchers' laptops. Both take the login host (the first host with the `login`
//! role, else the controller) by its MagicDNS name when the probe finds it enrolled in
//! Tailscale, else by its inventory address; the account (`--user NAME`: a researcher
//! from the inventory, for the per-user files an admin hands out; else the inventory's
//! `[ssh] user`); and the ProxyCommand/ProxyJump that the inventory's ssh configuration
//! (`[ssh] config`, else the user's own) gives for that name, as `ssh -G` resolves it:
//! nothing is invented. Every value is checked against its pattern before it reaches a
//! config line.
//!
//! The renders are pure (`skypilot.rs`, `transformerlab.rs`, `node_pool.rs`); this file
//! gathers the live names, runs `ssh -G`, and writes.

mod node_pool;
mod skypilot;
mod transformerlab;

use super::{CliError, InventoryArgs};
use crate::concerns::tailscale::enrollment::{Live, PROBE_STATUS, STATUS_COMMAND};
use crate::engine;
use crate::facts::probe::ProbeRequest;
use crate::facts::ClusterFacts;
use crate::inventory::{Host, Inventory};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use node_pool::{skypilot_pools, K3S_WARNING};

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub command: ExportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// SkyPilot on the Slurm cluster: the `~/.slurm/config` entry for the login host and
    /// the `slurm:` block of `~/.sky/config.yaml` (or, with --ssh-node-pool, an SSH node
    /// pool of the compute hosts).
    Skypilot(SkypilotArgs),
    /// Transformer Lab: the `lab provider add` command for the Slurm cluster (with the
    /// `--gres=gpu:N` sbatch flag) and the shared storage settings.
    Transformerlab(TransformerlabArgs),
}

/// Who the exported files log in as, and with which key.
#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The researcher (an inventory user) the files are for; default: the inventory's
    /// `[ssh] user`.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The private key on the researcher's machine (default with --user: none, ssh's
    /// own defaults; else the inventory's key).
    #[arg(long, value_name = "PATH")]
    pub identity_file: Option<String>,
    /// Do not contact the hosts: use the inventory addresses.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct SkypilotArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub account: AccountArgs,
    /// Write under this directory (a home: `DIR/.slurm/config`, `DIR/.sky/config.yaml`)
    /// instead of stdout; a file that exists with other content is never replaced.
    /// With --ssh-node-pool: the node pool file.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Today's SSH node pool (`sky ssh up`, which installs k3s next to Slurm) instead.
    #[arg(long, conflicts_with_all = ["user", "identity_file"])]
    pub ssh_node_pool: bool,
}

#[derive(Debug, Args)]
pub struct TransformerlabArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub account: AccountArgs,
    /// GPUs per job (`--gres=gpu:N` in the provider's sbatch flags).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub gpus: u32,
    /// The storage path Transformer Lab's host and every node share (default: the
    /// user's NFS home + `/transformerlab`).
    #[arg(long, value_name = "PATH")]
    pub storage: Option<String>,
}

/// A YAML scalar: JSON string quoting is valid YAML.
pub(crate) fn scalar(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A host's MagicDNS name when the probe found it running in the tailnet, else its
/// inventory address.
pub(crate) fn live_name(h: &Host, facts: &ClusterFacts) -> String {
    facts
        .host(&h.name)
        .and_then(|f| Live::from_facts(f).magic_dns_name())
        .unwrap_or_else(|| h.address.clone())
}

/// What `ssh -G NAME` resolved: keyword (lower case) -> values, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SshResolved(pub BTreeMap<String, Vec<String>>);

impl SshResolved {
    /// Parse `ssh -G` output (`keyword value` lines).
    pub fn parse(text: &str) -> SshResolved {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(' ') {
                map.entry(k.to_ascii_lowercase())
                    .or_default()
                    .push(v.to_string());
            }
        }
        SshResolved(map)
    }

    /// The first value of `key`, unless it is `none`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
            .filter(|v| !v.eq_ignore_ascii_case("none"))
    }
}

/// How SkyPilot or Transformer Lab reach the login host as one account.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginAccess {
    /// The cluster's name: the `Host` alias, the SkyPilot cluster, the provider name.
    pub cluster: String,
    /// The login host's inventory name.
    pub login_host: String,
    pub host_name: String,
    pub port: Option<u16>,
    pub user: String,
    pub identity_file: Option<String>,
    pub proxy_command: Option<String>,
    pub proxy_jump: Option<String>,
    /// The user's home, when the inventory has it.
    pub home: Option<String>,
    /// Whether that home is on an NFS export the clients can write (shared with every
    /// node).
    pub home_shared: bool,
}

/// The login host ([`Inventory::login_host`]), or why there is none.
pub fn login_host(inventory: &Inventory) -> Result<&Host, String> {
    inventory
        .login_host()
        .ok_or_else(|| "the inventory has no host with the `login` or `controller` role".into())
}

fn matches(s: &str, ok: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(ok)
}

/// A Unix user name as SkyPilot accepts it (`^[a-z_][a-z0-9_.-]*$`).
pub fn valid_user(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && matches(s, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)
        })
}

/// A host name, IPv4 or IPv6 address.
pub fn valid_host_name(s: &str) -> bool {
    matches(s, |c| c.is_ascii_alphanumeric() || ".:-".contains(c)) && !s.starts_with('-')
}

/// A path that needs no quoting in ssh_config, YAML, JSON, a shell or a `.env` file.
pub fn valid_path(s: &str) -> bool {
    matches(s, |c| c.is_ascii_alphanumeric() || "/._~+-".contains(c)) && !s.starts_with('-')
}

/// An absolute path of the same kind, without `..`.
pub fn valid_absolute_path(s: &str) -> bool {
    valid_path(s) && s.starts_with('/') && !s.split('/').any(|c| c == "..")
}

fn bad(what: &str, value: &str, pattern: &str) -> String {
    format!("{what} `{}` is not {pattern}", value.escape_debug())
}

/// The access for `user` (None: the inventory's `[ssh] user`), from the inventory,
/// the live facts and what `ssh -G` resolved for the login host's name. Every value
/// is validated; the error names the offending one.
pub fn login_access(
    inventory: &Inventory,
    facts: &ClusterFacts,
    user: Option<&str>,
    identity_file: Option<&str>,
    ssh: &SshResolved,
) -> Result<LoginAccess, String> {
    let host = login_host(inventory)?;
    let cluster = inventory.cluster.name.clone();
    if !matches(&cluster, |c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return Err(bad(
            "cluster name",
            &cluster,
            "a plain name ([A-Za-z0-9_.-])",
        ));
    }
    let host_name = live_name(host, facts);
    if !valid_host_name(&host_name) {
        return Err(bad("login host name", &host_name, "a host name or address"));
    }
    let (user, identity) = match user {
        Some(u) => {
            if inventory.user(u).is_none() {
                return Err(format!(
                    "no user `{}` in the inventory (the per-user files are for its researchers)",
                    u.escape_debug()
                ));
            }
            (u.to_string(), identity_file.map(str::to_string))
        }
        None => {
            let u = inventory
                .ssh
                .user
                .clone()
                .or_else(|| ssh.get("user").map(str::to_string))
                .ok_or("no `[ssh] user` in the inventory and none from ssh: pass --user NAME")?;
            let id = identity_file
                .map(str::to_string)
                .or_else(|| {
                    inventory
                        .ssh
                        .identity_file
                        .as_ref()
                        .map(|p| p.to_string_lossy().into_owned())
                })
                .or_else(|| ssh.get("identityfile").map(str::to_string));
            (u, id)
        }
    };
    if !valid_user(&user) {
        return Err(bad("user", &user, "a Unix user name ([a-z_][a-z0-9_.-]*)"));
    }
    if let Some(id) = &identity {
        if !valid_path(id) {
            return Err(bad(
                "identity file",
                id,
                "a plain path ([A-Za-z0-9/._~+-], no spaces or quotes)",
            ));
        }
    }
    let port = match inventory.ssh.port {
        Some(p) => Some(p),
        None => match ssh.get("port") {
            None | Some("22") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| bad("ssh port", p, "a port number"))?,
            ),
        },
    };
    let proxy_command = ssh.get("proxycommand").map(str::to_string);
    if let Some(pc) = &proxy_command {
        if pc.chars().any(|c| c.is_control()) {
            return Err(bad("ProxyCommand", pc, "one line"));
        }
    }
    let proxy_jump = ssh.get("proxyjump").map(str::to_string);
    if let Some(pj) = &proxy_jump {
        if !matches(pj, |c| c.is_ascii_alphanumeric() || "_.-@:,[]%".contains(c)) {
            return Err(bad("ProxyJump", pj, "a list of [user@]host[:port]"));
        }
    }
    let home = inventory.user(&user).map(|u| u.home.clone());
    let home_shared = home
        .as_deref()
        .is_some_and(|h| on_shared_export(inventory, h));
    Ok(LoginAccess {
        cluster,
        login_host: host.name.clone(),
        host_name,
        port,
        user,
        identity_file: identity,
        proxy_command,
        proxy_jump,
        home,
        home_shared,
    })
}

/// Whether `path` is on a writable NFS export (the export itself or below it).
pub fn on_shared_export(inventory: &Inventory, path: &str) -> bool {
    inventory.nfs.as_ref().is_some_and(|nfs| {
        nfs.exports.iter().any(|e| {
            let base = e.path.trim_end_matches('/');
            !e.is_read_only()
                && (path == e.path || path.strip_prefix(base).is_some_and(|r| r.starts_with('/')))
        })
    })
}

pub async fn run(args: ExportArgs) -> Result<i32, CliError> {
    match args.command {
        ExportCommand::Skypilot(a) if a.ssh_node_pool => node_pool_export(a).await,
        ExportCommand::Skypilot(a) => skypilot_export(a).await,
        ExportCommand::Transformerlab(a) => transformerlab_export(a).await,
    }
}

/// The Tailscale status of every host (none when offline or without Tailscale).
async fn live_facts(inventory: &Inventory, offline: bool) -> Result<ClusterFacts, CliError> {
    if offline || inventory.tailscale.is_none() {
        return Ok(ClusterFacts::default());
    }
    let connector = super::ssh_connector(inventory)?;
    let mut req = ProbeRequest::default();
    req.commands
        .insert(PROBE_STATUS.into(), STATUS_COMMAND.into());
    let requests: BTreeMap<String, ProbeRequest> = inventory
        .hosts
        .iter()
        .map(|h| (h.name.clone(), req.clone()))
        .collect();
    let (_, facts) = engine::gather(connector, &inventory.hosts, requests, None).await;
    for (name, why) in &facts.unreachable {
        eprintln!("warning: host {name} unreachable ({why}); using its inventory address");
    }
    Ok(facts)
}

/// `ssh -G NAME` with the inventory's ssh configuration (`-F [ssh] config`), else the
/// user's own. Empty (with a warning) when ssh cannot say.
fn resolve_ssh(inventory: &Inventory, name: &str) -> SshResolved {
    let mut cmd = std::process::Command::new("ssh");
    cmd.arg("-G");
    if let Some(cfg) = &inventory.ssh.config {
        cmd.arg("-F").arg(cfg);
    }
    cmd.arg("--").arg(name);
    match cmd.output() {
        Ok(out) if out.status.success() => {
            let mut r = SshResolved::parse(&String::from_utf8_lossy(&out.stdout));
            // ssh -G lists its default keys too: keep only those that exist.
            if let Some(ids) = r.0.get_mut("identityfile") {
                ids.retain(|p| {
                    let p = match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
                        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
                        _ => PathBuf::from(p),
                    };
                    p.is_file()
                });
            }
            r
        }
        Ok(out) => {
            eprintln!(
                "warning: `ssh -G {name}` failed ({}); no ProxyCommand/ProxyJump taken from the ssh configuration",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            SshResolved::default()
        }
        Err(e) => {
            eprintln!("warning: cannot run `ssh -G` ({e}); no ProxyCommand/ProxyJump taken from the ssh configuration");
            SshResolved::default()
        }
    }
}

async fn access(inventory: &Inventory, account: &AccountArgs) -> Result<LoginAccess, CliError> {
    let facts = live_facts(inventory, account.offline).await?;
    let host = login_host(inventory).map_err(CliError::refused)?;
    let ssh = resolve_ssh(inventory, &live_name(host, &facts));
    let access = login_access(
        inventory,
        &facts,
        account.user.as_deref(),
        account.identity_file.as_deref(),
        &ssh,
    )
    .map_err(CliError::refused)?;
    Ok(access)
}

async fn node_pool_export(args: SkypilotArgs) -> Result<i32, CliError> {
    let inventory = Inventory::load(&args.inventory.inventory)?;
    let facts = live_facts(&inventory, args.account.offline).await?;
    let text = skypilot_pools(&inventory, &facts);
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).map_err(|source| CliError::Io {
                what: format!("cannot write `{}`", path.display()),
                source,
            })?;
            println!(
                "wrote the SkyPilot node pool `{}` to {}",
                inventory.cluster.name,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    eprintln!("warning: {K3S_WARNING}");
    Ok(0)
}

async fn skypilot_export(args: SkypilotArgs) -> Result<i32, CliError> {
    let inventory = Inventory::load(&args.inventory.inventory)?;
    let access = access(&inventory, &args.account).await?;
    let files = [
        (".slurm/config", skypilot::slurm_config(&access)),
        (".sky/config.yaml", skypilot::sky_config(&access)),
    ];
    if !access.home_shared {
        eprintln!("warning: {}", skypilot::unshared_home_note(&access));
    }
    match &args.out {
        Some(dir) => {
            for line in write_files(dir, &files)? {
                println!("{line}");
            }
            println!(
                "then: sky check slurm; sky show-gpus --infra slurm (SkyPilot {} or later)",
                skypilot::MIN_SKYPILOT
            );
        }
        None => {
            for (i, (path, text)) in files.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("# ==> ~/{path} <==");
                print!("{text}");
            }
        }
    }
    Ok(0)
}

async fn transformerlab_export(args: TransformerlabArgs) -> Result<i32, CliError> {
    let inventory = Inventory::load(&args.inventory.inventory)?;
    let access = access(&inventory, &args.account).await?;
    let text = transformerlab::render(&inventory, &access, args.storage.as_deref(), args.gpus)
        .map_err(CliError::refused)?;
    if access.proxy_command.is_some() || access.proxy_jump.is_some() {
        eprintln!("warning: {}", transformerlab::NO_PROXY_NOTE);
    }
    print!("{text}");
    Ok(0)
}

/// Write each `(relative path, text)` under `dir` (directories 0700, files 0600, each
/// through a fresh temporary file renamed into place). Refuses, writing nothing, when a
/// file exists with other content or a path on the way is a symbolic link; a file
/// already holding the text is left alone. Returns one line per file.
fn write_files(dir: &Path, files: &[(&str, String)]) -> Result<Vec<String>, CliError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |what: String| move |source| CliError::Io { what, source };
    let mut conflicts = Vec::new();
    let mut todo = Vec::new();
    let mut lines = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        let parent = path.parent().expect("a relative path under dir");
        for p in [parent, path.as_path()] {
            if p.symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
            {
                conflicts.push(format!("{} is a symbolic link", p.display()));
            }
        }
        match std::fs::read(&path) {
            Ok(old) if old == text.as_bytes() => lines.push(format!("unchanged {}", path.display())),
            Ok(_) => conflicts.push(format!(
                "{} exists with other content (merge it by hand: `closetctl export` without --out prints it)",
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => todo.push((path, text)),
            Err(e) => return Err(io(format!("cannot read `{}`", path.display()))(e)),
        }
    }
    if !conflicts.is_empty() {
        return Err(CliError::Refused(super::Refusal {
            reason: format!("nothing written: {}", conflicts.join("; ")),
            diagnostics: Vec::new(),
            hint: None,
        }));
    }
    for (path, text) in todo {
        let parent = path.parent().expect("a relative path under dir");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io(format!("cannot create `{}`", parent.display())))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tmp = parent.join(format!(
            ".{}.closetctl-{}-{stamp}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            // Never replace a file that appeared meanwhile.
            std::fs::hard_link(&tmp, &path)?;
            std::fs::remove_file(&tmp)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(format!("cannot write `{}`", path.display()))(e));
        }
        lines.push(format!("wrote {}", path.display()));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_g_output_is_read_by_keyword_and_none_is_nothing() {
        let r = SshResolved::parse(
            "user root\nhostname 10.77.0.10\nport 22\nproxycommand ip netns exec closetctl-vm nc %h %p\nproxyjump none\nidentityfile ~/.ssh/id_ed25519\nidentityfile ~/.ssh/id_rsa\n",
        );
        assert_eq!(
            r.get("proxycommand"),
            Some("ip netns exec closetctl-vm nc %h %p")
        );
        assert_eq!(r.get("proxyjump"), None);
        assert_eq!(r.get("identityfile"), Some("~/.ssh/id_ed25519"));
        assert_eq!(r.get("nothing"), None);
    }

    #[test]
    fn patterns_refuse_what_would_break_a_config_line() {
        assert!(valid_user("alice") && valid_user("_svc.x-1"));
        for u in ["Alice", "1x", "a b", "a\nb", "", "-x"] {
            assert!(!valid_user(u), "{u:?}");
        }
        assert!(valid_host_name("head.tailnet-closet.ts.net") && valid_host_name("fd7a::1"));
        for h in ["-oProxyCommand=x", "a b", "a\nb", ""] {
            assert!(!valid_host_name(h), "{h:?}");
        }
        assert!(valid_path("~/.ssh/id_ed25519") && valid_absolute_path("/home/alice/tl"));
        for p in ["a b", "a\"b", "$(x)", "-i", "a\nb"] {
            assert!(!valid_path(p), "{p:?}");
        }
        assert!(!valid_absolute_path("home/alice") && !valid_absolute_path("/home/../etc"));
    }

    #[test]
    fn files_are_written_once_and_never_over_other_content() {
        let dir = std::env::temp_dir().join(format!("closetctl-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let files = [("a/one", "1\n".to_string()), ("b/two", "2\n".to_string())];
        let lines = write_files(&dir, &files).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.starts_with("wrote ")), "{lines:?}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("a/one"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(dir.join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        // Again: unchanged.
        let lines = write_files(&dir, &files).unwrap();
        assert!(
            lines.iter().all(|l| l.starts_with("unchanged ")),
            "{lines:?}"
        );
        // The user's own edit of one file: nothing written, the edit kept, both named.
        std::fs::write(dir.join("b/two"), "mine\n").unwrap();
        std::fs::remove_file(dir.join("a/one")).unwrap();
        let err = write_files(&dir, &files).unwrap_err().to_string();
        assert!(err.contains("b/two exists with other content"), "{err}");
        assert!(!dir.join("a/one").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("b/two")).unwrap(),
            "mine\n"
        );
        // A link where a directory goes is refused.
        std::fs::remove_dir_all(dir.join("a")).unwrap();
        std::os::unix::fs::symlink("/tmp", dir.join("a")).unwrap();
        let err = write_files(&dir, &files[..1]).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
