//! Create a container (`husk create`, `husk run`) whose init waits for
//! `start`; and the pieces restore shares (cgroup, hook and recorded state).

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::bundle::{self, Bundle};
use crate::cli::CreateArgs;
use crate::process::{self, SpawnOpts, Spawned};
use crate::state::{self, Store, Stored};

/// A created container whose init is ready and waiting for `start`.
pub struct Created {
    pub pid: i32,
    pub sock: OwnedFd,
}

/// Features a config may ask for that this build cannot honour yet: an
/// honest error beats a container that silently lacks its confinement.
fn reject_unsupported(b: &Bundle) -> Result<()> {
    let spec = &b.spec;
    if let Some(l) = spec.linux() {
        if let Some(s) = l.seccomp() {
            // Build it once here: a bad profile fails before anything exists.
            crate::seccomp::build(s).context("linux.seccomp")?;
        }
        if l.intel_rdt().is_some() {
            bail!("not supported: linux.intelRdt (no resctrl support)");
        }
        crate::lsm::check_selinux("linux.mountLabel", l.mount_label().as_deref())?;
    }
    if let Some(p) = spec.process() {
        crate::lsm::check_apparmor(p.apparmor_profile().as_deref())?;
        crate::lsm::check_selinux("process.selinuxLabel", p.selinux_label().as_deref())?;
    }
    Ok(())
}

fn abs(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p)
        .errno()
        .with_context(|| format!("path {}", p.display()))
}

/// The JSON state passed to hooks.
pub fn hook_state(id: &str, status: &str, pid: i32, b: &Bundle) -> String {
    let mut m = serde_json::Map::new();
    m.insert("ociVersion".into(), b.spec.version().clone().into());
    m.insert("id".into(), id.into());
    m.insert("status".into(), status.into());
    m.insert("pid".into(), pid.into());
    m.insert("bundle".into(), b.dir.to_string_lossy().into_owned().into());
    if let Some(a) = b.spec.annotations() {
        m.insert("annotations".into(), serde_json::to_value(a).unwrap_or_default());
    }
    serde_json::Value::Object(m).to_string()
}

fn listen_exec_sock(dir_fd: &OwnedFd) -> Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr};
    let s = nix::sys::socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .context("socket for exec.sock")?;
    // Bind through the directory fd: the --root path may be longer than a
    // socket address allows.
    let path = format!("/proc/self/fd/{}/{}", dir_fd.as_raw_fd(), state::EXEC_SOCK);
    let addr = UnixAddr::new(path.as_str()).context("exec.sock address")?;
    nix::sys::socket::bind(s.as_raw_fd(), &addr).context("bind exec.sock")?;
    nix::sys::socket::listen(&s, nix::sys::socket::Backlog::new(1).context("backlog")?)
        .context("listen on exec.sock")?;
    Ok(s)
}

/// Create the container; returns once its init is ready and the state is
/// recorded. The init stays our child (for `run`).
pub fn create(store: &Store, id: &str, a: &CreateArgs) -> Result<Created> {
    state::validate_id(id)?;
    let pid_file = a.pid_file.as_deref().map(abs).transpose()?;
    let console = a.console_socket.as_deref().map(abs).transpose()?;
    let pidfd_socket = a.pidfd_socket.as_deref().map(abs).transpose()?;
    let b = crate::logging::step(
        "load and validate the bundle",
        || a.bundle.display().to_string(),
        || bundle::load(&a.bundle),
    )?;
    reject_unsupported(&b)?;
    // The systemd driver: checked before anything exists (systemd running,
    // runc's slice:prefix:name); the scope itself is made once the init
    // exists, in on_clone.
    let scope = if a.systemd_cgroup {
        // the config's own mistakes first (annotations, cgroupsPath, device
        // rules), on any host; then whether systemd runs here
        let plan = scope_plan(&b, id, a.rootless, crate::cgroups::read_mounts()?)?;
        if !crate::systemd::booted() {
            return Err(crate::cgroups::scope::not_booted());
        }
        Some(plan)
    } else {
        None
    };
    // runc runs the container setup from the bundle directory: relative
    // paths in config.json (bind sources) are relative to it.
    std::env::set_current_dir(&b.dir)
        .errno()
        .with_context(|| format!("chdir to the bundle {}", b.dir.display()))?;

    let (dir, dir_fd) = store.create(id)?;
    let mut guard = Cleanup {
        dir: Some(dir.clone()),
        pid: None,
        cgroup: None,
        host_mounts: None,
    };
    // Without a mount namespace of its own the init mounts in husk's: a
    // failed create detaches them (in a namespace joined by path they
    // vanish with the last process in it, or belong to its owner).
    let ns = crate::namespaces::Plan::from_spec(&b.spec);
    if !ns.has(oci_spec::runtime::LinuxNamespaceType::Mount) {
        guard.host_mounts = Some((b.rootfs.clone(), crate::rootfs::mount_id(&b.rootfs)?));
    }
    let cgroup = match &scope {
        None => crate::logging::step("create the cgroup and apply linux.resources", String::new, || {
            make_cgroup(&b, id, a.rootless)
        })?,
        Some(_) => None,
    };
    guard.cgroup = cgroup.clone();
    let listener = listen_exec_sock(&dir_fd)?;
    // sd_notify (podman --sdnotify=container): the container gets a socket
    // of ours; `start` relays its READY=1 to the caller's NOTIFY_SOCKET.
    let notify_host = std::env::var("NOTIFY_SOCKET").ok().filter(|s| !s.is_empty());
    let notify_dir = dir.join("notify");
    if notify_host.is_some() {
        std::fs::create_dir(&notify_dir)
            .errno()
            .with_context(|| format!("create {}", notify_dir.display()))?;
    }
    let hooks = b.spec.hooks().clone();
    let has_listener = b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .is_some_and(|s| s.listener_path().is_some());
    let has_container_hooks = has_listener
        || hooks.as_ref().is_some_and(|h| {
            h.create_container().as_ref().is_some_and(|v| !v.is_empty())
                || h.start_container().as_ref().is_some_and(|v| !v.is_empty())
        });
    let opts = SpawnOpts {
        bundle: &b,
        id,
        exec_listener: &listener,
        state_dir: dir_fd.as_raw_fd(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        console_socket: console.as_deref(),
        has_container_hooks,
        notify_dir: notify_host.as_ref().map(|_| notify_dir.as_path()),
        cgroup_before_setup: scope.as_ref().is_some_and(|s| s.rewrites_devices()),
        lock_fd: Some(dir_fd.as_raw_fd()),
    };
    let oom = b.spec.process().as_ref().and_then(|p| p.oom_score_adj());
    // Pure v2: the init is cloned straight into its cgroup (clone3 with
    // CLONE_INTO_CGROUP), which saves the cgroup.procs write.
    let cgroup_dir = match &cgroup {
        Some(cg) => cg.open_unified_dir(None)?,
        None => None,
    };
    let resources = scope.as_ref().map(|s| scope_resources(&b, s));
    let guard_cgroup = &mut guard.cgroup;
    let mut on_clone = |pid: i32, in_cgroup: bool| -> Result<()> {
        // The init joins its cgroup before it runs anything the container controls.
        if let (Some(s), Some(r)) = (&scope, &resources) {
            // systemd moves the init into the new scope (PIDs); the cleanup
            // is told the cgroup once systemd has accepted the start.
            s.start(id, pid, r, &mut |cg| *guard_cgroup = Some(cg.clone()))?;
        } else if let Some(cg) = &cgroup
            && !in_cgroup
        {
            cg.add_process(pid)?;
        }
        if let Some(v) = oom {
            let p = format!("/proc/{pid}/oom_score_adj");
            std::fs::write(&p, v.to_string())
                .errno()
                .with_context(|| format!("write {v} to {p} (process.oomScoreAdj)"))?;
        }
        Ok(())
    };
    let mut on_hooks = |pid: i32| -> Result<()> {
        if let Some(h) = hooks.as_ref() {
            // prestart predates the "creating" status: runc and the
            // runtime-tools suite give it "created".
            if let Some(v) = h.prestart() {
                crate::hooks::run_all("prestart", v, &hook_state(id, "created", pid, &b), None)?;
            }
            if let Some(v) = h.create_runtime() {
                crate::hooks::run_all("createRuntime", v, &hook_state(id, "creating", pid, &b), None)?;
            }
        }
        Ok(())
    };
    let hs = |pid: i32| hook_state(id, "created", pid, &b);
    let Spawned { pid, sock } = process::spawn(&opts, cgroup_dir, &mut on_clone, &mut on_hooks, &hs)?;
    guard.pid = Some(pid);
    drop(listener);
    if let Some(p) = &pidfd_socket {
        crate::tty::send_pidfd(p, pid, "standard")?;
    }
    let cgroup = guard.cgroup.clone();

    let start_time = state::start_time(pid)?;
    let st = Stored {
        notify_socket: notify_host.clone(),
        host_mounts_over: guard.host_mounts.as_ref().map(|(_, before)| *before),
        ..stored(&b, id, pid, start_time, cgroup.clone())
    };
    state::save(&dir, &st)?;
    if let Some(p) = &pid_file {
        super::write_pid_file(p, pid)?;
    }
    process::send(&sock, b'A', b"")?;
    crate::debug!("container {id} created, init pid {pid}");
    guard.disarm();
    // The init inherited the locked directory fd (it shares the lock until
    // it execs): release the lock explicitly rather than by closing.
    crate::state::unlock(&dir_fd);
    Ok(Created { pid, sock })
}

/// The state of the container `id` of bundle `b` whose init is `pid`
/// (create, restore): no notify socket and no host mounts recorded.
pub fn stored(b: &Bundle, id: &str, pid: i32, start_time: u64, cgroup: Option<crate::cgroups::Cgroup>) -> Stored {
    let hooks = b.spec.hooks().as_ref();
    Stored {
        oci_version: b.spec.version().clone(),
        id: id.to_string(),
        pid,
        start_time,
        bundle: b.dir.clone(),
        rootfs: b.rootfs.clone(),
        created: crate::logging::rfc3339_now(),
        owner: String::new(),
        annotations: b.spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        new_pid_ns: crate::namespaces::Plan::from_spec(&b.spec).new_ns(oci_spec::runtime::LinuxNamespaceType::Pid),
        cgroup,
        poststart: hooks.and_then(|h| h.poststart().clone()),
        notify_socket: None,
        poststop: hooks.and_then(|h| h.poststop().clone()),
        host_mounts_over: None,
    }
}

/// The systemd driver's plan for bundle `b` (create, `husk plan`), checked
/// before anything exists: runc's `slice:prefix:name`, the layout on
/// `mounts` (husk's cgroup mounts), the `org.systemd.property.*`
/// annotations (unit properties of the scope, as with runc) and, rootless,
/// the device rules. Whether systemd runs is the caller's question.
pub(crate) fn scope_plan(
    b: &Bundle,
    id: &str,
    rootless: bool,
    mounts: crate::cgroups::mountinfo::Mounts,
) -> Result<crate::cgroups::scope::ScopePlan> {
    let annotation_properties = crate::systemd::annotation_properties(b.spec.annotations().iter().flatten())?;
    let path = b.spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
    let path = path
        .map(|p| p.to_str().context("linux.cgroupsPath is not UTF-8"))
        .transpose()?;
    let mut plan = crate::cgroups::scope::ScopePlan::new(path, id, rootless, mounts)?;
    plan.annotation_properties = annotation_properties;
    if plan.user {
        check_rootless_device_rules(b)?;
    }
    Ok(plan)
}

/// Rootless there is no device program (nor v1 `devices.*` files): the
/// config's device rules are checked against what the user namespace
/// still enforces ([`crate::cgroups::devices::check_rootless_rules`]).
fn check_rootless_device_rules(b: &Bundle) -> Result<()> {
    let rules = b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref()?.devices().clone());
    crate::cgroups::devices::check_rootless_rules(rules.as_deref().unwrap_or_default())
}

/// The resources the systemd driver applies for bundle `b`: as cgroupfs
/// ([`container_resources`]), without device rules for the user's
/// systemd: the kernel refuses an unprivileged user a device program; the
/// user namespace bounds the devices instead (the config's rules were
/// checked against that by [`scope_plan`]).
pub(crate) fn scope_resources(
    b: &Bundle,
    scope: &crate::cgroups::scope::ScopePlan,
) -> oci_spec::runtime::LinuxResources {
    let mut r = container_resources(b);
    if scope.user {
        r.set_devices(None);
    }
    r
}

/// The resources the cgroupfs driver applies for bundle `b`: rootless, as
/// with the user's systemd, without device rules — the kernel refuses an
/// unprivileged user a device program (and v1 `devices.*` writes), which
/// would fail a delegated cgroup as a whole — after the config's rules are
/// checked against what the user namespace enforces.
pub(crate) fn cgroupfs_resources(b: &Bundle, rootless: bool) -> Result<oci_spec::runtime::LinuxResources> {
    let mut resources = container_resources(b);
    if rootless {
        check_rootless_device_rules(b)?;
        resources.set_devices(None);
    }
    Ok(resources)
}

/// Make the container's cgroup. Rootless, a cgroup tree the user cannot
/// write is skipped when the config sets no limits (runc does the same);
/// with limits it is an error that says what is needed.
pub(crate) fn make_cgroup(b: &Bundle, id: &str, rootless: bool) -> Result<Option<crate::cgroups::Cgroup>> {
    let linux = b.spec.linux().as_ref();
    let resources = cgroupfs_resources(b, rootless)?;
    let attempt = crate::cgroups::Cgroup::new(linux.and_then(|l| l.cgroups_path().as_deref()), id)
        .and_then(|cg| cg.create(Some(&resources)).map(|_| cg));
    match attempt {
        Ok(cg) => Ok(Some(cg)),
        Err(e) if rootless => {
            let limits = linux.and_then(|l| l.resources().as_ref()).is_some_and(|r| {
                r.memory().is_some()
                    || r.cpu().is_some()
                    || r.pids().is_some()
                    || r.block_io().is_some()
                    || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
                    || r.unified().as_ref().is_some_and(|u| !u.is_empty())
            });
            if limits {
                return Err(e.context(
                    "rootless: linux.resources sets limits but the cgroup cannot be made (a cgroup v2 subtree delegated to this user is needed)",
                ));
            }
            crate::debug!("rootless: running without a cgroup: {e:#}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `linux.resources` with the device rules completed as runc does: the
/// config's rules, then the devices every container gets, then one rule
/// per `linux.devices` entry (a device made in the container is usable).
pub fn container_resources(b: &Bundle) -> oci_spec::runtime::LinuxResources {
    let linux = b.spec.linux().as_ref();
    let mut res = linux.and_then(|l| l.resources().clone()).unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    rules.extend(crate::cgroups::default_device_rules());
    for d in linux.and_then(|l| l.devices().as_ref()).into_iter().flatten() {
        // fifos are not governed by the device cgroup
        if d.typ() == oci_spec::runtime::LinuxDeviceType::P {
            continue;
        }
        let mut r = oci_spec::runtime::LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(d.typ()));
        r.set_major(Some(d.major()));
        r.set_minor(Some(d.minor()));
        r.set_access(Some("rwm".to_string()));
        rules.push(r);
    }
    res.set_devices(Some(rules));
    res
}

/// Undo a half-made create: kill the init, detach what it mounted in
/// husk's mount namespace, remove its cgroup and the state directory.
struct Cleanup {
    dir: Option<PathBuf>,
    pid: Option<i32>,
    cgroup: Option<crate::cgroups::Cgroup>,
    /// The rootfs and the id of the mount it lay on before the init
    /// mounted there (no mount namespace of its own).
    host_mounts: Option<(PathBuf, u64)>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.dir = None;
        self.pid = None;
        self.cgroup = None;
        self.host_mounts = None;
    }
}

/// Run a cleanup step, and once more when it fails: a failure of the
/// moment (EBUSY of a cgroup whose last task is still exiting, EMFILE,
/// EINTR) must not leave the container's remains behind.
fn twice(what: &str, mut f: impl FnMut() -> Result<()>) {
    if f().is_err()
        && let Err(e) = f()
    {
        crate::warn!("{what}: {e:#}");
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            process::kill_and_reap(pid);
        }
        if let Some((rootfs, before)) = self.host_mounts.take()
            && let Err(e) = crate::rootfs::unmount_down_to(&rootfs, before)
        {
            crate::warn!("undo the mounts of a failed create: {e:#}");
        }
        if let Some(cg) = self.cgroup.take() {
            twice("remove the cgroup of a failed create", || {
                let _ = cg.kill_all(libc::SIGKILL);
                cg.destroy()
            });
        }
        if let Some(d) = self.dir.take() {
            twice(
                "remove the state of a failed create",
                || match std::fs::remove_dir_all(&d) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(e).errno().with_context(|| format!("remove {}", d.display()))
                    }
                    _ => Ok(()),
                },
            );
        }
    }
}
