//! Terminals: a pty made inside the container and its master handed to the
//! caller over `--console-socket` (SCM_RIGHTS), as runc does.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Connect to the console socket (a host path: done before pivot_root).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    connect_named(path, "the console socket")
}

/// Connect to the AF_UNIX stream socket at `path`; `what` names it in errors.
pub fn connect_named(path: &Path, what: &str) -> Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr};
    let fd = nix::sys::socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .with_context(|| format!("socket for {what}"))?;
    let addr = UnixAddr::new(path).with_context(|| format!("{what} path {}", path.display()))?;
    nix::sys::socket::connect(fd.as_raw_fd(), &addr)
        .with_context(|| format!("connect to {what} {}", path.display()))?;
    Ok(fd)
}

/// A connected pair of close-on-exec stream sockets standing in for a
/// console socket when husk relays the terminal itself: the process that
/// makes the pty sends the master on one end, husk receives it on the other.
pub fn console_pair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType};
    nix::sys::socket::socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
        .context("socketpair for the terminal relay")
}

/// `--pidfd-socket PATH` (runc 1.2+): send a pidfd of `pid` (the init,
/// `kind` "standard", or an exec process, "setns": the words runc sends
/// with it) over the socket with SCM_RIGHTS. runc's init sends its own
/// pidfd during its setup; husk opens it from outside, which names the
/// same process.
pub fn send_pidfd(path: &Path, pid: i32, kind: &str) -> Result<()> {
    let conn = connect_named(path, "the --pidfd-socket")?;
    let fd = crate::sys::pidfd_open(pid)
        .errno()
        .with_context(|| format!("pidfd_open {pid} for --pidfd-socket"))?;
    send_fd(&conn, kind.as_bytes(), &fd).with_context(|| format!("send the pidfd over {}", path.display()))
}

/// Make a pty from the container's /dev/ptmx, send its master over `conn`
/// and return the peer (slave), obtained with TIOCGPTPEER so that no
/// /dev/pts/N path the container controls is ever opened.
pub fn setup_console(conn: OwnedFd, spec: &Spec) -> Result<OwnedFd> {
    setup_console_size(conn, spec.process().as_ref().and_then(|p| p.console_size()))
}

/// As [`setup_console`], with the console size given directly.
pub fn setup_console_size(conn: OwnedFd, size: Option<oci_spec::runtime::Box>) -> Result<OwnedFd> {
    let ws = size.map(|sz| winsize(&sz, "process.consoleSize")).transpose()?;
    let master = nix::fcntl::open(
        "/dev/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("open /dev/ptmx in the container (is /dev/pts mounted?)")?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(nix::errno::Errno::last()).context("unlock the pty");
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(nix::errno::Errno::last()).context("open the pty peer (TIOCGPTPEER)");
    }
    // SAFETY: the ioctl returned a new fd that we own.
    let peer = unsafe { OwnedFd::from_raw_fd(peer) };
    if let Some(ws) = ws {
        // SAFETY: TIOCSWINSZ takes a pointer to a winsize.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(nix::errno::Errno::last()).context("set the console size");
        }
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN takes a pointer to an unsigned int.
    let name = if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } == 0 {
        format!("/dev/pts/{n}")
    } else {
        "/dev/ptmx".to_string()
    };
    send_fd(&conn, name.as_bytes(), &master).context("send the pty master over the console socket")?;
    Ok(peer)
}

/// A console size as the kernel's winsize, whose sides are 16 bits: a
/// larger value is an error naming the field (`field` is its JSON path).
pub fn winsize(size: &oci_spec::runtime::Box, field: &str) -> Result<libc::winsize> {
    let side = |name: &str, v: u64| {
        u16::try_from(v).map_err(|_| anyhow::anyhow!("{field}.{name} {v} is out of range (0 to {})", u16::MAX))
    };
    Ok(libc::winsize {
        ws_row: side("height", size.height())?,
        ws_col: side("width", size.width())?,
        ws_xpixel: 0,
        ws_ypixel: 0,
    })
}

pub fn send_fd(sock: &OwnedFd, data: &[u8], fd: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let iov = [std::io::IoSlice::new(data)];
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receive one fd sent with SCM_RIGHTS (used by tests and the recvtty helper).
pub fn recv_fd(sock: &OwnedFd) -> Result<(Vec<u8>, OwnedFd)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = vec![0u8; 4096];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let n = msg.bytes;
    let mut got = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: the kernel installed this fd for us.
                let o = unsafe { OwnedFd::from_raw_fd(f) };
                if got.is_none() {
                    got = Some(o);
                }
            }
        }
    }
    let Some(fd) = got else { bail!("no fd received") };
    buf.truncate(n);
    Ok((buf, fd))
}

/// Make `peer` the controlling terminal and the stdio of this process,
/// a session leader already ([`crate::process::new_session`]).
pub fn make_controlling(peer: OwnedFd) -> Result<()> {
    // SAFETY: TIOCSCTTY with an integer argument.
    if unsafe { libc::ioctl(peer.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(nix::errno::Errno::last()).context("make the pty the controlling terminal");
    }
    for target in 0..3 {
        // SAFETY: dup2 onto stdio numbers; the new fds are not close-on-exec.
        if unsafe { libc::dup2(peer.as_raw_fd(), target) } < 0 {
            return Err(nix::errno::Errno::last()).context("dup the pty onto stdio");
        }
    }
    Ok(())
}

/// Restores the terminal's attributes when dropped.
pub struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// Put the terminal on stdin in raw mode; None if it is not a terminal.
    pub fn enter() -> Option<RawMode> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut t = saved.clone();
        cfmakeraw(&mut t);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &t);
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// Copy the window size of terminal `from` to the pty master `to`.
/// The window size of the terminal on `fd` (a console size for
/// [`setup_console_size`]); `None` when `fd` is not a terminal or has none.
pub fn terminal_size(fd: std::os::fd::RawFd) -> Option<oci_spec::runtime::Box> {
    // SAFETY: winsize is plain data; TIOCGWINSZ writes one.
    let ws = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0).then_some(ws)
    }?;
    if ws.ws_row == 0 && ws.ws_col == 0 {
        return None;
    }
    oci_spec::runtime::BoxBuilder::default()
        .height(u64::from(ws.ws_row))
        .width(u64::from(ws.ws_col))
        .build()
        .ok()
}

pub fn copy_winsize(from: std::os::fd::RawFd, to: std::os::fd::RawFd) {
    // SAFETY: winsize is plain data; the ioctls read or write one.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Relay between our stdin/stdout and the pty `master` until the process
/// `pid` (our child) exits; forward signals to it (all signals must be
/// blocked) and window-size changes to the pty. Returns its exit status
/// (128+n when a signal ended it).
pub fn relay(master: OwnedFd, pid: i32) -> Result<i32> {
    use nix::sys::signalfd::{SfdFlags, SigSet, SignalFd};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use std::io::{Read, Write};
    let sfd = SignalFd::with_flags(&SigSet::all(), SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    let _raw = RawMode::enter();
    copy_winsize(0, master.as_raw_fd());
    let target = nix::unistd::Pid::from_raw(pid);
    let mut m = std::fs::File::from(master);
    let mut out = std::io::stdout();
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    let mut status: Option<i32> = None;
    loop {
        if status.is_none() {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, c)) if p == target => status = Some(c),
                    Ok(WaitStatus::Signaled(p, s, _)) if p == target => status = Some(128 + s as i32),
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        }
        use std::os::fd::AsFd;
        let stdin = std::io::stdin();
        let mut fds = vec![
            nix::poll::PollFd::new(m.as_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(sfd.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(nix::poll::PollFd::new(stdin.as_fd(), nix::poll::PollFlags::POLLIN));
        }
        // Once the process is gone, drain what the pty still holds.
        let timeout = if status.is_some() {
            nix::poll::PollTimeout::ZERO
        } else {
            nix::poll::PollTimeout::NONE
        };
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll the terminal"),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut progressed = false;
        if ready[0] {
            match m.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                    progressed = true;
                }
                _ => {
                    if let Some(c) = status {
                        return Ok(c);
                    }
                }
            }
        }
        if ready[1] {
            if let Ok(Some(si)) = sfd.read_signal() {
                match si.ssi_signo as i32 {
                    libc::SIGCHLD => {}
                    libc::SIGWINCH => copy_winsize(0, m.as_raw_fd()),
                    s => {
                        let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::try_from(s).ok());
                    }
                }
            }
            progressed = true;
        }
        if stdin_open && ready.get(2).copied().unwrap_or(false) {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(n) if n > 0 => {
                    let _ = m.write_all(&buf[..n]);
                }
                _ => stdin_open = false,
            }
            progressed = true;
        }
        if let Some(c) = status
            && !progressed
        {
            return Ok(c);
        }
    }
}
