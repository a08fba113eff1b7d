//! Per-process attributes from the config applied to the container process
//! right before exec: personality, scheduler (sched_setattr), I/O priority,
//! CPU affinity (execCPUAffinity) and the NUMA memory policy.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{
    ExecCPUAffinity, IOPriorityClass, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Scheduler,
};

/// Parse a CPU (or NUMA node) list like "0-3,7" into a bit vector.
pub fn parse_list(s: &str) -> Result<Vec<u64>> {
    let mut bits: Vec<u64> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: usize = a.parse().with_context(|| format!("bad number in list {s:?}"))?;
        let b: usize = b.parse().with_context(|| format!("bad number in list {s:?}"))?;
        if a > b || b >= 8192 {
            bail!("bad range {part:?} in list {s:?}");
        }
        for n in a..=b {
            if bits.len() <= n / 64 {
                bits.resize(n / 64 + 1, 0);
            }
            bits[n / 64] |= 1 << (n % 64);
        }
    }
    if bits.is_empty() {
        bail!("empty list {s:?}");
    }
    Ok(bits)
}

pub fn set_affinity(list: &str) -> Result<()> {
    let bits = parse_list(list)?;
    // SAFETY: sched_setaffinity with a buffer of the given byte length.
    let r = unsafe { libc::syscall(libc::SYS_sched_setaffinity, 0, bits.len() * 8, bits.as_ptr()) };
    if r != 0 {
        return Err(nix::errno::Errno::last()).with_context(|| format!("sched_setaffinity {list:?}"));
    }
    Ok(())
}

/// Does `execCPUAffinity` name CPUs (initial or final)? An empty list
/// counts as unset.
pub fn affinity_configured(a: Option<&ExecCPUAffinity>) -> bool {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    a.is_some_and(|a| set(a.initial()) || set(a.cpu_affinity_final()))
}

/// Give process `pid`, now in the container's cgroup, every CPU: without
/// this it keeps its creator's affinity (a caller pinned with `taskset -c
/// 0` pinned the container). The kernel clamps the mask to the CPUs it
/// has and to the cgroup's cpuset, and keeps the request for CPUs added
/// to the cpuset later. runc ≥ 1.2.7 does the same for the init and for
/// an exec without execCPUAffinity; a failure is a warning, as there.
pub fn reset_affinity(pid: i32) {
    // 8192 CPUs (the most parse_list takes; runc uses its MaxCPU the same way).
    let all = [u64::MAX; 8192 / 64];
    // SAFETY: sched_setaffinity reads exactly the given byte length of `all`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            pid,
            std::mem::size_of_val(&all),
            all.as_ptr(),
        )
    };
    if r != 0 {
        crate::warn!(
            "reset the CPU affinity of pid {pid}: {} (the container process keeps husk's CPU affinity)",
            std::io::Error::last_os_error()
        );
    }
}

pub fn initial_affinity(a: Option<&ExecCPUAffinity>) -> Result<()> {
    match a.and_then(|a| a.initial().as_deref()).filter(|s| !s.is_empty()) {
        Some(l) => set_affinity(l).context("process.execCPUAffinity.initial"),
        None => Ok(()),
    }
}

pub fn personality(p: &LinuxPersonality) -> Result<()> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        bail!(
            "linux.personality.flags: no flags are defined by the runtime spec ({:?})",
            p.flags()
        );
    }
    let persona: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality with an integer persona.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(nix::errno::Errno::last()).context("personality");
    }
    Ok(())
}

pub fn scheduler(s: &Scheduler) -> Result<()> {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
        // SCHED_ATTR_SIZE_VER1 (Linux 5.3): the kernel refuses the
        // UTIL_CLAMP flags with a shorter struct. The spec has no clamp
        // values: 0, as runc passes them.
        util_min: u32,
        util_max: u32,
    }
    const SCHED_ATTR_SIZE: u32 = 56;
    const _: () = assert!(std::mem::size_of::<SchedAttr>() == SCHED_ATTR_SIZE as usize);
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: SCHED_ATTR_SIZE,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: u32::try_from(s.priority().unwrap_or(0)).map_err(|_| {
            anyhow::anyhow!(
                "process.scheduler.priority {:?} is out of range (0 to 99)",
                s.priority()
            )
        })?,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: sched_setattr on ourselves with a correctly sized struct.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EOPNOTSUPP) && flags & 0x60 != 0 {
            bail!(
                "process.scheduler.flags: SCHED_FLAG_UTIL_CLAMP_MIN/MAX need a kernel with utilization clamping (CONFIG_UCLAMP_TASK): sched_setattr: {}",
                crate::sys::errno_text(&err)
            );
        }
        return Err(err).errno().with_context(|| {
            format!(
                "sched_setattr (process.scheduler policy {:?}, flags {:?})",
                s.policy(),
                s.flags().as_deref().unwrap_or(&[])
            )
        });
    }
    Ok(())
}

pub fn io_priority(p: &LinuxIOPriority) -> Result<()> {
    let class: i64 = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        bail!("process.ioPriority.priority {} must be between 0 and 7", p.priority());
    }
    const IOPRIO_WHO_PROCESS: i64 = 1;
    // SAFETY: ioprio_set with integer arguments.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            (class << 13) | p.priority(),
        )
    };
    if r != 0 {
        return Err(nix::errno::Errno::last()).context("ioprio_set (process.ioPriority)");
    }
    Ok(())
}

/// linux.memoryPolicy's modes: the spec's name, the crate's value and the
/// kernel's number (`husk features` lists the names).
pub const MEMORY_POLICY_MODES: [(&str, MemoryPolicyModeType, i64); 7] = [
    ("MPOL_DEFAULT", MemoryPolicyModeType::MpolDefault, 0),
    ("MPOL_PREFERRED", MemoryPolicyModeType::MpolPreferred, 1),
    ("MPOL_BIND", MemoryPolicyModeType::MpolBind, 2),
    ("MPOL_INTERLEAVE", MemoryPolicyModeType::MpolInterleave, 3),
    ("MPOL_LOCAL", MemoryPolicyModeType::MpolLocal, 4),
    ("MPOL_PREFERRED_MANY", MemoryPolicyModeType::MpolPreferredMany, 5),
    (
        "MPOL_WEIGHTED_INTERLEAVE",
        MemoryPolicyModeType::MpolWeightedInterleave,
        6,
    ),
];

/// linux.memoryPolicy's flags: the spec's name, the crate's value and the bit.
pub const MEMORY_POLICY_FLAGS: [(&str, MemoryPolicyFlagType, i64); 3] = [
    (
        "MPOL_F_NUMA_BALANCING",
        MemoryPolicyFlagType::MpolFNumaBalancing,
        1 << 13,
    ),
    (
        "MPOL_F_RELATIVE_NODES",
        MemoryPolicyFlagType::MpolFRelativeNodes,
        1 << 14,
    ),
    ("MPOL_F_STATIC_NODES", MemoryPolicyFlagType::MpolFStaticNodes, 1 << 15),
];

pub fn memory_policy(m: &LinuxMemoryPolicy) -> Result<()> {
    let mut mode: i64 = MEMORY_POLICY_MODES
        .iter()
        .find(|(_, t, _)| *t == m.mode())
        .map(|(_, _, n)| *n)
        .context("internal error: a memory policy mode missing from MEMORY_POLICY_MODES")?;
    for f in m.flags().iter().flatten() {
        mode |= MEMORY_POLICY_FLAGS
            .iter()
            .find(|(_, t, _)| t == f)
            .map(|(_, _, n)| *n)
            .context("internal error: a memory policy flag missing from MEMORY_POLICY_FLAGS")?;
    }
    let nodes = match m.nodes().as_deref().filter(|s| !s.is_empty()) {
        Some(n) => parse_list(n).context("linux.memoryPolicy.nodes")?,
        None => Vec::new(),
    };
    let (ptr, maxnode) = if nodes.is_empty() {
        (std::ptr::null(), 0usize)
    } else {
        (nodes.as_ptr(), nodes.len() * 64 + 1)
    };
    // SAFETY: set_mempolicy with a node mask of maxnode bits (or none).
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .errno()
            .with_context(|| format!("set_mempolicy (linux.memoryPolicy {:?})", m.mode()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("0").unwrap(), vec![1]);
        assert_eq!(parse_list("0-3,7").unwrap(), vec![0b1000_1111]);
        assert_eq!(parse_list("64").unwrap(), vec![0, 1]);
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("x").is_err());
        assert!(parse_list("").is_err());
    }
}
