//! `closetctl deluser NAME [--reason TEXT] [--yes]`: someone leaves. The inventory is
//! edited in place like `adduser` does (comments and layout kept, under the same lock,
//! re-read under it): her `[[user]]` entry gets `disabled = true` (and
//! `disabled_reason`), and is never removed, so her name and UID stay reserved. The
//! command then shows what `apply` will do about it on the live hosts; it changes no
//! host itself.

use super::{CliError, InventoryArgs, Loaded};
use crate::inventory::edit;
use crate::plan::render;
use clap::Args;
use closetctl_exec::orchestrate::plan_with;

#[derive(Debug, Args)]
pub struct DeluserArgs {
    /// The login name.
    pub name: String,
    /// Why (kept in the inventory as `disabled_reason`).
    #[arg(long)]
    pub reason: Option<String>,
    /// Do not ask before editing the inventory.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Do not show the plan (no host is contacted).
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub inventory: InventoryArgs,
}

pub async fn run(args: DeluserArgs) -> Result<i32, CliError> {
    let path = args.inventory.inventory.clone();
    let source = std::fs::read_to_string(&path).map_err(|source| {
        crate::inventory::InventoryError::Read {
            path: path.clone(),
            source,
        }
    })?;
    let reason = args.reason.as_deref();
    // Checked against the file as read before asking; applied again under the lock.
    edit::disable_user(&path, &source, &args.name, reason)?;
    if !args.yes
        && !super::apply::ask(&format!(
            "Disable user `{}` in {}? Her account stays (locked), her access goes at the next apply.",
            args.name,
            path.display()
        ))
    {
        println!("Nothing was changed.");
        return Ok(1);
    }
    edit::update_file(
        &path,
        |current| edit::disable_user(&path, current, &args.name, reason),
        |lock| {
            eprintln!(
                "waiting for the lock {} (another closetctl is editing the inventory)",
                lock.display()
            )
        },
    )?;
    println!(
        "Disabled user `{}` in {} (the entry stays: her name and uid remain reserved).",
        args.name,
        path.display()
    );
    if !args.offline {
        let loaded = Loaded::load(&path)?;
        let connector = super::ssh_connector(&loaded.inventory)?;
        let (plan, _, _) = plan_with(connector, &loaded, &[], None, None).await?;
        println!("What `closetctl apply` will do:");
        print!(
            "{}",
            render::text(
                &plan,
                render::Style {
                    color: super::use_color()
                }
            )
        );
    }
    println!(
        "Next: `closetctl apply -i {}` (with `--cancel-jobs` if she still has jobs, `--end-sessions` to end her processes).",
        path.display()
    );
    Ok(0)
}
