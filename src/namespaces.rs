//! Which namespaces a container gets: new ones (clone flags) and existing
//! ones joined by path (setns), plus the time namespace offsets.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// The one table of namespace types: the config's name (`linux.namespaces[].type`,
/// `--empty-ns`), the kernel's name under `/proc/<pid>/ns/`, and the clone flag
/// (`CLONE_NEWTIME` is for unshare(2) only). In the order `husk features` lists them.
pub const TABLE: [(LinuxNamespaceType, &str, &str, libc::c_int); 8] = [
    (LinuxNamespaceType::Cgroup, "cgroup", "cgroup", libc::CLONE_NEWCGROUP),
    (LinuxNamespaceType::Ipc, "ipc", "ipc", libc::CLONE_NEWIPC),
    (LinuxNamespaceType::Mount, "mount", "mnt", libc::CLONE_NEWNS),
    (LinuxNamespaceType::Network, "network", "net", libc::CLONE_NEWNET),
    (LinuxNamespaceType::Pid, "pid", "pid", libc::CLONE_NEWPID),
    (LinuxNamespaceType::Time, "time", "time", libc::CLONE_NEWTIME),
    (LinuxNamespaceType::User, "user", "user", libc::CLONE_NEWUSER),
    (LinuxNamespaceType::Uts, "uts", "uts", libc::CLONE_NEWUTS),
];

const fn entry(t: LinuxNamespaceType) -> (LinuxNamespaceType, &'static str, &'static str, libc::c_int) {
    // Written as a match so that it is a const fn and every type is covered.
    let i = match t {
        LinuxNamespaceType::Cgroup => 0,
        LinuxNamespaceType::Ipc => 1,
        LinuxNamespaceType::Mount => 2,
        LinuxNamespaceType::Network => 3,
        LinuxNamespaceType::Pid => 4,
        LinuxNamespaceType::Time => 5,
        LinuxNamespaceType::User => 6,
        LinuxNamespaceType::Uts => 7,
    };
    TABLE[i]
}

/// The config's name of a namespace type (`mount`, `network`, …).
pub const fn config_name(t: LinuxNamespaceType) -> &'static str {
    entry(t).1
}

/// The kernel's name of a namespace type under `/proc/<pid>/ns/` (`mnt`, `net`, …).
pub const fn proc_name(t: LinuxNamespaceType) -> &'static str {
    entry(t).2
}

/// The `CLONE_NEW*` flag of a namespace type.
pub const fn clone_flag(t: LinuxNamespaceType) -> libc::c_int {
    entry(t).3
}

/// The namespace type of a config name (`network` → Network).
pub fn from_config_name(name: &str) -> Option<LinuxNamespaceType> {
    TABLE.iter().find(|e| e.1 == name).map(|e| e.0)
}

#[derive(Default, Debug)]
pub struct Plan {
    /// CLONE_NEW* flags for namespaces created with the init (time excluded).
    pub clone_flags: libc::c_int,
    /// Namespaces to join: (type, path), user namespace first.
    pub joins: Vec<(LinuxNamespaceType, PathBuf)>,
    pub new_time: bool,
    /// A new cgroup namespace: unshared by the init once it is in its
    /// cgroup (not at clone, or its root would be husk's cgroup).
    pub new_cgroup_ns: bool,
    /// (clock name, seconds, nanoseconds) for a new time namespace.
    pub time_offsets: Vec<(String, i64, u32)>,
    pub types: Vec<LinuxNamespaceType>,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Plan {
        let mut p = Plan::default();
        let Some(linux) = spec.linux() else { return p };
        for ns in linux.namespaces().iter().flatten() {
            p.types.push(ns.typ());
            match ns.path() {
                Some(path) => p.joins.push((ns.typ(), path.clone())),
                None if ns.typ() == LinuxNamespaceType::Time => p.new_time = true,
                None if ns.typ() == LinuxNamespaceType::Cgroup => p.new_cgroup_ns = true,
                None => p.clone_flags |= clone_flag(ns.typ()),
            }
        }
        p.joins.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        if let Some(offs) = linux.time_offsets() {
            let mut v: Vec<_> = offs
                .iter()
                .map(|(k, o)| (k.clone(), o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0)))
                .collect();
            v.sort();
            p.time_offsets = v;
        }
        p
    }

    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.types.contains(&t)
    }

    pub fn new_ns(&self, t: LinuxNamespaceType) -> bool {
        self.clone_flags & clone_flag(t) != 0
            || (t == LinuxNamespaceType::Time && self.new_time)
            || (t == LinuxNamespaceType::Cgroup && self.new_cgroup_ns)
    }

    /// The init can be cloned straight from husk (one process, no
    /// intermediate) unless namespaces are joined or a time namespace made.
    pub fn direct(&self) -> bool {
        self.joins.is_empty() && !self.new_time
    }
}

/// Open every namespace path first (joining a mount namespace changes how
/// later paths resolve), then setns in order: user first, then the rest.
pub fn join_all(joins: &[(LinuxNamespaceType, PathBuf)]) -> Result<()> {
    let mut fds: Vec<(LinuxNamespaceType, &PathBuf, OwnedFd)> = Vec::with_capacity(joins.len());
    for (t, path) in joins {
        let fd = nix::fcntl::open(
            path.as_path(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("open {} namespace path {}", config_name(*t), path.display()))?;
        fds.push((*t, path, fd));
    }
    for (t, path, fd) in &fds {
        let flag = nix::sched::CloneFlags::from_bits_truncate(clone_flag(*t));
        nix::sched::setns(fd.as_fd(), flag).with_context(|| {
            format!(
                "setns into {} namespace {}{}",
                config_name(*t),
                path.display(),
                match t {
                    LinuxNamespaceType::User =>
                        " (hint: is the path a user namespace, and is husk single-threaded root?)",
                    _ => "",
                }
            )
        })?;
    }
    Ok(())
}

/// Make a new time namespace for the children of the calling process and
/// write its clock offsets (before any process enters it).
pub fn unshare_time(offsets: &[(String, i64, u32)]) -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .context("unshare the time namespace (CLONE_NEWTIME)")?;
    if offsets.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for (clock, secs, nanos) in offsets {
        let id = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => bail!("linux.timeOffsets: unknown clock {other:?} (monotonic or boottime)"),
        };
        text.push_str(&format!("{id} {secs} {nanos}\n"));
    }
    // The kernel checks the seconds against the clock: ERANGE when the
    // container's clock would go below zero or too far ahead.
    std::fs::write("/proc/self/timens_offsets", &text)
        .errno()
        .with_context(|| {
            format!(
                "linux.timeOffsets: write {:?} to /proc/self/timens_offsets",
                text.trim_end()
            )
        })
}

/// Bring the loopback interface of a new network namespace up, as runc
/// and crun do (a new namespace has `lo` down): SIOCGIFFLAGS, then
/// SIOCSIFFLAGS with IFF_UP, on a datagram socket of that namespace.
pub fn loopback_up() -> Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    use std::os::fd::AsRawFd;
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .context("socket(AF_INET) to bring lo up in the new network namespace")?;
    // SAFETY: ifreq is plain data (a name and a union of integers); zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the flags of the ifreq we pass.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return Err(nix::errno::Errno::last()).context("SIOCGIFFLAGS lo in the new network namespace");
    }
    // SAFETY: reading the union member SIOCGIFFLAGS wrote.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    // IFF_UP is 1: it fits the short the ioctl uses
    req.ifr_ifru.ifru_flags = flags | libc::c_short::try_from(libc::IFF_UP).unwrap_or(1);
    // SAFETY: SIOCSIFFLAGS reads the ifreq we pass.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        return Err(nix::errno::Errno::last()).context("bring lo up (SIOCSIFFLAGS) in the new network namespace");
    }
    Ok(())
}
