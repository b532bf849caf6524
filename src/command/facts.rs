//! `closetctl facts`: run the probe on each host and print what it found (`--timings`:
//! and where each probe's time went).

use super::{CliError, HostArgs, InventoryArgs, Loaded};
use crate::facts::probe::ProbeRequest;
use crate::facts::HostFacts;
use clap::Args;

#[derive(Debug, Args)]
pub struct FactsArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Print the facts as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print, on stderr, where each host's probe spent its time: connect, round
    /// trip, each section's share on the host, and the processes it started.
    #[arg(long)]
    pub timings: bool,
}

pub async fn run(args: FactsArgs) -> Result<i32, CliError> {
    let loaded = Loaded::load(&args.inventory.inventory)?;
    let connector = super::ssh_connector(&loaded.inventory)?;
    let mut requests =
        closetctl_exec::orchestrate::probe_requests(&loaded, &args.hosts.hosts, None)?;
    for req in requests.values_mut() {
        req.merge(ProbeRequest::everything());
    }
    let (_, mut facts) =
        crate::engine::gather(connector, &loaded.inventory.hosts, requests, None).await;
    if !args.hosts.hosts.is_empty() {
        facts.hosts.retain(|h, _| args.hosts.hosts.contains(h));
        facts
            .unreachable
            .retain(|h, _| args.hosts.hosts.contains(h));
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&facts).expect("facts serialize")
        );
    } else {
        for (name, f) in &facts.hosts {
            print!("{}", summary(name, f));
        }
        for (name, why) in &facts.unreachable {
            println!("host {name}\n  unreachable: {why}");
        }
    }
    if args.timings {
        for (name, f) in &facts.hosts {
            eprintln!("{name}: {}", crate::facts::probe::timings_line(&f.probe));
        }
    }
    Ok(if facts.unreachable.is_empty() { 0 } else { 1 })
}

fn summary(name: &str, f: &HostFacts) -> String {
    let mut s = format!("host {name} ({})\n", f.hostname);
    s.push_str(&format!("  os        {}\n", f.os.pretty_name));
    s.push_str(&format!(
        "  cpu       {} CPUs = {} sockets x {} cores x {} threads\n",
        f.cpu.cpus, f.cpu.sockets, f.cpu.cores_per_socket, f.cpu.threads_per_core
    ));
    s.push_str(&format!("  memory    {} MiB\n", f.memory_mib));
    if f.gpus.is_empty() {
        s.push_str("  gpus      none\n");
    }
    for g in &f.gpus {
        let w = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0} W"));
        s.push_str(&format!(
            "  gpu {}     {} ({} MiB, limit {}, draw {})\n",
            g.index,
            g.name,
            g.memory_mib.unwrap_or(0),
            w(g.power_limit_watts),
            w(g.power_draw_watts)
        ));
    }
    let ntp = match f.time.ntp_synchronized {
        Some(true) => "synchronized",
        Some(false) => "not synchronized",
        None => "unknown",
    };
    s.push_str(&format!("  clock     {:.0} (NTP {ntp})\n", f.time.epoch));
    match &f.link {
        Some(l) => s.push_str(&format!(
            "  link      {} {} ({})\n",
            l.interface,
            l.address,
            l.speed_mbps
                .map_or("speed unknown".to_string(), |m| format!("{m} Mb/s"))
        )),
        None => s.push_str("  link      unknown\n"),
    }
    s.push_str(&format!(
        "  accounts  {} users, {} groups\n",
        f.users.len(),
        f.groups.len()
    ));
    for (p, st) in &f.packages {
        s.push_str(&format!(
            "  package   {p} {}\n",
            if st.installed {
                st.version.as_str()
            } else {
                "not installed"
            }
        ));
    }
    for (u, st) in &f.units {
        s.push_str(&format!("  unit      {u} {} {}\n", st.active, st.enabled));
    }
    s
}
