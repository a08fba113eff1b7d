//! The entry point behind `src/main.rs`: parse the command line
//! ([`crate::cli`]), keep the caller's fds free, set up logging, pick the
//! state directory, and run the command; errors become runc's exit codes
//! and messages.

use anyhow::{Result, bail};
use clap::Parser;

use crate::cli::{Cli, Command, Global, LogFormat, Refused, Rootless};
use crate::commands::{
    cgroup_cmds, check, checkpoint, delete, docs, exec, features, kill, list, plan, run, spec, state,
};
use crate::container;
use crate::output::{OCI_VERSION, VERSION, is_broken_pipe, out};

/// Whether husk runs rootless: `--rootless true|false|auto` (auto, the
/// default: when not root).
fn rootless(g: &Global) -> bool {
    match g.rootless.unwrap_or(Rootless::Auto) {
        Rootless::True => true,
        Rootless::False => false,
        Rootless::Auto => !nix::unistd::geteuid().is_root(),
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

/// Run husk with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // A flag's word husk refuses (--log-format, --rootless,
            // --format, the completion shell): husk's own message, alone.
            match std::error::Error::source(&e).and_then(|s| s.downcast_ref::<Refused>()) {
                Some(r) => eprintln!("{r}"),
                None => {
                    let _ = e.print();
                }
            }
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    if cli.version {
        out(&format!("husk version {VERSION}\nspec: {OCI_VERSION}\n"));
        return 0;
    }
    // Before husk opens any fd (the log file is the first): keep the
    // caller's fds 3 .. 3+N-1 free of husk's own descriptors.
    let (listen, preserve) = match &cli.command {
        Some(Command::Create { args, .. } | Command::Run { args, .. }) => match crate::fds::listen_fds_from_env() {
            Ok(l) => (l, args.preserve_fds),
            Err(e) => {
                eprintln!("{e:#}");
                return 1;
            }
        },
        Some(Command::Exec { args, .. }) => (0, args.preserve_fds),
        _ => (0, 0),
    };
    if let Err(e) = crate::fds::reserve(listen, preserve) {
        eprintln!("{e:#}");
        return 1;
    }
    let g = &cli.global;
    let json = g.log_format == LogFormat::Json;
    if let Err(e) = crate::logging::init(g.log.as_deref(), json, g.debug) {
        eprintln!("husk: open log file {}: {e}", g.log.as_deref().unwrap_or(""));
        return 1;
    }
    let Some(cmd) = cli.command else {
        eprintln!("husk: no command given (try husk --help)");
        return 1;
    };
    match dispatch(g, cmd) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 141,
        Err(e) => {
            let msg = format!("{e:#}");
            crate::logging::log(crate::logging::Level::Error, &msg);
            // the bare message, as runc prints it: managers prefix it with
            // the runtime's name themselves (podman: "OCI runtime error: husk: ...")
            eprintln!("{msg}");
            1
        }
    }
}
fn dispatch(g: &Global, cmd: Command) -> Result<i32> {
    let rootless = rootless(g);
    // --systemd-cgroup matters to create and run only: every later command
    // uses the driver recorded in the container's state (podman passes the
    // flag only to create, Docker not to `delete --force`).
    // The state directory matters only to the commands that keep or read
    // containers: `spec`, `features`, `check` and the rest work without
    // one (runc's `spec` works for a user without XDG_RUNTIME_DIR).
    let store = || state_root(g).map(|r| crate::state::Store::new(&r));
    match cmd {
        Command::Create { mut args, id } => {
            args.rootless = rootless;
            args.systemd_cgroup = g.systemd_cgroup;
            container::create(&store()?, &id, &args).map(|_| 0)
        }
        Command::Start { id } => container::start(&store()?, &id).map(|_| 0),
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
            run::run(&store()?, &id, &args, detach, keep)
        }
        Command::Exec { args, id, command } => exec::exec(&store()?, &id, &args, &command),
        Command::Pause { id } => cgroup_cmds::pause(&store()?, &id).map(|_| 0),
        Command::Resume { id } => cgroup_cmds::resume(&store()?, &id).map(|_| 0),
        Command::Ps { format, id, ps_args } => cgroup_cmds::ps(&store()?, &id, format, &ps_args).map(|_| 0),
        Command::Events { stats, interval, id } => cgroup_cmds::events(&store()?, &id, stats, &interval).map(|_| 0),
        Command::Update { args, id } => cgroup_cmds::update(&store()?, &id, &args).map(|_| 0),
        Command::State { id } => state::state(&store()?, &id).map(|_| 0),
        Command::Checkpoint { args, id } => checkpoint::checkpoint(&store()?, g, &id, &args).map(|_| 0),
        Command::Restore { args, id } => checkpoint::restore(&store()?, g, &id, &args),
        Command::Kill { all, id, signal } => kill::kill(&store()?, &id, signal.as_deref(), all).map(|_| 0),
        Command::Delete { force, id } => delete::delete(&store()?, &id, force).map(|_| 0),
        Command::List { format, quiet } => list::list(&store()?, format, quiet).map(|_| 0),
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
        Command::Completion { shell } => docs::completion(shell).map(|_| 0),
        Command::Man => docs::man().map(|_| 0),
        Command::Features => features::features().map(|_| 0),
        Command::Plan {
            json,
            of: Some(crate::cli::PlanOf::Exec { args, id, command }),
            ..
        } => exec::plan(&store()?, &id, &args, &command, json).map(|_| 0),
        Command::Plan {
            bundle,
            json,
            console_socket,
            no_pivot,
            no_new_keyring,
            id,
            of: None,
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
