//! The command line: runc's subcommands, flags and exit codes.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::commands;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const OCI_VERSION: &str = "1.3.0";

#[derive(Parser, Debug)]
#[command(
    name = "husk",
    about = "husk: an OCI container runtime, runc-compatible",
    disable_version_flag = true,
    args_conflicts_with_subcommands = false
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Print the version (and the OCI runtime-spec version) and exit.
    #[arg(long, short = 'v', global = false)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Directory for the containers' state (default /run/husk; for a
    /// non-root user $XDG_RUNTIME_DIR/husk).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Log file (default: stderr).
    #[arg(long)]
    pub log: Option<String>,
    /// Log format: text or json.
    #[arg(long = "log-format", default_value = "text")]
    pub log_format: String,
    /// Log debug lines (a timeline of the container setup).
    #[arg(long)]
    pub debug: bool,
    /// Use the systemd cgroup driver.
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto.
    #[arg(long)]
    pub rootless: Option<String>,
    /// The criu binary for checkpoint and restore (default: criu in PATH).
    #[arg(long)]
    pub criu: Option<String>,
}

/// `--preserve-fds N` passes fds 3 to N+2: the last must be a valid fd number.
pub fn preserve_fds_range() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(0..=i64::from(i32::MAX) - 3)
}

#[derive(Args, Debug, Clone, Default)]
pub struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container init's host pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (process.terminal = true).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket to send a pidfd of the container's init to (SCM_RIGHTS).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramdisk roots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not make a new session keyring for the container.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, ...) to the container process.
    #[arg(long = "preserve-fds", default_value_t = 0, value_parser = preserve_fds_range())]
    pub preserve_fds: u32,
    /// Rootless mode (from the global --rootless, or not running as root).
    #[arg(skip)]
    pub rootless: bool,
    /// The systemd cgroup driver (from the global --systemd-cgroup).
    #[arg(skip)]
    pub systemd_cgroup: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (it waits for `start`).
    Create {
        #[command(flatten)]
        args: CreateArgs,
        id: String,
    },
    /// Start a created container: run its entrypoint.
    Start { id: String },
    /// Create and start a container, wait for it, and delete it.
    Run {
        #[command(flatten)]
        args: CreateArgs,
        /// Do not wait for the container: exit once it started.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Do not delete the container after it exits.
        #[arg(long)]
        keep: bool,
        /// Accepted for runc compatibility: husk never makes itself a
        /// subreaper, which is what this flag asks of runc.
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
        id: String,
    },
    /// Run a new process inside a running container.
    Exec {
        #[command(flatten)]
        args: Box<crate::commands::exec::ExecArgs>,
        id: String,
        /// The command and its arguments (unless --process).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List the container's processes.
    Ps {
        /// table or json.
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        id: String,
        /// Options passed to ps (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print resource usage and OOM events as JSON.
    Events {
        /// Print one stats event and exit.
        #[arg(long)]
        stats: bool,
        /// Time between stats events.
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Change a running container's resource limits.
    Update {
        #[command(flatten)]
        args: Box<crate::commands::cgroup_cmds::UpdateArgs>,
        id: String,
    },
    /// Print the container's state as JSON.
    State { id: String },
    /// Save a running container to disk with CRIU.
    Checkpoint {
        #[command(flatten)]
        args: Box<crate::commands::checkpoint::CheckpointArgs>,
        id: String,
    },
    /// Make a container again from a checkpoint (CRIU).
    Restore {
        #[command(flatten)]
        args: Box<crate::commands::checkpoint::RestoreArgs>,
        id: String,
    },
    /// Send a signal to the container's init (or all its processes).
    Kill {
        /// Signal every process of the container.
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        /// Signal name (KILL, SIGKILL) or number; default SIGTERM.
        signal: Option<String>,
    },
    /// Delete a stopped container (--force: kill it first).
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        /// table or json.
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        /// Print only the ids.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        /// A config that works for a non-root user.
        #[arg(long)]
        rootless: bool,
        /// The process args (default: sh), e.g. --args /bin/echo hi
        #[arg(long, num_args = 1.., allow_hyphen_values = true)]
        args: Option<Vec<String>>,
        /// Give the process a terminal (the default, as runc's spec).
        #[arg(long, conflicts_with = "no_terminal")]
        terminal: bool,
        /// No terminal: stdio passes through.
        #[arg(long = "no-terminal")]
        no_terminal: bool,
        /// The container's hostname.
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Check a bundle without creating anything: every problem, where it is
    /// and how to fix it (exit 0 clean, 1 errors, 2 only warnings).
    Check {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        /// Findings as JSON, for tools.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh or fish).
    Completion { shell: String },
    /// Print the man page (roff), generated from these definitions.
    Man,
    /// Print what this runtime supports (runtime-spec features JSON).
    Features,
    /// Print what husk would do with this bundle on this host (every
    /// step of the init, mounts with resolved flags, devices, paths,
    /// sysctls, cgroup files, hooks, capabilities, seccomp, rlimits)
    /// without creating anything.
    Plan {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        /// The plan as JSON.
        #[arg(long)]
        json: bool,
        /// As for create: the console socket a terminal needs.
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long = "no-pivot")]
        no_pivot: bool,
        #[arg(long = "no-new-keyring")]
        no_new_keyring: bool,
        /// The container id the plan is for (the keyring and cgroup names use it).
        #[arg(long, default_value = "plan")]
        id: String,
    },
}

/// Write to stdout. A reader that went away (`husk state x | head -1`)
/// is not an error to report: like other Unix tools, husk just stops.
pub fn out(s: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|_| o.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(141);
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
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
    let json = match g.log_format.as_str() {
        "json" => true,
        "text" => false,
        other => {
            eprintln!("husk: unknown --log-format {other:?} (text or json)");
            return 1;
        }
    };
    if let Err(e) = crate::logging::init(g.log.as_deref(), json, g.debug) {
        eprintln!("husk: open log file {}: {e}", g.log.as_deref().unwrap_or(""));
        return 1;
    }
    let Some(cmd) = cli.command else {
        eprintln!("husk: no command given (try husk --help)");
        return 1;
    };
    match commands::dispatch(g, cmd) {
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
