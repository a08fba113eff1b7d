//! `husk checkpoint` and `husk restore`: a running container saved to
//! disk and brought back by CRIU (`criu swrk`, see [`crate::criu`]), with
//! runc's flags and meanings.
//!
//! As with runc: the container's bind mounts (and the masked files, binds
//! of the host's /dev/null) are described to CRIU as external mounts; the
//! network namespace is always restored empty (`--empty-ns network`, the
//! runtime does not manage network devices); the init's stdio is recorded
//! in `descriptors.json` beside the images and its pipes are passed back
//! with `inherit_fd` on restore; the restoring CRIU is moved into the
//! container's cgroup (made with the config's limits) and told to restore
//! there (`cg_root`); a checkpoint without `--leave-running` removes the
//! container (its processes are gone), and `restore` makes it again.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::bundle::{self, Bundle};
use crate::cli::{CheckpointArgs, CriuArgs, RestoreArgs};
use crate::container;
use crate::criu::{self, Msg, opt};
use crate::state::{self, Status, Store};

const DESCRIPTORS: &str = "descriptors.json";

fn criu_bin(g: &crate::cli::Global) -> String {
    g.criu.clone().unwrap_or_else(|| "criu".to_string())
}

fn image_dir(p: &Option<PathBuf>) -> Result<PathBuf> {
    let p = p.clone().unwrap_or_else(|| PathBuf::from("checkpoint"));
    std::path::absolute(&p)
        .errno()
        .with_context(|| format!("path {}", p.display()))
}

/// mkdir (existing is fine: a container is checkpointed more than once)
/// and open the directory for criu.
fn open_dir(p: &Path, what: &str) -> Result<OwnedFd> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e)
                .errno()
                .with_context(|| format!("create the {what} {}", p.display()));
        }
    }
    nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open the {what} {}", p.display()))
}

/// What this build cannot do: an error naming it, before anything is touched.
fn refuse_namespaces_by_path(b: &Bundle) -> Result<()> {
    for ns in b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        if let Some(p) = ns.path() {
            bail!(
                "checkpoint/restore of a container that joins a namespace by path ({} namespace {}) is not supported by husk yet",
                crate::namespaces::config_name(ns.typ()),
                p.display()
            );
        }
    }
    Ok(())
}

/// The spec's cgroup mount without a cgroup namespace of its own: on a
/// pure v2 host husk binds the container's cgroup directory there (with
/// a namespace it mounts cgroup2, which criu dumps as any mount). criu
/// cannot dump a bind of a directory below a root it does not see: it is
/// an external mount, bound to the restored container's cgroup directory.
/// On v1 and hybrid hosts (a tmpfs of per-hierarchy binds) this build
/// does not describe them to criu: an error.
fn cgroup_binds(b: &Bundle) -> Result<Vec<String>> {
    let ns = crate::namespaces::Plan::from_spec(&b.spec);
    if ns.has(oci_spec::runtime::LinuxNamespaceType::Cgroup) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for m in b.spec.mounts().iter().flatten() {
        if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
            if crate::cgroups::detect_layout()? != crate::cgroups::Layout::V2 {
                bail!(
                    "checkpoint/restore of a container with a cgroup mount ({}) and no cgroup namespace is supported on pure cgroup v2 hosts only (this one has cgroup v1 hierarchies)",
                    m.destination().display()
                );
            }
            out.push(container_path(&b.rootfs, m.destination()));
        }
    }
    Ok(out)
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind") || crate::mount_options::is_bind(m)
}

/// A mount destination as the container sees it: symlinks resolved inside
/// the rootfs (through husk's view of it), else taken lexically.
fn container_path(rootfs: &Path, dest: &Path) -> String {
    let lexical = crate::rootfs::clean(dest).to_string_lossy().into_owned();
    let Ok(root) = nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return lexical;
    };
    let Ok(fd) = crate::rootfs::resolve(&root, dest) else {
        return lexical;
    };
    let (Ok(r), Ok(t)) = (
        std::fs::read_link(crate::rootfs::fd_path(&root)),
        std::fs::read_link(crate::rootfs::fd_path(&fd)),
    ) else {
        return lexical;
    };
    match t.strip_prefix(&r) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => lexical,
    }
}

/// Options both requests share.
fn common_opts(o: &mut Msg, b: &Bundle, log_file: &str) {
    o.int32(opt::LOG_LEVEL, 4)
        .str(opt::LOG_FILE, log_file)
        .bool(opt::MANAGE_CGROUPS, true)
        .bool(opt::NOTIFY_SCRIPTS, true)
        .bool(opt::ORPHAN_PTS_MASTER, true);
    // runc's: the annotation org.criu.config names criu's configuration
    // file ("" for none), else /etc/criu/runc.conf (read if it exists)
    match b.spec.annotations().as_ref().and_then(|a| a.get("org.criu.config")) {
        Some(f) if f.is_empty() => {}
        Some(f) => {
            o.str(opt::CONFIG_FILE, f);
        }
        None => {
            o.str(opt::CONFIG_FILE, "/etc/criu/runc.conf");
        }
    }
}

/// What `checkpoint` and `restore` take alike from their shared flags
/// ([`CriuArgs`]): checked once by [`Shared::new`], told to criu by
/// [`Shared::apply`].
struct Shared<'a> {
    a: &'a CriuArgs,
    mode: Option<u64>,
    empty: u64,
    images: PathBuf,
    work: Option<PathBuf>,
}

impl<'a> Shared<'a> {
    fn new(a: &'a CriuArgs) -> Result<Shared<'a>> {
        if a.lazy_pages {
            bail!("--lazy-pages: lazy migration is not supported by husk yet");
        }
        Ok(Shared {
            a,
            mode: a.manage_cgroups_mode.as_deref().map(criu::cg_mode).transpose()?,
            empty: criu::empty_ns(&a.empty_ns)?,
            images: image_dir(&a.image_path)?,
            work: a
                .work_path
                .as_deref()
                .map(std::path::absolute)
                .transpose()
                .errno()
                .context("--work-path")?,
        })
    }

    /// The options of the shared flags (the work directory as `work_fd`).
    fn apply(&self, o: &mut Msg, work_fd: Option<&OwnedFd>) {
        let a = self.a;
        o.bool(opt::TCP_ESTABLISHED, a.tcp_established)
            .bool(opt::EXT_UNIX_SK, a.ext_unix_sk)
            .bool(opt::SHELL_JOB, a.shell_job)
            .bool(opt::FILE_LOCKS, a.file_locks)
            .bool(opt::AUTO_DEDUP, a.auto_dedup)
            .uint(opt::EMPTY_NS, self.empty);
        if let Some(fd) = work_fd {
            o.int32(opt::WORK_DIR_FD, fd.as_raw_fd());
        }
        if let Some(m) = self.mode {
            o.uint(opt::MANAGE_CGROUPS_MODE, m);
        }
    }
}

pub fn checkpoint(store: &Store, g: &crate::cli::Global, id: &str, a: &CheckpointArgs) -> Result<()> {
    let shared = Shared::new(&a.criu)?;
    if a.status_fd.is_some() {
        bail!("--status-fd: only meaningful with --lazy-pages, which husk does not support yet");
    }
    if a.page_server.is_some() {
        bail!("--page-server: sending the images to a criu page server is not supported by husk yet");
    }
    let c = store.open(id, true)?;
    match c.status() {
        Status::Running => {}
        s => bail!(
            "container {id} is {}: only a running container can be checkpointed",
            s.as_str()
        ),
    }
    let b = bundle::load(&c.state.bundle)
        .with_context(|| format!("the bundle of container {id} (its config says what to tell criu)"))?;
    refuse_namespaces_by_path(&b)?;
    let pid = c.state.pid;
    let images = &shared.images;
    let img_fd = open_dir(images, "image directory")?;
    let work = shared.work.as_deref();
    let work_fd = work.map(|w| open_dir(w, "work directory")).transpose()?;
    let log = criu::log_path(images, work, "dump.log");

    let mut o = Msg::default();
    o.int32(opt::IMAGES_DIR_FD, img_fd.as_raw_fd())
        .int32(opt::PID, pid)
        .str(opt::ROOT, &c.state.rootfs.to_string_lossy())
        .bool(opt::LEAVE_RUNNING, a.leave_running);
    shared.apply(&mut o, work_fd.as_ref());
    common_opts(&mut o, &b, "dump.log");
    if let Some(p) = &a.parent_path {
        o.str(opt::PARENT_IMG, p).bool(opt::TRACK_MEM, true);
    }
    // criu freezes the container through its cgroup (else with ptrace)
    if let Some(cg) = c.cgroup() {
        let freezer = match &cg.unified {
            Some(u) if cg.layout == crate::cgroups::Layout::V2 => Some(u.clone()),
            _ => cg
                .v1
                .iter()
                .find(|d| d.controllers.iter().any(|x| x == "freezer"))
                .map(|d| d.path.clone()),
        };
        if let Some(f) = freezer {
            o.str(opt::FREEZE_CGROUP, &f.to_string_lossy());
        }
    }
    let cgroup_mounts = cgroup_binds(&b)?;
    if !a.pre_dump {
        // External mounts: the bind mounts (the image names them by their
        // destination), the cgroup bind and the masked files (binds of
        // the host's /dev/null).
        for d in &cgroup_mounts {
            o.pair(opt::EXT_MNT, d, d);
        }
        for m in b.spec.mounts().iter().flatten() {
            if is_bind(m) {
                let d = container_path(&c.state.rootfs, m.destination());
                o.pair(opt::EXT_MNT, &d, &d);
            }
        }
        for p in b
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.masked_paths().as_ref())
            .into_iter()
            .flatten()
        {
            // what the container sees there (through its root)
            let st = std::fs::metadata(format!("/proc/{pid}/root/{}", p.trim_start_matches('/')));
            if st.is_ok_and(|s| !s.is_dir()) {
                o.pair(opt::EXT_MNT, p, "/dev/null");
            }
        }
        // The init's stdio, for restore (pipes are passed back to it).
        let fds: Vec<String> = (0..3)
            .map(|i| {
                std::fs::read_link(format!("/proc/{pid}/fd/{i}"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        let f = images.join(DESCRIPTORS);
        std::fs::write(&f, serde_json::to_vec(&fds)?)
            .errno()
            .with_context(|| format!("write {}", f.display()))?;
    }
    let typ = if a.pre_dump {
        criu::req::PRE_DUMP
    } else {
        criu::req::DUMP
    };
    let mut s = criu::Session::spawn(&criu_bin(g))?;
    let r = crate::logging::step(
        if a.pre_dump { "criu pre-dump" } else { "criu dump" },
        || images.display().to_string(),
        || s.call(typ, &o, &log, &mut |_, _, _| Ok(())),
    );
    let status = s.finish();
    r?;
    // After a pre-dump criu waits for more requests: closing its socket
    // ends it with a failure status that means nothing.
    if !a.pre_dump {
        let st = status?;
        if !st.success() {
            bail!(
                "criu dump reported success but exited with {st} (log: {})",
                log.display()
            );
        }
    }
    if !a.leave_running && !a.pre_dump {
        // criu killed the processes: the container is gone, as with runc
        // (restore makes it again under the same id)
        container::destroy(&c).context("remove the checkpointed container")?;
    }
    Ok(())
}

/// `<state dir>/criu-root`: the rootfs bound there (criu wants a mount
/// point whose parent is not overmounted), unmounted and removed on drop.
struct CriuRoot(PathBuf);

impl CriuRoot {
    fn make(dir: &Path, rootfs: &Path) -> Result<CriuRoot> {
        let p = dir.join("criu-root");
        std::fs::create_dir(&p)
            .errno()
            .with_context(|| format!("create {}", p.display()))?;
        let r = CriuRoot(p);
        nix::mount::mount(
            Some(rootfs),
            &r.0,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("bind the rootfs {} to {}", rootfs.display(), r.0.display()))?;
        Ok(r)
    }
}

impl Drop for CriuRoot {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Undo a failed restore: the restored init, the cgroup, the state.
struct Undo {
    dir: Option<PathBuf>,
    pid: Option<i32>,
    cgroup: Option<crate::cgroups::Cgroup>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(p) = self.pid.take() {
            crate::process::kill_and_reap(p);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.kill_all(libc::SIGKILL);
            if let Err(e) = cg.destroy() {
                crate::warn!("remove the cgroup of a failed restore: {e:#}");
            }
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub fn restore(store: &Store, g: &crate::cli::Global, id: &str, a: &RestoreArgs) -> Result<i32> {
    let shared = Shared::new(&a.criu)?;
    if a.no_pivot {
        bail!("--no-pivot: CRIU restores the container's root with pivot_root; husk cannot restore without it");
    }
    if g.systemd_cgroup {
        bail!("restore with --systemd-cgroup is not supported by husk yet");
    }
    state::validate_id(id)?;
    let abs = |p: &Path| {
        std::path::absolute(p)
            .errno()
            .with_context(|| format!("path {}", p.display()))
    };
    let pid_file = a.pid_file.as_deref().map(abs).transpose()?;
    let console = a.console_socket.as_deref().map(abs).transpose()?;
    let images = &shared.images;
    let work = shared.work.as_deref();
    let b = bundle::load(&a.bundle)?;
    refuse_namespaces_by_path(&b)?;
    let cgroup_mounts = cgroup_binds(&b)?;
    let fds_file = images.join(DESCRIPTORS);
    let fds: Vec<String> = serde_json::from_slice(
        &std::fs::read(&fds_file)
            .errno()
            .with_context(|| format!("read {} (is this a checkpoint's image directory?)", fds_file.display()))?,
    )
    .with_context(|| format!("decode {}", fds_file.display()))?;
    let img_fd = nix::fcntl::open(
        images.as_path(),
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open the image directory {}", images.display()))?;
    let work_fd = work.map(|w| open_dir(w, "work directory")).transpose()?;
    let log = criu::log_path(images, work, "restore.log");
    // relative bind sources are relative to the bundle, as at create
    std::env::set_current_dir(&b.dir)
        .errno()
        .with_context(|| format!("chdir to the bundle {}", b.dir.display()))?;

    let (dir, dir_fd) = store.create(id)?;
    let mut undo = Undo {
        dir: Some(dir.clone()),
        pid: None,
        cgroup: None,
    };
    let cgroup = crate::logging::step("create the cgroup and apply linux.resources", String::new, || {
        container::make_cgroup(&b, id, false)
    })?;
    undo.cgroup = cgroup.clone();
    let root = CriuRoot::make(&dir, &b.rootfs)?;

    let mut o = Msg::default();
    o.int32(opt::IMAGES_DIR_FD, img_fd.as_raw_fd())
        .str(opt::ROOT, &root.0.to_string_lossy())
        .bool(opt::EVASIVE_DEVICES, true)
        .bool(opt::RST_SIBLING, true);
    shared.apply(&mut o, work_fd.as_ref());
    common_opts(&mut o, &b, "restore.log");
    if let Some(p) = &a.lsm_profile {
        o.str(opt::LSM_PROFILE, p);
    }
    if let Some(p) = &a.lsm_mount_context {
        o.str(opt::LSM_MOUNT_CONTEXT, p);
    }
    for m in b.spec.mounts().iter().flatten() {
        if is_bind(m) {
            let src = crate::rootfs::bind_source_path(m)?;
            o.pair(
                opt::EXT_MNT,
                &container_path(&b.rootfs, m.destination()),
                &src.to_string_lossy(),
            );
        }
    }
    if !cgroup_mounts.is_empty() {
        let dir = cgroup
            .as_ref()
            .and_then(|c| c.unified.clone())
            .context("the container's cgroup mount needs its cgroup v2 directory")?;
        for d in &cgroup_mounts {
            o.pair(opt::EXT_MNT, d, &dir.to_string_lossy());
        }
    }
    if b.spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_ref())
        .is_some_and(|v| !v.is_empty())
    {
        o.pair(opt::EXT_MNT, "/dev/null", "/dev/null");
    }
    // The init's pipes: criu gives it husk's stdio of the same number.
    for (i, s) in fds.iter().enumerate() {
        if s.contains("pipe:") {
            let mut f = Msg::default();
            f.str(1, s).int32(2, i32::try_from(i).context("fd number")?);
            o.msg(opt::INHERIT_FD, &f);
        }
    }

    let mut s = criu::Session::spawn(&criu_bin(g))?;
    // criu (and so what it restores) in the container's cgroup, whose
    // path in every hierarchy becomes the restored tree's root
    if let Some(cg) = &cgroup {
        cg.add_process(s.pid())
            .context("move criu into the container's cgroup")?;
        for own in crate::cgroups::read_proc_cgroup(&s.pid().to_string())? {
            let mut r = Msg::default();
            if !own.controllers.is_empty() {
                r.str(1, &own.controllers.join(","));
            }
            r.str(2, &own.path.to_string_lossy());
            o.msg(opt::CG_ROOT, &r);
        }
    }
    let hooks = b.spec.hooks().clone();
    let mut restored = None;
    let r = crate::logging::step(
        "criu restore",
        || images.display().to_string(),
        || {
            s.call(criu::req::RESTORE, &o, &log, &mut |script, pid, fd| {
                match script {
                    // the namespaces exist, nothing runs in them yet
                    "setup-namespaces" => {
                        if let Some(h) = &hooks {
                            let st = container::hook_state(id, "created", pid, &b);
                            if let Some(v) = h.prestart() {
                                crate::hooks::run_all("prestart", v, &st, None)?;
                            }
                            if let Some(v) = h.create_runtime() {
                                let st = container::hook_state(id, "creating", pid, &b);
                                crate::hooks::run_all("createRuntime", v, &st, None)?;
                            }
                        }
                    }
                    "post-restore" => restored = Some(pid),
                    "orphan-pts-master" => {
                        let fd = fd.context("criu sent no terminal master")?;
                        let Some(p) = &console else {
                            bail!("the checkpointed container has a terminal: give --console-socket to receive it");
                        };
                        let conn = crate::tty::connect(p)?;
                        crate::tty::send_fd(&conn, b"/dev/ptmx", &fd)
                            .context("send the pty master over the console socket")?;
                    }
                    _ => {}
                }
                Ok(())
            })
        },
    );
    let status = s.finish();
    drop(root);
    let resp = r?;
    let pid = resp
        .restore_pid
        .or(restored)
        .context("criu restore answered without the restored pid")?;
    undo.pid = Some(pid);
    let st = status?;
    if !st.success() {
        bail!(
            "criu restore reported success but exited with {st} (log: {})",
            log.display()
        );
    }
    let (_, start_time) = state::proc_stat(pid).context("the restored init vanished")?;
    let st = container::stored(&b, id, pid, start_time, cgroup.clone());
    state::save(&dir, &st)?;
    if let Some(p) = &pid_file {
        container::write_pid_file(p, pid)?;
    }
    undo.dir = None;
    undo.pid = None;
    undo.cgroup = None;
    state::unlock(&dir_fd);
    crate::debug!("container {id} restored, init pid {pid}");
    if a.detach {
        return Ok(0);
    }
    // The restored init is husk's child (rst_sibling): wait for it as
    // `run` does, then delete the container.
    let old = crate::sys::block_all_signals();
    let code = container::wait_forwarding(pid);
    crate::sys::set_sigmask(&old);
    let code = code?;
    let c = store.open(id, true)?;
    container::destroy(&c)?;
    Ok(code)
}
