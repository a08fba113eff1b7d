//! One module per subcommand.

pub mod cgroup_cmds;
pub mod check;
pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod docs;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod plan;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;

use crate::cli::{Command, Global};
use anyhow::{Result, bail};

/// Whether husk runs rootless: `--rootless true|false|auto` (auto, the
/// default: when not root).
pub fn rootless(g: &Global) -> Result<bool> {
    match g.rootless.as_deref().unwrap_or("auto") {
        "true" => Ok(true),
        "false" => Ok(false),
        "auto" => Ok(!nix::unistd::geteuid().is_root()),
        other => bail!("--rootless {other:?}: expected true, false or auto"),
    }
}

/// The state directory: --root, or /run/husk for root and
/// $XDG_RUNTIME_DIR/husk for other users (as runc does).
pub fn state_root(g: &Global) -> Result<std::path::PathBuf> {
    if let Some(r) = &g.root {
        return Ok(r.clone());
    }
    if nix::unistd::geteuid().is_root() {
        return Ok("/run/husk".into());
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => Ok(std::path::PathBuf::from(d).join("husk")),
        None => bail!("husk runs as a non-root user and XDG_RUNTIME_DIR is not set: give --root DIR"),
    }
}

pub fn dispatch(g: &Global, cmd: Command) -> Result<i32> {
    let rootless = rootless(g)?;
    // --systemd-cgroup matters to create and run only: every later command
    // uses the driver recorded in the container's state (podman passes the
    // flag only to create, Docker not to `delete --force`).
    let store = crate::state::Store::new(&state_root(g)?);
    match cmd {
        Command::Create { mut args, id } => {
            args.rootless = rootless;
            args.systemd_cgroup = g.systemd_cgroup;
            create::create(&store, &id, &args).map(|_| 0)
        }
        Command::Start { id } => start::start(&store, &id).map(|_| 0),
        Command::Run {
            mut args,
            detach,
            keep,
            // husk is never a subreaper: nothing to switch off.
            no_subreaper: _,
            id,
        } => {
            args.rootless = rootless;
            args.systemd_cgroup = g.systemd_cgroup;
            run::run(&store, &id, &args, detach, keep)
        }
        Command::Exec { args, id, command } => exec::exec(&store, &id, &args, &command),
        Command::Pause { id } => cgroup_cmds::pause(&store, &id).map(|_| 0),
        Command::Resume { id } => cgroup_cmds::resume(&store, &id).map(|_| 0),
        Command::Ps { format, id, ps_args } => cgroup_cmds::ps(&store, &id, &format, &ps_args).map(|_| 0),
        Command::Events { stats, interval, id } => cgroup_cmds::events(&store, &id, stats, &interval).map(|_| 0),
        Command::Update { args, id } => cgroup_cmds::update(&store, &id, &args).map(|_| 0),
        Command::State { id } => state::state(&store, &id).map(|_| 0),
        Command::Checkpoint { args, id } => checkpoint::checkpoint(&store, g, &id, &args).map(|_| 0),
        Command::Restore { args, id } => checkpoint::restore(&store, g, &id, &args),
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
        Command::Check { bundle, json } => check::check(&bundle, json),
        Command::Completion { shell } => docs::completion(&shell).map(|_| 0),
        Command::Man => docs::man().map(|_| 0),
        Command::Features => features::features().map(|_| 0),
        Command::Plan {
            bundle,
            json,
            console_socket,
            no_pivot,
            no_new_keyring,
            id,
        } => plan::plan(&plan::PlanArgs {
            bundle,
            json,
            id,
            console_socket,
            no_pivot,
            no_new_keyring,
            state_root: state_root(g)?,
            systemd_cgroup: g.systemd_cgroup,
            rootless,
        }),
    }
}
