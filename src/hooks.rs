//! OCI hooks: each runs with its path, args, env and timeout, the container
//! state JSON on stdin; its output goes to husk's log under the hook's name.

use anyhow::{Context, Result, bail};
use oci_spec::runtime::Hook;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Run hooks in order; the first failure stops and is returned.
pub fn run_all(kind: &str, hooks: &[Hook], state: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state).with_context(|| format!("{kind} hook #{i} ({})", h.path().display()))?;
    }
    Ok(())
}

/// Run hooks in order; failures are logged as warnings (poststart, poststop).
pub fn run_all_warn(kind: &str, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            crate::warn!("{kind} hook #{i} ({}) failed: {e:#}", h.path().display());
        }
    }
}

fn run_one(h: &Hook, state: &str) -> Result<()> {
    let path = h.path();
    let mut cmd = Command::new(path);
    if let Some(args) = h.args() {
        if let Some(a0) = args.first() {
            cmd.arg0(a0);
        }
        cmd.args(args.iter().skip(1));
    }
    cmd.env_clear();
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("start {}", path.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let pidfd = crate::sys::pidfd_open(child.id() as i32).context("pidfd_open for the hook")?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut output = Vec::new();
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| std::time::Instant::now() + std::time::Duration::from_secs(t as u64));
    let mut exited = false;
    while !exited {
        let timeout_ms = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("timed out after {}s and was killed", h.timeout().unwrap_or(0));
                }
                left.as_millis().min(i32::MAX as u128) as i32
            }
            None => -1,
        };
        let mut fds = vec![nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
        if let Some(o) = &out {
            fds.push(nix::poll::PollFd::new(o.as_fd(), nix::poll::PollFlags::POLLIN));
        }
        if let Some(e) = &err {
            fds.push(nix::poll::PollFd::new(e.as_fd(), nix::poll::PollFlags::POLLIN));
        }
        let t = if timeout_ms < 0 {
            nix::poll::PollTimeout::NONE
        } else {
            nix::poll::PollTimeout::try_from(timeout_ms).unwrap_or(nix::poll::PollTimeout::MAX)
        };
        match nix::poll::poll(&mut fds, t) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll the hook"),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        exited = ready[0];
        let mut idx = 1;
        if out.is_some() {
            if ready[idx] && drain(&mut out, &mut output) {
                out = None;
            }
            idx += 1;
        }
        if err.is_some() && ready[idx] && drain(&mut err, &mut output) {
            err = None;
        }
    }
    // The hook exited: read what is left (its pipes may be held by children; do not wait on them).
    if let Some(f) = out.as_mut() {
        let _ = nix::fcntl::fcntl(f.as_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        let _ = f.read_to_end(&mut output);
    }
    if let Some(f) = err.as_mut() {
        let _ = nix::fcntl::fcntl(f.as_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        let _ = f.read_to_end(&mut output);
    }
    let status = child.wait().context("wait for the hook")?;
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
