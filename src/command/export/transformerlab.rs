//! Transformer Lab on the Slurm cluster: the `lab provider add` command (provider type
//! `slurm`, SSH mode, the `--gres=gpu:N` sbatch flag) and the shared-storage settings
//! of the Transformer Lab server, rendered from a checked [`LoginAccess`].
//!
//! From Transformer Lab's own source (transformerlab-app: `cli/COMMANDS.md` `provider
//! add`, `api/transformerlab/compute_providers/slurm.py`, `.../schemas/
//! compute_providers.py`, `api/api.py`, `.env.example`): the slurm provider's config is
//! `mode`, `ssh_host`, `ssh_user`, `ssh_key_path`, `ssh_port`, plus `extra_config`,
//! whose `user_sbatch_flags` lines become `#SBATCH` lines of every job (the provider
//! never turns a task's GPU request into GRES itself). It connects with paramiko
//! directly, so an ssh ProxyCommand/ProxyJump does not apply to it. Its storage is
//! `TFL_STORAGE_PROVIDER=localfs` with `TFL_STORAGE_URI` a directory, which here must be
//! one the server's host and every node share.

use super::{on_shared_export, valid_absolute_path, LoginAccess};
use crate::inventory::Inventory;

/// Said when the inventory's ssh configuration needs a proxy for the login host.
pub const NO_PROXY_NOTE: &str = "Transformer Lab connects with paramiko, which ignores the ssh ProxyCommand/ProxyJump the login host needs here: run its server where the login host is reachable directly (on the cluster network, or over Tailscale)";

/// A shell word in single quotes.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The storage settings and the `lab provider add` command. `storage` (default: the
/// user's home + `/transformerlab`) must be an absolute plain path on a writable NFS
/// export; `gpus` at least 1.
pub fn render(
    inventory: &Inventory,
    a: &LoginAccess,
    storage: Option<&str>,
    gpus: u32,
) -> Result<String, String> {
    if gpus == 0 {
        return Err("--gpus must be at least 1 (a job without GPUs needs no GRES flag)".into());
    }
    let storage = match (storage, &a.home) {
        (Some(s), _) => s.to_string(),
        (None, Some(home)) => format!("{}/transformerlab", home.trim_end_matches('/')),
        (None, None) => {
            return Err(format!(
                "`{}` is not an inventory user, so there is no home to keep Transformer Lab's storage in: pass --user NAME or --storage PATH",
                a.user
            ))
        }
    };
    if !valid_absolute_path(&storage) {
        return Err(format!(
            "storage path `{}` is not an absolute plain path ([A-Za-z0-9/._~+-], no `..`)",
            storage.escape_debug()
        ));
    }
    if !on_shared_export(inventory, &storage) {
        return Err(format!(
            "storage path `{storage}` is not on a writable NFS export of the inventory: Transformer Lab's host and every node must share it"
        ));
    }
    let mut config = serde_json::Map::new();
    config.insert("mode".into(), "ssh".into());
    config.insert("ssh_host".into(), a.host_name.clone().into());
    config.insert("ssh_user".into(), a.user.clone().into());
    if let Some(id) = &a.identity_file {
        config.insert("ssh_key_path".into(), id.clone().into());
    }
    config.insert("ssh_port".into(), a.port.unwrap_or(22).into());
    config.insert(
        "extra_config".into(),
        serde_json::json!({ "user_sbatch_flags": format!("--gres=gpu:{gpus}") }),
    );
    let config = serde_json::Value::Object(config).to_string();
    Ok(format!(
        "# Transformer Lab on the Slurm cluster `{c}` (closetctl export transformerlab), as {u}.\n\
         #\n\
         # 1. The Transformer Lab server's storage (its .env, or its environment): a\n\
         #    directory on the NFS export, so the server's host and every node share it.\n\
         #    Run the server on a cluster host that mounts it (the login host {lh}).\n\
         TFL_STORAGE_PROVIDER=localfs\n\
         TFL_STORAGE_URI={storage}\n\
         #\n\
         # 2. The compute provider. Every job gets `#SBATCH --gres=gpu:{gpus}` (Transformer\n\
         #    Lab does not turn a task's GPU request into GRES); a run's own\n\
         #    custom_sbatch_flags replace it, e.g. --gres=gpu:a100-80gb:2.\n\
         lab provider add --no-interactive --name {name} --type slurm --config {config}\n",
        c = a.cluster,
        u = a.user,
        lh = a.login_host,
        name = sh_quote(&a.cluster),
        config = sh_quote(&config),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{login_access, SshResolved};
    use super::*;
    use crate::facts::ClusterFacts;

    fn inventory() -> Inventory {
        let text = super::super::skypilot::tests_inventory();
        Inventory::parse(std::path::Path::new("/tmp/inventory.toml"), &text).unwrap()
    }

    fn alice(ssh: &str, key: Option<&str>) -> LoginAccess {
        login_access(
            &inventory(),
            &ClusterFacts::default(),
            Some("alice"),
            key,
            &SshResolved::parse(ssh),
        )
        .unwrap()
    }

    #[test]
    fn provider_command_and_storage_for_a_researcher() {
        let a = alice("", Some("~/.ssh/id_ed25519"));
        let text = render(&inventory(), &a, None, 2).unwrap();
        insta::assert_snapshot!(text);
        // The --config word is one shell word holding valid JSON with the GRES flag.
        let line = text
            .lines()
            .find(|l| l.starts_with("lab provider add"))
            .unwrap();
        let json = line
            .split("--config '")
            .nth(1)
            .unwrap()
            .trim_end_matches('\'');
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["extra_config"]["user_sbatch_flags"], "--gres=gpu:2");
        assert_eq!(v["ssh_host"], "10.0.0.1");
        assert_eq!(v["ssh_port"], 22);
    }

    #[test]
    fn storage_must_be_shared_and_plain() {
        let inv = inventory();
        let a = alice("", None);
        let err = render(&inv, &a, Some("/data/tl"), 1).unwrap_err();
        assert!(err.contains("not on a writable NFS export"), "{err}");
        let err = render(&inv, &a, Some("/tmp/tl"), 1).unwrap_err();
        assert!(err.contains("not on a writable NFS export"), "{err}");
        let err = render(&inv, &a, Some("/home/alice/t l"), 1).unwrap_err();
        assert!(
            err.starts_with("storage path `/home/alice/t l` is not"),
            "{err}"
        );
        let err = render(&inv, &a, Some("/home/../etc"), 1).unwrap_err();
        assert!(err.contains("no `..`"), "{err}");
        assert!(render(&inv, &a, None, 0).is_err());
        let ok = render(&inv, &a, Some("/home/shared/tl"), 1).unwrap();
        assert!(ok.contains("TFL_STORAGE_URI=/home/shared/tl\n"), "{ok}");
        assert!(!ok.contains("ssh_key_path"), "{ok}");
    }
}
