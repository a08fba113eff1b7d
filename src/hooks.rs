//! OCI hooks: each runs with its path, args, env and timeout, the container
//! state JSON on stdin; its output goes to husk's log under the hook's name.
//!
//! A hook with `env` gets exactly that environment. One without gets what
//! runc's hooks get: prestart, createRuntime, poststart and poststop hooks
//! (run by husk) the runtime's own environment; createContainer and
//! startContainer hooks (run by the init) the container process's.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::Hook;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Run hooks in order; the first failure stops and is returned.
/// `container_env`: the environment of a hook without `env` (None: husk's own).
pub fn run_all(kind: &str, hooks: &[Hook], state: &str, container_env: Option<&[String]>) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state, container_env).with_context(|| format!("{kind} hook #{i} ({})", h.path().display()))?;
    }
    Ok(())
}

/// Run hooks in order; failures are logged as warnings (poststart, poststop).
pub fn run_all_warn(kind: &str, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state, None) {
            crate::warn!("{kind} hook #{i} ({}) failed: {e:#}", h.path().display());
        }
    }
}

fn run_one(h: &Hook, state: &str, container_env: Option<&[String]>) -> Result<()> {
    let path = h.path();
    let mut cmd = Command::new(path);
    if let Some(args) = h.args() {
        if let Some(a0) = args.first() {
            cmd.arg0(a0);
        }
        cmd.args(args.iter().skip(1));
    }
    if let Some(env) = h.env().as_deref().or(container_env) {
        cmd.env_clear();
        for e in env {
            if let Some((k, v)) = e.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .errno()
        .with_context(|| format!("start {}", path.display()))?;
    let r = supervise(&mut child, h, state.as_bytes());
    if r.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (status, output) = r?;
    let text = String::from_utf8_lossy(&output);
    for line in text.lines() {
        crate::logging::log(crate::logging::Level::Info, &format!("hook {}: {line}", path.display()));
    }
    if !status.success() {
        let tail = text.trim();
        if tail.is_empty() {
            bail!("exited with {status}");
        }
        bail!("exited with {status}: {tail}");
    }
    Ok(())
}

/// Feed the hook its state, collect its output and wait for it to exit,
/// all in one poll loop bounded by the hook's timeout (none: no bound, as
/// runc). Its stdin is written without blocking, so a hook that never
/// reads it cannot hold husk past the deadline; one that exits without
/// reading it (EPIPE) is not an error, as with runc. No thread: the
/// process that forks containers stays single-threaded.
fn supervise(child: &mut Child, h: &Hook, input: &[u8]) -> Result<(ExitStatus, Vec<u8>)> {
    use nix::poll::{PollFd, PollFlags};
    let pidfd = crate::sys::pidfd_open(child.id() as i32)
        .errno()
        .context("pidfd_open for the hook")?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut stdin = child.stdin.take().filter(|_| !input.is_empty());
    if let Some(s) = &stdin {
        nix::fcntl::fcntl(s.as_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
            .context("make the hook's stdin non-blocking")?;
    }
    let mut written = 0;
    let mut output = Vec::new();
    // A timeout past what the clock can count is no deadline at all.
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t.unsigned_abs())));
    loop {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    let unread = if written < input.len() {
                        format!(
                            " (it had not taken its state from stdin: {written} of {} bytes written)",
                            input.len()
                        )
                    } else {
                        String::new()
                    };
                    bail!("timed out after {}s and was killed{unread}", h.timeout().unwrap_or(0));
                }
                // Round up: a poll that wakes a little early just loops.
                let ms = left.as_millis().saturating_add(1);
                nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX)
            }
            None => nix::poll::PollTimeout::NONE,
        };
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let out_i = out.as_ref().map(|f| {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let err_i = err.as_ref().map(|f| {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let in_i = stdin.as_ref().map(|f| {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
            fds.len() - 1
        });
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll the hook"),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        let is_ready = |i: Option<usize>| i.and_then(|i| ready.get(i).copied()).unwrap_or(false);
        if is_ready(in_i) {
            feed(&mut stdin, input, &mut written);
        }
        if is_ready(out_i) && drain(&mut out, &mut output) {
            out = None;
        }
        if is_ready(err_i) && drain(&mut err, &mut output) {
            err = None;
        }
        if is_ready(Some(0)) {
            break;
        }
    }
    drop(stdin);
    // The hook exited: read what is left (its pipes may be held by children; do not wait on them).
    drain_rest(out, &mut output);
    drain_rest(err, &mut output);
    let status = child.wait().errno().context("wait for the hook")?;
    Ok((status, output))
}

/// Read what a pipe holds now, without waiting for more.
fn drain_rest<R: Read + AsFd>(f: Option<R>, buf: &mut Vec<u8>) {
    if let Some(mut f) = f {
        let _ = nix::fcntl::fcntl(f.as_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        let _ = f.read_to_end(buf);
    }
}

/// Write what the pipe takes now; stdin is closed (EOF for the hook) once
/// everything is written, or dropped when the hook closed its end.
fn feed(stdin: &mut Option<ChildStdin>, input: &[u8], written: &mut usize) {
    let Some(s) = stdin.as_mut() else { return };
    loop {
        let rest = input.get(*written..).unwrap_or_default();
        if rest.is_empty() {
            *stdin = None;
            return;
        }
        match s.write(rest) {
            Ok(0) => {
                *stdin = None;
                return;
            }
            Ok(n) => *written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            // EPIPE: the hook does not read its stdin; not an error on its own.
            Err(_) => {
                *stdin = None;
                return;
            }
        }
    }
}

/// Read what is available; true at EOF.
fn drain<R: Read>(r: &mut Option<R>, buf: &mut Vec<u8>) -> bool {
    let Some(f) = r.as_mut() else { return true };
    let mut chunk = [0u8; 4096];
    match f.read(&mut chunk) {
        Ok(0) => true,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            false
        }
        Err(_) => true,
    }
}
