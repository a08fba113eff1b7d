//! `husk run`: create + start, then (unless --detach) wait for the
//! container, forwarding signals to its init, and delete it.

use crate::sys::ErrnoResult as _;
use std::os::fd::AsRawFd;

use anyhow::{Context, Result};

use crate::cli::CreateArgs;
use crate::container;
use crate::state::Store;

pub fn run(store: &Store, id: &str, a: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    // Block signals before the init exists so none is lost; the init
    // unblocks them right before exec.
    let old = crate::sys::block_all_signals();
    let r = run_blocked(store, id, a, detach, keep);
    crate::sys::set_sigmask(&old);
    r
}

/// Does the bundle ask for a terminal? (Only asked when husk must relay
/// one itself: `run` without --detach and without --console-socket.)
fn wants_terminal(bundle: &std::path::Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["process"]["terminal"] == serde_json::Value::Bool(true))
}

fn run_blocked(store: &Store, id: &str, a: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    // With a terminal and nobody to hand the pty to, husk relays it.
    let mut relay = None;
    let mut args = a.clone();
    if !detach && a.console_socket.is_none() && wants_terminal(&a.bundle) {
        let path = std::env::temp_dir().join(format!("husk-console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = std::os::unix::net::UnixListener::bind(&path)
            .errno()
            .with_context(|| format!("listen on {}", path.display()))?;
        args.console_socket = Some(path.clone());
        relay = Some((l, path));
    }
    let created = container::create(store, id, &args);
    if let Some((_, path)) = &relay {
        let _ = std::fs::remove_file(path);
    }
    let created = created?;
    drop(created.sock);
    // From here on a failure must not leave the created container behind.
    let started = (|| -> Result<Option<std::os::fd::OwnedFd>> {
        let master = match &relay {
            Some((l, _)) => {
                let (conn, _) = l.accept().errno().context("accept the console connection")?;
                let master = crate::tty::recv_fd(&conn.into())?.1;
                // the caller's window size before the process runs (start
                // is below); the relay forwards later changes
                crate::tty::copy_winsize(0, master.as_raw_fd());
                Some(master)
            }
            None => None,
        };
        container::start(store, id)?;
        Ok(master)
    })();
    let master = match started {
        Ok(m) => m,
        Err(e) => {
            if let Ok(c) = store.open(id, true) {
                if let Ok(Some(fd)) = container::init_pidfd(&c) {
                    let _ = crate::sys::pidfd_send_signal(&fd, libc::SIGKILL);
                }
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(created.pid), None);
                let _ = container::destroy(&c);
            }
            return Err(e);
        }
    };
    if detach {
        return Ok(0);
    }
    let code = match master {
        Some(m) => crate::tty::relay(m, created.pid)?,
        None => container::wait_forwarding(created.pid)?,
    };
    if !keep {
        let c = store.open(id, true)?;
        container::destroy(&c)?;
    }
    Ok(code)
}
