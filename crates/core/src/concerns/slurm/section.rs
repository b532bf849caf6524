//! The inventory's `[slurm]` section: as written (with spans), as validated, and the
//! checks between the two (controller, partitions, accounts, fair share, options that
//! reach slurm.conf).

use crate::inventory::raw::S;
use crate::inventory::validate::*;
use crate::inventory::{Host, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Slurm {
    pub controller: String,
    pub cluster_name: String,
    pub fair_share: FairShare,
    pub partitions: Vec<Partition>,
    pub accounts: Vec<Account>,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FairShare {
    pub enabled: bool,
    pub weight_fairshare: u32,
    pub weight_age: u32,
    pub weight_job_size: u32,
    pub decay_half_life: String,
    /// What one allocated CPU counts for in the billing TRES (fair-share usage).
    pub cpu_weight: f64,
    /// What one allocated GPU counts for: by default a GPU hour is charged like
    /// [`DEFAULT_GPU_WEIGHT`] CPU hours.
    pub gpu_weight: f64,
}

/// The default `gpu_weight`: a GPU hour costs as much fair share as 10 CPU hours.
pub const DEFAULT_GPU_WEIGHT: f64 = 10.0;
/// The largest billing weight accepted (Slurm keeps billing in a 64-bit count).
pub const MAX_BILLING_WEIGHT: f64 = 100_000.0;

#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub name: String,
    /// `None` means every compute host.
    pub nodes: Option<Vec<String>>,
    pub default: bool,
    pub max_time: Option<String>,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub name: String,
    pub fairshare: Option<u32>,
    pub users: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlurm {
    pub controller: S<String>,
    pub cluster_name: Option<S<String>>,
    pub fair_share: Option<S<RawFairShare>>,
    #[serde(default, rename = "partition")]
    pub partitions: Vec<S<RawPartition>>,
    #[serde(default, rename = "account")]
    pub accounts: Vec<S<RawAccount>>,
    /// Extra `slurm.conf` lines, `Key = "Value"`; keys carry their span too.
    #[serde(default)]
    pub options: BTreeMap<S<String>, S<String>>,
}

/// `fair_share = true|false` or a table of weights.
///
/// Deserialized by hand rather than `#[serde(untagged)]`: an untagged enum buffers its
/// input and so loses the spans of the values inside the table.
#[derive(Debug)]
pub enum RawFairShare {
    Enabled(bool),
    Settings(RawFairShareSettings),
}

impl<'de> Deserialize<'de> for RawFairShare {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawFairShare;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`true`, `false` or a table of fair-share settings")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawFairShare, E> {
                Ok(RawFairShare::Enabled(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawFairShare, A::Error> {
                RawFairShareSettings::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawFairShare::Settings)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFairShareSettings {
    pub enabled: Option<bool>,
    pub weight_fairshare: Option<u32>,
    pub weight_age: Option<u32>,
    pub weight_job_size: Option<u32>,
    pub decay_half_life: Option<S<String>>,
    pub cpu_weight: Option<S<f64>>,
    pub gpu_weight: Option<S<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartition {
    pub name: S<String>,
    pub nodes: Option<Vec<S<String>>>,
    #[serde(default)]
    pub default: bool,
    pub max_time: Option<S<String>>,
    #[serde(default)]
    pub options: BTreeMap<S<String>, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub name: S<String>,
    pub fairshare: Option<S<u32>>,
    #[serde(default)]
    pub users: Vec<S<String>>,
}

pub(crate) fn check_slurm(
    c: &mut Checker,
    s: &S<RawSlurm>,
    hosts: &[Host],
    users: &[&str],
    cluster: &str,
) -> Slurm {
    let s = s.get_ref();
    match hosts.iter().find(|h| &h.name == s.controller.get_ref()) {
        None => c.at(
            s.controller.span(),
            format!(
                "slurm controller `{}` is not a declared host",
                s.controller.get_ref()
            ),
        ),
        Some(h) if !h.has_role(Role::Controller) => c.at(
            s.controller.span(),
            format!(
                "slurm controller `{}` does not have the `controller` role",
                s.controller.get_ref()
            ),
        ),
        Some(_) => {}
    }
    let cluster_name = s
        .cluster_name
        .as_ref()
        .map_or(cluster.to_string(), |n| c.name("slurm cluster", n));
    let fair_share = match s.fair_share.as_ref().map(|f| f.get_ref()) {
        None | Some(RawFairShare::Enabled(true)) => FairShare::defaults(true),
        Some(RawFairShare::Enabled(false)) => FairShare::defaults(false),
        Some(RawFairShare::Settings(x)) => {
            let d = FairShare::defaults(x.enabled.unwrap_or(true));
            FairShare {
                enabled: d.enabled,
                weight_fairshare: x.weight_fairshare.unwrap_or(d.weight_fairshare),
                weight_age: x.weight_age.unwrap_or(d.weight_age),
                weight_job_size: x.weight_job_size.unwrap_or(d.weight_job_size),
                decay_half_life: match &x.decay_half_life {
                    None => d.decay_half_life,
                    Some(v) => {
                        if !is_slurm_time(v.get_ref()) {
                            c.at(v.span(), format!("slurm fair_share decay_half_life `{}` is not a Slurm time like `7-0` (days-hours), `7-12`, `2-00:00:00` or minutes like `30`", v.get_ref()));
                        }
                        v.get_ref().clone()
                    }
                },
                cpu_weight: billing_weight(c, "cpu_weight", x.cpu_weight.as_ref(), d.cpu_weight),
                gpu_weight: billing_weight(c, "gpu_weight", x.gpu_weight.as_ref(), d.gpu_weight),
            }
        }
    };
    let mut partitions = Vec::new();
    for p in &s.partitions {
        let p = p.get_ref();
        let name = c.name("partition", &p.name);
        let nodes = p.nodes.as_ref().map(|nodes| {
            nodes
                .iter()
                .map(|n| {
                    match hosts.iter().find(|h| &h.name == n.get_ref()) {
                        None => c.at(
                            n.span(),
                            format!(
                                "partition `{name}`: node `{}` is not a declared host",
                                n.get_ref()
                            ),
                        ),
                        Some(h) if !h.has_role(Role::Compute) => c.at(
                            n.span(),
                            format!(
                                "partition `{name}`: host `{}` does not have the `compute` role",
                                n.get_ref()
                            ),
                        ),
                        Some(_) => {}
                    }
                    n.get_ref().clone()
                })
                .collect()
        });
        let options = check_options(c, &format!("partition `{name}`"), &p.options);
        if let Some(t) = &p.max_time {
            let v = t.get_ref();
            if !(is_slurm_time(v)
                || v.eq_ignore_ascii_case("UNLIMITED")
                || v.eq_ignore_ascii_case("INFINITE"))
            {
                c.at(t.span(), format!("partition `{name}`: max_time `{}` is not a Slurm time like `7-00:00:00` or `UNLIMITED`", t.get_ref()));
            }
        }
        partitions.push(Partition {
            name,
            nodes,
            default: p.default,
            max_time: p.max_time.as_ref().map(|t| t.get_ref().clone()),
            options,
        });
    }
    c.unique(
        "partition name",
        s.partitions
            .iter()
            .map(|p| (p.get_ref().name.get_ref().clone(), p.get_ref().name.span())),
    );
    let defaults: Vec<&RawPartition> = s
        .partitions
        .iter()
        .map(|p| p.get_ref())
        .filter(|p| p.default)
        .collect();
    if let Some((first, rest)) = defaults.split_first() {
        let first_at = c.where_(&first.name.span());
        for p in rest {
            c.at(
                p.name.span(),
                format!(
                    "partition `{}` has `default = true`, but partition `{}` at {first_at} is already the default",
                    p.name.get_ref(),
                    first.name.get_ref()
                ),
            );
        }
    }
    let mut accounts = Vec::new();
    for a in &s.accounts {
        let a = a.get_ref();
        let name = c.name("account", &a.name);
        for u in &a.users {
            if !users.contains(&u.get_ref().as_str()) {
                c.at(
                    u.span(),
                    format!(
                        "account `{name}`: user `{}` is not a declared user",
                        u.get_ref()
                    ),
                );
            }
        }
        accounts.push(Account {
            name,
            fairshare: a.fairshare.as_ref().map(|f| *f.get_ref()),
            users: a.users.iter().map(|u| u.get_ref().clone()).collect(),
        });
    }
    c.unique(
        "account name",
        s.accounts
            .iter()
            .map(|a| (a.get_ref().name.get_ref().clone(), a.get_ref().name.span())),
    );
    let options = check_options(c, "slurm", &s.options);
    Slurm {
        controller: s.controller.get_ref().clone(),
        cluster_name,
        fair_share,
        partitions,
        accounts,
        options,
    }
}

/// A billing weight of `[slurm.fair_share]`: a number from 0 to [`MAX_BILLING_WEIGHT`].
fn billing_weight(c: &mut Checker, key: &str, v: Option<&S<f64>>, default: f64) -> f64 {
    let Some(v) = v else { return default };
    let w = *v.get_ref();
    if !(w.is_finite() && (0.0..=MAX_BILLING_WEIGHT).contains(&w)) {
        c.at(
            v.span(),
            format!("slurm fair_share {key} `{w}` is not a billing weight from 0 to {MAX_BILLING_WEIGHT} (what one allocated unit counts for per hour, e.g. `1.0`)"),
        );
        return default;
    }
    w
}

/// `Key = "Value"` pairs written into `slurm.conf` as `Key=Value`: the key a Slurm
/// parameter name, the value of the conservative set (no space, `#`, newline or other
/// control character: nothing that ends the line, starts a comment or a second pair).
fn check_options(
    c: &mut Checker,
    what: &str,
    options: &BTreeMap<S<String>, S<String>>,
) -> BTreeMap<String, String> {
    options
        .iter()
        .map(|(k, v)| {
            let key = k.get_ref();
            if key.is_empty() {
                c.at(k.span(), format!("{what}: an option name is empty; give a Slurm parameter like `MaxNodes`"));
            } else if !is_slurm_key(key) {
                c.at(k.span(), format!("{what}: option name `{key}` does not match `{SLURM_KEY_PATTERN}` (a Slurm parameter like `MaxNodes`)"));
            }
            let value = v.get_ref();
            if value.is_empty() {
                c.at(v.span(), format!("{what}: option `{key}` has an empty value"));
            } else if let Some(bad) = unsafe_option_char(value) {
                c.at(v.span(), format!("{what}: option `{key}` value `{value}` contains `{bad}`; slurm.conf values here may use letters, digits and `{OPTION_PUNCTUATION}`"));
            }
            (key.clone(), value.clone())
        })
        .collect()
}

impl FairShare {
    /// Defaults that favour fair share over age and size, with a one-week half-life.
    pub fn defaults(enabled: bool) -> FairShare {
        FairShare {
            enabled,
            weight_fairshare: 10000,
            weight_age: 1000,
            weight_job_size: 500,
            decay_half_life: "7-0".into(),
            cpu_weight: 1.0,
            gpu_weight: DEFAULT_GPU_WEIGHT,
        }
    }
}

