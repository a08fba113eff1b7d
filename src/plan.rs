//! The container setup as data: [`plan`] turns a config (plus the command
//! line's [`Options`] and the [`HostFacts`] gathered once) into an ordered
//! list of typed [`Step`]s, without touching anything; the init (and, with
//! a shorter plan from [`exec_plan`], an exec process) runs them in one
//! executor (`process::execute`), which names each step in the `--debug`
//! timeline with the words [`Step::label`] gives here, and `husk plan`
//! prints them. Every decision of the setup (which mount, its flags and
//! data, the fallbacks a host may need, devices or binds of /dev nodes,
//! masked and read-only paths, sysctls, pivot or chroot, rlimits, ids,
//! capability sets, seccomp timing) is made here; the executor only
//! resolves paths inside the rootfs and makes the system calls. What can
//! only be known inside the container at run time (is a mask target a
//! directory, does /dev/pts/ptmx exist, the mode of a tmpfs's directory)
//! is written as a rule the executor applies.

use anyhow::{Context, Result, bail};
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, PosixRlimitType, Process, Spec};
use serde::Serialize;
use std::path::{Path, PathBuf};

use crate::mount_options::{MS_NOSYMFOLLOW, RecAttr, parse_options, propagation_flag};
use crate::namespaces;

/// The sd_notify socket directory inside the container.
pub const NOTIFY_DIR_IN_CONTAINER: &str = "/run/notify";

/// What the host is like, gathered once ([`HostFacts::gather`]) and
/// passed to the planner, which reads nothing itself.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostFacts {
    /// husk runs as root (euid 0); otherwise the init's rootless paths.
    pub root: bool,
    /// The highest capability number the kernel knows.
    pub last_cap: u32,
    /// /proc/kcore exists (then /dev/core links to it).
    pub kcore: bool,
    /// SELinux is enabled (the mount label goes into tmpfs-like data).
    pub selinux: bool,
    /// Socket-activation fds passed to husk (`LISTEN_FDS` for husk's pid).
    pub listen_fds: u32,
}

impl HostFacts {
    pub fn gather() -> HostFacts {
        HostFacts {
            root: nix::unistd::geteuid().is_root(),
            last_cap: crate::capabilities::last_cap(),
            kcore: Path::new("/proc/kcore").exists(),
            selinux: crate::lsm::selinux_enabled(),
            listen_fds: crate::fds::listen_count(),
        }
    }
}

/// What the command line adds to the config.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Options {
    pub id: String,
    /// The bundle's rootfs, absolute.
    pub rootfs: PathBuf,
    /// The bundle directory, absolute: relative bind sources are resolved
    /// against it (create runs in it, as runc does).
    pub bundle_dir: PathBuf,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub console_socket: Option<PathBuf>,
    /// Host directory of the sd_notify socket, bound at /run/notify.
    pub notify_dir: Option<PathBuf>,
    /// Await `C` before the rootfs setup (systemd driver, v1 devices).
    pub cgroup_before_setup: bool,
}

/// mount(2) flags, shown by name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flags(pub MsFlags);

const FLAG_NAMES: &[(MsFlags, &str)] = &[
    (MsFlags::MS_RDONLY, "MS_RDONLY"),
    (MsFlags::MS_NOSUID, "MS_NOSUID"),
    (MsFlags::MS_NODEV, "MS_NODEV"),
    (MsFlags::MS_NOEXEC, "MS_NOEXEC"),
    (MsFlags::MS_SYNCHRONOUS, "MS_SYNCHRONOUS"),
    (MsFlags::MS_REMOUNT, "MS_REMOUNT"),
    (MsFlags::MS_MANDLOCK, "MS_MANDLOCK"),
    (MsFlags::MS_DIRSYNC, "MS_DIRSYNC"),
    (MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"),
    (MsFlags::MS_NOATIME, "MS_NOATIME"),
    (MsFlags::MS_NODIRATIME, "MS_NODIRATIME"),
    (MsFlags::MS_BIND, "MS_BIND"),
    (MsFlags::MS_MOVE, "MS_MOVE"),
    (MsFlags::MS_REC, "MS_REC"),
    (MsFlags::MS_SILENT, "MS_SILENT"),
    (MsFlags::MS_UNBINDABLE, "MS_UNBINDABLE"),
    (MsFlags::MS_PRIVATE, "MS_PRIVATE"),
    (MsFlags::MS_SLAVE, "MS_SLAVE"),
    (MsFlags::MS_SHARED, "MS_SHARED"),
    (MsFlags::MS_RELATIME, "MS_RELATIME"),
    (MsFlags::MS_STRICTATIME, "MS_STRICTATIME"),
    (MsFlags::MS_LAZYTIME, "MS_LAZYTIME"),
];

impl std::fmt::Display for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = FLAG_NAMES
            .iter()
            .filter(|(b, _)| self.0.contains(*b))
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            write!(f, "0")
        } else {
            write!(f, "{}", names.join("|"))
        }
    }
}

impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// mount_setattr(AT_RECURSIVE) attributes of a mount's `r…` words.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecursiveAttrs {
    pub set: u64,
    pub clear: u64,
    pub words: Vec<String>,
}

/// Where a bind mount's source comes from.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum BindSource {
    /// Opened by the init at this path (relative ones against the bundle).
    Path(PathBuf),
    /// Opened O_PATH by husk through /proc/<init>/root and sent with `F`
    /// (a user namespace, husk root).
    FromHusk(PathBuf),
    /// The detached id-mapped tree husk's helper made, sent with `F`.
    IdmappedTree { source: PathBuf, ridmap: bool },
}

/// What one config mount does.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MountOp {
    /// A bind (or move of an id-mapped tree), then, when `remount` is
    /// set, a remount of the top mount with those flags plus the ones the
    /// kernel locks (nosuid, nodev, noexec) unless cleared.
    Bind {
        source: BindSource,
        recursive: bool,
        remount: Option<Flags>,
        keep_locked_except: Flags,
    },
    /// The cgroup hierarchies (a fresh cgroup2/cgroup mount each with a
    /// cgroup namespace, binds of the container's own directories
    /// without); v1 under a tmpfs; every one read-only unless `rw`.
    Cgroup {
        flags: Flags,
        cgroup_ns: bool,
        /// Rootless: a missing hierarchy → a read-only empty tmpfs over
        /// the destination (runc's answer to CVE-2023-25809).
        rootless_fallback: bool,
    },
    /// sysfs; in a user namespace, EPERM → bind the host's /sys read-only
    /// all through.
    Sysfs {
        flags: Flags,
        data: Option<String>,
        userns_fallback: bool,
    },
    /// Any other filesystem.
    Fs {
        source: String,
        fstype: Option<String>,
        flags: Flags,
        data: Option<String>,
        /// tmpfs on an existing directory: `mode=` of that directory first.
        mode_of_directory: bool,
        /// tmpcopyup: the directory's content copied into the tmpfs.
        copy_up: bool,
        /// Said after the errno of an EPERM.
        eperm_hint: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MountStep {
    /// Index in `mounts` (for errors and the `F` messages).
    pub index: usize,
    pub source: Option<PathBuf>,
    pub destination: PathBuf,
    pub fstype: Option<String>,
    pub options: Vec<String>,
    /// proc and sysfs: refused on a symlink or a non-directory.
    pub ordinary_directory: bool,
    pub op: MountOp,
    pub recursive_attrs: Option<RecursiveAttrs>,
    pub propagation: Vec<Flags>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceStep {
    pub path: PathBuf,
    /// c, b, p (u is c)
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// In a user namespace mknod is refused: the host's node is bound.
    pub bind_from_host: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Pivot {
    /// pivot_root(".", ".") and detach the old root.
    PivotRoot,
    /// --no-pivot: MS_MOVE onto / and chroot.
    MoveAndChroot,
    /// No mount namespace of its own: chroot.
    Chroot,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rlimit {
    pub name: String,
    #[serde(skip)]
    pub resource: libc::__rlimit_resource_t,
    #[serde(skip)]
    pub typ: PosixRlimitType,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CapSets {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
    pub ambient: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeccompSummary {
    pub default_action: String,
    pub default_errno: Option<u32>,
    pub rules: usize,
    pub syscalls: usize,
    pub architectures: Vec<String>,
    pub flags: Vec<String>,
    pub listener: Option<PathBuf>,
    /// Loaded by the init before `R` (a seccomp agent gets the notify fd
    /// during create), or as the last step before execve.
    pub early: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// prestart + createRuntime, run by husk on the init's `H`.
    CreateRuntime,
    /// createContainer, run by the init in the container's namespaces.
    CreateContainer,
}

/// One step of the setup, in order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum Step {
    /// Close the child's copies of husk's state-directory fds.
    CloseHostFds,
    /// PR_SET_PDEATHSIG(SIGKILL).
    DeathSignal,
    /// setsid: a session and process group of its own.
    NewSession,
    /// PR_SET_DUMPABLE(0).
    NonDumpable,
    /// Every fd from 3 up close-on-exec except the caller's passed ones.
    CloseOnExec,
    /// Wait for `G` (bind sources and id-mapped trees come with `F` before it).
    AwaitGo,
    /// Connect to the seccomp agent's socket (a host path).
    SeccompListener {
        path: PathBuf,
    },
    /// (exec) setns into the container's namespaces, user first.
    JoinNamespaces,
    /// setresgid/setresuid(0) in the user namespace.
    BecomeRoot {
        gid: bool,
        uid: bool,
    },
    Umask {
        mask: u32,
    },
    Hostname {
        name: String,
    },
    Domainname {
        name: String,
    },
    SessionKeyring {
        name: String,
    },
    LoopbackUp,
    /// Wait for `C` (in the cgroup, oom_score_adj written), then unshare
    /// the cgroup namespace if asked.
    AwaitCgroup {
        unshare_cgroup_ns: bool,
    },
    /// `/` made rslave (or rootfsPropagation) in the new mount namespace.
    RootPropagation {
        flags: Flags,
    },
    /// The rootfs bound onto itself (always: it carries every mount).
    BindRootfs {
        path: PathBuf,
    },
    Mount(Box<MountStep>),
    Device(DeviceStep),
    /// /dev/fd, stdin, stdout, stderr (core) symlinks; /dev/ptmx →
    /// pts/ptmx when the rootfs has /dev/pts/ptmx.
    DevSymlinks {
        links: Vec<(String, String)>,
    },
    /// Make process.cwd (0755, the init's user) when it is missing.
    Cwd {
        path: PathBuf,
    },
    /// A read-only tmpfs on a directory, the host's verified /dev/null on
    /// anything else; nothing when missing.
    Mask {
        path: PathBuf,
    },
    /// Bound onto itself and remounted read-only; nothing when missing.
    ReadOnly {
        path: PathBuf,
    },
    /// Written through the host's procfs, checked with fstatfs.
    Sysctl {
        key: String,
        path: String,
        value: String,
    },
    BindNotify {
        source: PathBuf,
        destination: PathBuf,
    },
    Hooks {
        kind: HookKind,
        count: usize,
    },
    /// Connect the --console-socket.
    ConnectConsole {
        socket: PathBuf,
    },
    /// A step that refuses the config (e.g. a terminal without console socket).
    Refuse {
        reason: String,
    },
    Pivot {
        how: Pivot,
    },
    /// (exec) a pty from the container's /dev/ptmx for the console socket.
    ConsolePty,
    /// A pty from the container's /dev/ptmx, peer bound onto /dev/console.
    BindConsole,
    /// root.readonly: / remounted read-only.
    ReadOnlyRoot,
    /// rootfsPropagation applied to / after the pivot.
    FinalPropagation {
        word: String,
        flags: Flags,
    },
    /// Stdio that is the caller's /dev/null reopened from the container's.
    ReopenDevNull,
    /// Build the seccomp filter (before `R`, so a bad profile fails create).
    SeccompBuild(SeccompSummary),
    /// Attributes that survive exec, set while the process still has its
    /// capabilities: scheduler, I/O priority, memory policy, personality.
    ProcessAttrs {
        which: Vec<String>,
        #[serde(skip)]
        process: Box<Process>,
    },
    Rlimits {
        rlimits: Vec<Rlimit>,
    },
    /// The executable looked up in the env's PATH (runc's error words);
    /// HOME from the container's passwd when unset, LISTEN_PID for
    /// socket activation; a missing interpreter named.
    Executable {
        args: Vec<String>,
        /// The config's env with what husk adds (LISTEN_FDS, NOTIFY_SOCKET).
        env: Vec<String>,
        uid: u32,
        /// execCPUAffinity.final, applied right before execve.
        final_cpus: Option<String>,
    },
    /// Drop every capability outside the bounding set; keepcaps on.
    Bounding {
        capabilities: Vec<String>,
        #[serde(skip)]
        mask: u64,
    },
    /// setgroups (unless denied), setresgid, setresuid; keepcaps off.
    Ids {
        uid: u32,
        gid: u32,
        additional_gids: Vec<u32>,
    },
    /// chdir(process.cwd), which must resolve inside the root.
    Chdir {
        cwd: PathBuf,
    },
    /// The five sets: applied now, or (a filter loaded without
    /// no_new_privs needs CAP_SYS_ADMIN) right after the filter.
    Capabilities {
        sets: CapSets,
        after_seccomp: bool,
        #[serde(skip)]
        masks: crate::capabilities::Masks,
    },
    /// AppArmor profile / SELinux label for the exec.
    ExecLabels {
        apparmor_profile: Option<String>,
        selinux_label: Option<String>,
    },
    NoNewPrivileges,
    /// The pty becomes the controlling terminal and stdio.
    ControllingTerminal,
    /// Signals reset and the filter loaded before ready (seccomp agent).
    SeccompEarly,
    /// Clear the death signal, send `R`, wait for `A` (init) or exec at once.
    Ready,
    /// The init: accept on exec.sock, `S`, startContainer hooks (their
    /// count), final affinity, signals reset, seccomp (unless early),
    /// execve. An exec process (`None`): signals reset, seccomp, execve.
    Exec {
        start_hooks: Option<usize>,
    },
}

/// The ordered steps for one container (or exec process).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

fn rel_display(p: &Path) -> String {
    p.display().to_string()
}

impl Step {
    /// The step's name in the `--debug` timeline and in `husk plan`.
    pub fn name(&self) -> &'static str {
        match self {
            Step::CloseHostFds => "close husk's directory fds",
            Step::DeathSignal => "parent death signal",
            Step::NewSession => "setsid",
            Step::NonDumpable => "non-dumpable",
            Step::CloseOnExec => "inherited fds close-on-exec",
            Step::AwaitGo => "wait for G",
            Step::SeccompListener { .. } => "connect the seccomp agent",
            Step::JoinNamespaces => "join the container's namespaces",
            Step::BecomeRoot { .. } => "become root in the user namespace",
            Step::Umask { .. } => "umask",
            Step::Hostname { .. } => "sethostname",
            Step::Domainname { .. } => "setdomainname",
            Step::SessionKeyring { .. } => "session keyring",
            Step::LoopbackUp => "bring lo up",
            Step::AwaitCgroup { .. } => "wait for C",
            Step::RootPropagation { .. } => "root propagation",
            Step::BindRootfs { .. } => "bind the rootfs onto itself",
            Step::Mount(_) => "mount",
            Step::Device(_) => "device",
            Step::DevSymlinks { .. } => "/dev symlinks",
            Step::Cwd { .. } => "cwd",
            Step::Mask { .. } => "mask",
            Step::ReadOnly { .. } => "read-only",
            Step::Sysctl { .. } => "sysctl",
            Step::BindNotify { .. } => "bind the sd_notify directory",
            Step::Hooks { .. } => "hooks",
            Step::ConnectConsole { .. } => "connect the console socket",
            Step::Refuse { .. } => "refuse",
            Step::Pivot { how } => match how {
                Pivot::PivotRoot => "pivot_root",
                Pivot::MoveAndChroot | Pivot::Chroot => "chroot",
            },
            Step::ConsolePty => "pty for the console socket",
            Step::BindConsole => "bind the pty onto /dev/console",
            Step::ReadOnlyRoot => "read-only root",
            Step::FinalPropagation { .. } => "rootfsPropagation",
            Step::ReopenDevNull => "stdio on /dev/null from the container's /dev",
            Step::SeccompBuild(_) => "build the seccomp filter",
            Step::ProcessAttrs { .. } => "process attributes",
            Step::Rlimits { .. } => "setrlimit",
            Step::Executable { .. } => "find the executable",
            Step::Bounding { .. } => "drop the bounding set",
            Step::Ids { .. } => "setgroups, setresgid, setresuid",
            Step::Chdir { .. } => "chdir",
            Step::Capabilities { .. } => "capabilities",
            Step::ExecLabels { .. } => "LSM exec labels",
            Step::NoNewPrivileges => "no_new_privs",
            Step::ControllingTerminal => "controlling terminal",
            Step::SeccompEarly => "load seccomp for the agent",
            Step::Ready => "ready",
            Step::Exec { .. } => "exec",
        }
    }

    /// What the step acts on, one line (after the name).
    pub fn target(&self) -> String {
        match self {
            Step::SeccompListener { path } => rel_display(path),
            Step::BecomeRoot { gid, uid } => match (gid, uid) {
                (true, true) => "gid 0, uid 0".into(),
                (true, false) => "gid 0".into(),
                (false, true) => "uid 0".into(),
                (false, false) => "nothing mapped to 0".into(),
            },
            Step::Umask { mask } => format!("{mask:04o}"),
            Step::Hostname { name } | Step::Domainname { name } | Step::SessionKeyring { name } => name.clone(),
            Step::AwaitCgroup { unshare_cgroup_ns } => {
                if *unshare_cgroup_ns {
                    "then unshare the cgroup namespace".into()
                } else {
                    String::new()
                }
            }
            Step::RootPropagation { flags } => format!("/ {flags}"),
            Step::FinalPropagation { word, flags } => format!("{word} (/ {flags})"),
            Step::BindRootfs { path } => rel_display(path),
            Step::Mount(m) => format!(
                "{} on {} (type {}, options {:?})",
                m.source.as_deref().unwrap_or(Path::new("none")).display(),
                m.destination.display(),
                m.fstype.as_deref().unwrap_or("none"),
                m.options
            ),
            Step::Device(d) => format!(
                "{} {} {}:{}{}",
                d.path.display(),
                d.kind,
                d.major,
                d.minor,
                if d.bind_from_host { " (bound from the host)" } else { "" }
            ),
            Step::DevSymlinks { links } => links.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(" "),
            Step::Cwd { path } | Step::Mask { path } | Step::ReadOnly { path } => rel_display(path),
            Step::Sysctl { key, value, .. } => format!("{key}={value}"),
            Step::BindNotify { source, destination } => format!("{} on {}", source.display(), destination.display()),
            Step::Hooks { kind, count } => format!(
                "{} ({count})",
                match kind {
                    HookKind::CreateRuntime => "prestart + createRuntime, by husk",
                    HookKind::CreateContainer => "createContainer",
                }
            ),
            Step::ConnectConsole { socket } => rel_display(socket),
            Step::Refuse { reason } => reason.clone(),
            Step::SeccompBuild(sc) => format!("default {}, {} rules", sc.default_action, sc.rules),
            Step::ProcessAttrs { which, .. } => which.join(" "),
            Step::Rlimits { rlimits } => rlimits
                .iter()
                .map(|r| format!("{}={}:{}", r.name, r.soft, r.hard))
                .collect::<Vec<_>>()
                .join(" "),
            Step::Executable { args, .. } => match args.first() {
                Some(program) => format!("{program:?}"),
                None => "(no program)".into(),
            },
            Step::Bounding { capabilities, .. } => caps_line(capabilities),
            Step::Ids {
                uid,
                gid,
                additional_gids,
            } => format!("uid {uid} gid {gid} groups {additional_gids:?}"),
            Step::Chdir { cwd } => rel_display(cwd),
            Step::Capabilities { after_seccomp, .. } => {
                if *after_seccomp {
                    "right after the seccomp filter".into()
                } else {
                    "now".into()
                }
            }
            Step::ExecLabels {
                apparmor_profile,
                selinux_label,
            } => [
                apparmor_profile.as_ref().map(|a| format!("apparmor {a}")),
                selinux_label.as_ref().map(|l| format!("selinux {l}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
            Step::Exec { start_hooks: Some(n) } => format!("after start (startContainer hooks: {n})"),
            Step::Exec { start_hooks: None } => "right away (the container has started)".into(),
            _ => String::new(),
        }
    }

    /// `name target`, as the timeline shows it.
    pub fn label(&self) -> String {
        let t = self.target();
        if t.is_empty() {
            self.name().to_string()
        } else {
            format!("{} {t}", self.name())
        }
    }
}

fn rlimit_resource(t: PosixRlimitType) -> Option<libc::__rlimit_resource_t> {
    use PosixRlimitType::*;
    Some(match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

fn cap_names(mask: u64) -> Vec<String> {
    crate::capabilities::NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 64 && mask & (1u64 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn json_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

fn seccomp_summary(s: &oci_spec::runtime::LinuxSeccomp) -> SeccompSummary {
    let rules = s.syscalls().as_deref().unwrap_or(&[]);
    SeccompSummary {
        default_action: json_name(&s.default_action()),
        default_errno: s.default_errno_ret(),
        rules: rules.len(),
        syscalls: rules.iter().map(|r| r.names().len()).sum(),
        architectures: s.architectures().iter().flatten().map(json_name).collect(),
        flags: s.flags().iter().flatten().map(json_name).collect(),
        listener: s.listener_path().clone(),
        early: crate::seccomp::notifies(s),
    }
}

fn caps_line(c: &[String]) -> String {
    if c.is_empty() { "none".into() } else { c.join(" ") }
}

/// The process steps for `p` (the init's or an exec's), in the order
/// they run; then the controlling terminal and, for the init with a
/// seccomp agent, the early filter (an exec process loads its filter last).
fn process_steps(
    p: &Process,
    linux: Option<&oci_spec::runtime::Linux>,
    facts: &HostFacts,
    steps: &mut Vec<Step>,
    init: bool,
) -> Result<()> {
    let seccomp = linux.and_then(|l| l.seccomp().as_ref()).map(seccomp_summary);
    let early = init && seccomp.as_ref().is_some_and(|s| s.early);
    let filter = seccomp.is_some();
    if let Some(sc) = seccomp {
        steps.push(Step::SeccompBuild(sc));
    }
    let mut which = Vec::new();
    if p.scheduler().is_some() {
        which.push("process.scheduler".to_string());
    }
    if p.io_priority().is_some() {
        which.push("process.ioPriority".to_string());
    }
    if linux.and_then(|l| l.memory_policy().as_ref()).is_some() {
        which.push("linux.memoryPolicy".to_string());
    }
    if linux.and_then(|l| l.personality().as_ref()).is_some() {
        which.push("linux.personality".to_string());
    }
    if !which.is_empty() {
        steps.push(Step::ProcessAttrs {
            which,
            process: Box::new(p.clone()),
        });
    }
    let mut rlimits = Vec::new();
    for r in p.rlimits().iter().flatten() {
        let resource = rlimit_resource(r.typ()).with_context(|| format!("unknown rlimit {:?}", r.typ()))?;
        rlimits.push(Rlimit {
            name: json_name(&r.typ()),
            resource,
            typ: r.typ(),
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    if !rlimits.is_empty() {
        steps.push(Step::Rlimits { rlimits });
    }
    let user = p.user();
    steps.push(Step::Executable {
        args: p.args().clone().unwrap_or_default(),
        env: p.env().clone().unwrap_or_default(),
        uid: user.uid(),
        final_cpus: p
            .exec_cpu_affinity()
            .as_ref()
            .and_then(|a| a.cpu_affinity_final().clone())
            .filter(|s| !s.is_empty()),
    });
    let masks = crate::capabilities::masks_up_to(p.capabilities().as_ref(), facts.last_cap);
    steps.push(Step::Bounding {
        capabilities: cap_names(masks.bounding),
        mask: masks.bounding,
    });
    steps.push(Step::Ids {
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
    });
    steps.push(Step::Chdir { cwd: p.cwd().clone() });
    let nnp = p.no_new_privileges().unwrap_or(false);
    steps.push(Step::Capabilities {
        sets: CapSets {
            bounding: cap_names(masks.bounding),
            effective: cap_names(masks.effective),
            permitted: cap_names(masks.permitted),
            inheritable: cap_names(masks.inheritable),
            ambient: cap_names(masks.ambient),
        },
        // A filter loaded without no_new_privs needs CAP_SYS_ADMIN: then
        // the final sets wait for it, right before execve. Otherwise they
        // apply now, so startContainer hooks run with the container's
        // capabilities (as runc's do).
        after_seccomp: filter && !nnp,
        masks,
    });
    let apparmor_profile = p.apparmor_profile().clone().filter(|s| !s.is_empty());
    let selinux_label = p.selinux_label().clone().filter(|s| !s.is_empty());
    if apparmor_profile.is_some() || selinux_label.is_some() {
        steps.push(Step::ExecLabels {
            apparmor_profile,
            selinux_label,
        });
    }
    if nnp {
        steps.push(Step::NoNewPrivileges);
    }
    steps.push(Step::Umask {
        mask: user.umask().unwrap_or(0o022),
    });
    if p.terminal().unwrap_or(false) {
        steps.push(Step::ControllingTerminal);
    }
    if early {
        steps.push(Step::SeccompEarly);
    }
    Ok(())
}

/// The mounts, devices and paths of the rootfs setup.
fn rootfs_steps(
    spec: &Spec,
    o: &Options,
    facts: &HostFacts,
    ns: &namespaces::Plan,
    steps: &mut Vec<Step>,
    cgroup_awaited: &mut bool,
) -> Result<()> {
    let linux = spec.linux().as_ref();
    let in_userns = ns.has(LinuxNamespaceType::User);
    let new_mnt_ns = ns.new_ns(LinuxNamespaceType::Mount);
    if new_mnt_ns {
        // Nothing we mount may propagate back to the host. shared and
        // unbindable are applied after pivot_root: a shared tree would
        // leak mounts to the host, an unbindable one cannot be bound
        // onto itself.
        let prop = linux
            .and_then(|l| l.rootfs_propagation().as_deref())
            .and_then(propagation_flag)
            .filter(|f| !f.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE))
            .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
        steps.push(Step::RootPropagation {
            flags: Flags(prop | MsFlags::MS_REC),
        });
    }
    // Every mount below lands on this one. Without a mount namespace (the
    // host's): `root.readonly` has a mount of its own to remount, and one
    // detach of it (`unmount_down_to`) takes every mount of the container.
    steps.push(Step::BindRootfs { path: o.rootfs.clone() });

    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let label = linux.and_then(|l| l.mount_label().as_deref());
    let mut dev_is_bind = false;
    for (index, m) in mounts.iter().enumerate() {
        let opts = m.options().clone().unwrap_or_default();
        let mo = parse_options(&opts);
        if m.destination() == Path::new("/dev") && mo.bind {
            dev_is_bind = true;
        }
        let typ = m.typ().as_deref().unwrap_or("");
        let data = (!mo.data.is_empty()).then(|| mo.data.join(","));
        let op = if mo.bind {
            let src = crate::rootfs::bind_source_in(m, &o.bundle_dir)
                .with_context(|| crate::rootfs::mount_context(index, m))?;
            let source = match crate::idmap::of(m) {
                Some(idm) => BindSource::IdmappedTree {
                    source: src,
                    ridmap: idm.recursive,
                },
                _ if in_userns && facts.root => BindSource::FromHusk(src),
                _ => BindSource::Path(src),
            };
            // (difference, not `& !`: the complement of bitflags drops the
            // bits nix does not name, MS_NOSYMFOLLOW and MS_LAZYTIME.)
            let extra = mo
                .flags
                .difference(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            MountOp::Bind {
                source,
                recursive: mo.flags.contains(MsFlags::MS_REC),
                remount: (!extra.is_empty() || !mo.cleared.is_empty()).then_some(Flags(extra)),
                keep_locked_except: Flags(mo.cleared),
            }
        } else {
            match typ {
                "cgroup" | "cgroup2" => {
                    if !*cgroup_awaited {
                        steps.push(Step::AwaitCgroup {
                            unshare_cgroup_ns: ns.new_cgroup_ns,
                        });
                        *cgroup_awaited = true;
                    }
                    MountOp::Cgroup {
                        flags: Flags(mo.flags.difference(MsFlags::MS_BIND | MsFlags::MS_REC)),
                        cgroup_ns: ns.new_cgroup_ns,
                        rootless_fallback: !facts.root,
                    }
                }
                "sysfs" => MountOp::Sysfs {
                    flags: Flags(mo.flags),
                    data,
                    userns_fallback: in_userns,
                },
                _ => {
                    let data = if facts.selinux {
                        crate::lsm::mount_data_with_label(data, typ, label)
                    } else {
                        data
                    };
                    let eperm_hint = match typ {
                        "proc" if in_userns => {
                            Some("a user namespace without its own pid namespace cannot mount proc".into())
                        }
                        "mqueue" => Some("mqueue needs an ipc namespace owned by the container".into()),
                        _ => None,
                    };
                    MountOp::Fs {
                        source: m
                            .source()
                            .as_deref()
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_else(|| typ.to_string()),
                        fstype: (!typ.is_empty()).then(|| typ.to_string()),
                        flags: Flags(mo.flags.difference(MsFlags::MS_REMOUNT)),
                        data,
                        mode_of_directory: typ == "tmpfs",
                        copy_up: mo.copy_up && typ == "tmpfs",
                        eperm_hint,
                    }
                }
            }
        };
        steps.push(Step::Mount(Box::new(MountStep {
            index,
            source: m.source().clone(),
            destination: m.destination().clone(),
            fstype: m.typ().clone(),
            options: opts,
            ordinary_directory: !mo.bind && matches!(typ, "proc" | "sysfs"),
            op,
            recursive_attrs: mo
                .rec_attr
                .map(|RecAttr { set, clr, words }| RecursiveAttrs { set, clear: clr, words }),
            propagation: mo.propagation.into_iter().map(Flags).collect(),
        })));
    }

    if !dev_is_bind {
        let mut devices = crate::rootfs::default_devices();
        if let Some(extra) = linux.and_then(|l| l.devices().as_ref()) {
            devices.extend(extra.iter().cloned());
        }
        for d in &devices {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => 'c',
                LinuxDeviceType::B => 'b',
                LinuxDeviceType::P => 'p',
                LinuxDeviceType::A => bail!(
                    "create device {}: device type \"a\" is only valid in cgroup device rules",
                    d.path().display()
                ),
            };
            // The config was checked (bundle::problems): 12 bits of major, 20 of minor.
            let num = |what: &str, v: i64, hi: u64| {
                u64::try_from(v)
                    .ok()
                    .filter(|n| *n <= hi)
                    .with_context(|| format!("device {what} {v} is out of range (0 to {hi})"))
                    .with_context(|| format!("create device {}", d.path().display()))
            };
            steps.push(Step::Device(DeviceStep {
                path: d.path().clone(),
                kind,
                major: num("major", d.major(), 4095)?,
                minor: num("minor", d.minor(), 1_048_575)?,
                mode: d.file_mode().unwrap_or(0o666) & 0o7777,
                uid: d.uid(),
                gid: d.gid(),
                bind_from_host: in_userns,
            }));
        }
        let mut links: Vec<(String, String)> = [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ]
        .iter()
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .collect();
        if facts.kcore {
            links.push(("/proc/kcore".into(), "core".into()));
        }
        steps.push(Step::DevSymlinks { links });
    }

    // A missing process.cwd is made, as runc and crun make it: by the
    // init's user (root in the container) with mode 0755, before the
    // read-only root and the masked paths.
    if let Some(p) = spec.process() {
        steps.push(Step::Cwd {
            path: crate::rootfs::clean(p.cwd()),
        });
    }
    // Masked and read-only paths, while the real host /dev/null is at hand.
    if let Some(l) = linux {
        for p in l.masked_paths().iter().flatten() {
            steps.push(Step::Mask { path: PathBuf::from(p) });
        }
        for p in l.readonly_paths().iter().flatten() {
            steps.push(Step::ReadOnly { path: PathBuf::from(p) });
        }
        if let Some(sysctl) = l.sysctl() {
            let mut keys: Vec<_> = sysctl.iter().collect();
            keys.sort();
            for (k, v) in keys {
                // the path form: `/` between the levels, `.` inside a name (eth0.100)
                let path = format!(
                    "/proc/sys/{}",
                    crate::bundle::sysctl_swap(&crate::bundle::sysctl_dotted(k))
                );
                steps.push(Step::Sysctl {
                    key: k.clone(),
                    path,
                    value: v.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The steps every child that execs a container process begins with
/// (the init and an exec process): the shared prefix.
fn prefix(steps: &mut Vec<Step>, dumpable_until_go: bool, listener: Option<&Path>) {
    steps.push(Step::CloseHostFds);
    // If husk dies during setup, so does the child.
    steps.push(Step::DeathSignal);
    steps.push(Step::NewSession);
    // Nobody may ptrace or read /proc/<pid>/ of the child until it execs
    // (CVE-2019-5736). A non-root husk must still write the init's
    // uid_map (a non-dumpable process's /proc files belong to root): then
    // this waits until `G`, before the init touches anything.
    if !dumpable_until_go {
        steps.push(Step::NonDumpable);
    }
    // Only the caller's passed fds (3 .. 3+N-1) survive exec.
    steps.push(Step::CloseOnExec);
    steps.push(Step::AwaitGo);
    if dumpable_until_go {
        steps.push(Step::NonDumpable);
    }
    // The seccomp agent's socket is a host path: connected before any
    // namespace or root of the container is entered.
    if let Some(path) = listener {
        steps.push(Step::SeccompListener {
            path: path.to_path_buf(),
        });
    }
}

/// The init's plan: every step from the clone to execve.
pub fn plan(spec: &Spec, o: &Options, facts: &HostFacts) -> Result<Plan> {
    let ns = namespaces::Plan::from_spec(spec);
    let linux = spec.linux().as_ref();
    let mut steps = Vec::new();
    let listener = linux
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_path().as_deref());
    prefix(&mut steps, !facts.root, listener);

    let in_userns = ns.has(LinuxNamespaceType::User);
    if in_userns {
        let maps_root = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
            m.is_some_and(|v| v.iter().any(|x| x.container_id() == 0))
        };
        steps.push(Step::BecomeRoot {
            gid: maps_root(linux.and_then(|l| l.gid_mappings().as_ref())),
            uid: maps_root(linux.and_then(|l| l.uid_mappings().as_ref())),
        });
    }
    steps.push(Step::Umask { mask: 0 });
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        steps.push(Step::Hostname { name: h.to_string() });
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        steps.push(Step::Domainname { name: d.to_string() });
    }
    if !o.no_new_keyring {
        steps.push(Step::SessionKeyring {
            name: format!("_ses.{}", o.id),
        });
    }
    // A network namespace made for the container (not one joined by path).
    if ns.clone_flags & libc::CLONE_NEWNET != 0 {
        steps.push(Step::LoopbackUp);
    }
    let mut cgroup_awaited = false;
    if o.cgroup_before_setup {
        steps.push(Step::AwaitCgroup {
            unshare_cgroup_ns: ns.new_cgroup_ns,
        });
        cgroup_awaited = true;
    }
    rootfs_steps(spec, o, facts, &ns, &mut steps, &mut cgroup_awaited)?;
    if let Some(dir) = &o.notify_dir {
        steps.push(Step::BindNotify {
            source: dir.clone(),
            destination: PathBuf::from(NOTIFY_DIR_IN_CONTAINER),
        });
    }
    // Nothing the container controls runs outside its cgroup: hooks and
    // ready wait for `C`.
    if !cgroup_awaited {
        steps.push(Step::AwaitCgroup {
            unshare_cgroup_ns: ns.new_cgroup_ns,
        });
    }
    let hooks = spec.hooks().as_ref();
    let count = |v: &Option<Vec<oci_spec::runtime::Hook>>| v.as_ref().map_or(0, Vec::len);
    #[allow(deprecated)]
    let runtime_hooks = hooks.map_or(0, |h| count(h.prestart()) + count(h.create_runtime()));
    if runtime_hooks > 0 {
        steps.push(Step::Hooks {
            kind: HookKind::CreateRuntime,
            count: runtime_hooks,
        });
    }
    // The container's process, with the environment husk adds.
    let container_process = spec.process().as_ref().map(|p| {
        let mut p = p.clone();
        if facts.listen_fds > 0 {
            // Socket activation: the first fds passed are systemd's.
            let mut env = p.env().clone().unwrap_or_default();
            env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
            env.push(format!("LISTEN_FDS={}", facts.listen_fds));
            p.set_env(Some(env));
        }
        if o.notify_dir.is_some() {
            let mut env = p.env().clone().unwrap_or_default();
            env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
            env.push(format!("NOTIFY_SOCKET={NOTIFY_DIR_IN_CONTAINER}/notify.sock"));
            p.set_env(Some(env));
        }
        p
    });
    if let Some(h) = hooks.and_then(|h| h.create_container().as_ref()) {
        steps.push(Step::Hooks {
            kind: HookKind::CreateContainer,
            count: h.len(),
        });
    }
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    match (terminal, &o.console_socket) {
        (true, Some(path)) => steps.push(Step::ConnectConsole { socket: path.clone() }),
        (true, None) => steps.push(Step::Refuse {
            reason: "process.terminal is true but no --console-socket was given".into(),
        }),
        (false, _) => {}
    }
    let new_mnt_ns = ns.new_ns(LinuxNamespaceType::Mount);
    steps.push(Step::Pivot {
        how: match (new_mnt_ns, o.no_pivot) {
            (false, _) => Pivot::Chroot,
            (true, true) => Pivot::MoveAndChroot,
            (true, false) => Pivot::PivotRoot,
        },
    });
    // The pty's peer is bound onto /dev/console before the root may turn read-only.
    if terminal {
        steps.push(Step::BindConsole);
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        steps.push(Step::ReadOnlyRoot);
    }
    if new_mnt_ns
        && let Some(word) = linux.and_then(|l| l.rootfs_propagation().as_deref())
        && let Some(f) = propagation_flag(word)
    {
        steps.push(Step::FinalPropagation {
            word: word.to_string(),
            flags: Flags(f),
        });
    }
    if new_mnt_ns {
        steps.push(Step::ReopenDevNull);
    }
    if let Some(p) = &container_process {
        process_steps(p, linux, facts, &mut steps, true)?;
    }
    steps.push(Step::Ready);
    steps.push(Step::Exec {
        start_hooks: Some(hooks.and_then(|h| h.start_container().as_ref()).map_or(0, Vec::len)),
    });
    Ok(Plan { steps })
}

/// An exec process's plan: the shared prefix, the container's
/// namespaces, the process, execve.
pub fn exec_plan(p: &Process, linux: Option<&oci_spec::runtime::Linux>, facts: &HostFacts) -> Result<Plan> {
    let mut steps = Vec::new();
    let listener = linux
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_path().as_deref());
    prefix(&mut steps, false, listener);
    steps.push(Step::JoinNamespaces);
    if p.terminal().unwrap_or(false) {
        steps.push(Step::ConsolePty);
    }
    process_steps(p, linux, facts, &mut steps, false)?;
    steps.push(Step::Ready);
    steps.push(Step::Exec { start_hooks: None });
    Ok(Plan { steps })
}
