//! Start a created container (`husk start`, `husk run`): release its init
//! to exec the entrypoint, then the poststart hooks and READY=1.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use std::io::Read;
use std::os::fd::AsRawFd;

use crate::state::{self, Status, Store};

pub fn start(store: &Store, id: &str) -> Result<()> {
    let c = store.open(id, true)?;
    match c.status() {
        Status::Created => {}
        Status::Creating => bail!("cannot start container {id:?}: it is still being created"),
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
    }
    let notify = match &c.state.notify_socket {
        Some(_) => {
            let p = c.dir.join("notify").join("notify.sock");
            let _ = std::fs::remove_file(&p);
            Some(
                std::os::unix::net::UnixDatagram::bind(&p)
                    .errno()
                    .with_context(|| format!("bind {}", p.display()))?,
            )
        }
        None => None,
    };
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr};
    let s = nix::sys::socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .context("socket")?;
    let path = format!("/proc/self/fd/{}/{}", c.dir_fd.as_raw_fd(), state::EXEC_SOCK);
    let addr = UnixAddr::new(path.as_str()).context("exec.sock address")?;
    nix::sys::socket::connect(s.as_raw_fd(), &addr)
        .with_context(|| format!("connect to {}/{}", c.dir.display(), state::EXEC_SOCK))?;
    let mut conn = std::fs::File::from(s);
    // The init answers 'S' when it takes the connection, then execs (the
    // connection closes) or writes why it could not.
    let mut first = [0u8; 1];
    let n = loop {
        match conn.read(&mut first) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => break 0,
            Err(e) => return Err(e).errno().context("read from the container init"),
        }
    };
    if n == 0 || first[0] != b'S' {
        bail!("the container init exited before it could be started");
    }
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    // Whatever happened, the init is past waiting: it is running, or it failed and exited.
    let _ = nix::unistd::unlinkat(&c.dir_fd, state::EXEC_SOCK, nix::unistd::UnlinkatFlags::NoRemoveDir);
    if !rest.is_empty() {
        bail!("{}", String::from_utf8_lossy(&rest).trim());
    }
    if let Some(hooks) = &c.state.poststart {
        // The state as of the start: running, with its pid, even if a
        // short-lived process has finished by the time the hooks run.
        let mut st = c.oci_state();
        st["status"] = "running".into();
        st["pid"] = c.state.pid.into();
        let_the_process_run(c.state.pid);
        // runtime-spec 1.3: a failing poststart hook is an error, and the
        // container is stopped (delete then destroys it and runs the
        // poststop hooks). runc 1.5 does the same.
        if let Err(e) = crate::hooks::run_all("poststart", hooks, &st.to_string(), None) {
            return Err(match super::kill_init(&c) {
                Ok(()) => anyhow::anyhow!("{e:#}; the container was stopped"),
                Err(k) => anyhow::anyhow!("{e:#}; stopping the container failed too: {k:#}"),
            });
        }
    }
    if let (Some(sock), Some(host)) = (notify, &c.state.notify_socket) {
        relay_ready(&c, &sock, host)?;
    }
    crate::debug!("container {id} started");
    Ok(())
}

/// poststart hooks run "after the user-specified process is executed". EOF
/// on exec.sock means execve succeeded, but the new program may not have
/// run an instruction yet; give it until it first blocks or exits (at most
/// 50 ms) so that hooks observe a process that has started. Only paid when
/// poststart hooks exist.
fn let_the_process_run(pid: i32) {
    let end = std::time::Instant::now() + std::time::Duration::from_millis(50);
    while std::time::Instant::now() < end {
        match crate::state::proc_stat(pid) {
            Some(('R', _)) => std::thread::yield_now(),
            _ => return,
        }
    }
}

/// Wait for the container's READY=1 on our notify socket and pass it to
/// the caller's NOTIFY_SOCKET (as runc does, start returns after that).
fn relay_ready(c: &crate::state::Container, sock: &std::os::unix::net::UnixDatagram, host: &str) -> Result<()> {
    use std::os::fd::AsFd;
    let pidfd = crate::sys::pidfd_open(c.state.pid)
        .errno()
        .context("pidfd_open the container init")?;
    let mut buf = vec![0u8; 4096];
    loop {
        let mut fds = [
            nix::poll::PollFd::new(sock.as_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("wait for READY=1 from the container"),
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            let n = sock
                .recv(&mut buf)
                .errno()
                .context("read the container's notify socket")?;
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == "READY=1") {
                let out = std::os::unix::net::UnixDatagram::unbound().errno().context("socket")?;
                let mut text = msg;
                if !text.contains("MAINPID=") {
                    text.push_str(&format!("\nMAINPID={}", c.state.pid));
                }
                out.send_to(text.as_bytes(), host)
                    .errno()
                    .with_context(|| format!("send READY=1 to NOTIFY_SOCKET {host}"))?;
                return Ok(());
            }
        } else if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            bail!("the container exited before it sent READY=1 to NOTIFY_SOCKET");
        }
    }
}
