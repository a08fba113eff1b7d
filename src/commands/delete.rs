//! `husk delete [--force] ID`.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::state::{self, Container, Status, Store, Stored};

pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let (dir, dir_fd) = match store.open_dir(id, true) {
        Ok(d) => d,
        Err(_) if force && !store.container_dir(id).exists() => return Ok(()),
        Err(e) => return Err(e),
    };
    // No state.json: a create that died before recording it (killed,
    // or its own cleanup killed). Its init and cgroup may exist: salvage
    // finds the cgroup where create put it and kills what is in it.
    if matches!(std::fs::symlink_metadata(dir.join(state::STATE_FILE)), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    {
        crate::debug!("container {id:?} has no state.json: removing what can be found of it");
        return salvage(dir, dir_fd, id);
    }
    let state = match state::load(&dir, id) {
        Ok(s) => s,
        Err(e) if force => {
            crate::warn!("{e:#}: removing what can be found of container {id:?}");
            return salvage(dir, dir_fd, id);
        }
        Err(e) => {
            return Err(e.context(format!(
                "cannot delete container {id:?} (--force removes what it can find)"
            )));
        }
    };
    let c = Container { dir, dir_fd, state };
    match c.status() {
        Status::Stopped | Status::Creating => {}
        // As runc does: a container that was created and never started
        // is deleted without --force (containerd's shim relies on it).
        Status::Created => kill_init(&c)?,
        // Its init was killed (by `husk kill`, the OOM killer, anyone) and
        // is still in the kernel's exit path: wait for it to become a zombie.
        Status::Running if !force && init_exiting(&c)? => {}
        s if !force => bail!(
            "cannot delete container {id:?} that is not stopped: {} (use --force)",
            s.as_str()
        ),
        _ => kill_init(&c)?,
    }
    destroy(&c)
}

/// SIGKILL the init (and, through the cgroup, everything else: a paused
/// container's processes die only once thawed, which kill_all does) and
/// wait until it has exited.
pub(crate) fn kill_init(c: &Container) -> Result<()> {
    let Some(fd) = super::kill::init_pidfd(c)? else {
        return Ok(());
    };
    let _ = crate::sys::pidfd_send_signal(&fd, libc::SIGKILL);
    if let Some(cg) = c.cgroup() {
        cg.kill_all(libc::SIGKILL)
            .context("kill every process in the container's cgroup")?;
    }
    wait_exit(c, &fd)
}

/// Wait (at most [`state::EXIT_WAIT_MS`]) for the init behind `fd` to exit.
fn wait_exit(c: &Container, fd: &OwnedFd) -> Result<()> {
    if !crate::sys::pidfd_wait(fd, state::EXIT_WAIT_MS)
        .errno()
        .context("wait for the container init to exit")?
    {
        bail!(
            "the container init (pid {}) did not exit within {}s of SIGKILL",
            c.state.pid,
            state::EXIT_WAIT_MS / 1000
        );
    }
    Ok(())
}

/// A running init that is already dying (SIGKILL pending or exit begun)
/// counts as stopped once it has finished exiting: true after waiting for
/// that, false when the init is not dying.
fn init_exiting(c: &Container) -> Result<bool> {
    let Some(fd) = super::kill::init_pidfd(c)? else {
        // gone between the status check and now
        return Ok(true);
    };
    if !state::exiting(c.state.pid) {
        return Ok(false);
    }
    wait_exit(c, &fd)?;
    Ok(true)
}

/// Remove what a container leaves behind: processes still in its cgroup
/// (the init may have died and left children), the cgroup, its state;
/// then, as runc does, the poststop hooks (status "stopped").
pub fn destroy(c: &Container) -> Result<()> {
    if let Some(cg) = c.cgroup() {
        cg.kill_all(libc::SIGKILL)
            .context("kill what is left in the container's cgroup")?;
        cg.destroy().context("remove the container's cgroup")?;
    }
    // (A rootfs that is gone carries no mounts: a mount point cannot be removed.)
    if let Some(before) = c.state.host_mounts_over
        && c.state.rootfs.exists()
    {
        crate::rootfs::unmount_down_to(&c.state.rootfs, before)?;
    }
    let hook_state = c.state.poststop.as_ref().map(|_| {
        let mut st = c.oci_state();
        st["status"] = "stopped".into();
        st.to_string()
    });
    c.remove_dir()?;
    if let (Some(hooks), Some(st)) = (&c.state.poststop, hook_state) {
        crate::hooks::run_all_warn("poststop", hooks, &st);
    }
    Ok(())
}

/// `delete --force` of a container whose state.json does not decode:
/// every field that still decodes on its own is used. The init is killed
/// when its pid and start time are readable; the cgroup is the recorded
/// one, or else the placement create would have chosen (the bundle's
/// `linux.cgroupsPath` when its config.json is readable — a systemd
/// `slice:prefix:name` one as the systemd driver placed it —, else
/// `/husk/<id>`), and everything in it is killed. poststop hooks of a
/// corrupt record are not run.
fn salvage(dir: PathBuf, dir_fd: OwnedFd, id: &str) -> Result<()> {
    let raw: serde_json::Value = std::fs::read(dir.join(state::STATE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    fn field<T: serde::de::DeserializeOwned>(raw: &serde_json::Value, k: &str) -> Option<T> {
        raw.get(k).and_then(|v| T::deserialize(v).ok())
    }
    let bundle: Option<PathBuf> = field(&raw, "bundle");
    let cgroup = match field::<crate::cgroups::Cgroup>(&raw, "cgroup") {
        Some(cg) => Some(cg),
        None => {
            let path = bundle.as_deref().and_then(cgroups_path_of);
            match systemd_cgroup_of(path.as_deref(), id)
                .map_or_else(|| crate::cgroups::Cgroup::new(path.as_deref(), id), Ok)
            {
                Ok(cg) => Some(cg),
                Err(e) => {
                    crate::warn!("container {id:?}: cannot work out its cgroup: {e:#}");
                    None
                }
            }
        }
    };
    let state = Stored {
        id: id.to_string(),
        pid: field(&raw, "pid").unwrap_or(0),
        start_time: field(&raw, "startTime").unwrap_or(0),
        new_pid_ns: field(&raw, "newPidNs").unwrap_or(false),
        bundle: bundle.unwrap_or_default(),
        cgroup,
        ..Default::default()
    };
    let c = Container { dir, dir_fd, state };
    // init_alive (behind init_pidfd) compares the start time: without a
    // readable one nothing is signalled by pid, only through the cgroup
    // (destroy).
    if c.state.pid > 0 && c.state.start_time > 0 {
        kill_init(&c)?;
    }
    destroy(&c)
}

/// A `slice:prefix:name` cgroupsPath on a host running systemd: the
/// placement the systemd driver chose (its unit is stopped by destroy).
/// Root only: a user's unit needs its manager's cgroup.
fn systemd_cgroup_of(path: Option<&Path>, id: &str) -> Option<crate::cgroups::Cgroup> {
    let path = path?.to_str()?;
    if path.split(':').count() != 3 || !crate::systemd::booted() || !nix::unistd::geteuid().is_root() {
        return None;
    }
    let p = crate::systemd::parse_cgroups_path(path, id, false).ok()?;
    let dir = p.dir(Path::new("/"), "/").ok()?;
    let mounts = crate::cgroups::read_mounts().ok()?;
    crate::cgroups::Cgroup::for_systemd(&mounts, &dir, &p.unit, false).ok()
}

/// `linux.cgroupsPath` of the bundle's config.json, if it can be read.
fn cgroups_path_of(bundle: &Path) -> Option<PathBuf> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v.get("linux")?.get("cgroupsPath")?.as_str().map(PathBuf::from)
}
