//! `husk run`: create + start, then (unless --detach) wait for the
//! container, forwarding signals to its init, and delete it.

use anyhow::Result;

use crate::cli::CreateArgs;
use crate::state::Store;

pub fn run(store: &Store, id: &str, a: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    // Block signals before the init exists so none is lost; the init
    // unblocks them right before exec.
    let old = crate::sys::block_all_signals();
    let r = run_blocked(store, id, a, detach, keep);
    crate::sys::set_sigmask(&old);
    r
}

fn run_blocked(store: &Store, id: &str, a: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    let created = super::create::create(store, id, a)?;
    drop(created.sock);
    if let Err(e) = super::start::start(store, id) {
        if let Ok(c) = store.open(id, true) {
            if let Ok(Some(fd)) = super::kill::init_pidfd(&c) {
                let _ = crate::sys::pidfd_send_signal(&fd, libc::SIGKILL);
            }
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(created.pid), None);
            let _ = super::delete::destroy(&c);
        }
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = wait_forwarding(created.pid)?;
    if !keep {
        let c = store.open(id, true)?;
        super::delete::destroy(&c)?;
    }
    Ok(code)
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
