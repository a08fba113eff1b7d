//! Linux security modules: the AppArmor profile a process execs into.
//! Written through /proc/self/attr, checked with fstatfs to be procfs
//! (a container could otherwise swap what husk writes to).

use anyhow::{Context, Result, bail};
use std::path::Path;

/// Is AppArmor enabled on this host?
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

/// Check before anything is created: a profile asked for on a host
/// without AppArmor is an error, not silently ignored.
pub fn check_apparmor(profile: Option<&str>) -> Result<()> {
    match profile.filter(|p| !p.is_empty()) {
        Some(p) if !apparmor_enabled() => {
            bail!("process.apparmorProfile {p:?} is set but AppArmor is not enabled on this host")
        }
        _ => Ok(()),
    }
}

/// Make the next execve switch to AppArmor profile `profile`.
pub fn apparmor_exec(profile: &str) -> Result<()> {
    let candidates = ["/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"];
    let path = candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .context("no /proc/self/attr/exec to set the AppArmor profile")?;
    let fd = nix::fcntl::open(
        *path,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {path}"))?;
    let fs = nix::sys::statfs::fstatfs(&fd).with_context(|| format!("statfs {path}"))?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        bail!("{path} is not on procfs");
    }
    nix::unistd::write(&fd, format!("exec {profile}").as_bytes())
        .with_context(|| format!("set AppArmor profile {profile:?} (write to {path})"))?;
    Ok(())
}
