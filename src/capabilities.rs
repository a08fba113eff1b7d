//! Capability sets: names to numbers, and applying all five sets.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// Capability names in kernel order (the index is the capability number).
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The highest capability number this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Number of a capability name (`CAP_SYS_ADMIN` or `SYS_ADMIN`).
pub fn number(name: &str) -> Option<u32> {
    let n = name.strip_prefix("CAP_").unwrap_or(name);
    NAMES.iter().position(|x| *x == n).and_then(|i| u32::try_from(i).ok())
}

/// Bitmask of a set; capabilities unknown to the running kernel are
/// skipped (as runc does), since they cannot be granted anyway.
/// Is `name` a capability husk knows (by the oci-spec crate's names)?
pub fn known(name: &str) -> bool {
    serde_json::from_value::<oci_spec::runtime::Capability>(serde_json::Value::String(name.to_string())).is_ok()
}

pub fn mask(set: Option<&Capabilities>, last: u32) -> u64 {
    let mut m = 0u64;
    if let Some(set) = set {
        for c in set {
            if let Some(n) = number(&c.to_string())
                && n <= last
            {
                m |= 1 << n;
            }
        }
    }
    m
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Masks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

pub fn masks(caps: Option<&LinuxCapabilities>) -> Masks {
    masks_up_to(caps, last_cap())
}

/// [`masks`] for a kernel whose last capability is `last`.
pub fn masks_up_to(caps: Option<&LinuxCapabilities>, last: u32) -> Masks {
    match caps {
        None => Masks {
            bounding: 0,
            effective: 0,
            permitted: 0,
            inheritable: 0,
            ambient: 0,
        },
        Some(c) => Masks {
            bounding: mask(c.bounding().as_ref(), last),
            effective: mask(c.effective().as_ref(), last),
            permitted: mask(c.permitted().as_ref(), last),
            inheritable: mask(c.inheritable().as_ref(), last),
            ambient: mask(c.ambient().as_ref(), last),
        },
    }
}

/// Drop every capability outside `bounding` from the bounding set.
/// Must run while the process still has CAP_SETPCAP.
pub fn drop_bounding(bounding: u64) -> Result<()> {
    let last = last_cap();
    for n in 0..=last {
        if bounding & (1 << n) == 0 {
            crate::sys::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong)
                .errno()
                .with_context(|| {
                    format!(
                        "drop CAP_{} from the bounding set",
                        NAMES.get(n as usize).unwrap_or(&"?")
                    )
                })?;
        }
    }
    Ok(())
}

/// Set effective, permitted and inheritable in one capset, then raise
/// the ambient set (each ambient capability must be permitted and
/// inheritable, which the kernel checks).
pub fn apply(m: &Masks) -> Result<()> {
    crate::sys::capset(m.effective, m.permitted, m.inheritable)
        .errno()
        .context("capset: set the effective, permitted and inheritable capabilities")?;
    crate::sys::prctl3(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as _, 0)
        .errno()
        .context("clear the ambient capabilities")?;
    for n in 0..64u32 {
        if m.ambient & (1 << n) != 0 {
            // The kernel refuses ambient capabilities that are not both
            // permitted and inheritable; runc ignores those, and so do we.
            let _ = crate::sys::prctl3(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as _,
                n as libc::c_ulong,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability;

    #[test]
    fn numbers_match_the_kernel_header() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_AUDIT_WRITE"), Some(29));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }

    #[test]
    fn oci_spec_names_map() {
        let set: Capabilities = [Capability::Kill, Capability::NetBindService, Capability::AuditWrite]
            .into_iter()
            .collect();
        assert_eq!(mask(Some(&set), 40), (1 << 5) | (1 << 10) | (1 << 29));
        assert_eq!(mask(Some(&set), 9), 1 << 5);
    }
}
