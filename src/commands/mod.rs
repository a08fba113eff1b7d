//! One module per subcommand.

pub mod cgroup_cmds;
pub mod create;
pub mod delete;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;

use crate::cli::{Command, Global};
use anyhow::{Result, bail};

pub fn dispatch(g: &Global, cmd: Command) -> Result<i32> {
    if let Some(r) = g.rootless.as_deref() {
        match r {
            "false" => {}
            "true" | "auto" if nix::unistd::geteuid().is_root() && r == "auto" => {}
            _ => bail!("not supported yet: --rootless {r} (husk runs as root; rootless mode is a later issue)"),
        }
    }
    if g.systemd_cgroup
        && !matches!(
            cmd,
            Command::Spec { .. } | Command::Features | Command::State { .. } | Command::List { .. }
        )
    {
        bail!("not supported yet: --systemd-cgroup (husk manages cgroups through cgroupfs only)");
    }
    let store = crate::state::Store::new(&g.root);
    match cmd {
        Command::Create { args, id } => create::create(&store, &id, &args).map(|_| 0),
        Command::Start { id } => start::start(&store, &id).map(|_| 0),
        Command::Run { args, detach, keep, id } => run::run(&store, &id, &args, detach, keep),
        Command::Exec { args, id, command } => exec::exec(&store, &id, &args, &command),
        Command::Pause { id } => cgroup_cmds::pause(&store, &id).map(|_| 0),
        Command::Resume { id } => cgroup_cmds::resume(&store, &id).map(|_| 0),
        Command::Ps { format, id, ps_args } => cgroup_cmds::ps(&store, &id, &format, &ps_args).map(|_| 0),
        Command::Events { stats, interval, id } => cgroup_cmds::events(&store, &id, stats, &interval).map(|_| 0),
        Command::Update { args, id } => cgroup_cmds::update(&store, &id, &args).map(|_| 0),
        Command::State { id } => state::state(&store, &id).map(|_| 0),
        Command::Kill { all, id, signal } => kill::kill(&store, &id, signal.as_deref(), all).map(|_| 0),
        Command::Delete { force, id } => delete::delete(&store, &id, force).map(|_| 0),
        Command::List { format, quiet } => list::list(&store, &format, quiet).map(|_| 0),
        Command::Spec {
            bundle,
            rootless,
            args,
            terminal,
            no_terminal,
            hostname,
        } => {
            let o = spec::SpecOptions {
                rootless,
                args,
                terminal: if no_terminal {
                    Some(false)
                } else if terminal {
                    Some(true)
                } else {
                    None
                },
                hostname,
            };
            spec::spec(&bundle, &o).map(|_| 0)
        }
        Command::Features => features::features().map(|_| 0),
    }
}
