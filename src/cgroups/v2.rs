//! cgroup v2: resources → (file, value) settings with runc's conversions,
//! and the v2 statistics.

use std::path::Path;

use anyhow::{Result, bail};
use oci_spec::runtime::LinuxResources;
use serde_json::{Map, Value, json};

use super::{Setting, check_hugepage_size, read_trimmed, read_u64};

/// The resource groups in the order they are applied; `unified` last so
/// that its raw values win over the converted ones, like runc.
pub const GROUPS: &[&str] = &[
    "pids", "memory", "io", "cpu", "cpuset", "hugetlb", "rdma", "network", "unified",
];

/// runc's cpu.shares → cpu.weight conversion (the quadratic fit through
/// 2 → 1, 1024 → 100 and 262144 → 10000 of opencontainers/cgroups).
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    // at most 10_000 for shares below 262_144 (and `as` saturates)
    #[allow(clippy::cast_possible_truncation, reason = "a float in 1..=10_000")]
    let weight = 10f64.powf(exponent).ceil() as u64;
    weight
}

/// runc's blkio weight [10, 1000] → io.weight [1, 10000] conversion.
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// OCI memory.swap is memory+swap; memory.swap.max is swap alone.
/// Returns the value for memory.swap.max: -1 for "max", 0 for unset.
pub fn memory_swap_to_v2(swap: i64, memory: i64) -> Result<i64> {
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        bail!("cannot set a swap limit ({swap}) without a memory limit");
    }
    if memory < 0 {
        bail!("invalid memory limit {memory}");
    }
    if swap < memory {
        bail!("memory+swap limit ({swap}) must be at least the memory limit ({memory})");
    }
    Ok(swap - memory)
}

/// 0 → unset, -1 (or any negative) → "max".
fn num(v: i64) -> Option<String> {
    match v {
        0 => None,
        v if v < 0 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

/// Every setting for cgroup v2, in order.
pub fn settings(res: &LinuxResources) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    for g in GROUPS {
        out.extend(group_settings(res, g)?);
    }
    Ok(out)
}

/// The settings of one resource group (mostly one controller).
pub fn group_settings(res: &LinuxResources, group: &str) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    match group {
        "memory" => {
            if let Some(m) = res.memory() {
                let limit = m.limit().unwrap_or(0);
                let swap_in = m.swap().unwrap_or(0);
                let swap = memory_swap_to_v2(swap_in, limit)?;
                let swap_str = match num(swap) {
                    // memory and memory+swap equal: no swap at all.
                    None if swap_in > 0 => Some("0".to_string()),
                    s => s,
                };
                if let Some(s) = swap_str {
                    let mut st = Setting::new("memory.swap.max", &s, "swap limit (linux.resources.memory.swap)");
                    // Without swap, "no swap" and "unlimited swap" both hold.
                    if s == "max" || s == "0" {
                        st = st.optional();
                    }
                    out.push(st);
                }
                if let Some(v) = num(limit) {
                    out.push(Setting::new(
                        "memory.max",
                        v,
                        "memory limit (linux.resources.memory.limit)",
                    ));
                }
                if let Some(v) = num(m.reservation().unwrap_or(0)) {
                    out.push(Setting::new(
                        "memory.low",
                        v,
                        "memory reservation (linux.resources.memory.reservation)",
                    ));
                }
                // swappiness and disableOOMKiller have no v2 file: runc
                // drops them on v2 without a word; husk refuses a value it
                // cannot apply (false and true, v2's fixed behaviours, are
                // what v2 does). Kernel memory
                // has no limit of its own on v2 (it counts in memory.max):
                // a limit is refused, -1 (none) is what v2 has.
                if let Some(v) = m.swappiness() {
                    bail!(
                        "linux.resources.memory.swappiness {v}: cgroup v2 has no per-cgroup swappiness (no memory.swappiness \
                         file; the host's vm.swappiness applies); remove the field"
                    );
                }
                if m.disable_oom_killer() == Some(true) {
                    bail!(
                        "linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer (no \
                         memory.oom_control file); remove the field or set it to false"
                    );
                }
                if m.use_hierarchy() == Some(false) {
                    bail!(
                        "linux.resources.memory.useHierarchy false: cgroup v2 accounts memory hierarchically always; \
                         remove the field or set it to true"
                    );
                }
                #[allow(deprecated)]
                let kernel = m.kernel();
                for (v, field) in [(kernel, "kernel"), (m.kernel_tcp(), "kernelTCP")] {
                    if let Some(v) = v.filter(|v| *v > 0) {
                        bail!(
                            "linux.resources.memory.{field} {v}: cgroup v2 has no separate kernel memory limit \
                             (kernel memory counts in memory.max, linux.resources.memory.limit); remove the field"
                        );
                    }
                }
            }
        }
        "cpu" => {
            if let Some(c) = res.cpu() {
                if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
                    bail!(
                        "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime budget (no cpu.rt_* files); remove the fields"
                    );
                }
                if let Some(v) = c.idle() {
                    out.push(Setting::new("cpu.idle", v, "cpu idle (linux.resources.cpu.idle)"));
                }
                let w = cpu_shares_to_weight(c.shares().unwrap_or(0));
                if w != 0 {
                    out.push(Setting::new(
                        "cpu.weight",
                        w,
                        "cpu weight (from linux.resources.cpu.shares)",
                    ));
                }
                if let Some(b) = c.burst() {
                    out.push(Setting::new(
                        "cpu.max.burst",
                        b,
                        "cpu burst (linux.resources.cpu.burst)",
                    ));
                }
                let quota = c.quota().unwrap_or(0);
                let period = c.period().unwrap_or(0);
                if quota != 0 || period != 0 {
                    let q = if quota > 0 { quota.to_string() } else { "max".into() };
                    let p = if period == 0 { 100_000 } else { period };
                    out.push(Setting::new(
                        "cpu.max",
                        format!("{q} {p}"),
                        "cpu quota and period (linux.resources.cpu.quota, period)",
                    ));
                }
            }
        }
        "cpuset" => out.extend(super::cpuset_settings(res)),
        "pids" => {
            if let Some(p) = res.pids() {
                out.extend(super::pids_setting(p.limit()));
            }
        }
        "io" => {
            if let Some(b) = res.block_io() {
                if let Some(w) = b.weight().filter(|w| *w != 0) {
                    out.push(
                        Setting::new("io.bfq.weight", w, "blkio weight (linux.resources.blockIO.weight)").or_file(
                            "io.weight",
                            blkio_weight_to_io_weight(w).to_string(),
                            "the kernel has an io weight only with the BFQ I/O scheduler or blk-iocost",
                        ),
                    );
                }
                // leafWeight (CFQ) has no v2 file: runc drops it silently,
                // husk refuses it.
                if b.leaf_weight().is_some_and(|w| w != 0) {
                    bail!(
                        "linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight (a CFQ setting of cgroup v1); \
                         remove the field"
                    );
                }
                for (i, d) in b.weight_device().iter().flatten().enumerate() {
                    if d.leaf_weight().is_some_and(|w| w != 0) {
                        bail!(
                            "linux.resources.blockIO.weightDevice[{i}].leafWeight: cgroup v2 has no leaf weight (a CFQ \
                             setting of cgroup v1); remove the field"
                        );
                    }
                }
                for d in b.weight_device().iter().flatten() {
                    if let Some(w) = d.weight() {
                        out.push(Setting::new(
                            "io.bfq.weight",
                            format!("{}:{} {w}", d.major(), d.minor()),
                            "blkio device weight (linux.resources.blockIO.weightDevice[].weight)",
                        ));
                    }
                }
                for (list, key, what) in [
                    (
                        b.throttle_read_bps_device(),
                        "rbps",
                        "read bps limit (linux.resources.blockIO.throttleReadBpsDevice)",
                    ),
                    (
                        b.throttle_write_bps_device(),
                        "wbps",
                        "write bps limit (linux.resources.blockIO.throttleWriteBpsDevice)",
                    ),
                    (
                        b.throttle_read_iops_device(),
                        "riops",
                        "read iops limit (linux.resources.blockIO.throttleReadIOPSDevice)",
                    ),
                    (
                        b.throttle_write_iops_device(),
                        "wiops",
                        "write iops limit (linux.resources.blockIO.throttleWriteIOPSDevice)",
                    ),
                ] {
                    for t in list.iter().flatten() {
                        let rate = if t.rate() == 0 {
                            "max".to_string()
                        } else {
                            t.rate().to_string()
                        };
                        out.push(Setting::new(
                            "io.max",
                            format!("{}:{} {key}={rate}", t.major(), t.minor()),
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
                let v = num(h.limit()).unwrap_or_else(|| "0".into());
                out.push(Setting::new(
                    format!("hugetlb.{size}.max"),
                    &v,
                    "hugepage limit (linux.resources.hugepageLimits)",
                ));
                out.push(
                    Setting::new(
                        format!("hugetlb.{size}.rsvd.max"),
                        &v,
                        "hugepage reservation limit (linux.resources.hugepageLimits)",
                    )
                    .optional(),
                );
            }
        }
        "rdma" => out.extend(super::rdma_settings(res)?),
        "network" => {
            if let Some(n) = res.network()
                && (n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()))
            {
                bail!(
                    "linux.resources.network.classID and priorities need the net_cls/net_prio controllers of cgroup v1, which cgroup v2 does not have"
                );
            }
        }
        "unified" => {
            let mut keys: Vec<(&String, &String)> = res.unified().iter().flatten().collect();
            keys.sort();
            for (k, v) in keys {
                if k.contains('/') || k.starts_with('.') {
                    bail!("unified resource {k:?} must be a file name (no slashes)");
                }
                if !k.contains('.') {
                    bail!("unified resource {k:?} must be in the form CONTROLLER.PARAMETER");
                }
                for line in v.lines() {
                    out.push(Setting::new(
                        k.as_str(),
                        line,
                        "unified resource (linux.resources.unified)",
                    ));
                }
                if v.is_empty() {
                    out.push(Setting::new(
                        k.as_str(),
                        "",
                        "unified resource (linux.resources.unified)",
                    ));
                }
            }
        }
        other => bail!("internal error: unknown cgroup v2 resource group {other}"),
    }
    Ok(out)
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

/// "max" → u64::MAX like runc, a number → itself.
fn limit_of(path: &Path) -> u64 {
    match read_trimmed(path) {
        Ok(s) if s == "max" => u64::MAX,
        Ok(s) => s.parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// runc's stats for v2, from the unified directory.
pub fn stats(d: &Path, out: &mut Map<String, Value>) {
    let cpu = flat_keyed(d, "cpu.stat");
    let us = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0).saturating_mul(1000);
    let n = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0);
    out.insert(
        "cpu".into(),
        json!({
            "usage": {"total": us("usage_usec"), "kernel": us("system_usec"), "user": us("user_usec")},
            "throttling": {"periods": n("nr_periods"), "throttledPeriods": n("nr_throttled"), "throttledTime": us("throttled_usec")},
        }),
    );
    if d.join("memory.current").exists() {
        let raw = flat_keyed(d, "memory.stat");
        let events = flat_keyed(d, "memory.events");
        let failcnt = events.get("max").cloned().unwrap_or(json!(0));
        out.insert(
            "memory".into(),
            json!({
                "cache": raw.get("file").cloned().unwrap_or(json!(0)),
                "usage": {
                    "limit": limit_of(&d.join("memory.max")),
                    "usage": read_u64(&d.join("memory.current")).unwrap_or(0),
                    "max": read_u64(&d.join("memory.peak")).unwrap_or(0),
                    "failcnt": failcnt,
                },
                "swap": {
                    "limit": limit_of(&d.join("memory.swap.max")),
                    "usage": read_u64(&d.join("memory.swap.current")).unwrap_or(0),
                    "max": read_u64(&d.join("memory.swap.peak")).unwrap_or(0),
                    "failcnt": 0,
                },
                "raw": raw,
            }),
        );
    }
    if d.join("pids.current").exists() {
        let limit = match read_trimmed(&d.join("pids.max")) {
            Ok(s) => s.parse::<u64>().unwrap_or(0),
            Err(_) => 0,
        };
        out.insert(
            "pids".into(),
            json!({"current": read_u64(&d.join("pids.current")).unwrap_or(0), "limit": limit}),
        );
    }
    if let Ok(text) = std::fs::read_to_string(d.join("io.stat")) {
        let (mut bytes, mut ios) = (Vec::new(), Vec::new());
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
                continue;
            };
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(v) = v.parse::<u64>() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut bytes, "Read"),
                    "wbytes" => (&mut bytes, "Write"),
                    "rios" => (&mut ios, "Read"),
                    "wios" => (&mut ios, "Write"),
                    _ => continue,
                };
                list.push(json!({"major": maj, "minor": min, "op": op, "value": v}));
            }
        }
        out.insert(
            "blkio".into(),
            json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios}),
        );
    }
    let mut h = Map::new();
    for size in super::hugepage_sizes() {
        if !d.join(format!("hugetlb.{size}.current")).exists() {
            continue;
        }
        let ev = flat_keyed(d, &format!("hugetlb.{size}.events"));
        h.insert(
            size.clone(),
            json!({
                "usage": read_u64(&d.join(format!("hugetlb.{size}.current"))).unwrap_or(0),
                "max": limit_of(&d.join(format!("hugetlb.{size}.max"))),
                "failcnt": ev.get("max").cloned().unwrap_or(json!(0)),
            }),
        );
    }
    out.insert("hugetlb".into(), Value::Object(h));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::pairs;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn conversions() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 100);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(512), 59);
        assert_eq!(cpu_shares_to_weight(100), 17);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(memory_swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(memory_swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(memory_swap_to_v2(0, 100).unwrap(), 0);
        assert_eq!(memory_swap_to_v2(300, 100).unwrap(), 200);
        assert!(memory_swap_to_v2(50, 100).is_err());
        assert!(memory_swap_to_v2(50, 0).is_err());
    }

    #[test]
    fn memory() {
        // v2's fixed behaviours are accepted; what it cannot do is refused
        // naming the field.
        let r = res(r#"{"memory": {"limit": 1048576, "reservation": 524288, "swap": 3145728,
            "disableOOMKiller": false, "useHierarchy": true}}"#);
        for (bad, field) in [
            (r#"{"memory": {"swappiness": 10}}"#, "linux.resources.memory.swappiness"),
            (
                r#"{"memory": {"disableOOMKiller": true}}"#,
                "linux.resources.memory.disableOOMKiller",
            ),
            (
                r#"{"memory": {"useHierarchy": false}}"#,
                "linux.resources.memory.useHierarchy",
            ),
            (
                r#"{"blockIO": {"leafWeight": 10}}"#,
                "linux.resources.blockIO.leafWeight",
            ),
            (
                r#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 10}]}}"#,
                "linux.resources.blockIO.weightDevice[0].leafWeight",
            ),
        ] {
            let e = settings(&res(bad)).unwrap_err().to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
        assert_eq!(
            pairs(&settings(&r).unwrap()),
            vec![
                ("memory.swap.max".into(), "2097152".into()),
                ("memory.max".into(), "1048576".into()),
                ("memory.low".into(), "524288".into()),
            ]
        );
        // Equal limits: no swap.
        let s = settings(&res(r#"{"memory": {"limit": 1000, "swap": 1000}}"#)).unwrap();
        assert_eq!(pairs(&s)[0], ("memory.swap.max".into(), "0".into()));
        assert!(s[0].optional);
        // Unlimited memory: unlimited swap too.
        let s = settings(&res(r#"{"memory": {"limit": -1}}"#)).unwrap();
        assert_eq!(
            pairs(&s),
            vec![
                ("memory.swap.max".into(), "max".into()),
                ("memory.max".into(), "max".into())
            ]
        );
        assert!(settings(&res(r#"{"memory": {"swap": 1000}}"#)).is_err());
        // Kernel memory: no v2 limit of its own; a limit is refused naming
        // the field, -1 (none) is what v2 has.
        for (json, field) in [
            (
                r#"{"memory": {"kernel": 1048576}}"#,
                "linux.resources.memory.kernel 1048576",
            ),
            (
                r#"{"memory": {"kernelTCP": 4096}}"#,
                "linux.resources.memory.kernelTCP 4096",
            ),
        ] {
            let e = settings(&res(json)).unwrap_err().to_string();
            assert!(e.starts_with(field) && e.contains("memory.max"), "{e}");
        }
        assert!(
            settings(&res(r#"{"memory": {"kernel": -1, "kernelTCP": -1}}"#))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn cpu() {
        let r = res(r#"{"cpu": {"shares": 1024, "quota": 50000, "burst": 1000, "idle": 0,
            "cpus": "0", "mems": "0"}}"#);
        assert_eq!(
            pairs(&settings(&r).unwrap()),
            vec![
                ("cpu.idle".into(), "0".into()),
                ("cpu.weight".into(), "100".into()),
                ("cpu.max.burst".into(), "1000".into()),
                ("cpu.max".into(), "50000 100000".into()),
                ("cpuset.cpus".into(), "0".into()),
                ("cpuset.mems".into(), "0".into()),
            ]
        );
        assert_eq!(
            pairs(&settings(&res(r#"{"cpu": {"quota": -1, "period": 20000}}"#)).unwrap()),
            vec![("cpu.max".into(), "max 20000".into())]
        );
        assert!(settings(&res(r#"{"cpu": {"realtimeRuntime": 100}}"#)).is_err());
        assert!(settings(&res(r#"{"cpu": {"realtimeRuntime": 0}}"#)).is_ok());
    }

    #[test]
    fn io_pids_hugetlb_rdma_unified() {
        let r = res(r#"{"pids": {"limit": 20},
            "blockIO": {"weight": 500,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 40}]},
            "hugepageLimits": [{"pageSize": "1GB", "limit": 0}, {"pageSize": "2MB", "limit": 4194304}],
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
            "unified": {"memory.high": "50000", "io.max": "8:0 rbps=5\n8:16 wbps=6"}}"#);
        let s = settings(&r).unwrap();
        assert_eq!(
            pairs(&s),
            vec![
                ("pids.max".into(), "20".into()),
                ("io.bfq.weight".into(), "500".into()),
                ("io.bfq.weight".into(), "8:0 100".into()),
                ("io.max".into(), "8:0 rbps=1000".into()),
                ("io.max".into(), "8:0 wbps=max".into()),
                ("io.max".into(), "8:0 riops=30".into()),
                ("io.max".into(), "8:0 wiops=40".into()),
                ("hugetlb.1GB.max".into(), "0".into()),
                ("hugetlb.1GB.rsvd.max".into(), "0".into()),
                ("hugetlb.2MB.max".into(), "4194304".into()),
                ("hugetlb.2MB.rsvd.max".into(), "4194304".into()),
                ("rdma.max".into(), "mlx5_1 hca_handle=3".into()),
                ("io.max".into(), "8:0 rbps=5".into()),
                ("io.max".into(), "8:16 wbps=6".into()),
                ("memory.high".into(), "50000".into()),
            ]
        );
        assert_eq!(s[1].fallback, Some(("io.weight".into(), "4950".into())));
        assert!(settings(&res(r#"{"unified": {"../x": "1"}}"#)).is_err());
        assert!(settings(&res(r#"{"unified": {"nodot": "1"}}"#)).is_err());
        assert!(settings(&res(r#"{"network": {"classID": 1}}"#)).is_err());
    }
}
