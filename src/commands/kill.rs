//! `husk kill [--all] ID [SIGNAL]`.

use crate::container::{init_pidfd, signal_all};
use crate::state::{Status, Store};
use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};

/// Parse a signal given as a name (KILL, SIGKILL, sigkill) or a number.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal number {n} (1 to 64)");
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    // SIGRTMIN+N and SIGRTMAX-N: N must stay within the real-time range.
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    for (base, sign, value) in [("RTMIN", '+', rtmin), ("RTMAX", '-', rtmax)] {
        if let Some(rest) = name.strip_prefix(base) {
            let span = rtmax - rtmin;
            let off = if rest.is_empty() {
                Some(0)
            } else {
                rest.trim_start_matches(sign)
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (0..=span).contains(n))
            };
            let Some(off) = off else {
                bail!("invalid signal {s:?}: SIG{base}{sign}N takes N from 0 to {span}");
            };
            return Ok(if sign == '+' { value + off } else { value - off });
        }
    }
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

/// Signal the init (or with `all` every process of the container). After
/// SIGKILL, wait (at most [`crate::state::EXIT_WAIT_MS`]) until the init
/// has exited: the kernel takes milliseconds to tear it down (its mount
/// namespace waits for an RCU grace period), and a `delete` right after
/// `kill` must find it stopped.
pub fn kill(store: &Store, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let sig = parse_signal(signal.unwrap_or("SIGTERM"))?;
    let c = store.open(id, false)?;
    let status = c.status();
    match status {
        Status::Stopped if !all => bail!("container {id:?} is not running"),
        Status::Creating => bail!("container {id:?} is still being created"),
        _ => {}
    }
    // Opened before signalling: the wait below is for this very process.
    let init = init_pidfd(&c)?;
    if all {
        signal_all(&c, sig)?;
    } else {
        let Some(fd) = &init else {
            bail!("container {id:?} is not running")
        };
        crate::sys::pidfd_send_signal(fd, sig)
            .errno()
            .with_context(|| format!("send signal {sig} to the container init (pid {})", c.state.pid))?;
        // A task frozen by the v1 freezer dies only once thawed (runc
        // thaws a paused container for SIGKILL too).
        if sig == libc::SIGKILL
            && status == Status::Paused
            && let Some(cg) = c.cgroup()
        {
            cg.thaw()
                .context("thaw the paused container so that SIGKILL takes effect")?;
        }
    }
    if sig == libc::SIGKILL
        && let Some(fd) = &init
        && !crate::sys::pidfd_wait(fd, crate::state::EXIT_WAIT_MS)
            .errno()
            .context("wait for the container init to exit")?
    {
        crate::warn!(
            "the container init (pid {}) has not exited {}s after SIGKILL",
            c.state.pid,
            crate::state::EXIT_WAIT_MS / 1000
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_and_numbers() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("HUP").unwrap(), 1);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
        assert_eq!(parse_signal("SIGRTMAX-2").unwrap(), libc::SIGRTMAX() - 2);
        assert_eq!(parse_signal("RTMAX").unwrap(), libc::SIGRTMAX());
    }

    #[test]
    fn real_time_offsets_stay_in_range() {
        let span = libc::SIGRTMAX() - libc::SIGRTMIN();
        assert_eq!(parse_signal(&format!("SIGRTMIN+{span}")).unwrap(), libc::SIGRTMAX());
        for bad in [
            "SIGRTMIN+2147483647",
            "SIGRTMIN+99999999999",
            "SIGRTMIN-3",
            "SIGRTMAX-2147483647",
            "RTMIN+x",
        ] {
            let e = parse_signal(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid signal {bad:?}: SIGRTM")), "{bad}: {e}");
            assert!(e.ends_with(&format!("takes N from 0 to {span}")), "{bad}: {e}");
        }
    }
}
