//! husk-recvtty: receive a container's pty master over a console socket
//! and relay it to this process's stdin/stdout (runc's recvtty, for tests
//! and for people trying `--console-socket` by hand).
//!
//!     husk-recvtty /tmp/console.sock &
//!     husk create --console-socket /tmp/console.sock -b bundle id && husk start id

use std::io::{Read, Write};
use std::os::fd::AsFd;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: husk-recvtty SOCKET_PATH");
        std::process::exit(2);
    };
    if let Err(e) = run(&path) {
        eprintln!("husk-recvtty: {e:#}");
        std::process::exit(1);
    }
}

fn run(path: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let _ = std::fs::remove_file(path);
    let l = std::os::unix::net::UnixListener::bind(path).with_context(|| format!("listen on {path}"))?;
    let (conn, _) = l.accept().context("accept")?;
    let _ = std::fs::remove_file(path);
    let (_name, master) = husk::tty::recv_fd(&conn.into()).context("receive the pty master")?;
    let mut m = std::fs::File::from(master);
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut buf = [0u8; 8192];
    let mut stdin_open = true;
    loop {
        let mut fds = vec![nix::poll::PollFd::new(m.as_fd(), nix::poll::PollFlags::POLLIN)];
        if stdin_open {
            fds.push(nix::poll::PollFd::new(stdin.as_fd(), nix::poll::PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        if ready[0] {
            match m.read(&mut buf) {
                Ok(n) if n > 0 => {
                    out.write_all(&buf[..n])?;
                    out.flush()?;
                }
                // EOF or EIO: every holder of the pty peer is gone.
                _ => return Ok(()),
            }
        }
        if stdin_open && ready.get(1).copied().unwrap_or(false) {
            match stdin.lock().read(&mut buf) {
                Ok(n) if n > 0 => m.write_all(&buf[..n])?,
                _ => stdin_open = false,
            }
        }
    }
}
