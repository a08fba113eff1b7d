//! Linux security modules: the AppArmor profile or SELinux label a process
//! execs into, and the SELinux label of the container's mounts.
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

/// Is SELinux enabled on this host?
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Check before anything is created: a label (`field`) asked for on a
/// host without SELinux is an error naming the field. runc and crun
/// ignore it there; husk does not accept what it cannot apply.
pub fn check_selinux(field: &str, label: Option<&str>) -> Result<()> {
    match label.filter(|l| !l.is_empty()) {
        Some(l) if !selinux_enabled() => {
            bail!("{field} {l:?} is set but SELinux is not enabled on this host")
        }
        _ => Ok(()),
    }
}

/// Make the next execve run with SELinux label `label` (where enabled).
pub fn selinux_exec(label: &str) -> Result<()> {
    if !selinux_enabled() {
        crate::debug!("SELinux is not enabled: process label {label:?} ignored");
        return Ok(());
    }
    write_attr(&["/proc/self/attr/exec"], label.as_bytes())
}

/// The mount data with the SELinux `context=` of `linux.mountLabel` added
/// (where SELinux is enabled and the filesystem takes one).
pub fn mount_data_with_label(data: Option<String>, fstype: &str, label: Option<&str>) -> Option<String> {
    let Some(label) = label.filter(|l| !l.is_empty() && selinux_enabled()) else {
        return data;
    };
    if !matches!(fstype, "tmpfs" | "devpts" | "mqueue" | "shm") {
        return data;
    }
    let ctx = format!("context=\"{label}\"");
    Some(match data {
        Some(d) if !d.is_empty() => format!("{d},{ctx}"),
        _ => ctx,
    })
}

/// Make the next execve switch to AppArmor profile `profile`.
pub fn apparmor_exec(profile: &str) -> Result<()> {
    write_attr(
        &["/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"],
        format!("exec {profile}").as_bytes(),
    )
}

/// Write an LSM attribute of this process through procfs, verified with
/// fstatfs to be procfs.
fn write_attr(candidates: &[&str], value: &[u8]) -> Result<()> {
    let path = candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .context("no /proc/self/attr/exec to set the LSM label")?;
    crate::sys::write_checked(path, value, nix::sys::statfs::PROC_SUPER_MAGIC)
        .with_context(|| format!("set the LSM exec label {:?}", String::from_utf8_lossy(value)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_label_goes_into_the_data_only_with_selinux() {
        let d = mount_data_with_label(
            Some("mode=755".into()),
            "tmpfs",
            Some("system_u:object_r:container_file_t:s0"),
        );
        if selinux_enabled() {
            assert_eq!(
                d.as_deref(),
                Some("mode=755,context=\"system_u:object_r:container_file_t:s0\"")
            );
        } else {
            assert_eq!(d.as_deref(), Some("mode=755"));
        }
        assert_eq!(mount_data_with_label(None, "proc", Some("x")), None);
    }
}
