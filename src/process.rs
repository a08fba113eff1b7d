//! The container init: how it is cloned, the sync protocol with the husk
//! process that made it (typed: [`Msg`]), and the executor that runs a
//! plan's steps ([`execute`]: the init's, and an exec process's shorter
//! one) up to exec. The steps themselves are decided in `plan`.
//!
//! ```text
//! husk create ──clone(CLONE_NEW*)──► init            (direct path)
//! husk create ──fork──► intermediate ──clone(CLONE_PARENT|CLONE_NEW*)──► init
//!                       (setns into joined namespaces, unshare time ns; exits)
//! ```
//! On a pure cgroup v2 host both clones of the init are clone3 calls with
//! CLONE_INTO_CGROUP: the init starts in its cgroup and husk writes no
//! cgroup.procs ([`clone_child`]; the old way when the kernel refuses).
//!
//! Messages on a SOCK_SEQPACKET pair, one datagram each, first byte a tag:
//! - `P pid [cgroup]` intermediate → husk: the init's host pid (`cgroup`:
//!   cloned into its cgroup)
//! - `F index` + fd  husk → init, before `G`: the source of bind mount
//!   `mounts[index]`: for an id-mapped mount the detached tree husk's
//!   helper made in the init's mount namespace (`idmap::make_trees`);
//!   otherwise (user namespace, husk root) opened O_PATH by husk through
//!   /proc/<init>/root (`rootfs::open_bind_sources`)
//! - `G json`  husk → init: id maps written, `linux.netDevices` moved into
//!   its network namespace; go on (hook state)
//! - `C`       husk → init: in the cgroup now (systemd driver: its scope
//!   exists and the limits are written), oom_score_adj written (awaited
//!   before cgroup work; before the rootfs setup with `cgroup_before_setup`)
//! - `H`       init → husk: mounts done, run createRuntime hooks (only with hooks)
//! - `h`       husk → init: createRuntime hooks passed
//! - `R`       init → husk: ready, waiting for start
//! - `A`       husk → init: state recorded; the init may wait for start
//! - `E text`  init → husk: setup failed because of text
//!
//! `start` connects to the init's listening socket `<root>/<id>/exec.sock`;
//! the init accepts, writes `S`, and execs the entrypoint. The connection
//! is close-on-exec, so `start` reads EOF exactly when exec succeeded, or
//! the error text when it did not.

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::bundle::Bundle;
use crate::cgroups::UnifiedDir;
use crate::logging::step;
use crate::namespaces::Plan;
use crate::plan::Step as PlanStep;
use crate::sys;
use crate::sys::ErrnoResult as _;

// ---- sync protocol -------------------------------------------------------

pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType};
    nix::sys::socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .context("socketpair for the init sync channel")
}

pub fn send(fd: &OwnedFd, tag: u8, payload: &[u8]) -> Result<()> {
    let mut buf = Vec::with_capacity(payload.len() + 1);
    buf.push(tag);
    buf.extend_from_slice(payload);
    let mut pressure = 0;
    loop {
        match nix::sys::socket::send(fd.as_raw_fd(), &buf, nix::sys::socket::MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            // memory pressure of a moment: retry for a while (100 ms)
            Err(nix::errno::Errno::ENOBUFS | nix::errno::Errno::ENOMEM) if pressure < 100 => {
                pressure += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e).context("send on the init sync channel"),
        }
    }
}

/// Receive one message; None when the other side is gone. The buffer is
/// sized to the datagram (MSG_PEEK|MSG_TRUNC), not a fixed large one.
///
/// A peer that closed with a message of ours unread (the init failed and
/// sent `E` before reading our `C`) makes the kernel report ECONNRESET
/// once, ahead of what the peer sent before closing: that error is taken
/// and the queue read on, so the peer's last words are not lost. (More
/// than once is tolerated, up to a bound: a second ECONNRESET used to be
/// taken for the end, and an `E` queued behind it was lost.)
pub fn recv(fd: &OwnedFd) -> Result<Option<(u8, Vec<u8>)>> {
    use nix::sys::socket::MsgFlags;
    const RESETS: u32 = 4;
    let mut resets = 0;
    let mut probe = [0u8; 1];
    let len = loop {
        match nix::sys::socket::recv(fd.as_raw_fd(), &mut probe, MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECONNRESET) if resets < RESETS => resets += 1,
            Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
            Err(e) => return Err(e).context("receive on the init sync channel"),
        }
    };
    if len == 0 {
        return Ok(None);
    }
    let mut buf = vec![0u8; len];
    loop {
        match nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(0) => return Ok(None),
            Ok(n) => {
                buf.truncate(n);
                let tag = buf.remove(0);
                return Ok(Some((tag, buf)));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECONNRESET) if resets < RESETS => resets += 1,
            Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
            Err(e) => return Err(e).context("receive on the init sync channel"),
        }
    }
}

/// The kinds of message on the sync channel (the tag byte of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pid,
    Fd,
    Go,
    InCgroup,
    RunHooks,
    HooksDone,
    Ready,
    Ack,
    Error,
    Started,
}

impl Kind {
    const ALL: [(Kind, u8, &'static str); 10] = [
        (Kind::Pid, b'P', "the init's pid"),
        (Kind::Fd, b'F', "a bind source"),
        (Kind::Go, b'G', "the go-ahead"),
        (Kind::InCgroup, b'C', "in the cgroup"),
        (Kind::RunHooks, b'H', "run the createRuntime hooks"),
        (Kind::HooksDone, b'h', "hooks passed"),
        (Kind::Ready, b'R', "ready"),
        (Kind::Ack, b'A', "state recorded"),
        (Kind::Error, b'E', "an error"),
        (Kind::Started, b'S', "started"),
    ];

    pub fn tag(self) -> u8 {
        Kind::ALL
            .iter()
            .find(|(k, _, _)| *k == self)
            .map_or(b'?', |(_, t, _)| *t)
    }

    /// `G (the go-ahead)`: how errors name a message.
    pub fn describe(self) -> String {
        let (_, t, what) = Kind::ALL
            .iter()
            .find(|(k, _, _)| *k == self)
            .copied()
            .unwrap_or((self, b'?', "?"));
        format!("{} ({what})", t as char)
    }
}

/// One message of the sync channel, typed; the wire form is a tag byte
/// and a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// intermediate → husk: the init's host pid, cloned into its cgroup or not.
    Pid {
        pid: i32,
        cgroup: bool,
    },
    /// husk → init: the fd that comes with it is `mounts[index]`'s source.
    Fd(usize),
    /// husk → init: go on (the hook state JSON).
    Go(Vec<u8>),
    InCgroup,
    RunHooks,
    HooksDone,
    Ready,
    Ack,
    Error(String),
    Started,
}

impl Msg {
    pub fn kind(&self) -> Kind {
        match self {
            Msg::Pid { .. } => Kind::Pid,
            Msg::Fd(_) => Kind::Fd,
            Msg::Go(_) => Kind::Go,
            Msg::InCgroup => Kind::InCgroup,
            Msg::RunHooks => Kind::RunHooks,
            Msg::HooksDone => Kind::HooksDone,
            Msg::Ready => Kind::Ready,
            Msg::Ack => Kind::Ack,
            Msg::Error(_) => Kind::Error,
            Msg::Started => Kind::Started,
        }
    }

    pub fn tag(&self) -> u8 {
        self.kind().tag()
    }

    pub fn payload(&self) -> Vec<u8> {
        match self {
            Msg::Pid { pid, cgroup: true } => format!("{pid} cgroup").into_bytes(),
            Msg::Pid { pid, cgroup: false } => pid.to_string().into_bytes(),
            Msg::Fd(i) => i.to_string().into_bytes(),
            Msg::Go(st) => st.clone(),
            Msg::Error(m) => m.clone().into_bytes(),
            _ => Vec::new(),
        }
    }

    /// The whole datagram, tag first.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag()];
        v.extend(self.payload());
        v
    }

    /// A datagram (tag first) as a message; an unknown tag or a bad
    /// payload is an error naming it.
    pub fn decode(buf: &[u8]) -> Result<Msg> {
        let (tag, payload) = buf.split_first().context("an empty message on the sync channel")?;
        Msg::from_parts(*tag, payload)
    }

    fn from_parts(tag: u8, payload: &[u8]) -> Result<Msg> {
        let text = || String::from_utf8_lossy(payload).into_owned();
        Ok(match tag {
            b'P' => {
                let (pid, cgroup) = parse_pid_report(&text())?;
                Msg::Pid { pid, cgroup }
            }
            b'F' => Msg::Fd(
                text()
                    .parse::<usize>()
                    .with_context(|| format!("bad bind source message F{:?} from husk", text()))?,
            ),
            b'G' => Msg::Go(payload.to_vec()),
            b'C' => Msg::InCgroup,
            b'H' => Msg::RunHooks,
            b'h' => Msg::HooksDone,
            b'R' => Msg::Ready,
            b'A' => Msg::Ack,
            b'E' => Msg::Error(text()),
            b'S' => Msg::Started,
            t => bail!("unknown message tag {:?} on the sync channel", t as char),
        })
    }

    /// `G (the go-ahead)`, for errors.
    pub fn describe(&self) -> String {
        self.kind().describe()
    }
}

pub fn send_msg(fd: &OwnedFd, m: &Msg) -> Result<()> {
    send(fd, m.tag(), &m.payload())
}

/// The next message, typed; None when the other side is gone.
pub fn recv_msg(fd: &OwnedFd) -> Result<Option<Msg>> {
    match recv(fd)? {
        Some((tag, payload)) => Msg::from_parts(tag, &payload).map(Some),
        None => Ok(None),
    }
}

/// The next message, which must be of kind `want` from `peer`: anything
/// else is an error naming what was expected and what came (an `E` from
/// the peer becomes its text).
pub fn expect(fd: &OwnedFd, want: Kind, peer: &str) -> Result<Msg> {
    match recv_msg(fd).with_context(|| format!("wait for {} from {peer}", want.describe()))? {
        Some(m) if m.kind() == want => Ok(m),
        Some(Msg::Error(text)) => bail!("{text}"),
        Some(m) => bail!("expected {} from {peer}, received {}", want.describe(), m.describe()),
        None => bail!(
            "expected {} from {peer}, but {peer} closed the sync channel",
            want.describe()
        ),
    }
}

// ---- spawning (husk side) ------------------------------------------------

pub struct SpawnOpts<'a> {
    pub bundle: &'a Bundle,
    pub id: &'a str,
    pub exec_listener: &'a OwnedFd,
    /// husk's fd of the host state directory `<root>/<id>`: the init
    /// closes its copy first thing (see [`close_host_dir`]).
    pub state_dir: std::os::fd::RawFd,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub console_socket: Option<&'a Path>,
    /// Hook state JSON sent to the init (for createContainer/startContainer).
    pub has_container_hooks: bool,
    /// Host directory holding the sd_notify socket, bound at /run/notify
    /// in the container (NOTIFY_SOCKET was set for husk).
    pub notify_dir: Option<&'a Path>,
    /// The init waits for `C` before its rootfs setup, not lazily: the
    /// systemd driver on a v1 devices hierarchy rewrites the device rules
    /// (deny all, then allow) while the init is in the cgroup, and a device
    /// node made or opened meanwhile would be refused.
    pub cgroup_before_setup: bool,
    /// husk's locked fd of `<root>/<id>`: the init closes its copy first
    /// thing, so that only husk holds the lock (a lock the init kept would
    /// outlive a failed unlock and block `start` while the init waits for it).
    pub lock_fd: Option<std::os::fd::RawFd>,
}

pub use crate::plan::NOTIFY_DIR_IN_CONTAINER;

impl SpawnOpts<'_> {
    /// What the command line adds to the config, for the planner.
    pub fn plan_options(&self) -> crate::plan::Options {
        crate::plan::Options {
            id: self.id.to_string(),
            rootfs: self.bundle.rootfs.clone(),
            bundle_dir: self.bundle.dir.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            console_socket: self.console_socket.map(Path::to_path_buf),
            notify_dir: self.notify_dir.map(Path::to_path_buf),
            cgroup_before_setup: self.cgroup_before_setup,
        }
    }
}

pub struct Spawned {
    pub pid: i32,
    pub sock: OwnedFd,
}

/// Clone a fork-like child (0 in the child, its pid in the parent) with
/// the namespace and other `flags`. With `cgroup` (pure cgroup v2 hosts)
/// the child is cloned with clone3(CLONE_INTO_CGROUP) and starts as a
/// member of that cgroup: the second value is then true and nobody needs
/// to write it into cgroup.procs. If that clone fails — no clone3 (ENOSYS,
/// or E2BIG before Linux 5.7), a cgroup the kernel refuses (EOPNOTSUPP
/// threaded or domain-invalid, EBUSY with controllers in its
/// subtree_control, EAGAIN at pids.max, permissions) or anything else —
/// no child exists, a debug line says why, and the child is cloned as
/// before (second value false: the caller joins it to its cgroup). Errors
/// that have nothing to do with the cgroup then come back from that clone,
/// worded as they always were. Only the parent logs.
///
/// # Safety
/// As for [`sys::fork_clone`] (and `fork(2)`): the caller must be
/// single-threaded, or the child may only make async-signal-safe calls;
/// `flags` must not ask for shared memory (`CLONE_VM`) or a shared stack.
pub unsafe fn clone_child(
    flags: libc::c_ulong,
    cgroup: Option<&UnifiedDir>,
    what: &str,
) -> std::io::Result<(i32, bool)> {
    if let Some(cg) = cgroup {
        let t0 = std::time::Instant::now();
        // SAFETY: the caller's guarantees (single-threaded, no CLONE_VM)
        // are this function's own.
        let r = unsafe { sys::fork_clone3_into_cgroup(flags, cg.fd.as_raw_fd()) };
        if matches!(r, Ok(0)) {
            return Ok((0, true));
        }
        let name = format!("clone {what} into its cgroup");
        crate::logging::step_done(&name, || cg.path.display().to_string(), t0, r.is_ok());
        match r {
            Ok(pid) => return Ok((pid, true)),
            Err(e) => crate::debug!(
                "clone3(CLONE_INTO_CGROUP) of {what} into {} failed: {}; cloning without it, the cgroup is joined through cgroup.procs",
                cg.path.display(),
                sys::errno_text(&e)
            ),
        }
    }
    // SAFETY: as above, the caller's guarantees.
    unsafe { sys::fork_clone(flags) }.map(|pid| (pid, false))
}

/// Clone the container init and drive it until it is ready to start.
///
/// `cgroup_dir` (pure v2 hosts) is the container's cgroup: the init is
/// cloned into it. `on_clone(pid, in_cgroup)` runs after the id maps are
/// written and before the init goes on (cgroup placement unless the init
/// was cloned into its cgroup, oom_score_adj); `on_hooks(pid)` runs the
/// createRuntime hooks when the init asks; `hook_state(pid)` builds the
/// state JSON the init passes to its own hooks. On error the init is
/// killed and reaped; the caller cleans up the rest.
pub fn spawn(
    o: &SpawnOpts,
    cgroup_dir: Option<UnifiedDir>,
    on_clone: &mut dyn FnMut(i32, bool) -> Result<()>,
    on_hooks: &mut dyn FnMut(i32) -> Result<()>,
    hook_state: &dyn Fn(i32) -> String,
) -> Result<Spawned> {
    let plan = Plan::from_spec(&o.bundle.spec);
    // Every decision of the init's setup, made here (errors surface
    // before anything exists); the init executes it.
    let steps = crate::plan::plan(&o.bundle.spec, &o.plan_options(), &crate::plan::HostFacts::gather())?;
    crate::idmap::check_privilege(&o.bundle.spec)?;
    crate::netdev::check_privilege(&o.bundle.spec)?;
    crate::process_attrs::initial_affinity(
        o.bundle
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.exec_cpu_affinity().as_ref()),
    )?;
    let (parent, child) = socketpair()?;
    let (pid, in_cgroup) = if plan.direct() {
        // SAFETY: husk never starts threads (create runs single-threaded);
        // the namespace flags from the plan never include CLONE_VM.
        let (pid, in_cgroup) =
            unsafe { clone_child(plan.clone_flags as libc::c_ulong, cgroup_dir.as_ref(), "the init") }
                .errno()
                .context("clone the container init")?;
        if pid == 0 {
            drop(parent);
            // Not the container's business: no host directory fd in the init.
            drop(cgroup_dir);
            child_main(o, &steps, child);
        }
        (pid, in_cgroup)
    } else {
        // SAFETY: husk never starts threads; no flags: a plain fork.
        let ipid = unsafe { sys::fork_clone(0) }
            .errno()
            .context("fork the intermediate process")?;
        if ipid == 0 {
            drop(parent);
            intermediate_main(o, &plan, &steps, child, cgroup_dir);
        }
        let r = recv_msg(&parent);
        // The intermediate exits right after reporting; reap it.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(ipid), None);
        match r? {
            Some(Msg::Pid { pid, cgroup }) => (pid, cgroup),
            Some(Msg::Error(m)) => bail!("{m}"),
            Some(m) => bail!(
                "expected {} from the intermediate process, received {}",
                Kind::Pid.describe(),
                m.describe()
            ),
            None => bail!("the intermediate process exited without reporting the init's pid"),
        }
    };
    drop(cgroup_dir);
    drop(child);
    match drive(
        o, &plan, &steps, pid, in_cgroup, &parent, on_clone, on_hooks, hook_state,
    ) {
        Ok(()) => Ok(Spawned { pid, sock: parent }),
        Err(e) => {
            kill_and_reap(pid);
            Err(e)
        }
    }
}

/// The intermediate's `P` report: `pid`, or `pid cgroup` when the init
/// was cloned into its cgroup.
fn parse_pid_report(s: &str) -> Result<(i32, bool)> {
    let mut it = s.split_whitespace();
    let pid = it
        .next()
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| anyhow!("bad pid {s:?} from the intermediate process"))?;
    match (it.next(), it.next()) {
        (None, None) => Ok((pid, false)),
        (Some("cgroup"), None) => Ok((pid, true)),
        _ => bail!("bad pid report {s:?} from the intermediate process"),
    }
}

pub fn kill_and_reap(pid: i32) {
    let p = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(p, None);
}

/// A send failed because the init's end is closed (it exited).
fn peer_gone(e: &anyhow::Error) -> bool {
    e.downcast_ref::<nix::errno::Errno>()
        .is_some_and(|e| matches!(e, nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET))
}

/// The `E` text an init that closed its end sent before, if any.
fn last_words(sock: &OwnedFd) -> Option<String> {
    loop {
        match recv_msg(sock) {
            Ok(Some(Msg::Error(m))) => return Some(m),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

/// husk's own steps of a create, as the `--debug` timeline and `husk plan`
/// name them.
pub const STEP_ID_MAPS: &str = "write uid_map and gid_map";
pub const STEP_IDMAP_TREES: &str = "make the id-mapped trees in the init's mount namespace";
pub const STEP_BIND_SOURCES: &str = "open the bind sources on the host side";
pub const STEP_IN_CGROUP: &str = "oom_score_adj (init cloned into its cgroup)";
pub const STEP_JOIN_CGROUP: &str = "join cgroup, oom_score_adj";

#[allow(clippy::too_many_arguments)]
fn drive(
    o: &SpawnOpts,
    plan: &Plan,
    steps: &crate::plan::Plan,
    pid: i32,
    in_cgroup: bool,
    sock: &OwnedFd,
    on_clone: &mut dyn FnMut(i32, bool) -> Result<()>,
    on_hooks: &mut dyn FnMut(i32) -> Result<()>,
    hook_state: &dyn Fn(i32) -> String,
) -> Result<()> {
    crate::debug!(
        "cloned the init: pid {pid}, namespaces {:#x}{}",
        plan.clone_flags,
        if in_cgroup { ", in its cgroup" } else { "" }
    );
    if plan.new_ns(LinuxNamespaceType::User) {
        step(
            STEP_ID_MAPS,
            || format!("pid {pid}"),
            || write_id_maps(&o.bundle.spec, pid),
        )?;
    }
    if crate::idmap::any(&o.bundle.spec) {
        step(
            STEP_IDMAP_TREES,
            || format!("pid {pid}"),
            || {
                for (i, fd) in crate::idmap::make_trees(&o.bundle.spec, pid)? {
                    crate::tty::send_fd(sock, &Msg::Fd(i).encode(), &fd)
                        .context("send an id-mapped tree to the init")?;
                }
                Ok::<(), anyhow::Error>(())
            },
        )?;
    }
    // linux.netDevices: into the init's network namespace before it goes on.
    crate::netdev::move_devices(&o.bundle.spec, pid)?;
    // The bind sources the plan says husk opens (a user namespace, husk root).
    let from_husk = husk_bind_sources(steps);
    if !from_husk.is_empty() {
        step(
            STEP_BIND_SOURCES,
            || format!("pid {pid}"),
            || {
                for (i, fd) in crate::rootfs::open_bind_sources(&from_husk, pid)? {
                    crate::tty::send_fd(sock, &Msg::Fd(i).encode(), &fd)
                        .context("send a bind source fd to the init")?;
                }
                Ok::<(), anyhow::Error>(())
            },
        )?;
    }
    let st = if o.has_container_hooks {
        hook_state(pid)
    } else {
        String::new()
    };
    // The init starts its mounts while the cgroup join (a slow write: the
    // kernel waits for an RCU grace period) happens here; it waits for 'C'
    // before anything that needs the cgroup: a cgroup mount, its cgroup
    // namespace, hooks, and reporting ready (so before any exec). An init
    // cloned into its cgroup is there already: only oom_score_adj is left.
    if let Err(e) = send_msg(sock, &Msg::Go(st.into_bytes())) {
        // The init already failed and closed its end: its 'E' says why.
        if peer_gone(&e)
            && let Some(m) = last_words(sock)
        {
            bail!("{m}");
        }
        return Err(e);
    }
    let what = if in_cgroup { STEP_IN_CGROUP } else { STEP_JOIN_CGROUP };
    step(what, || format!("pid {pid}"), || on_clone(pid, in_cgroup))?;
    // In its cgroup now: the CPUs of its cpuset, not husk's affinity
    // (unless the config sets execCPUAffinity, applied around the clone
    // and before exec).
    let affinity = o
        .bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.exec_cpu_affinity().as_ref());
    if !crate::process_attrs::affinity_configured(affinity) {
        crate::process_attrs::reset_affinity(pid);
    }
    // If the init already failed (its end is closed), its 'E' is read
    // below; any other failure to send is ours: the init would wait for
    // 'C' forever.
    if let Err(e) = send_msg(sock, &Msg::InCgroup)
        && !peer_gone(&e)
    {
        return Err(e);
    }
    loop {
        match recv_msg(sock)? {
            Some(Msg::Ready) => return Ok(()),
            Some(Msg::RunHooks) => {
                on_hooks(pid)?;
                send_msg(sock, &Msg::HooksDone)?;
            }
            Some(Msg::Error(m)) => bail!("{m}"),
            Some(m) => bail!(
                "expected {} or {} from the container init, received {}",
                Kind::Ready.describe(),
                Kind::RunHooks.describe(),
                m.describe()
            ),
            None => {
                let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                bail!("the container init exited during setup without reporting an error ({st:?})")
            }
        }
    }
}

/// One write of the init's id maps: a file under `/proc/<init>/` with its
/// content, or a setuid helper (newuidmap/newgidmap) with its arguments
/// after the pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMapWrite {
    File { name: &'static str, content: String },
    Helper { tool: &'static str, args: Vec<String> },
}

/// How husk (euid `euid`, egid `egid`) writes the maps of the config's
/// user namespace, in order. Root writes both files. A non-root husk may
/// write only a map of its own ids (and must deny setgroups first);
/// anything wider goes through newuidmap/newgidmap (package uidmap), which
/// check /etc/subuid and /etc/subgid. setgroups and gid_map first, uid_map
/// last: once uid_map is written, the init's other /proc files may no
/// longer be ours to open (seen in about a third of the runs here).
pub fn id_map_writes(linux: &oci_spec::runtime::Linux, euid: u32, egid: u32) -> Vec<IdMapWrite> {
    type Maps = Option<Vec<oci_spec::runtime::LinuxIdMapping>>;
    let text = |m: &Maps| {
        m.iter()
            .flatten()
            .map(|x| format!("{} {} {}\n", x.container_id(), x.host_id(), x.size()))
            .collect::<String>()
    };
    let file = |name, m: &Maps| IdMapWrite::File { name, content: text(m) };
    if euid == 0 {
        return vec![
            file("uid_map", linux.uid_mappings()),
            file("gid_map", linux.gid_mappings()),
        ];
    }
    let own = |m: &Maps, id: u32| {
        m.as_ref()
            .is_some_and(|v| v.len() == 1 && v[0].size() == 1 && v[0].host_id() == id)
    };
    let helper = |tool, m: &Maps| IdMapWrite::Helper {
        tool,
        args: m
            .iter()
            .flatten()
            .flat_map(|x| [x.container_id(), x.host_id(), x.size()].map(|n| n.to_string()))
            .collect(),
    };
    let mut out = Vec::new();
    if own(linux.gid_mappings(), egid) {
        out.push(IdMapWrite::File {
            name: "setgroups",
            content: "deny".into(),
        });
        out.push(file("gid_map", linux.gid_mappings()));
    } else {
        out.push(helper("newgidmap", linux.gid_mappings()));
    }
    if own(linux.uid_mappings(), euid) {
        out.push(file("uid_map", linux.uid_mappings()));
    } else {
        out.push(helper("newuidmap", linux.uid_mappings()));
    }
    out
}

fn write_id_maps(spec: &Spec, pid: i32) -> Result<()> {
    let linux = spec.linux().as_ref().context("no linux section")?;
    let writes = id_map_writes(linux, nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    for w in writes {
        match w {
            IdMapWrite::File { name, content } => {
                let p = format!("/proc/{pid}/{name}");
                std::fs::write(&p, &content)
                    .errno()
                    .with_context(|| format!("write {content:?} to {p}"))?;
            }
            IdMapWrite::Helper { tool, args } => {
                let st = std::process::Command::new(tool)
                    .arg(pid.to_string())
                    .args(&args)
                    .status()
                    .with_context(|| {
                        format!("run {tool} for an id mapping wider than your own id (install the uidmap package)")
                    })?;
                if !st.success() {
                    bail!("{tool} failed ({st}): check /etc/subuid and /etc/subgid for this user");
                }
            }
        }
    }
    Ok(())
}

/// The bind mounts whose sources husk opens on the host side and sends to
/// the init (a user namespace, husk root: [`crate::plan::BindSource::FromHusk`]),
/// as (mount index, step, source).
pub fn husk_bind_sources(steps: &crate::plan::Plan) -> Vec<(usize, &crate::plan::MountStep, &Path)> {
    steps
        .steps
        .iter()
        .filter_map(|s| match s {
            PlanStep::Mount(m) => match &m.op {
                crate::plan::MountOp::Bind {
                    source: crate::plan::BindSource::FromHusk(src),
                    ..
                } => Some((m.index, &**m, src.as_path())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn intermediate_main(
    o: &SpawnOpts,
    plan: &Plan,
    steps: &crate::plan::Plan,
    sock: OwnedFd,
    cgroup_dir: Option<UnifiedDir>,
) -> ! {
    match intermediate_clone(o, plan, steps, &sock, cgroup_dir) {
        Ok((pid, cgroup)) => {
            let _ = send_msg(&sock, &Msg::Pid { pid, cgroup });
            sys::exit_now(0)
        }
        Err(e) => {
            let _ = send_msg(&sock, &Msg::Error(format!("{e:#}")));
            sys::exit_now(1)
        }
    }
}

/// In the intermediate: join the namespaces, then clone the init (into its
/// cgroup when `cgroup_dir` is given and the kernel agrees: clone3 checks
/// the cgroup with the intermediate's credentials and cgroup namespace,
/// after the joins, and a refusal falls back to husk's cgroup.procs write).
fn intermediate_clone(
    o: &SpawnOpts,
    plan: &Plan,
    steps: &crate::plan::Plan,
    sock: &OwnedFd,
    cgroup_dir: Option<UnifiedDir>,
) -> Result<(i32, bool)> {
    namespaces::join_all(&plan.joins)?;
    if plan.new_time {
        namespaces::unshare_time(&plan.time_offsets)?;
    }
    let flags = plan.clone_flags as libc::c_ulong | libc::CLONE_PARENT as libc::c_ulong;
    // SAFETY: the intermediate process is single-threaded (a fork of
    // single-threaded husk); the flags are namespaces and CLONE_PARENT.
    let (pid, in_cgroup) = unsafe { clone_child(flags, cgroup_dir.as_ref(), "the init") }
        .errno()
        .context("clone the container init")?;
    if pid == 0 {
        drop(cgroup_dir);
        // The init's own copy of the sync socket; when even that fails
        // (EMFILE), it says so over the inherited one before it exits.
        match sock.try_clone() {
            Ok(own) => child_main(o, steps, own),
            Err(e) => {
                let _ = send_msg(
                    sock,
                    &Msg::Error(format!("the init: duplicate the sync socket: {}", sys::errno_text(&e))),
                );
                sys::exit_now(1)
            }
        }
    }
    Ok((pid, in_cgroup))
}

use crate::namespaces;

// ---- the executor (container side) ----------------------------------------

/// What the executor works with in a child that will exec a container
/// process: the init (with [`SpawnOpts`]) or an exec process.
pub struct Child<'a> {
    pub sock: &'a OwnedFd,
    /// husk's fds this child inherited and must close first.
    pub host_fds: Vec<std::os::fd::RawFd>,
    pub linux: Option<&'a oci_spec::runtime::Linux>,
    /// The init's options; None in an exec process.
    pub init: Option<&'a SpawnOpts<'a>>,
    /// (exec) the container's namespaces to join, user first.
    pub ns_fds: &'a [(&'a str, libc::c_int, OwnedFd)],
    /// (exec, a user without privileges) the pid and time namespaces husk
    /// could not join before the fork: joined after the user namespace,
    /// then the exec process forks once more and reports the new pid (`P`).
    pub late_ns_fds: &'a [(&'a str, libc::c_int, OwnedFd)],
    /// (exec) where the pty master goes, and the process's console size.
    pub console_conn: Option<OwnedFd>,
    pub console_size: Option<oci_spec::runtime::Box>,
    state: Vec<u8>,
    bind_sources: Vec<(usize, OwnedFd)>,
    filter: Option<crate::seccomp::Filter>,
    root: Option<OwnedFd>,
    peer: Option<OwnedFd>,
    exec: Option<Exec>,
    process_env: Vec<String>,
}

impl<'a> Child<'a> {
    pub fn new(sock: &'a OwnedFd, linux: Option<&'a oci_spec::runtime::Linux>) -> Child<'a> {
        Child {
            sock,
            host_fds: Vec::new(),
            linux,
            init: None,
            ns_fds: &[],
            late_ns_fds: &[],
            console_conn: None,
            console_size: None,
            state: Vec::new(),
            bind_sources: Vec::new(),
            filter: None,
            root: None,
            peer: None,
            exec: None,
            process_env: Vec::new(),
        }
    }

    fn root(&self) -> Result<&OwnedFd> {
        self.root.as_ref().context("the plan mounts before binding the rootfs")
    }

    fn opts(&self) -> Result<&'a SpawnOpts<'a>> {
        self.init.context("an init step in a plan for an exec process")
    }
}

/// Run a plan's steps in order, each named in the `--debug` timeline;
/// the last one execs (returns only with an error).
pub fn execute(cx: &mut Child, plan: &crate::plan::Plan) -> Result<std::convert::Infallible> {
    cx.process_env = plan
        .steps
        .iter()
        .find_map(|s| match s {
            PlanStep::Executable { env, .. } => Some(dedup_env(env)),
            _ => None,
        })
        .unwrap_or_default();
    for s in &plan.steps {
        if let PlanStep::Exec { .. } = s {
            return exec_step(cx);
        }
        step(s.name(), || s.target(), || run_step(cx, s))?;
    }
    bail!("the plan has no exec step")
}

fn run_step(cx: &mut Child, s: &PlanStep) -> Result<()> {
    use crate::plan::HookKind;
    match s {
        PlanStep::CloseHostFds => {
            for fd in cx.host_fds.drain(..) {
                close_host_dir(fd);
            }
        }
        PlanStep::DeathSignal => {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).context("set the parent death signal")?
        }
        PlanStep::NewSession => new_session()?,
        PlanStep::NonDumpable => nix::sys::prctl::set_dumpable(false).context("make the process non-dumpable")?,
        PlanStep::CloseOnExec => crate::fds::pass_on_exec().context("mark inherited fds close-on-exec")?,
        PlanStep::AwaitGo => {
            // Bind sources husk opened for us ('F' index + fd), then 'G'.
            loop {
                let mut tag = [0u8; 1];
                match nix::sys::socket::recv(cx.sock.as_raw_fd(), &mut tag, nix::sys::socket::MsgFlags::MSG_PEEK) {
                    Ok(1) if tag[0] == b'F' => {
                        let (msg, fd) = crate::tty::recv_fd(cx.sock).context("receive a bind source fd")?;
                        match Msg::decode(&msg)? {
                            Msg::Fd(i) => cx.bind_sources.push((i, fd)),
                            other => bail!("expected a bind source (F) from husk, received {}", other.describe()),
                        }
                        continue;
                    }
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e).context("wait for husk's go-ahead (G) on the sync channel"),
                }
                match expect(cx.sock, Kind::Go, "husk")? {
                    Msg::Go(st) => {
                        cx.state = st;
                        break;
                    }
                    other => bail!(
                        "expected {} from husk, received {}",
                        Kind::Go.describe(),
                        other.describe()
                    ),
                }
            }
        }
        PlanStep::SeccompListener { .. } => {
            if let Some(sc) = cx.linux.and_then(|l| l.seccomp().as_ref()) {
                let st = String::from_utf8_lossy(&cx.state).into_owned();
                let pid = serde_json::from_str::<serde_json::Value>(&st)
                    .ok()
                    .and_then(|v| v["pid"].as_i64())
                    .and_then(|p| i32::try_from(p).ok())
                    .unwrap_or(0);
                crate::seccomp::connect_listener(sc, &st, pid)?;
            }
        }
        PlanStep::JoinNamespaces => {
            for (name, flag, fd) in cx.ns_fds {
                nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::from_bits_retain(*flag))
                    .with_context(|| format!("setns into the container's {name} namespace"))?;
            }
            if !cx.late_ns_fds.is_empty() {
                // in the container's user namespace now, with its capabilities
                for (name, flag, fd) in cx.late_ns_fds {
                    nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::from_bits_retain(*flag))
                        .with_context(|| format!("setns into the container's {name} namespace"))?;
                }
                // SAFETY: the exec process is single-threaded (forked from
                // husk, which never starts threads); the child returns here.
                let gpid = unsafe { sys::fork_clone(0) }
                    .errno()
                    .context("fork the exec process in the container's pid namespace")?;
                if gpid != 0 {
                    // the intermediate: tell husk, and leave the grandchild to it
                    let _ = send_msg(
                        cx.sock,
                        &Msg::Pid {
                            pid: gpid,
                            cgroup: false,
                        },
                    );
                    sys::exit_now(0);
                }
                // a session of its own again (a terminal becomes its controlling one)
                new_session()?;
            }
            if cx.ns_fds.iter().any(|(n, _, _)| *n == "user") {
                nix::unistd::setresgid(0.into(), 0.into(), 0.into()).context("setresgid(0) in the user namespace")?;
                nix::unistd::setresuid(0.into(), 0.into(), 0.into()).context("setresuid(0) in the user namespace")?;
            }
        }
        PlanStep::BecomeRoot { gid, uid } => {
            if *gid {
                nix::unistd::setresgid(0.into(), 0.into(), 0.into()).context("setresgid(0) in the user namespace")?;
            }
            if *uid {
                nix::unistd::setresuid(0.into(), 0.into(), 0.into()).context("setresuid(0) in the user namespace")?;
            }
        }
        PlanStep::Umask { mask } => {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(*mask as libc::mode_t));
        }
        PlanStep::Hostname { name } => {
            nix::unistd::sethostname(name).with_context(|| format!("set hostname {name:?}"))?
        }
        PlanStep::Domainname { name } => set_domainname(name)?,
        PlanStep::SessionKeyring { name } => join_session_keyring(name),
        PlanStep::LoopbackUp => namespaces::loopback_up()?,
        PlanStep::AwaitCgroup { unshare_cgroup_ns } => {
            expect(cx.sock, Kind::InCgroup, "husk")?;
            if *unshare_cgroup_ns {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).context("unshare the cgroup namespace")?;
            }
        }
        PlanStep::RootPropagation { flags } => crate::rootfs::root_propagation(flags.0)?,
        PlanStep::BindRootfs { path } => cx.root = Some(crate::rootfs::bind_rootfs(path)?),
        PlanStep::Mount(m) => crate::rootfs::mount(cx.root()?, m, &cx.bind_sources)?,
        PlanStep::Device(d) => crate::rootfs::make_device(cx.root()?, d)?,
        PlanStep::DevSymlinks { links } => crate::rootfs::dev_symlinks(cx.root()?, links)?,
        PlanStep::Cwd { path } => crate::rootfs::make_cwd(cx.root()?, path)?,
        PlanStep::Mask { path } => crate::rootfs::mask_path(cx.root()?, path)?,
        PlanStep::ReadOnly { path } => crate::rootfs::readonly_path(cx.root()?, path)?,
        PlanStep::Sysctl { key, path, value } => crate::rootfs::write_sysctl(key, path, value)?,
        PlanStep::BindNotify { source, destination } => {
            crate::rootfs::bind_into(&cx.opts()?.bundle.rootfs, source, destination)
                .context("bind the sd_notify socket directory into the container")?
        }
        PlanStep::Hooks {
            kind: HookKind::CreateRuntime,
            ..
        } => {
            send_msg(cx.sock, &Msg::RunHooks)?;
            expect(cx.sock, Kind::HooksDone, "husk")?;
        }
        PlanStep::Hooks {
            kind: HookKind::CreateContainer,
            ..
        } => {
            let o = cx.opts()?;
            if let Some(h) = o
                .bundle
                .spec
                .hooks()
                .as_ref()
                .and_then(|h| h.create_container().as_ref())
            {
                // A hook without env gets the container process's (runc's init has it then).
                crate::hooks::run_all(
                    "createContainer",
                    h,
                    &String::from_utf8_lossy(&cx.state),
                    Some(&cx.process_env),
                )?;
            }
        }
        PlanStep::ConnectConsole { socket } => cx.console_conn = Some(crate::tty::connect(socket)?),
        PlanStep::Refuse { reason } => bail!("{reason}"),
        PlanStep::Pivot { how } => crate::rootfs::pivot(&cx.opts()?.bundle.rootfs, *how)?,
        PlanStep::ConsolePty | PlanStep::BindConsole => {
            let conn = cx.console_conn.take().context("no console socket connected")?;
            let size = match cx.init {
                Some(o) => o.bundle.spec.process().as_ref().and_then(|p| p.console_size()),
                None => cx.console_size,
            };
            let peer = crate::tty::setup_console_size(conn, size)?;
            if let PlanStep::BindConsole = s {
                crate::rootfs::bind_console(&peer)?;
            }
            cx.peer = Some(peer);
        }
        PlanStep::ReadOnlyRoot => crate::rootfs::read_only_root()?,
        PlanStep::FinalPropagation { word, flags } => crate::rootfs::final_propagation(word, flags.0)?,
        PlanStep::ReopenDevNull => crate::rootfs::reopen_dev_null()?,
        PlanStep::SeccompBuild(_) => {
            cx.filter = cx
                .linux
                .and_then(|l| l.seccomp().as_ref())
                .map(crate::seccomp::build)
                .transpose()?;
        }
        PlanStep::ProcessAttrs { process: p, .. } => {
            if let Some(s) = p.scheduler() {
                crate::process_attrs::scheduler(s)?;
            }
            if let Some(io) = p.io_priority() {
                crate::process_attrs::io_priority(io)?;
            }
            if let Some(m) = cx.linux.and_then(|l| l.memory_policy().as_ref()) {
                crate::process_attrs::memory_policy(m)?;
            }
            if let Some(pers) = cx.linux.and_then(|l| l.personality().as_ref()) {
                crate::process_attrs::personality(pers)?;
            }
        }
        PlanStep::Rlimits { rlimits } => set_rlimits(rlimits)?,
        PlanStep::Executable {
            args,
            env,
            uid,
            final_cpus,
        } => {
            let mut e = find_executable(args, env, *uid)?;
            e.seccomp = cx.filter.take();
            e.final_cpus = final_cpus.clone();
            cx.exec = Some(e);
        }
        PlanStep::Bounding { mask, .. } => {
            crate::capabilities::drop_bounding(*mask)?;
            nix::sys::prctl::set_keepcaps(true).context("set keepcaps")?;
        }
        PlanStep::Ids {
            uid,
            gid,
            additional_gids,
        } => set_ids(*uid, *gid, additional_gids)?,
        PlanStep::Chdir { cwd } => chdir_inside_root(cwd)?,
        PlanStep::Capabilities {
            after_seccomp, masks, ..
        } => {
            if *after_seccomp {
                cx.exec
                    .as_mut()
                    .context("capabilities before the executable step")?
                    .caps = Some(*masks);
            } else {
                crate::capabilities::apply(masks)?;
            }
        }
        PlanStep::ExecLabels {
            apparmor_profile,
            selinux_label,
        } => {
            if let Some(profile) = apparmor_profile {
                crate::lsm::apparmor_exec(profile)?;
            }
            if let Some(label) = selinux_label {
                crate::lsm::selinux_exec(label)?;
            }
        }
        PlanStep::NoNewPrivileges => nix::sys::prctl::set_no_new_privs().context("set no_new_privs")?,
        PlanStep::ControllingTerminal => {
            if let Some(peer) = cx.peer.take() {
                crate::tty::make_controlling(peer)?;
            }
        }
        PlanStep::SeccompEarly => {
            if let Some(e) = cx.exec.as_mut() {
                load_seccomp_early(e)?;
            }
        }
        PlanStep::Ready => {
            // Clear the death signal first: husk exits once it has
            // recorded the state, and the init must outlive it. If husk
            // died in between, the 'A' below never comes (EOF).
            nix::sys::prctl::set_pdeathsig(None).context("clear the parent death signal")?;
            send_msg(cx.sock, &Msg::Ready)?;
            if cx.init.is_some() {
                expect(cx.sock, Kind::Ack, "husk")?;
            }
        }
        PlanStep::Exec { .. } => bail!("exec is the last step"),
    }
    Ok(())
}

/// The last step: an exec process execs at once; the init waits for
/// `start` on exec.sock first and writes the outcome to it.
fn exec_step(cx: &mut Child) -> Result<std::convert::Infallible> {
    let Some(o) = cx.init else {
        let exec = cx.exec.take().context("no process to exec")?;
        return do_exec(exec);
    };
    crate::debug!("init ready, waiting for start");
    let listener = o.exec_listener.as_raw_fd();
    let conn = loop {
        // SAFETY: accept4 on our listening socket; addresses are not wanted.
        let r = unsafe { libc::accept4(listener, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
        if r >= 0 {
            // SAFETY: accept4 returned a new fd that we own.
            break unsafe { OwnedFd::from_raw_fd(r) };
        }
        // Nobody hears an error now (create has returned): a failure the
        // kernel gives for a connection that went away, or for a moment
        // of fd or memory pressure, is retried (after a pause for the
        // latter), as servers do; anything else ends the init (start
        // then reports a stopped container).
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR | libc::ECONNABORTED | libc::EPROTO) => {}
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => sys::exit_now(1),
        }
    };
    let mut conn = std::fs::File::from(conn);
    crate::debug!("start: executing the entrypoint");
    let _ = conn.write_all(&[Msg::Started.tag()]);
    let r = start_process(&o.bundle.spec, cx.exec.take(), &cx.state);
    let msg = match r {
        Err(e) => format!("{e:#}"),
        Ok(never) => match never {},
    };
    let _ = conn.write_all(msg.as_bytes());
    sys::exit_now(127)
}

fn child_main(o: &SpawnOpts, plan: &crate::plan::Plan, sock: OwnedFd) -> ! {
    let mut cx = Child::new(&sock, o.bundle.spec.linux().as_ref());
    cx.init = Some(o);
    cx.host_fds = o.lock_fd.into_iter().chain([o.state_dir]).collect();
    match execute(&mut cx, plan) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = send_msg(&sock, &Msg::Error(format!("{e:#}")));
            sys::exit_now(1)
        }
    }
}

/// Close the copy of husk's state directory fd that a cloned child (the
/// init, an exec process) inherited: it leads to the host's filesystem
/// and the child never needs it. The child is non-dumpable, but a process
/// in the container holding CAP_SYS_PTRACE in the host's user namespace
/// (no user namespace of its own) could still open /proc/<child>/fd/N —
/// for as long as the init waits for start, once exec may run beside a
/// created container. (husk's flock stays: the lock belongs to the open
/// file description, which husk still holds.)
pub fn close_host_dir(fd: std::os::fd::RawFd) {
    // SAFETY: closing an fd number this child inherited and never uses;
    // no OwnedFd in this process names it (husk's own lives in the parent).
    unsafe { libc::close(fd) };
}

/// What the init needs to exec, prepared before `ready` so that mistakes
/// surface in `create`.
pub struct Exec {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    /// The seccomp filter, loaded right before execve (or, for a seccomp
    /// agent, by the init during create: [`load_seccomp_early`]).
    seccomp: Option<crate::seccomp::Filter>,
    /// Signal dispositions and mask already reset (before an early filter).
    signals_reset: bool,
    /// The five capability sets when they are still to apply: a filter
    /// loaded without no_new_privs needs CAP_SYS_ADMIN until right before
    /// execve.
    caps: Option<crate::capabilities::Masks>,
    /// execCPUAffinity.final, applied right before execve.
    final_cpus: Option<String>,
}

fn start_process(spec: &Spec, exec: Option<Exec>, hook_state: &[u8]) -> Result<std::convert::Infallible> {
    let exec = exec.context("cannot start a container that has no process (config.json has no \"process\")")?;
    if let Some(h) = spec.hooks().as_ref().and_then(|h| h.start_container().as_ref()) {
        // A hook without env gets the process's, as it will exec.
        let env: Vec<String> = exec.env.iter().map(|e| e.to_string_lossy().into_owned()).collect();
        crate::hooks::run_all("startContainer", h, &String::from_utf8_lossy(hook_state), Some(&env))?;
    }
    do_exec(exec)
}

/// The last steps before execve, in this order: CPU affinity, signals
/// reset, then the seccomp filter (with the capability sets still to
/// apply), so that after the filter only capset (without no_new_privs)
/// and execve remain. Returns only with an error.
pub fn do_exec(mut exec: Exec) -> Result<std::convert::Infallible> {
    if let Some(cpus) = &exec.final_cpus {
        crate::process_attrs::set_affinity(cpus).context("process.execCPUAffinity.final")?;
    }
    if !exec.signals_reset {
        sys::reset_signals()
            .errno()
            .context("reset signal dispositions and mask before exec")?;
    }
    load_seccomp(&mut exec)?;
    let argv: Vec<&std::ffi::CStr> = exec.args.iter().map(|a| a.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = exec.env.iter().map(|a| a.as_c_str()).collect();
    let e = match nix::unistd::execve(&exec.path, &argv, &envp) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(exec_error(&exec.args[0].to_string_lossy(), e))
}

/// Load the seccomp filter, if any is still to load, and apply the
/// capability sets that waited for it.
fn load_seccomp(exec: &mut Exec) -> Result<()> {
    let Some(f) = exec.seccomp.take() else { return Ok(()) };
    if let Some(caps) = exec.caps.take() {
        // Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a
        // filter: the permitted capabilities are made effective for
        // the load, and the final sets applied right after it.
        let (_, permitted, inheritable) = sys::capget().errno().context("capget")?;
        sys::capset(permitted, permitted, inheritable)
            .errno()
            .context("raise the effective capabilities to load seccomp")?;
        crate::seccomp::load(&f)?;
        crate::capabilities::apply(&caps)?;
    } else {
        crate::seccomp::load(&f)?;
    }
    Ok(())
}

/// A filter whose notify fd goes to a seccomp agent is loaded by the init
/// during `create`, before it reports ready (as runc loads it before it
/// waits for start), so that `create` returns once the agent has the fd:
/// an agent may wait for the fd before its caller runs `start`. Signals
/// are reset first (a profile may deny rt_sigaction); everything the init
/// does afterwards — the sync socket, waiting for start, startContainer
/// hooks, execCPUAffinity.final, execve — runs under the filter.
fn load_seccomp_early(exec: &mut Exec) -> Result<()> {
    if !exec.seccomp.as_ref().is_some_and(crate::seccomp::Filter::has_listener) {
        return Ok(());
    }
    sys::reset_signals()
        .errno()
        .context("reset signal dispositions and mask before loading seccomp")?;
    exec.signals_reset = true;
    load_seccomp(exec)
}

fn exec_error(arg0: &str, e: nix::errno::Errno) -> anyhow::Error {
    let mut msg = format!("exec: {arg0:?}: {}", e.desc().to_lowercase());
    if e == nix::errno::Errno::ENOENT
        && let Some(interp) = missing_interpreter(Path::new(arg0))
    {
        msg.push_str(&format!(
            " (hint: {arg0} exists, but the program it needs to start, {interp}, is missing from the container's root filesystem)"
        ));
    }
    anyhow!(msg)
}

/// For an existing file whose exec failed with ENOENT: the interpreter it
/// names (the ELF PT_INTERP, or a script's #! line) when that is missing.
pub fn missing_interpreter(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut data = Vec::with_capacity(4096);
    std::fs::File::open(path).ok()?.take(4096).read_to_end(&mut data).ok()?;
    let interp = interpreter_of(&data)?;
    if Path::new(&interp).exists() {
        None
    } else {
        Some(interp)
    }
}

/// The interpreter named by an executable image: `#!` line or ELF PT_INTERP
/// (64- and 32-bit little-endian).
pub fn interpreter_of(data: &[u8]) -> Option<String> {
    if let Some(rest) = data.strip_prefix(b"#!") {
        let line = rest.split(|b| *b == b'\n').next()?;
        let s = String::from_utf8_lossy(line);
        return s.split_whitespace().next().map(str::to_string);
    }
    if data.len() < 52 || &data[..4] != b"\x7fELF" || data[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| {
        Some(usize::from(u16::from_le_bytes(
            data.get(o..o.checked_add(2)?)?.try_into().ok()?,
        )))
    };
    let u32_at = |o: usize| usize::try_from(u32::from_le_bytes(data.get(o..o.checked_add(4)?)?.try_into().ok()?)).ok();
    let u64_at = |o: usize| usize::try_from(u64::from_le_bytes(data.get(o..o.checked_add(8)?)?.try_into().ok()?)).ok();
    let is64 = data[4] == 2;
    let (phoff, phentsize, phnum) = if is64 {
        (u64_at(32)?, u16_at(54)?, u16_at(56)?)
    } else {
        (u32_at(28)?, u16_at(42)?, u16_at(44)?)
    };
    // Offsets come from the file (the container image): checked arithmetic.
    for i in 0..phnum.min(64) {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? == 3 {
            // PT_INTERP
            let (off, size) = if is64 {
                (u64_at(ph.checked_add(8)?)?, u64_at(ph.checked_add(32)?)?)
            } else {
                (u32_at(ph.checked_add(4)?)?, u32_at(ph.checked_add(16)?)?)
            };
            let raw = data.get(off..off.checked_add(size)?)?;
            let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            return Some(String::from_utf8_lossy(&raw[..end]).into_owned());
        }
    }
    None
}

/// A session and process group of its own for the container's process
/// (init or exec), with or without a terminal, as runc's init and exec
/// processes have: its process group then exists inside the container
/// (getpgrp() is its own pid there, not 0 for a group outside the pid
/// namespace), and a terminal can become its controlling one.
pub fn new_session() -> Result<()> {
    nix::unistd::setsid().context("setsid: a session of its own for the container process")?;
    Ok(())
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: pointer and length of a valid byte buffer.
    let r = unsafe { libc::setdomainname(d.as_ptr() as *const libc::c_char, d.len()) };
    if r != 0 {
        return Err(sys::os_error(std::io::Error::last_os_error())).with_context(|| format!("set domainname {d:?}"));
    }
    Ok(())
}

fn join_session_keyring(name: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let Ok(name) = CString::new(name) else {
        return;
    };
    // SAFETY: keyctl with a valid C string; failure only means no new keyring.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        crate::debug!(
            "no new session keyring: {}",
            sys::errno_text(&std::io::Error::last_os_error())
        );
    }
}

fn set_rlimits(rlimits: &[crate::plan::Rlimit]) -> Result<()> {
    for r in rlimits {
        let lim = libc::rlimit {
            rlim_cur: r.soft,
            rlim_max: r.hard,
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(r.resource, &lim) } != 0 {
            return Err(sys::os_error(std::io::Error::last_os_error()))
                .with_context(|| format!("setrlimit {:?} soft {} hard {}", r.typ, r.soft, r.hard));
        }
    }
    Ok(())
}

/// The program to exec: the env as the process will see it, the
/// executable found in its PATH (before `ready`, so that mistakes
/// surface in `create`).
fn find_executable(args: &[String], env: &[String], uid: u32) -> Result<Exec> {
    let arg0 = args.first().context("process.args must not be empty")?;
    let mut env = dedup_env(env);
    // Socket activation: LISTEN_PID must name the process as it sees itself.
    if env.iter().any(|e| e.starts_with("LISTEN_FDS=")) {
        set_env(&mut env, "LISTEN_PID", &nix::unistd::getpid().to_string());
    }
    // As runc: HOME from the container's passwd when unset or empty.
    if !env
        .iter()
        .any(|e| e.strip_prefix("HOME=").is_some_and(|h| !h.is_empty()))
    {
        set_env(&mut env, "HOME", &crate::lookup::home_of(uid));
    }
    let path = look_path(arg0, crate::lookup::path_var(&env))?;
    // The classic "no such file or directory" for a binary that exists:
    // say so at create, naming what is missing.
    if missing_interpreter(&path).is_some() {
        return Err(exec_error(&path.to_string_lossy(), nix::errno::Errno::ENOENT));
    }
    let cs = |s: &str, what: &str| CString::new(s).map_err(|_| anyhow!("{what} {s:?} contains a NUL byte"));
    Ok(Exec {
        path: cs(&path.to_string_lossy(), "executable path")?,
        args: args
            .iter()
            .map(|a| cs(a, "process.args entry"))
            .collect::<Result<_>>()?,
        env: env.iter().map(|e| cs(e, "process.env entry")).collect::<Result<_>>()?,
        seccomp: None,
        signals_reset: false,
        caps: None,
        final_cpus: None,
    })
}

/// setgroups (unless the user namespace denies it), setresgid,
/// setresuid, with keepcaps (set by the bounding step) cleared after.
fn set_ids(uid: u32, gid: u32, additional_gids: &[u32]) -> Result<()> {
    let gids: Vec<nix::unistd::Gid> = additional_gids.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
    if setgroups_allowed() {
        nix::unistd::setgroups(&gids).with_context(|| format!("setgroups {additional_gids:?}"))?;
    }
    nix::unistd::setresgid(gid.into(), gid.into(), gid.into())
        .with_context(|| format!("setresgid {gid} (process.user.gid)"))?;
    nix::unistd::setresuid(uid.into(), uid.into(), uid.into())
        .with_context(|| format!("setresuid {uid} (process.user.uid)"))?;
    nix::sys::prctl::set_keepcaps(false).context("clear keepcaps")?;
    Ok(())
}

/// chdir(cwd), which must lie inside the container's root (CVE-2024-21626).
fn chdir_inside_root(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).map_err(|e| {
        anyhow!(
            "chdir to cwd ({:?}) set in config.json failed: {}",
            cwd,
            e.desc().to_lowercase()
        )
    })?;
    match nix::unistd::getcwd() {
        Ok(c) if c.starts_with("/") => Ok(()),
        Ok(_) => bail!("process.cwd {:?} is not inside the container root", cwd),
        Err(e) => {
            bail!("process.cwd {cwd:?}: getcwd failed ({e}): cannot check that it lies inside the container root")
        }
    }
}

/// One entry per variable, as runc's init leaves them (it sets them one
/// by one): a later `K=v` replaces the value of an earlier `K`, in the
/// earlier one's place. So `exec --env PATH=...` replaces the config's
/// PATH instead of adding a second one that getenv would not see.
pub fn dedup_env(env: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    for e in env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        match out
            .iter_mut()
            .find(|o| o.split_once('=').map_or(o.as_str(), |(k, _)| k) == key)
        {
            Some(o) => o.clone_from(e),
            None => out.push(e.clone()),
        }
    }
    out
}

/// Set `key` to `value` in `env`, in place when it is there.
fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// Find the executable like execvp would, with runc's error wording (which
/// Docker matches to report exit status 127).
pub fn look_path(arg0: &str, path_var: &str) -> Result<PathBuf> {
    let check = |p: &Path| -> std::result::Result<(), nix::errno::Errno> {
        let st = nix::sys::stat::stat(p)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(nix::errno::Errno::EISDIR);
        }
        if st.st_mode & 0o111 == 0 {
            return Err(nix::errno::Errno::EACCES);
        }
        Ok(())
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match check(&p) {
            Ok(()) => Ok(p),
            Err(e) => Err(exec_error(arg0, e)),
        };
    }
    // A candidate that exists but cannot be checked (a stat failing with
    // EACCES, EIO, ...) is named when nothing else is found: "not found"
    // would hide it.
    let mut unreadable = None;
    for p in crate::lookup::path_candidates(arg0, path_var) {
        match nix::sys::stat::stat(&p) {
            Ok(st) => {
                if st.st_mode & libc::S_IFMT != libc::S_IFDIR && st.st_mode & 0o111 != 0 {
                    return Ok(p);
                }
            }
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => {}
            Err(e) => {
                unreadable.get_or_insert((p, e));
            }
        }
    }
    if let Some((p, e)) = unreadable {
        bail!(
            "exec: {arg0:?}: executable file not found in $PATH (stat {}: {e})",
            p.display()
        );
    }
    bail!("exec: {arg0:?}: executable file not found in $PATH")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_maps_are_written_by_whom_may() {
        let linux: oci_spec::runtime::Linux = serde_json::from_str(
            r#"{"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536},
                                {"containerID": 65536, "hostID": 1000, "size": 1}]}"#,
        )
        .unwrap();
        let file = |name, content: &str| IdMapWrite::File {
            name,
            content: content.into(),
        };
        let gid = "0 100000 65536\n65536 1000 1\n";
        // root: both files, uid_map first
        assert_eq!(
            id_map_writes(&linux, 0, 0),
            [file("uid_map", "0 1000 1\n"), file("gid_map", gid)]
        );
        // uid 1000: its own uid map itself, the wider gid map through newgidmap, first
        assert_eq!(
            id_map_writes(&linux, 1000, 1000),
            [
                IdMapWrite::Helper {
                    tool: "newgidmap",
                    args: ["0", "100000", "65536", "65536", "1000", "1"]
                        .map(String::from)
                        .to_vec()
                },
                file("uid_map", "0 1000 1\n"),
            ]
        );
        // another user: setgroups denied before its own gid map, newuidmap last
        let own: oci_spec::runtime::Linux = serde_json::from_str(
            r#"{"uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]}"#,
        )
        .unwrap();
        let w = id_map_writes(&own, 2000, 2000);
        assert_eq!(w[0], file("setgroups", "deny"));
        assert_eq!(w[1], file("gid_map", "0 2000 1\n"));
        assert!(matches!(&w[2], IdMapWrite::Helper { tool: "newuidmap", .. }));
    }

    #[test]
    fn interpreters() {
        assert_eq!(interpreter_of(b"#!/bin/bash -e\necho").as_deref(), Some("/bin/bash"));
        // a dynamically linked host binary names its loader
        let ls = std::fs::read("/bin/ls").unwrap();
        assert!(interpreter_of(&ls).unwrap().contains("ld-linux"));
        // busybox-static has none
        if let Ok(bb) = std::fs::read("/bin/busybox") {
            assert_eq!(interpreter_of(&bb), None);
        }
        assert_eq!(interpreter_of(b"plain text"), None);
    }

    /// The header's offsets are the image's to choose: none may overflow.
    #[test]
    fn hostile_elf_headers_do_not_panic() {
        let elf = |phoff: u64, phentsize: u16, interp: Option<(u64, u64)>| {
            let mut d = vec![0u8; 64 + 56];
            d[..4].copy_from_slice(b"\x7fELF");
            d[4] = 2; // 64-bit
            d[5] = 1; // little-endian
            d[32..40].copy_from_slice(&phoff.to_le_bytes());
            d[54..56].copy_from_slice(&phentsize.to_le_bytes());
            d[56..58].copy_from_slice(&2u16.to_le_bytes());
            if let Some((off, size)) = interp {
                d[64..68].copy_from_slice(&3u32.to_le_bytes());
                d[72..80].copy_from_slice(&off.to_le_bytes());
                d[96..104].copy_from_slice(&size.to_le_bytes());
            }
            d
        };
        assert_eq!(interpreter_of(&elf(u64::MAX, 56, None)), None);
        assert_eq!(interpreter_of(&elf(u64::MAX - 3, u16::MAX, None)), None);
        assert_eq!(interpreter_of(&elf(64, 56, Some((u64::MAX, 2)))), None);
        assert_eq!(interpreter_of(&elf(64, 56, Some((8, u64::MAX)))), None);
        assert_eq!(interpreter_of(&elf(64, 56, Some((0, 4)))).as_deref(), Some("\u{7f}ELF"));
    }

    /// The init sends `E` and exits while our `C` sits unread in its
    /// queue: the kernel reports ECONNRESET first; the `E` must still come
    /// through (it was lost: "exited during setup without reporting an
    /// error", seen in CI with a create refused at its first mount).
    #[test]
    fn last_words_of_a_peer_that_closed_with_our_message_unread() {
        let (husk, init) = socketpair().unwrap();
        send(&init, b'E', b"the reason").unwrap();
        send(&husk, b'C', b"").unwrap();
        drop(init);
        assert_eq!(recv(&husk).unwrap(), Some((b'E', b"the reason".to_vec())));
        assert_eq!(recv(&husk).unwrap(), None);
    }

    /// Same wire bytes as before the typed enum; an unexpected message
    /// is an error naming what was expected and what came.
    #[test]
    fn typed_messages_keep_the_wire_and_name_surprises() {
        assert_eq!(Msg::Pid { pid: 42, cgroup: true }.encode(), b"P42 cgroup".to_vec());
        assert_eq!(Msg::Fd(3).encode(), b"F3".to_vec());
        assert_eq!(Msg::Go(b"{}".to_vec()).encode(), b"G{}".to_vec());
        for m in [
            Msg::InCgroup,
            Msg::RunHooks,
            Msg::HooksDone,
            Msg::Ready,
            Msg::Ack,
            Msg::Started,
        ] {
            assert_eq!(Msg::decode(&m.encode()).unwrap(), m);
        }
        assert!(Msg::decode(b"Zx").is_err());
        let (husk, init) = socketpair().unwrap();
        send_msg(&husk, &Msg::Ack).unwrap();
        let e = expect(&init, Kind::InCgroup, "husk").unwrap_err().to_string();
        assert_eq!(e, "expected C (in the cgroup) from husk, received A (state recorded)");
        drop(husk);
        let e = expect(&init, Kind::Ack, "husk").unwrap_err().to_string();
        assert_eq!(
            e,
            "expected A (state recorded) from husk, but husk closed the sync channel"
        );
    }

    #[test]
    fn intermediate_pid_reports() {
        assert_eq!(parse_pid_report("42").unwrap(), (42, false));
        assert_eq!(parse_pid_report("42 cgroup\n").unwrap(), (42, true));
        for bad in ["", "x", "0", "-3", "42 other", "42 cgroup extra"] {
            assert!(parse_pid_report(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn look_path_errors_use_runc_words() {
        let e = look_path("definitely-not-here", "/nonexistent")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "exec: \"definitely-not-here\": executable file not found in $PATH");
    }
}
