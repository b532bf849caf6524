//! The inventory's `[nfs]` section: as written (with spans), as validated, and the
//! checks between the two (paths, the network, export options, the server a host).

use crate::inventory::raw::S;
use crate::inventory::validate::*;
use crate::inventory::{Host, Role};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct Nfs {
    pub server: String,
    pub network: Option<String>,
    pub exports: Vec<Export>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub path: String,
    pub read_only: bool,
    pub options: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
}

impl Export {
    /// Whether `options` holds the export option `opt` (a whole comma-separated word).
    pub fn has_option(&self, opt: &str) -> bool {
        self.options
            .as_deref()
            .is_some_and(|o| o.split(',').any(|w| w == opt))
    }

    /// Read-only for the server and the clients: `read_only = true`, or `ro` among
    /// the export's own options.
    pub fn is_read_only(&self) -> bool {
        self.read_only || self.has_option("ro")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNfs {
    pub server: S<String>,
    pub network: Option<S<String>>,
    #[serde(default)]
    pub exports: Vec<S<RawExport>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    pub path: S<String>,
    #[serde(default)]
    pub read_only: bool,
    pub options: Option<S<String>>,
    pub owner: Option<S<String>>,
    pub group: Option<S<String>>,
    pub mode: Option<S<String>>,
}

pub(crate) fn check_nfs(c: &mut Checker, n: &S<RawNfs>, hosts: &[Host]) -> Nfs {
    let n = n.get_ref();
    match hosts.iter().find(|h| &h.name == n.server.get_ref()) {
        None => c.at(
            n.server.span(),
            format!("nfs server `{}` is not a declared host", n.server.get_ref()),
        ),
        Some(h) if !h.has_role(Role::NfsServer) => c.at(
            n.server.span(),
            format!(
                "nfs server `{}` does not have the `nfs-server` role",
                n.server.get_ref()
            ),
        ),
        Some(_) => {}
    }
    if let Some(net) = &n.network {
        if !is_valid_cidr(net.get_ref()) {
            c.at(
                net.span(),
                format!(
                    "nfs network `{}` is not a CIDR like 10.0.0.0/24",
                    net.get_ref()
                ),
            );
        }
    }
    let exports_raw: Vec<&S<RawExport>> = n.exports.iter().collect();
    let mut exports = Vec::new();
    for e in &exports_raw {
        let e = e.get_ref();
        let path = c.abs_path("nfs export path", &e.path);
        if path == "/" {
            c.at(
                e.path.span(),
                "nfs export path `/` would share the whole root file system",
            );
        }
        if let Some(o) = &e.options {
            if !is_safe_option_text(o.get_ref()) {
                c.at(o.span(), format!("nfs export `{path}`: options `{}` contain characters not allowed in /etc/exports", o.get_ref()));
            } else if e.read_only && o.get_ref().split(',').any(|w| w == "rw") {
                // `read_only` wins over nothing silently: the two contradict, say so.
                c.at(o.span(), format!("nfs export `{path}`: options `{}` contain `rw`, but the export has `read_only = true`; drop `rw` (closetctl adds `ro`)", o.get_ref()));
            }
        }
        for (what, v) in [("owner", &e.owner), ("group", &e.group)] {
            if let Some(v) = v {
                c.name(&format!("nfs export `{path}` {what}"), v);
            }
        }
        if let Some(m) = &e.mode {
            if !is_octal_mode(m.get_ref()) {
                c.at(
                    m.span(),
                    format!(
                        "nfs export `{path}`: mode `{}` is not an octal mode like `0755`",
                        m.get_ref()
                    ),
                );
            }
        }
        exports.push(Export {
            path,
            read_only: e.read_only,
            options: e.options.as_ref().map(|o| o.get_ref().clone()),
            owner: e.owner.as_ref().map(|o| o.get_ref().clone()),
            group: e.group.as_ref().map(|o| o.get_ref().clone()),
            mode: e.mode.as_ref().map(|o| o.get_ref().clone()),
        });
    }
    c.unique(
        "nfs export path",
        exports_raw
            .iter()
            .map(|e| (e.get_ref().path.get_ref().clone(), e.get_ref().path.span())),
    );
    if exports.is_empty() {
        exports.push(Export {
            path: "/home".into(),
            read_only: false,
            options: None,
            owner: None,
            group: None,
            mode: None,
        });
    }
    Nfs {
        server: n.server.get_ref().clone(),
        network: n.network.as_ref().map(|x| x.get_ref().clone()),
        exports,
    }
}

