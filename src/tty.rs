//! Terminals: a pty made inside the container and its master handed to the
//! caller over `--console-socket` (SCM_RIGHTS), as runc does.

use anyhow::{Context, Result, bail};
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Connect to the console socket (a host path: done before pivot_root).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr};
    let fd = nix::sys::socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .context("socket for the console socket")?;
    let addr = UnixAddr::new(path).with_context(|| format!("console socket path {}", path.display()))?;
    nix::sys::socket::connect(fd.as_raw_fd(), &addr)
        .with_context(|| format!("connect to the console socket {}", path.display()))?;
    Ok(fd)
}

/// Make a pty from the container's /dev/ptmx, send its master over `conn`
/// and return the peer (slave), obtained with TIOCGPTPEER so that no
/// /dev/pts/N path the container controls is ever opened.
pub fn setup_console(conn: OwnedFd, spec: &Spec) -> Result<OwnedFd> {
    setup_console_size(conn, spec.process().as_ref().and_then(|p| p.console_size()))
}

/// As [`setup_console`], with the console size given directly.
pub fn setup_console_size(conn: OwnedFd, size: Option<oci_spec::runtime::Box>) -> Result<OwnedFd> {
    let master = nix::fcntl::open(
        "/dev/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("open /dev/ptmx in the container (is /dev/pts mounted?)")?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(std::io::Error::last_os_error()).context("unlock the pty");
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
        return Err(std::io::Error::last_os_error()).context("open the pty peer (TIOCGPTPEER)");
    }
    // SAFETY: the ioctl returned a new fd that we own.
    let peer = unsafe { OwnedFd::from_raw_fd(peer) };
    if let Some(sz) = size {
        let ws = libc::winsize {
            ws_row: sz.height() as u16,
            ws_col: sz.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ takes a pointer to a winsize.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(std::io::Error::last_os_error()).context("set the console size");
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

/// Make `peer` the controlling terminal and the stdio of this process.
pub fn make_controlling(peer: OwnedFd) -> Result<()> {
    nix::unistd::setsid().context("setsid")?;
    // SAFETY: TIOCSCTTY with an integer argument.
    if unsafe { libc::ioctl(peer.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("make the pty the controlling terminal");
    }
    for target in 0..3 {
        // SAFETY: dup2 onto stdio numbers; the new fds are not close-on-exec.
        if unsafe { libc::dup2(peer.as_raw_fd(), target) } < 0 {
            return Err(std::io::Error::last_os_error()).context("dup the pty onto stdio");
        }
    }
    Ok(())
}
