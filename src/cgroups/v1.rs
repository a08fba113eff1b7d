//! cgroup v1: resources → (file, value) settings, and the v1 statistics.

use std::path::Path;

use anyhow::{Result, bail};
use oci_spec::runtime::LinuxResources;
use serde_json::{Map, Value, json};

use super::{Setting, check_hugepage_size, read_trimmed, read_u64};

/// The resource groups in the order they are applied; each is one v1
/// controller.
pub const GROUPS: &[&str] = &[
    "pids", "memory", "cpu", "cpuset", "blkio", "hugetlb", "net_cls", "net_prio", "rdma",
];

/// Why a v1 blkio hierarchy may have no weight file.
const NO_V1_WEIGHT: &str = "the kernel has a blkio weight only with an I/O scheduler that has one: \
     BFQ, or CFQ before Linux 5.0";

/// Why a v1 cpu hierarchy may have no realtime files.
const NO_RT: &str = "the kernel has no RT group scheduling: CONFIG_RT_GROUP_SCHED off";

/// Why a v1 memory hierarchy may have no kmem files.
const NO_KMEM: &str = "the kernel has no kernel memory accounting: CONFIG_MEMCG_KMEM off or cgroup.memory=nokmem";

/// Why the kernel may take a kmem limit and keep "unlimited".
const KMEM_IGNORED: &str = "this kernel ignores kernel memory limits (since Linux 6.1 a write to \
     memory.kmem.limit_in_bytes does nothing); remove linux.resources.memory.kernel";
const KMEM_TCP_IGNORED: &str =
    "this kernel ignores the kernel TCP buffer limit; remove linux.resources.memory.kernelTCP";

/// The settings of one controller.
pub fn group_settings(res: &LinuxResources, group: &str) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    match group {
        "memory" => {
            if let Some(m) = res.memory() {
                if let Some(l) = m.limit().filter(|l| *l != 0) {
                    out.push(Setting::new(
                        "memory.limit_in_bytes",
                        l,
                        "memory limit (linux.resources.memory.limit)",
                    ));
                }
                match m.swap().filter(|s| *s != 0) {
                    Some(s) => out.push(Setting::new(
                        "memory.memsw.limit_in_bytes",
                        s,
                        "memory+swap limit (linux.resources.memory.swap)",
                    )),
                    // Unlimited memory and no swap value: swap unlimited too
                    // (when swap accounting exists), like runc.
                    None if m.limit() == Some(-1) => out.push(
                        Setting::new(
                            "memory.memsw.limit_in_bytes",
                            -1,
                            "memory+swap limit (linux.resources.memory.swap)",
                        )
                        .optional(),
                    ),
                    None => {}
                }
                if let Some(r) = m.reservation().filter(|r| *r != 0) {
                    out.push(Setting::new(
                        "memory.soft_limit_in_bytes",
                        r,
                        "memory reservation (linux.resources.memory.reservation)",
                    ));
                }
                if let Some(s) = m.swappiness() {
                    if s > 100 {
                        bail!("linux.resources.memory.swappiness {s} is out of range (0 to 100)");
                    }
                    out.push(Setting::new(
                        "memory.swappiness",
                        s,
                        "memory swappiness (linux.resources.memory.swappiness)",
                    ));
                }
                // memory.use_hierarchy: written and read back; kernels
                // since 5.16 keep it at 1 and refuse 0 (runc ignores the
                // field altogether).
                if let Some(h) = m.use_hierarchy() {
                    out.push(
                        Setting::new(
                            "memory.use_hierarchy",
                            u8::from(h),
                            "hierarchical memory accounting (linux.resources.memory.useHierarchy)",
                        )
                        .verified("the kernel keeps hierarchical accounting on (Linux 5.16 and later)"),
                    );
                }
                if m.disable_oom_killer() == Some(true) {
                    out.push(Setting::new(
                        "memory.oom_control",
                        1,
                        "OOM killer (linux.resources.memory.disableOOMKiller)",
                    ));
                }
                // Kernel memory: written where the kernel has the files and
                // read back (a kernel that ignores the write is refused);
                // -1 (no limit) is what a kernel without them has anyway.
                #[allow(deprecated)]
                let kernel = m.kernel();
                for (v, file, what, ignored) in [
                    (
                        kernel,
                        "memory.kmem.limit_in_bytes",
                        "kernel memory limit (linux.resources.memory.kernel)",
                        KMEM_IGNORED,
                    ),
                    (
                        m.kernel_tcp(),
                        "memory.kmem.tcp.limit_in_bytes",
                        "kernel TCP buffer limit (linux.resources.memory.kernelTCP)",
                        KMEM_TCP_IGNORED,
                    ),
                ] {
                    let Some(v) = v.filter(|v| *v != 0) else { continue };
                    let st = Setting::new(file, v, what).or_absent(NO_KMEM).verified(ignored);
                    out.push(if v < 0 { st.optional() } else { st });
                }
            }
        }
        "cpu" => {
            if let Some(c) = res.cpu() {
                if let Some(v) = c.shares().filter(|v| *v != 0) {
                    out.push(Setting::new("cpu.shares", v, "cpu shares (linux.resources.cpu.shares)"));
                }
                if let Some(v) = c.period().filter(|v| *v != 0) {
                    out.push(Setting::new(
                        "cpu.cfs_period_us",
                        v,
                        "cpu period (linux.resources.cpu.period)",
                    ));
                }
                if let Some(v) = c.quota().filter(|v| *v != 0) {
                    out.push(Setting::new(
                        "cpu.cfs_quota_us",
                        v,
                        "cpu quota (linux.resources.cpu.quota)",
                    ));
                }
                if let Some(v) = c.burst() {
                    out.push(Setting::new(
                        "cpu.cfs_burst_us",
                        v,
                        "cpu burst (linux.resources.cpu.burst)",
                    ));
                }
                if let Some(v) = c.realtime_period().filter(|v| *v != 0) {
                    out.push(
                        Setting::new(
                            "cpu.rt_period_us",
                            v,
                            "cpu realtime period (linux.resources.cpu.realtimePeriod)",
                        )
                        .or_absent(NO_RT),
                    );
                }
                if let Some(v) = c.realtime_runtime().filter(|v| *v != 0) {
                    out.push(
                        Setting::new(
                            "cpu.rt_runtime_us",
                            v,
                            "cpu realtime runtime (linux.resources.cpu.realtimeRuntime)",
                        )
                        .or_absent(NO_RT),
                    );
                }
                if let Some(v) = c.idle() {
                    out.push(Setting::new("cpu.idle", v, "cpu idle (linux.resources.cpu.idle)"));
                }
            }
        }
        "cpuset" => out.extend(super::cpuset_settings(res)),
        "pids" => {
            if let Some(p) = res.pids() {
                out.extend(super::pids_setting(p.limit()));
            }
        }
        "blkio" => {
            if let Some(b) = res.block_io() {
                if let Some(w) = b.weight().filter(|w| *w != 0) {
                    out.push(
                        Setting::new("blkio.weight", w, "blkio weight (linux.resources.blockIO.weight)").or_file(
                            "blkio.bfq.weight",
                            w.to_string(),
                            NO_V1_WEIGHT,
                        ),
                    );
                }
                if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
                    out.push(Setting::new(
                        "blkio.leaf_weight",
                        w,
                        "blkio leaf weight (linux.resources.blockIO.leafWeight)",
                    ));
                }
                for d in b.weight_device().iter().flatten() {
                    let dev = format!("{}:{}", d.major(), d.minor());
                    if let Some(w) = d.weight() {
                        let v = format!("{dev} {w}");
                        out.push(
                            Setting::new(
                                "blkio.weight_device",
                                &v,
                                "blkio device weight (linux.resources.blockIO.weightDevice[].weight)",
                            )
                            .or_file("blkio.bfq.weight_device", v.clone(), NO_V1_WEIGHT),
                        );
                    }
                    if let Some(w) = d.leaf_weight() {
                        out.push(Setting::new(
                            "blkio.leaf_weight_device",
                            format!("{dev} {w}"),
                            "blkio device leaf weight (linux.resources.blockIO.weightDevice[].leafWeight)",
                        ));
                    }
                }
                for (list, file, what) in [
                    (
                        b.throttle_read_bps_device(),
                        "blkio.throttle.read_bps_device",
                        "read bps limit (linux.resources.blockIO.throttleReadBpsDevice)",
                    ),
                    (
                        b.throttle_write_bps_device(),
                        "blkio.throttle.write_bps_device",
                        "write bps limit (linux.resources.blockIO.throttleWriteBpsDevice)",
                    ),
                    (
                        b.throttle_read_iops_device(),
                        "blkio.throttle.read_iops_device",
                        "read iops limit (linux.resources.blockIO.throttleReadIOPSDevice)",
                    ),
                    (
                        b.throttle_write_iops_device(),
                        "blkio.throttle.write_iops_device",
                        "write iops limit (linux.resources.blockIO.throttleWriteIOPSDevice)",
                    ),
                ] {
                    for t in list.iter().flatten() {
                        out.push(Setting::new(
                            file,
                            format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                            what,
                        ));
                    }
                }
            }
        }
        "hugetlb" => {
            for h in res.hugepage_limits().iter().flatten() {
                let size = h.page_size();
                check_hugepage_size(size)?;
                out.push(Setting::new(
                    format!("hugetlb.{size}.limit_in_bytes"),
                    h.limit(),
                    "hugepage limit (linux.resources.hugepageLimits)",
                ));
                out.push(
                    Setting::new(
                        format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                        h.limit(),
                        "hugepage reservation limit (linux.resources.hugepageLimits)",
                    )
                    .optional(),
                );
            }
        }
        "net_cls" => {
            if let Some(id) = res.network().as_ref().and_then(|n| n.class_id()) {
                out.push(Setting::new(
                    "net_cls.classid",
                    id,
                    "network class id (linux.resources.network.classID)",
                ));
            }
        }
        "net_prio" => {
            for p in res
                .network()
                .as_ref()
                .and_then(|n| n.priorities().clone())
                .iter()
                .flatten()
            {
                if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                    bail!("invalid network interface name {:?} in network priorities", p.name());
                }
                out.push(Setting::new(
                    "net_prio.ifpriomap",
                    format!("{} {}", p.name(), p.priority()),
                    "network interface priority (linux.resources.network.priorities)",
                ));
            }
        }
        "rdma" => out.extend(super::rdma_settings(res)?),
        other => bail!("internal error: unknown cgroup v1 resource group {other}"),
    }
    Ok(out)
}

fn blkio_entries(dir: &Path, file: &str) -> Value {
    let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
        return json!([]);
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let Some((maj, min)) = f[0].split_once(':') else {
            continue;
        };
        let (Ok(maj), Ok(min), Ok(v)) = (maj.parse::<u64>(), min.parse::<u64>(), f[2].parse::<u64>()) else {
            continue;
        };
        out.push(json!({"major": maj, "minor": min, "op": f[1], "value": v}));
    }
    Value::Array(out)
}

fn flat_keyed(dir: &Path, file: &str) -> Map<String, Value> {
    let mut m = Map::new();
    if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(' ')
                && let Ok(v) = v.trim().parse::<u64>()
            {
                m.insert(k.to_string(), json!(v));
            }
        }
    }
    m
}

/// runc's stats for v1, from whichever hierarchies are mounted.
pub fn stats(dir_of: &dyn Fn(&str) -> Option<std::path::PathBuf>, out: &mut Map<String, Value>) {
    if let Some(d) = dir_of("cpuacct") {
        let percpu: Vec<u64> = read_trimmed(&d.join("cpuacct.usage_percpu"))
            .map(|s| s.split_whitespace().filter_map(|v| v.parse().ok()).collect())
            .unwrap_or_default();
        let st = flat_keyed(&d, "cpuacct.stat");
        // cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds.
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .map_or(100, |v| v.max(1) as u64);
        let ns = |k: &str| {
            st.get(k)
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .saturating_mul(1_000_000_000 / hz)
        };
        out.insert(
            "cpu".into(),
            json!({"usage": {
                "total": read_u64(&d.join("cpuacct.usage")).unwrap_or(0),
                "percpu": percpu,
                "kernel": ns("system"),
                "user": ns("user"),
            }}),
        );
    }
    if let Some(d) = dir_of("cpu") {
        let st = flat_keyed(&d, "cpu.stat");
        let g = |k: &str| st.get(k).cloned().unwrap_or(json!(0));
        let cpu = out.entry("cpu").or_insert_with(|| json!({}));
        cpu["throttling"] = json!({
            "periods": g("nr_periods"),
            "throttledPeriods": g("nr_throttled"),
            "throttledTime": g("throttled_time"),
        });
    }
    if let Some(d) = dir_of("memory") {
        let entry = |prefix: &str| {
            json!({
                "limit": read_u64(&d.join(format!("{prefix}limit_in_bytes"))).unwrap_or(0),
                "usage": read_u64(&d.join(format!("{prefix}usage_in_bytes"))).unwrap_or(0),
                "max": read_u64(&d.join(format!("{prefix}max_usage_in_bytes"))).unwrap_or(0),
                "failcnt": read_u64(&d.join(format!("{prefix}failcnt"))).unwrap_or(0),
            })
        };
        let raw = flat_keyed(&d, "memory.stat");
        let cache = raw.get("total_cache").or(raw.get("cache")).cloned().unwrap_or(json!(0));
        out.insert(
            "memory".into(),
            json!({
                "cache": cache,
                "usage": entry("memory."),
                "swap": entry("memory.memsw."),
                "kernel": entry("memory.kmem."),
                "kernelTCP": entry("memory.kmem.tcp."),
                "raw": raw,
            }),
        );
    }
    if let Some(d) = dir_of("pids") {
        let limit = read_trimmed(&d.join("pids.max"))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        out.insert(
            "pids".into(),
            json!({"current": read_u64(&d.join("pids.current")).unwrap_or(0), "limit": limit}),
        );
    }
    if let Some(d) = dir_of("blkio") {
        let mut b = Map::new();
        let mut pick = |key: &str, files: &[&str]| {
            for f in files {
                let v = blkio_entries(&d, f);
                if v.as_array().is_some_and(|a| !a.is_empty()) {
                    b.insert(key.to_string(), v);
                    return;
                }
            }
        };
        pick(
            "ioServiceBytesRecursive",
            &[
                "blkio.io_service_bytes_recursive",
                "blkio.bfq.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
            ],
        );
        pick(
            "ioServicedRecursive",
            &[
                "blkio.io_serviced_recursive",
                "blkio.bfq.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
            ],
        );
        out.insert("blkio".into(), Value::Object(b));
    }
    if let Some(d) = dir_of("hugetlb") {
        let mut h = Map::new();
        for size in super::hugepage_sizes() {
            let p = |f: &str| read_u64(&d.join(format!("hugetlb.{size}.{f}"))).unwrap_or(0);
            h.insert(
                size.clone(),
                json!({"usage": p("usage_in_bytes"), "max": p("max_usage_in_bytes"), "failcnt": p("failcnt")}),
            );
        }
        out.insert("hugetlb".into(), Value::Object(h));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::pairs;

    /// Every setting for cgroup v1, in the order of GROUPS.
    fn settings(res: &LinuxResources) -> Result<Vec<Setting>> {
        let mut out = Vec::new();
        for g in GROUPS {
            out.extend(group_settings(res, g)?);
        }
        Ok(out)
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn memory() {
        let r = res(r#"{"memory": {"limit": 1048576, "reservation": 524288, "swap": 2097152,
            "swappiness": 10, "disableOOMKiller": true, "kernel": 1000}}"#);
        assert_eq!(
            pairs(&settings(&r).unwrap()),
            vec![
                ("memory.limit_in_bytes".into(), "1048576".into()),
                ("memory.memsw.limit_in_bytes".into(), "2097152".into()),
                ("memory.soft_limit_in_bytes".into(), "524288".into()),
                ("memory.swappiness".into(), "10".into()),
                ("memory.oom_control".into(), "1".into()),
                ("memory.kmem.limit_in_bytes".into(), "1000".into()),
            ]
        );
        // Kernel memory is written and read back, refused where the file
        // is missing; -1 (no limit) is skipped where the file is missing.
        let s = settings(&res(r#"{"memory": {"kernel": 4096, "kernelTCP": -1}}"#)).unwrap();
        assert_eq!(
            pairs(&s),
            vec![
                ("memory.kmem.limit_in_bytes".into(), "4096".into()),
                ("memory.kmem.tcp.limit_in_bytes".into(), "-1".into()),
            ]
        );
        assert!(s.iter().all(|s| s.verify.is_some() && s.absent.is_some()));
        assert!(s[0].what.contains("linux.resources.memory.kernel)"));
        assert!(!s[0].optional && s[1].optional);
        assert!(s[1].what.contains("linux.resources.memory.kernelTCP"));
        let s = settings(&res(r#"{"memory": {"limit": -1}}"#)).unwrap();
        assert_eq!(s[1].file, "memory.memsw.limit_in_bytes");
        assert_eq!(s[1].value, "-1");
        assert!(s[1].optional);
        assert!(settings(&res(r#"{"memory": {"swappiness": 101}}"#)).is_err());
    }

    #[test]
    fn cpu() {
        let r = res(
            r#"{"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
            "realtimeRuntime": 950, "realtimePeriod": 1000, "cpus": "0-1", "mems": "0", "idle": 1}}"#,
        );
        assert_eq!(
            pairs(&settings(&r).unwrap()),
            vec![
                ("cpu.shares".into(), "512".into()),
                ("cpu.cfs_period_us".into(), "100000".into()),
                ("cpu.cfs_quota_us".into(), "50000".into()),
                ("cpu.cfs_burst_us".into(), "1000".into()),
                ("cpu.rt_period_us".into(), "1000".into()),
                ("cpu.rt_runtime_us".into(), "950".into()),
                ("cpu.idle".into(), "1".into()),
                ("cpuset.cpus".into(), "0-1".into()),
                ("cpuset.mems".into(), "0".into()),
            ]
        );
        let r = res(r#"{"cpu": {"quota": -1}}"#);
        assert_eq!(
            pairs(&settings(&r).unwrap()),
            vec![("cpu.cfs_quota_us".into(), "-1".into())]
        );
    }

    #[test]
    fn pids_blkio_hugetlb_net_rdma() {
        let r = res(r#"{"pids": {"limit": 10},
            "blockIO": {"weight": 300, "leafWeight": 200,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 100}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2000}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 40}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}}"#);
        let s = settings(&r).unwrap();
        assert_eq!(
            pairs(&s),
            vec![
                ("pids.max".into(), "10".into()),
                ("blkio.weight".into(), "300".into()),
                ("blkio.leaf_weight".into(), "200".into()),
                ("blkio.weight_device".into(), "8:0 500".into()),
                ("blkio.leaf_weight_device".into(), "8:0 100".into()),
                ("blkio.throttle.read_bps_device".into(), "8:0 1000".into()),
                ("blkio.throttle.write_bps_device".into(), "8:0 2000".into()),
                ("blkio.throttle.read_iops_device".into(), "8:0 30".into()),
                ("blkio.throttle.write_iops_device".into(), "8:0 40".into()),
                ("hugetlb.2MB.limit_in_bytes".into(), "4194304".into()),
                ("hugetlb.2MB.rsvd.limit_in_bytes".into(), "4194304".into()),
                ("net_cls.classid".into(), "1048577".into()),
                ("net_prio.ifpriomap".into(), "eth0 5".into()),
                ("rdma.max".into(), "mlx5_1 hca_handle=3 hca_object=10000".into()),
            ]
        );
        assert_eq!(s[1].fallback, Some(("blkio.bfq.weight".into(), "300".into())));
        assert_eq!(
            pairs(&settings(&res(r#"{"pids": {"limit": -1}}"#)).unwrap()),
            vec![("pids.max".into(), "max".into())]
        );
        // 0 is a limit (spec 1.3), written as 1 like runc ≥ 1.4; a pids
        // object without a limit is dropped where the JSON is read.
        assert_eq!(
            pairs(&settings(&res(r#"{"pids": {"limit": 0}}"#)).unwrap()),
            vec![("pids.max".into(), "1".into())]
        );
        let mut r = res(r#"{"pids": {}}"#);
        crate::cgroups::drop_pids_without_limit(&mut r, Some(&serde_json::json!({})));
        assert!(pairs(&settings(&r).unwrap()).is_empty());
        let mut r = res(r#"{"pids": {"limit": 0}}"#);
        crate::cgroups::drop_pids_without_limit(&mut r, Some(&serde_json::json!({"limit": 0})));
        assert_eq!(pairs(&settings(&r).unwrap()), vec![("pids.max".into(), "1".into())]);
        assert!(settings(&res(r#"{"hugepageLimits": [{"pageSize": "../x", "limit": 1}]}"#)).is_err());
    }
}
