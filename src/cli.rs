//! The command line as clap definitions, and nothing else: runc's
//! subcommands and flags, their arguments, and the values a flag accepts.
//! [`crate::dispatch`] runs what was parsed.

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
    #[arg(long = "log-format", default_value = "text", value_parser = choice::<LogFormat>())]
    pub log_format: LogFormat,
    /// Log debug lines (a timeline of the container setup).
    #[arg(long)]
    pub debug: bool,
    /// Use the systemd cgroup driver.
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto.
    #[arg(long, value_parser = choice::<Rootless>())]
    pub rootless: Option<Rootless>,
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
        args: Box<ExecArgs>,
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
        #[arg(long, short = 'f', default_value = "table", value_parser = choice::<Format>())]
        format: Format,
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
        args: Box<UpdateArgs>,
        id: String,
    },
    /// Print the container's state as JSON.
    State { id: String },
    /// Save a running container to disk with CRIU.
    Checkpoint {
        #[command(flatten)]
        args: Box<CheckpointArgs>,
        id: String,
    },
    /// Make a container again from a checkpoint (CRIU).
    Restore {
        #[command(flatten)]
        args: Box<RestoreArgs>,
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
        #[arg(long, short = 'f', default_value = "table", value_parser = choice::<Format>())]
        format: Format,
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
    Completion {
        #[arg(value_parser = choice::<Shell>())]
        shell: Shell,
    },
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
        #[arg(long, global = true)]
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
        #[command(subcommand)]
        of: Option<PlanOf>,
    },
}

/// What else `husk plan` can show than a create.
#[derive(Subcommand, Debug)]
pub enum PlanOf {
    /// The steps `husk exec` with the same arguments would run in the
    /// container ID (its state is read; nothing is changed or started).
    Exec {
        #[command(flatten)]
        args: Box<ExecArgs>,
        id: String,
        /// The command and its arguments (unless --process).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct ExecArgs {
    /// An OCI process JSON file (what the shims pass) instead of the command line.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY (handed over --console-socket, or relayed by husk).
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Extra environment variable K=V (repeatable).
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Additional group id (repeatable).
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable).
    #[arg(long = "cap", short = 'c')]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile to exec the process under (an error where AppArmor is not enabled).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label to exec the process with (ignored where SELinux is not enabled, like runc).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Do not wait for the process.
    #[arg(long, short = 'd')]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket to send a pidfd of the exec process to (SCM_RIGHTS).
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0, value_parser = preserve_fds_range())]
    pub preserve_fds: u32,
    /// Run in this sub-cgroup of the container (cgroup v2 / per-controller v1).
    #[arg(long)]
    pub cgroup: Option<String>,
    /// Allow exec into a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// A LinuxResources JSON file, or - for stdin.
    #[arg(long, short = 'r')]
    pub resources: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Kernel memory limit (cgroup v1 kernels that still apply one; refused elsewhere).
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer limit (cgroup v1 only; refused elsewhere).
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (runc's spelling; --cpu-shares is husk's older one).
    #[arg(long = "cpu-share", visible_alias = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<i64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
}

/// The criu options `checkpoint` and `restore` share (runc's flags of the
/// same names).
#[derive(Args, Debug, Clone, Default)]
pub struct CriuArgs {
    /// Directory of the images (default ./checkpoint).
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Directory for criu's log and work files (default: the image path).
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Established TCP connections (checkpointed, restored).
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow a shell job (a terminal of the session).
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// File locks (checkpointed, restored).
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// How criu handles cgroups: soft, full, strict or ignore.
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces restored empty (network always is).
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// Deduplicate the images of --parent-path.
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Lazy migration (refused: husk does not support it yet).
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Images of a previous --pre-dump, relative to --image-path.
    #[arg(long = "parent-path")]
    pub parent_path: Option<String>,
    /// Leave the container running after the checkpoint.
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// With --lazy-pages, an fd written when the page server is ready (refused).
    #[arg(long = "status-fd")]
    pub status_fd: Option<String>,
    /// ADDRESS:PORT of a criu page server (refused: not supported yet).
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// Dump the memory only, for a later dump with --parent-path.
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Path to the bundle directory.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Do not wait for the restored container.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// File to write the restored init's host pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the container's pty master to.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility: husk never makes itself a subreaper.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Refused: CRIU restores the root with pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// The LSM profile of the restored processes.
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// The LSM mount context of the restored mounts.
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
}

/// `--log-format`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The global `--rootless` (absent: auto).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rootless {
    True,
    False,
    Auto,
}

/// `--format` of `ps` and `list`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// The shell of `completion`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// A flag that takes one of a few words, and what husk says of any other.
pub trait Choice: ValueEnum + Clone + Send + Sync + 'static {
    /// The message for a value that is not one of the words.
    fn refused(value: &str) -> String;
}

impl Choice for LogFormat {
    fn refused(value: &str) -> String {
        format!("husk: unknown --log-format {value:?} (text or json)")
    }
}

impl Choice for Rootless {
    fn refused(value: &str) -> String {
        format!("--rootless {value:?}: expected true, false or auto")
    }
}

impl Choice for Format {
    fn refused(value: &str) -> String {
        format!("invalid format option {value:?}: table or json")
    }
}

impl Choice for Shell {
    fn refused(value: &str) -> String {
        format!("unknown shell {value:?}: bash, zsh or fish")
    }
}

/// A value a [`Choice`] flag refused, in husk's words: the clap error
/// carries it as its source, and dispatch prints it alone.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The value parser of a [`Choice`] flag: the enum's words (case
/// sensitive; clap lists them in the help and the completions), any other
/// refused with [`Refused`].
pub struct ChoiceParser<E>(std::marker::PhantomData<E>);

impl<E> Clone for ChoiceParser<E> {
    fn clone(&self) -> Self {
        ChoiceParser(std::marker::PhantomData)
    }
}

pub fn choice<E: Choice>() -> ChoiceParser<E> {
    ChoiceParser(std::marker::PhantomData)
}

impl<E: Choice> TypedValueParser for ChoiceParser<E> {
    type Value = E;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<E, clap::Error> {
        let parse = |s: &str| E::from_str(s, false).map_err(|_| Refused(E::refused(s)));
        parse.parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            E::value_variants().iter().filter_map(|v| v.to_possible_value()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parse, or the text of the [`Refused`] it failed with.
    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("husk").chain(args.iter().copied())).map_err(|e| {
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{args:?}: {e}");
            let refused = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<Refused>());
            match refused {
                Some(r) => r.0.clone(),
                None => panic!("{args:?}: not a Refused: {e}"),
            }
        })
    }

    #[test]
    fn log_format_words_and_refusal() {
        assert_eq!(parse(&["list"]).map(|c| c.global.log_format), Ok(LogFormat::Text));
        assert_eq!(
            parse(&["--log-format", "text", "list"]).map(|c| c.global.log_format),
            Ok(LogFormat::Text)
        );
        assert_eq!(
            parse(&["--log-format=json", "list"]).map(|c| c.global.log_format),
            Ok(LogFormat::Json)
        );
        for bad in ["xml", "JSON", ""] {
            assert_eq!(
                parse(&["--log-format", bad, "list"]).map(|_| ()),
                Err(format!("husk: unknown --log-format {bad:?} (text or json)"))
            );
        }
    }

    #[test]
    fn rootless_words_and_refusal() {
        assert_eq!(parse(&["list"]).map(|c| c.global.rootless), Ok(None));
        for (word, want) in [
            ("true", Rootless::True),
            ("false", Rootless::False),
            ("auto", Rootless::Auto),
        ] {
            assert_eq!(
                parse(&["--rootless", word, "list"]).map(|c| c.global.rootless),
                Ok(Some(want))
            );
        }
        for bad in ["yes", "1", "True"] {
            assert_eq!(
                parse(&["--rootless", bad, "list"]).map(|_| ()),
                Err(format!("--rootless {bad:?}: expected true, false or auto"))
            );
        }
    }

    #[test]
    fn format_words_and_refusal() {
        let list_format = |args: &[&str]| {
            parse(args).map(|c| match c.command {
                Some(Command::List { format, .. }) | Some(Command::Ps { format, .. }) => format,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(list_format(&["list"]), Ok(Format::Table));
        assert_eq!(list_format(&["list", "-f", "json"]), Ok(Format::Json));
        assert_eq!(list_format(&["ps", "x"]), Ok(Format::Table));
        assert_eq!(list_format(&["ps", "--format", "json", "x"]), Ok(Format::Json));
        assert_eq!(list_format(&["ps", "--format=table", "x", "aux"]), Ok(Format::Table));
        for args in [&["list", "--format", "xml"][..], &["ps", "-f", "xml", "x"]] {
            assert_eq!(
                list_format(args),
                Err("invalid format option \"xml\": table or json".to_string())
            );
        }
    }

    #[test]
    fn completion_shells_and_refusal() {
        for (word, want) in [("bash", Shell::Bash), ("zsh", Shell::Zsh), ("fish", Shell::Fish)] {
            let got = parse(&["completion", word]).map(|c| match c.command {
                Some(Command::Completion { shell }) => shell,
                other => panic!("{other:?}"),
            });
            assert_eq!(got, Ok(want));
        }
        for bad in ["tcsh", "powershell", "elvish"] {
            assert_eq!(
                parse(&["completion", bad]).map(|_| ()),
                Err(format!("unknown shell {bad:?}: bash, zsh or fish"))
            );
        }
    }
}
