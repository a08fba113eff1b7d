//! Operations on one container that the commands share: create it
//! ([`create`]), release its init ([`start`]), find and signal its init
//! ([`init_pidfd`], [`signal_all`]), kill it and wait ([`kill_init`]),
//! remove what it leaves ([`destroy`]), wait for an init that is husk's
//! child ([`wait_forwarding`]), write `--pid-file` ([`write_pid_file`]).
//! The commands (`crate::commands`) call these, never each other.

mod create;
mod start;

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use std::os::fd::OwnedFd;
use std::path::Path;

use crate::state::{self, Container};

pub(crate) use create::{cgroupfs_resources, make_cgroup, scope_plan, scope_resources};
pub use create::{create, hook_state, stored};
pub use start::start;

/// A pidfd for the container init, verified to be the process recorded at
/// create (not a later process that reused the pid).
pub fn init_pidfd(c: &Container) -> Result<Option<OwnedFd>> {
    let fd = match crate::sys::pidfd_open(c.state.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e).errno().context("pidfd_open the container init"),
    };
    if !c.init_alive() {
        return Ok(None);
    }
    Ok(Some(fd))
}

/// Every process of the container: those in its cgroup, or (for a state
/// recorded without one) those in the init's pid namespace.
pub fn signal_all(c: &Container, sig: i32) -> Result<()> {
    if let Some(cg) = c.cgroup() {
        return cg
            .kill_all(sig)
            .context("signal every process in the container's cgroup");
    }
    let mut pids = Vec::new();
    if c.init_alive() {
        if c.state.new_pid_ns {
            pids = pids_in_pidns(c.state.pid)?;
        } else {
            pids.push(c.state.pid);
        }
    }
    for p in pids {
        if let Ok(fd) = crate::sys::pidfd_open(p) {
            let _ = crate::sys::pidfd_send_signal(&fd, sig);
        }
    }
    Ok(())
}

/// Host pids whose pid namespace is the one of `init`.
pub fn pids_in_pidns(init: i32) -> Result<Vec<i32>> {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata(format!("/proc/{init}/ns/pid"))
        .errno()
        .context("stat the init's pid namespace")?;
    let mut v = vec![init];
    for e in std::fs::read_dir("/proc").errno().context("read /proc")?.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if p == init {
            continue;
        }
        if let Ok(m) = std::fs::metadata(format!("/proc/{p}/ns/pid"))
            && m.ino() == ns.ino()
            && m.dev() == ns.dev()
        {
            v.push(p);
        }
    }
    Ok(v)
}

/// SIGKILL the init (and, through the cgroup, everything else: a paused
/// container's processes die only once thawed, which kill_all does) and
/// wait until it has exited.
pub(crate) fn kill_init(c: &Container) -> Result<()> {
    let Some(fd) = init_pidfd(c)? else {
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
pub(crate) fn wait_exit(c: &Container, fd: &OwnedFd) -> Result<()> {
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

/// Wait for `pid` (our child), forwarding every other signal to it.
/// Returns its exit status, or 128+signal when a signal ended it.
pub fn wait_forwarding(pid: i32) -> Result<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let target = nix::unistd::Pid::from_raw(pid);
    loop {
        // Reap first: the child may be gone already.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == target => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p == target => return Ok(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let sig = crate::sys::sigwait_any()?;
        match sig {
            libc::SIGCHLD | libc::SIGWINCH | libc::SIGURG => {}
            s => {
                let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::try_from(s).ok());
            }
        }
    }
}

/// Write the pid file atomically, as runc does (temp file + rename).
pub fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    let dir = p.parent().unwrap_or(Path::new("."));
    let name = p.file_name().context("pid file has no name")?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let r = std::fs::write(&tmp, pid.to_string())
        .errno()
        .with_context(|| format!("write pid file {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, p)
                .errno()
                .with_context(|| format!("rename pid file to {}", p.display()))
        });
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}
