//! The inventory's `[tailscale]` section: as written (with spans), as validated, and the
//! checks between the two (keys from files or variables, tags, the API URL, groups).

use crate::inventory::raw::S;
use crate::inventory::machines::check_tags;
use crate::inventory::validate::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct Tailscale {
    pub auth_key_file: Option<PathBuf>,
    pub auth_key_env: Option<String>,
    pub tags: Vec<String>,
    pub ssh: bool,
    pub accept_routes: bool,
    pub api_key_file: Option<PathBuf>,
    pub api_key_env: Option<String>,
    pub api_url: String,
    pub tailnet: String,
    pub admin_group: Option<String>,
    pub researcher_group: Option<String>,
    pub groups: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTailscale {
    pub auth_key_file: Option<S<String>>,
    pub auth_key_env: Option<S<String>>,
    #[serde(default)]
    pub tags: Vec<S<String>>,
    #[serde(default)]
    pub ssh: bool,
    #[serde(default)]
    pub accept_routes: bool,
    pub api_key_file: Option<S<String>>,
    pub api_key_env: Option<S<String>>,
    pub api_url: Option<S<String>>,
    pub tailnet: Option<S<String>>,
    pub admin_group: Option<S<String>>,
    pub researcher_group: Option<S<String>>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<S<String>>>,
}

pub(crate) fn check_tailscale(c: &mut Checker, t: &S<RawTailscale>) -> Tailscale {
    let t = t.get_ref();
    let tags = check_tags(c, &t.tags);
    for (k, v) in [
        ("auth_key_env", &t.auth_key_env),
        ("api_key_env", &t.api_key_env),
    ] {
        if let Some(v) = v {
            if !v
                .get_ref()
                .chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
            {
                c.at(
                    v.span(),
                    format!(
                        "tailscale {k} `{}` is not an environment variable name",
                        v.get_ref()
                    ),
                );
            }
        }
    }
    let mut groups = BTreeMap::new();
    for (name, members) in &t.groups {
        if !is_valid_name(name) {
            let span = members.first().map_or(0..0, |m| m.span());
            c.at(
                span,
                format!("tailscale group `{name}` does not match `{NAME_PATTERN}`"),
            );
        }
        for m in members {
            if !m.get_ref().contains('@')
                || m.get_ref()
                    .contains(|ch: char| ch.is_whitespace() || ch.is_control())
            {
                c.at(m.span(), format!("tailscale group `{name}`: member `{}` is not a login like `alice@example.edu`", m.get_ref()));
            }
        }
        groups.insert(
            name.clone(),
            members.iter().map(|m| m.get_ref().clone()).collect(),
        );
    }
    for (k, v) in [
        ("admin_group", &t.admin_group),
        ("researcher_group", &t.researcher_group),
    ] {
        if let Some(v) = v {
            if !t.groups.contains_key(v.get_ref()) {
                c.at(
                    v.span(),
                    format!(
                        "tailscale {k} `{}` is not declared in `[tailscale.groups]`",
                        v.get_ref()
                    ),
                );
            }
        }
    }
    let api_url =
        t.api_url.as_ref().map_or(
            "https://api.tailscale.com".to_string(),
            |u| match check_api_url(u.get_ref()) {
                Ok(url) => url,
                Err(why) => {
                    c.at(
                        u.span(),
                        format!("tailscale api_url `{}` {why}", u.get_ref()),
                    );
                    u.get_ref().trim_end_matches('/').to_string()
                }
            },
        );
    if let Some(tn) = &t.tailnet {
        if !is_valid_tailnet(tn.get_ref()) {
            c.at(tn.span(), format!("tailscale tailnet `{}` is not a tailnet name like `example.com` (or `-`, the API key's own tailnet)", tn.get_ref()));
        }
    }
    Tailscale {
        auth_key_file: t.auth_key_file.as_ref().map(|p| c.local_path(p.get_ref())),
        auth_key_env: t.auth_key_env.as_ref().map(|v| v.get_ref().clone()),
        tags,
        ssh: t.ssh,
        accept_routes: t.accept_routes,
        api_key_file: t.api_key_file.as_ref().map(|p| c.local_path(p.get_ref())),
        api_key_env: t.api_key_env.as_ref().map(|v| v.get_ref().clone()),
        api_url,
        tailnet: t
            .tailnet
            .as_ref()
            .map_or("-".into(), |v| v.get_ref().clone()),
        admin_group: t.admin_group.as_ref().map(|v| v.get_ref().clone()),
        researcher_group: t.researcher_group.as_ref().map(|v| v.get_ref().clone()),
        groups,
    }
}

