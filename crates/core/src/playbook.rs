//! Playbooks: the ordered steps that make a host what its roles say, as data.
//!
//! A playbook is a TOML file of `[[step]]`s. Each step targets roles and lists the
//! packages, directories, files (from a template or a secret), services and handlers
//! it needs; a step may also name a built-in `module` (such as `users`) whose resources
//! Rust computes from the inventory. closetctl ships its playbooks and templates inside
//! the binary; a lab adds its own by putting `*.toml` and `*.j2` files in a
//! `playbooks/` and `templates/` directory beside the inventory.

use crate::concerns;
use crate::inventory::{Inventory, Role};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PlaybookError {
    #[error("cannot read playbook `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("playbook `{path}`: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaybookFile {
    #[serde(rename = "step")]
    steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// Roles this step applies to; `all` means every host.
    pub roles: Vec<String>,
    /// Roles excluded even when another role matches (e.g. NFS clients).
    #[serde(default)]
    pub except_roles: Vec<String>,
    /// Only when this condition holds (decided by a concern: `nfs`, `slurm`,
    /// `tailscale`, `fair_share`, ...).
    pub when: Option<String>,
    pub module: Option<String>,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default, rename = "directory")]
    pub directories: Vec<DirectorySpec>,
    #[serde(default, rename = "file")]
    pub files: Vec<FileSpec>,
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceSpec>,
    #[serde(default, rename = "handler")]
    pub handlers: Vec<HandlerSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySpec {
    pub path: String,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    #[serde(default = "dir_mode")]
    pub mode: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub path: String,
    /// A minijinja template name (`slurm.conf.j2`).
    pub template: Option<String>,
    /// A secret name from the secrets directory (`munge.key`). With `template`, the
    /// template sees it as `secret` and the rendered file is secret content.
    pub secret: Option<String>,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    #[serde(default = "file_mode")]
    pub mode: String,
    /// How a change to this file disturbs running jobs: `none`, `reconfigure`, `restart`.
    pub disruption: Option<String>,
    /// A command that checks the file after it is written and before anything activates
    /// it, `%s` standing for its path (`SLURM_CONF=%s scontrol show hostnames localhost`);
    /// if it fails, the previous file is put back and the step stops there.
    pub validate: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "yes")]
    pub running: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSpec {
    pub name: String,
    /// Paths (managed by this or an earlier step) whose change fires the handler.
    pub watch: Vec<String>,
    /// Fire only when the most disruptive watched change has this label.
    pub disruption: Option<String>,
    pub restart: Option<String>,
    pub reload: Option<String>,
    pub command: Option<String>,
}

fn root() -> String {
    "root".into()
}
fn dir_mode() -> String {
    "0755".into()
}
fn file_mode() -> String {
    "0644".into()
}
fn yes() -> bool {
    true
}

/// All steps in run order, and the templates they may use.
#[derive(Debug, Clone, Default)]
pub struct Playbooks {
    pub steps: Vec<Step>,
    pub templates: BTreeMap<String, String>,
}

impl Playbooks {
    /// The built-in playbooks, plus a lab's own from `dir/playbooks` and `dir/templates`.
    pub fn load(extra_dir: Option<&Path>) -> Result<Playbooks, PlaybookError> {
        let mut files: BTreeMap<String, String> = concerns::playbooks()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        let mut templates: BTreeMap<String, String> = concerns::templates()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        if let Some(dir) = extra_dir {
            read_dir_into(&dir.join("playbooks"), "toml", &mut files)?;
            read_dir_into(&dir.join("templates"), "j2", &mut templates)?;
        }
        let mut steps = Vec::new();
        for (name, text) in &files {
            let file: PlaybookFile = toml::from_str(text).map_err(|e| PlaybookError::Invalid {
                path: name.clone(),
                message: e.to_string(),
            })?;
            for step in file.steps {
                if steps.iter().any(|s: &Step| s.name == step.name) {
                    return Err(PlaybookError::Invalid {
                        path: name.clone(),
                        message: format!("step `{}`: another playbook already has a step of that name; step names must be unique", step.name),
                    });
                }
                validate_step(name, &step, &steps, &templates)?;
                steps.push(step);
            }
        }
        Ok(Playbooks { steps, templates })
    }
}

fn read_dir_into(
    dir: &Path,
    ext: &str,
    into: &mut BTreeMap<String, String>,
) -> Result<(), PlaybookError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) == Some(ext) {
            let text = std::fs::read_to_string(&path).map_err(|source| PlaybookError::Read {
                path: path.clone(),
                source,
            })?;
            into.insert(entry.file_name().to_string_lossy().into_owned(), text);
        }
    }
    Ok(())
}

fn validate_step(
    file: &str,
    step: &Step,
    earlier: &[Step],
    templates: &BTreeMap<String, String>,
) -> Result<(), PlaybookError> {
    let bad = |message: String| PlaybookError::Invalid {
        path: file.to_string(),
        message: format!("step `{}`: {message}", step.name),
    };
    for r in step.roles.iter().chain(&step.except_roles) {
        if r != "all" && Role::parse(r).is_none() {
            return Err(bad(format!("unknown role `{r}`")));
        }
    }
    if let Some(w) = &step.when {
        if !concerns::is_condition(w) {
            return Err(bad(format!("unknown `when` value `{w}`")));
        }
    }
    if let Some(m) = &step.module {
        if !concerns::is_module(m) {
            return Err(bad(format!("unknown module `{m}`")));
        }
    }
    for p in &step.packages {
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        {
            return Err(bad(format!("`{p}` is not a Debian package name")));
        }
    }
    let paths = step
        .directories
        .iter()
        .map(|d| &d.path)
        .chain(step.files.iter().map(|f| &f.path));
    for p in paths {
        if !p.starts_with('/')
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c))
        {
            return Err(bad(format!("path `{p}` must be absolute and plain")));
        }
    }
    for (mode, what) in step
        .directories
        .iter()
        .map(|d| (&d.mode, &d.path))
        .chain(step.files.iter().map(|f| (&f.mode, &f.path)))
    {
        if !crate::inventory::validate_mode(mode) {
            return Err(bad(format!(
                "`{what}`: mode `{mode}` is not octal like `0644`"
            )));
        }
    }
    for f in &step.files {
        if let Some(d) = &f.disruption {
            if concerns::disruption(d).is_none() {
                return Err(bad(format!("`{}`: unknown disruption `{d}`", f.path)));
            }
        }
        if let Some(v) = &f.validate {
            if !v.contains("%s") {
                return Err(bad(format!(
                    "`{}`: validate `{v}` must name the file as `%s`",
                    f.path
                )));
            }
        }
        match (&f.template, &f.secret) {
            (Some(t), _) if !templates.contains_key(t) => {
                return Err(bad(format!("`{}`: no template `{t}`", f.path)))
            }
            // Both: a template that uses the secret as `secret`; the result is secret too.
            (Some(_), _) | (None, Some(_)) => {}
            (None, None) => {
                return Err(bad(format!(
                    "`{}`: give `template` or `secret` (or both)",
                    f.path
                )))
            }
        }
    }
    for s in &step.services {
        if !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-".contains(c))
        {
            return Err(bad(format!("`{}` is not a unit name", s.name)));
        }
    }
    for h in &step.handlers {
        let actions = [&h.restart, &h.reload, &h.command]
            .iter()
            .filter(|a| a.is_some())
            .count();
        if actions != 1 {
            return Err(bad(format!(
                "handler `{}` needs exactly one of restart, reload, command",
                h.name
            )));
        }
        for w in &h.watch {
            // A module may manage any path, so steps with one are trusted to.
            let managed = |s: &Step| {
                s.module.is_some()
                    || s.files.iter().any(|f| &f.path == w)
                    || s.directories.iter().any(|d| &d.path == w)
            };
            if !managed(step) && !earlier.iter().any(managed) {
                return Err(bad(format!(
                    "handler `{}` watches `{w}`, which no step up to this one manages",
                    h.name
                )));
            }
        }
        if let Some(d) = &h.disruption {
            if concerns::disruption(d).is_none() {
                return Err(bad(format!(
                    "handler `{}`: unknown disruption `{d}`",
                    h.name
                )));
            }
        }
    }
    Ok(())
}

impl Step {
    /// Whether this step runs on `host` of `inventory`.
    pub fn applies_to(&self, inventory: &Inventory, host: &crate::inventory::Host) -> bool {
        let matches = |roles: &[String]| {
            roles
                .iter()
                .any(|r| r == "all" || Role::parse(r).is_some_and(|role| host.has_role(role)))
        };
        let when = self
            .when
            .as_deref()
            .is_none_or(|condition| concerns::condition(condition, inventory));
        when && matches(&self.roles) && !matches(&self.except_roles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_playbooks_load() {
        let p = Playbooks::load(None).unwrap();
        assert_eq!(p.steps[0].name, "users");
    }

    #[test]
    fn a_lab_playbook_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("playbooks")).unwrap();
        std::fs::write(
            dir.path().join("playbooks/50-lab.toml"),
            "[[step]]\nname = \"lab\"\nroles = [\"wizard\"]\n",
        )
        .unwrap();
        let err = Playbooks::load(Some(dir.path())).unwrap_err().to_string();
        assert_eq!(
            err,
            "playbook `50-lab.toml`: step `lab`: unknown role `wizard`"
        );
    }
}
