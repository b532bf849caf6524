//! `closetctl render`: write every managed file, as it would be on each host, into a
//! directory (`OUT/<host>/<path>`), for review or for configuration management
//! elsewhere. Secrets are written as their fingerprint, never their content.

use super::{CliError, HostArgs, InventoryArgs, Loaded};
use crate::desired::host_steps;
use crate::resource::{fingerprint, Resource};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Output directory.
    #[arg(long, default_value = "rendered")]
    pub out: PathBuf,
}

pub async fn run(args: RenderArgs) -> Result<i32, CliError> {
    let loaded = Loaded::load(&args.inventory.inventory)?;
    let connector = super::ssh_connector(&loaded.inventory)?;
    let (_, facts, _) =
        closetctl_exec::orchestrate::plan_with(connector, &loaded, &args.hosts.hosts, None, None)
            .await?;
    let mut written = 0;
    for host in loaded.select(&args.hosts.hosts)? {
        for step in host_steps(&loaded.inputs(), &host, &facts)? {
            for r in &step.resources {
                let Resource::File(f) = r else { continue };
                let target = args
                    .out
                    .join(&host.name)
                    .join(f.path.trim_start_matches('/'));
                let content = match &f.secret {
                    Some(name) => {
                        format!("secret {name}: {}\n", fingerprint(&f.content)).into_bytes()
                    }
                    None => f.content.clone(),
                };
                let io = |source| CliError::Io {
                    what: format!("cannot write `{}`", target.display()),
                    source,
                };
                std::fs::create_dir_all(target.parent().expect("joined path has a parent"))
                    .map_err(io)?;
                std::fs::write(&target, content).map_err(io)?;
                written += 1;
            }
        }
    }
    for (name, why) in &facts.unreachable {
        eprintln!("warning: host {name} unreachable ({why}); files that depend on its facts may be incomplete");
    }
    println!("wrote {written} files under {}", args.out.display());
    Ok(0)
}
