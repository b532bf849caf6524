//! The machines in the inventory: `[ssh]`, each `[[host]]` (address, roles, GPUs,
//! circuit, Tailscale tags), `[[power.circuit]]` and `[cooling]`, checked with their
//! line and column.

use super::raw::*;
use super::validate::*;
use super::*;
use crate::gpu;
use std::collections::HashMap;
use std::ops::Range;

pub(super) fn check_ssh(c: &mut Checker, s: &RawSsh) -> Ssh {
    let user = s.user.as_ref().map(|u| c.name("ssh user", u));
    let config = s.config.as_ref().map(|p| c.local_path(p.get_ref()));
    if let (Some(cfg), Some(raw)) = (&config, &s.config) {
        if !cfg.is_file() {
            c.at(
                raw.span(),
                format!("ssh config `{}` does not exist", cfg.display()),
            );
        }
    }
    let timeout = s.connect_timeout.as_ref().map_or(10, |t| *t.get_ref());
    if let Some(t) = &s.connect_timeout {
        if *t.get_ref() == 0 {
            c.at(
                t.span(),
                "connect_timeout `0` would wait forever; give seconds, e.g. 10",
            );
        }
    }
    Ssh {
        user,
        port: s.port.as_ref().map(|p| *p.get_ref()),
        config,
        identity_file: s.identity_file.as_ref().map(|p| c.local_path(p.get_ref())),
        become_root: s.become_root.unwrap_or(false),
        connect_timeout_secs: timeout,
        strict_host_key_checking: s.strict_host_key_checking.unwrap_or(true),
    }
}

pub(super) fn check_circuits(c: &mut Checker, power: &RawPower) -> Vec<Circuit> {
    let mut out = Vec::new();
    for rc in &power.circuits {
        let r = rc.get_ref();
        let name = c.name("circuit", &r.name);
        let volts = *r.volts.get_ref();
        let amps = *r.amps.get_ref();
        if !(90..=600).contains(&volts) {
            c.at(
                r.volts.span(),
                format!("circuit `{name}`: volts `{volts}` is not a mains voltage (90..600)"),
            );
        }
        if amps == 0 || amps > 400 {
            c.at(
                r.amps.span(),
                format!("circuit `{name}`: amps `{amps}` must be between 1 and 400"),
            );
        }
        if let Some(p) = &r.phase {
            if ![1, 3].contains(p.get_ref()) {
                c.at(
                    p.span(),
                    format!("circuit `{name}`: phase `{}` must be 1 or 3", p.get_ref()),
                );
            }
        }
        out.push(Circuit {
            name,
            volts,
            amps,
            phase: r.phase.as_ref().map(|p| *p.get_ref()),
        });
    }
    c.unique(
        "circuit name",
        power
            .circuits
            .iter()
            .map(|x| (x.get_ref().name.get_ref().clone(), x.get_ref().name.span())),
    );
    out
}

pub(super) fn check_hosts(c: &mut Checker, raw: &[S<RawHost>], circuits: &[String]) -> Vec<Host> {
    if raw.is_empty() {
        c.at(
            0..0,
            "no `[[host]]` is declared; an inventory needs at least one host",
        );
    }
    let mut hosts = Vec::new();
    for rh in raw {
        let h = rh.get_ref();
        let name = c.name("host", &h.name);
        let address = h.address.get_ref().clone();
        if !is_valid_address(&address) {
            c.at(
                h.address.span(),
                format!(
                    "host `{name}`: address `{address}` is neither an IP address nor a DNS name"
                ),
            );
        }
        let mut roles = Vec::new();
        for r in &h.roles {
            match Role::parse(r.get_ref()) {
                Some(role) if roles.contains(&role) => c.at(
                    r.span(),
                    format!("host `{name}`: role `{}` is listed twice", r.get_ref()),
                ),
                Some(role) => roles.push(role),
                None => {
                    let known: Vec<&str> = Role::ALL.iter().map(|(n, _)| *n).collect();
                    c.at(
                        r.span(),
                        format!(
                            "host `{name}`: unknown role `{}` (known: {})",
                            r.get_ref(),
                            known.join(", ")
                        ),
                    )
                }
            }
        }
        let gpus = h.gpus.as_ref().map(|g| {
            let g = g.get_ref();
            let model = g.model.get_ref().clone();
            if gpu::model_by_key(&model).is_none() {
                c.at(
                    g.model.span(),
                    format!(
                        "host `{name}`: unknown GPU model `{model}` (known: {})",
                        gpu::model_keys().join(", ")
                    ),
                );
            }
            let count = *g.count.get_ref();
            if count == 0 || count > 16 {
                c.at(
                    g.count.span(),
                    format!("host `{name}`: GPU count `{count}` must be between 1 and 16"),
                );
            }
            GpuSpec { model, count }
        });
        if let Some(cc) = &h.circuit {
            if !circuits.contains(cc.get_ref()) {
                c.at(
                    cc.span(),
                    format!(
                        "host `{name}`: circuit `{}` is not declared in `[[power.circuit]]`",
                        cc.get_ref()
                    ),
                );
            }
        }
        let tailscale = h
            .tailscale
            .as_ref()
            .map_or_else(HostTailscale::default, |t| {
                let t = t.get_ref();
                let hostname = t.hostname.as_ref().map(|n| c.name("tailscale hostname", n));
                let tags = t.tags.as_ref().map(|tags| check_tags(c, tags));
                let mut routes = Vec::new();
                for r in &t.advertise_routes {
                    if !is_valid_cidr(r.get_ref()) {
                        c.at(
                            r.span(),
                            format!(
                                "host `{name}`: route `{}` is not a CIDR like 192.168.1.0/24",
                                r.get_ref()
                            ),
                        );
                    }
                    routes.push(r.get_ref().clone());
                }
                HostTailscale {
                    hostname,
                    tags,
                    advertise_routes: routes,
                }
            });
        hosts.push(Host {
            name,
            address,
            roles,
            gpus,
            circuit: h.circuit.as_ref().map(|x| x.get_ref().clone()),
            base_watts: h.base_watts.as_ref().map(|x| *x.get_ref()),
            psu_watts: h.psu_watts.as_ref().map(|x| *x.get_ref()),
            tailscale,
        });
    }
    c.unique(
        "host name",
        raw.iter()
            .map(|h| (h.get_ref().name.get_ref().clone(), h.get_ref().name.span())),
    );
    // Compared as the network sees them: `Head.Lab` is `head.lab`, `fd00:0::1` is `fd00::1`.
    let mut seen: HashMap<String, (String, Range<usize>)> = HashMap::new();
    for h in raw {
        let address = &h.get_ref().address;
        let key = address_key(address.get_ref());
        match seen.get(&key) {
            Some((first, span)) => {
                let at = c.where_(span);
                let same = if first == address.get_ref() {
                    String::new()
                } else {
                    format!(" as `{first}`")
                };
                let message = format!(
                    "duplicate host address `{}`: already declared{same} at {at}",
                    address.get_ref()
                );
                c.at(address.span(), message);
            }
            None => {
                seen.insert(key, (address.get_ref().clone(), address.span()));
            }
        }
    }
    hosts
}

pub(crate) fn check_tags(c: &mut Checker, tags: &[S<String>]) -> Vec<String> {
    tags.iter()
        .map(|t| {
            if !is_valid_tag(t.get_ref()) {
                c.at(
                    t.span(),
                    format!(
                        "tailscale tag `{}` must look like `tag:closet`",
                        t.get_ref()
                    ),
                );
            }
            t.get_ref().clone()
        })
        .collect()
}

pub(super) fn check_cooling(c: &mut Checker, k: &S<RawCooling>) -> Cooling {
    let span = k.span();
    let k = k.get_ref();
    let btu = match (&k.capacity_btu_per_hour, &k.capacity_tons) {
        (Some(b), None) => *b.get_ref(),
        (None, Some(t)) => *t.get_ref() * 12000.0,
        (Some(b), Some(_)) => {
            c.at(b.span(), format!("give the cooling capacity once: `capacity_btu_per_hour = {}` or `capacity_tons = {}`, not both", b.get_ref(), k.capacity_tons.as_ref().map_or(0.0, |t| *t.get_ref())));
            *b.get_ref()
        }
        (None, None) => {
            c.at(
                span,
                "`[cooling]` needs `capacity_btu_per_hour` or `capacity_tons`",
            );
            0.0
        }
    };
    if let Some(v) = k
        .capacity_btu_per_hour
        .as_ref()
        .or(k.capacity_tons.as_ref())
    {
        if v.get_ref().partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            c.at(
                v.span(),
                format!("cooling capacity `{}` must be positive", v.get_ref()),
            );
        }
    }
    Cooling {
        capacity_btu_per_hour: btu,
    }
}
