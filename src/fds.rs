//! The descriptors a container receives: 0, 1, 2 and the caller's fds
//! 3 .. 3+N-1 (`--preserve-fds N`, after the `LISTEN_FDS` of socket
//! activation, as runc orders them), never one that husk opened for itself.
//!
//! husk's own fds (the state directory, the sync and exec sockets, the
//! log file, namespace fds) are allocated at the lowest free number. A
//! caller that asks for `--preserve-fds 10` but holds only fds 3 and 4
//! would leave holes where those land, and clearing close-on-exec on the
//! whole range would hand the host state directory to the container
//! (CVE-2024-21626 class). So before husk opens anything, [`reserve`]
//! fills every hole in the range with a close-on-exec `/dev/null`
//! placeholder: everything husk opens afterwards lies above the range,
//! and [`pass_on_exec`] (in the child about to exec) makes only the
//! caller's fds survive exec.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use std::os::fd::RawFd;
use std::sync::OnceLock;

/// What [`reserve`] found and did; one per process.
#[derive(Debug)]
struct Passed {
    /// fds from 3 that reach the container: LISTEN_FDS + --preserve-fds.
    count: u32,
    /// Of those, how many are socket activation's (the first ones).
    listen: u32,
    /// Holes in the range, filled with close-on-exec placeholders.
    placeholders: Vec<RawFd>,
}

static PASSED: OnceLock<Passed> = OnceLock::new();

/// The number of fds systemd passed to this process for socket
/// activation: `LISTEN_FDS`, when `LISTEN_PID` names this process.
pub fn listen_fds_from_env() -> Result<u32> {
    let Ok(n) = std::env::var("LISTEN_FDS") else {
        return Ok(0);
    };
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    if !for_us {
        return Ok(0);
    }
    n.trim()
        .parse::<u32>()
        .with_context(|| format!("LISTEN_FDS={n:?} is not a number of file descriptors"))
}

/// Reserve fds 3 .. 3+listen+preserve-1 for the caller's descriptors.
/// Call before husk opens any fd of its own; later calls are refused.
pub fn reserve(listen: u32, preserve: u32) -> Result<()> {
    let count = listen
        .checked_add(preserve)
        .context("LISTEN_FDS + --preserve-fds is too large")?;
    // (No range, as for every command but create/run/exec passing fds: no
    // system call on this path.)
    if count > 0 {
        let limit = nofile_limit();
        if u64::from(count) + 3 > limit || RawFd::try_from(u64::from(count) + 3).is_err() {
            bail!(
                "--preserve-fds {preserve}{}: fds up to {} do not fit in the open file limit ({limit})",
                if listen > 0 {
                    format!(" (after LISTEN_FDS={listen})")
                } else {
                    String::new()
                },
                u64::from(count) + 2,
            );
        }
    }
    let mut placeholders = Vec::new();
    for fd in 3..3 + count as RawFd {
        if is_open(fd) {
            continue;
        }
        place_null(fd)
            .errno()
            .with_context(|| format!("reserve fd {fd} of the --preserve-fds range"))?;
        placeholders.push(fd);
    }
    PASSED
        .set(Passed {
            count,
            listen,
            placeholders,
        })
        .map_err(|_| anyhow::anyhow!("the preserved fd range was reserved twice"))
}

/// How many socket-activation fds the container gets (fds 3 .. 3+n-1).
pub fn listen_count() -> u32 {
    PASSED.get().map_or(0, |p| p.listen)
}

/// In a child that is about to exec the container's process: every fd
/// from 3 up is close-on-exec except the caller's passed ones.
pub fn pass_on_exec() -> std::io::Result<()> {
    let (count, holes): (u32, &[RawFd]) = match PASSED.get() {
        Some(p) => (p.count, &p.placeholders),
        None => (0, &[]),
    };
    crate::sys::cloexec_from(3)?;
    for fd in 3..3 + count as RawFd {
        if holes.contains(&fd) {
            continue;
        }
        // SAFETY: F_SETFD on an integer fd the caller passed to husk.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the flags of an integer fd.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Open /dev/null close-on-exec at exactly `fd`.
fn place_null(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: open with a constant C string; the result is checked.
    let tmp = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if tmp < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if tmp == fd {
        return Ok(());
    }
    // SAFETY: dup3 onto a number that is not open (checked by the caller).
    let r = unsafe { libc::dup3(tmp, fd, libc::O_CLOEXEC) };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing the temporary fd opened above.
    unsafe { libc::close(tmp) };
    if r < 0 { Err(err) } else { Ok(()) }
}

fn nofile_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}
