//! Every Linux field of runtime-spec 1.3's config schema, and what husk
//! does with it: applied, applied where the host can (refused naming the
//! field where it cannot), or refused. One table for three readers: the
//! README's field table (`tests/every_field.rs` checks it matches), the
//! parse-time check that no field of the spec is dropped by the config
//! parser ([`unparsed`]), and the every-field test, which proves each row
//! on a real container.
//!
//! Paths are the schema's: `[]` for any array element, `*` for any map key.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// Applied everywhere husk runs.
    Applied,
    /// Applied where the host has what it needs; refused, naming the
    /// field, where it has not (the note says what it needs).
    Host,
    /// Always refused with an error naming the field (the note says why).
    Refused,
}

pub struct Field {
    pub path: &'static str,
    pub how: How,
    pub note: &'static str,
}

/// runtime-spec 1.3.0's config schema, Linux parts (schema/config-schema.json,
/// config-linux.json, defs*.json), in schema order.
#[rustfmt::skip]
pub const FIELDS: &[Field] = &[
    Field { path: "ociVersion", how: How::Applied, note: "" },
    Field { path: "hooks", how: How::Applied, note: "run at their lifecycle step, with the state on stdin" },
    Field { path: "hooks.prestart", how: How::Applied, note: "" },
    Field { path: "hooks.prestart[].path", how: How::Applied, note: "" },
    Field { path: "hooks.prestart[].args", how: How::Applied, note: "" },
    Field { path: "hooks.prestart[].env", how: How::Applied, note: "" },
    Field { path: "hooks.prestart[].timeout", how: How::Applied, note: "" },
    Field { path: "hooks.createRuntime", how: How::Applied, note: "" },
    Field { path: "hooks.createRuntime[].path", how: How::Applied, note: "" },
    Field { path: "hooks.createRuntime[].args", how: How::Applied, note: "" },
    Field { path: "hooks.createRuntime[].env", how: How::Applied, note: "" },
    Field { path: "hooks.createRuntime[].timeout", how: How::Applied, note: "" },
    Field { path: "hooks.createContainer", how: How::Applied, note: "" },
    Field { path: "hooks.createContainer[].path", how: How::Applied, note: "" },
    Field { path: "hooks.createContainer[].args", how: How::Applied, note: "" },
    Field { path: "hooks.createContainer[].env", how: How::Applied, note: "" },
    Field { path: "hooks.createContainer[].timeout", how: How::Applied, note: "" },
    Field { path: "hooks.startContainer", how: How::Applied, note: "" },
    Field { path: "hooks.startContainer[].path", how: How::Applied, note: "" },
    Field { path: "hooks.startContainer[].args", how: How::Applied, note: "" },
    Field { path: "hooks.startContainer[].env", how: How::Applied, note: "" },
    Field { path: "hooks.startContainer[].timeout", how: How::Applied, note: "" },
    Field { path: "hooks.poststart", how: How::Applied, note: "" },
    Field { path: "hooks.poststart[].path", how: How::Applied, note: "" },
    Field { path: "hooks.poststart[].args", how: How::Applied, note: "" },
    Field { path: "hooks.poststart[].env", how: How::Applied, note: "" },
    Field { path: "hooks.poststart[].timeout", how: How::Applied, note: "" },
    Field { path: "hooks.poststop", how: How::Applied, note: "" },
    Field { path: "hooks.poststop[].path", how: How::Applied, note: "" },
    Field { path: "hooks.poststop[].args", how: How::Applied, note: "" },
    Field { path: "hooks.poststop[].env", how: How::Applied, note: "" },
    Field { path: "hooks.poststop[].timeout", how: How::Applied, note: "" },
    Field { path: "annotations", how: How::Applied, note: "in the state given to hooks; org.systemd.property.* become unit properties with --systemd-cgroup" },
    Field { path: "hostname", how: How::Applied, note: "" },
    Field { path: "domainname", how: How::Applied, note: "" },
    Field { path: "mounts", how: How::Applied, note: "" },
    Field { path: "mounts[].source", how: How::Applied, note: "" },
    Field { path: "mounts[].destination", how: How::Applied, note: "" },
    Field { path: "mounts[].options", how: How::Applied, note: "" },
    Field { path: "mounts[].type", how: How::Applied, note: "" },
    Field { path: "mounts[].uidMappings", how: How::Host, note: "id-mapped bind mounts; the source's filesystem must support them (refused naming the mount where not)" },
    Field { path: "mounts[].uidMappings[].containerID", how: How::Host, note: "id-mapped bind mounts; the source's filesystem must support them (refused naming the mount where not)" },
    Field { path: "mounts[].uidMappings[].hostID", how: How::Host, note: "id-mapped bind mounts; the source's filesystem must support them (refused naming the mount where not)" },
    Field { path: "mounts[].uidMappings[].size", how: How::Host, note: "id-mapped bind mounts; the source's filesystem must support them (refused naming the mount where not)" },
    Field { path: "mounts[].gidMappings", how: How::Host, note: "id-mapped bind mounts; the source's filesystem must support them (refused naming the mount where not)" },
    Field { path: "mounts[].gidMappings[].containerID", how: How::Host, note: "id-mapped bind mounts; the source's filesystem must support them (refused naming the mount where not)" },
    Field { path: "mounts[].gidMappings[].hostID", how: How::Host, note: "id-mapped bind mounts; the source's filesystem must support them (refused naming the mount where not)" },
    Field { path: "mounts[].gidMappings[].size", how: How::Host, note: "id-mapped bind mounts; the source's filesystem must support them (refused naming the mount where not)" },
    Field { path: "root", how: How::Applied, note: "" },
    Field { path: "root.path", how: How::Applied, note: "" },
    Field { path: "root.readonly", how: How::Applied, note: "" },
    Field { path: "process", how: How::Applied, note: "" },
    Field { path: "process.args", how: How::Applied, note: "" },
    Field { path: "process.commandLine", how: How::Refused, note: "Windows only (the spec): use process.args" },
    Field { path: "process.consoleSize", how: How::Applied, note: "with process.terminal" },
    Field { path: "process.consoleSize.height", how: How::Applied, note: "" },
    Field { path: "process.consoleSize.width", how: How::Applied, note: "" },
    Field { path: "process.cwd", how: How::Applied, note: "" },
    Field { path: "process.env", how: How::Applied, note: "" },
    Field { path: "process.terminal", how: How::Applied, note: "" },
    Field { path: "process.user", how: How::Applied, note: "" },
    Field { path: "process.user.uid", how: How::Applied, note: "" },
    Field { path: "process.user.gid", how: How::Applied, note: "" },
    Field { path: "process.user.umask", how: How::Applied, note: "" },
    Field { path: "process.user.additionalGids", how: How::Applied, note: "" },
    Field { path: "process.user.username", how: How::Refused, note: "Windows only (the spec): use process.user.uid/gid" },
    Field { path: "process.capabilities", how: How::Applied, note: "" },
    Field { path: "process.capabilities.bounding", how: How::Applied, note: "" },
    Field { path: "process.capabilities.permitted", how: How::Applied, note: "" },
    Field { path: "process.capabilities.effective", how: How::Applied, note: "" },
    Field { path: "process.capabilities.inheritable", how: How::Applied, note: "" },
    Field { path: "process.capabilities.ambient", how: How::Applied, note: "" },
    Field { path: "process.apparmorProfile", how: How::Host, note: "needs AppArmor enabled on the host" },
    Field { path: "process.oomScoreAdj", how: How::Applied, note: "/proc/<pid>/oom_score_adj, written by husk" },
    Field { path: "process.selinuxLabel", how: How::Host, note: "needs SELinux enabled on the host" },
    Field { path: "process.ioPriority", how: How::Applied, note: "ioprio_set" },
    Field { path: "process.ioPriority.class", how: How::Applied, note: "" },
    Field { path: "process.ioPriority.priority", how: How::Applied, note: "" },
    Field { path: "process.noNewPrivileges", how: How::Applied, note: "" },
    Field { path: "process.scheduler", how: How::Applied, note: "sched_setattr" },
    Field { path: "process.scheduler.policy", how: How::Applied, note: "" },
    Field { path: "process.scheduler.nice", how: How::Applied, note: "" },
    Field { path: "process.scheduler.priority", how: How::Host, note: "SCHED_FIFO/SCHED_RR and SCHED_DEADLINE need CAP_SYS_NICE and, with RT group scheduling, a realtime budget in the container's cgroup; the kernel's refusal names process.scheduler" },
    Field { path: "process.scheduler.flags", how: How::Applied, note: "" },
    Field { path: "process.scheduler.runtime", how: How::Host, note: "" },
    Field { path: "process.scheduler.deadline", how: How::Host, note: "" },
    Field { path: "process.scheduler.period", how: How::Host, note: "" },
    Field { path: "process.rlimits", how: How::Applied, note: "" },
    Field { path: "process.rlimits[].hard", how: How::Applied, note: "" },
    Field { path: "process.rlimits[].soft", how: How::Applied, note: "" },
    Field { path: "process.rlimits[].type", how: How::Applied, note: "" },
    Field { path: "process.execCPUAffinity", how: How::Applied, note: "sched_setaffinity before and after joining the cgroup" },
    Field { path: "process.execCPUAffinity.initial", how: How::Applied, note: "" },
    Field { path: "process.execCPUAffinity.final", how: How::Applied, note: "" },
    Field { path: "linux", how: How::Applied, note: "" },
    Field { path: "linux.devices", how: How::Applied, note: "" },
    Field { path: "linux.devices[].type", how: How::Applied, note: "" },
    Field { path: "linux.devices[].path", how: How::Applied, note: "" },
    Field { path: "linux.devices[].fileMode", how: How::Applied, note: "" },
    Field { path: "linux.devices[].major", how: How::Applied, note: "" },
    Field { path: "linux.devices[].minor", how: How::Applied, note: "" },
    Field { path: "linux.devices[].uid", how: How::Applied, note: "" },
    Field { path: "linux.devices[].gid", how: How::Applied, note: "" },
    Field { path: "linux.netDevices", how: How::Applied, note: "" },
    Field { path: "linux.netDevices.*.name", how: How::Applied, note: "" },
    Field { path: "linux.uidMappings", how: How::Applied, note: "" },
    Field { path: "linux.uidMappings[].containerID", how: How::Applied, note: "" },
    Field { path: "linux.uidMappings[].hostID", how: How::Applied, note: "" },
    Field { path: "linux.uidMappings[].size", how: How::Applied, note: "" },
    Field { path: "linux.gidMappings", how: How::Applied, note: "" },
    Field { path: "linux.gidMappings[].containerID", how: How::Applied, note: "" },
    Field { path: "linux.gidMappings[].hostID", how: How::Applied, note: "" },
    Field { path: "linux.gidMappings[].size", how: How::Applied, note: "" },
    Field { path: "linux.namespaces", how: How::Applied, note: "" },
    Field { path: "linux.namespaces[].type", how: How::Applied, note: "" },
    Field { path: "linux.namespaces[].path", how: How::Applied, note: "" },
    Field { path: "linux.resources", how: How::Applied, note: "" },
    Field { path: "linux.resources.unified", how: How::Host, note: "cgroup v2 only; refused on v1 controllers" },
    Field { path: "linux.resources.devices", how: How::Applied, note: "" },
    Field { path: "linux.resources.devices[].allow", how: How::Applied, note: "" },
    Field { path: "linux.resources.devices[].type", how: How::Applied, note: "" },
    Field { path: "linux.resources.devices[].major", how: How::Applied, note: "" },
    Field { path: "linux.resources.devices[].minor", how: How::Applied, note: "" },
    Field { path: "linux.resources.devices[].access", how: How::Applied, note: "" },
    Field { path: "linux.resources.pids", how: How::Applied, note: "" },
    Field { path: "linux.resources.pids.limit", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.weight", how: How::Host, note: "needs BFQ or CFQ (v1 blkio.weight / blkio.bfq.weight, v2 io.bfq.weight / io.weight)" },
    Field { path: "linux.resources.blockIO.leafWeight", how: How::Host, note: "cgroup v1 with CFQ (blkio.leaf_weight); refused on v2, which has none" },
    Field { path: "linux.resources.blockIO.throttleReadBpsDevice", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleReadBpsDevice[].major", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleReadBpsDevice[].minor", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleReadBpsDevice[].rate", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleWriteBpsDevice", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleWriteBpsDevice[].major", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleWriteBpsDevice[].minor", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleWriteBpsDevice[].rate", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleReadIOPSDevice", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleReadIOPSDevice[].major", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleReadIOPSDevice[].minor", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleReadIOPSDevice[].rate", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleWriteIOPSDevice", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleWriteIOPSDevice[].major", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleWriteIOPSDevice[].minor", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.throttleWriteIOPSDevice[].rate", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.weightDevice", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.weightDevice[].major", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.weightDevice[].minor", how: How::Applied, note: "" },
    Field { path: "linux.resources.blockIO.weightDevice[].weight", how: How::Host, note: "needs BFQ or CFQ" },
    Field { path: "linux.resources.blockIO.weightDevice[].leafWeight", how: How::Host, note: "cgroup v1 with CFQ; refused on v2, which has none" },
    Field { path: "linux.resources.cpu", how: How::Applied, note: "" },
    Field { path: "linux.resources.cpu.cpus", how: How::Applied, note: "" },
    Field { path: "linux.resources.cpu.mems", how: How::Applied, note: "" },
    Field { path: "linux.resources.cpu.period", how: How::Applied, note: "" },
    Field { path: "linux.resources.cpu.quota", how: How::Applied, note: "" },
    Field { path: "linux.resources.cpu.burst", how: How::Host, note: "needs Linux 5.14+ (cpu.cfs_burst_us, cpu.max.burst)" },
    Field { path: "linux.resources.cpu.realtimePeriod", how: How::Host, note: "cgroup v1 with CONFIG_RT_GROUP_SCHED; refused on v2, which has none" },
    Field { path: "linux.resources.cpu.realtimeRuntime", how: How::Host, note: "cgroup v1 with CONFIG_RT_GROUP_SCHED; refused on v2, which has none" },
    Field { path: "linux.resources.cpu.shares", how: How::Applied, note: "" },
    Field { path: "linux.resources.cpu.idle", how: How::Host, note: "needs Linux 5.15+ (cpu.idle)" },
    Field { path: "linux.resources.hugepageLimits", how: How::Host, note: "needs the hugetlb controller" },
    Field { path: "linux.resources.hugepageLimits[].pageSize", how: How::Host, note: "" },
    Field { path: "linux.resources.hugepageLimits[].limit", how: How::Host, note: "" },
    Field { path: "linux.resources.memory", how: How::Applied, note: "" },
    Field { path: "linux.resources.memory.kernel", how: How::Host, note: "cgroup v1 kernels that still keep it (read back; Linux 6.1+ ignores it: refused); -1 only on v2" },
    Field { path: "linux.resources.memory.kernelTCP", how: How::Host, note: "cgroup v1 with memory.kmem.tcp.*; -1 only on v2" },
    Field { path: "linux.resources.memory.limit", how: How::Applied, note: "" },
    Field { path: "linux.resources.memory.reservation", how: How::Applied, note: "" },
    Field { path: "linux.resources.memory.swap", how: How::Host, note: "needs swap accounting (memory.memsw.* / memory.swap.max)" },
    Field { path: "linux.resources.memory.swappiness", how: How::Host, note: "cgroup v1 (memory.swappiness); refused on v2, which has none" },
    Field { path: "linux.resources.memory.disableOOMKiller", how: How::Host, note: "cgroup v1 (memory.oom_control); true refused on v2, which cannot" },
    Field { path: "linux.resources.memory.useHierarchy", how: How::Host, note: "cgroup v1 (memory.use_hierarchy, read back: 5.16+ keeps 1); false refused on v2" },
    Field { path: "linux.resources.memory.checkBeforeUpdate", how: How::Applied, note: "at update: a limit below the usage is refused" },
    Field { path: "linux.resources.network", how: How::Host, note: "cgroup v1 net_cls/net_prio; refused on v2, which has none" },
    Field { path: "linux.resources.network.classID", how: How::Host, note: "" },
    Field { path: "linux.resources.network.priorities", how: How::Host, note: "" },
    Field { path: "linux.resources.network.priorities[].name", how: How::Host, note: "" },
    Field { path: "linux.resources.network.priorities[].priority", how: How::Host, note: "" },
    Field { path: "linux.resources.rdma", how: How::Host, note: "needs the rdma controller" },
    Field { path: "linux.resources.rdma.*.hcaHandles", how: How::Host, note: "" },
    Field { path: "linux.resources.rdma.*.hcaObjects", how: How::Host, note: "" },
    Field { path: "linux.cgroupsPath", how: How::Applied, note: "runc's cgroupfs rules, or slice:prefix:name with --systemd-cgroup" },
    Field { path: "linux.rootfsPropagation", how: How::Applied, note: "" },
    Field { path: "linux.seccomp", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.defaultAction", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.defaultErrnoRet", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.flags", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.listenerPath", how: How::Applied, note: "the notify fd is sent to the agent at this socket" },
    Field { path: "linux.seccomp.listenerMetadata", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.architectures", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.syscalls", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.syscalls[].names", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.syscalls[].action", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.syscalls[].errnoRet", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.syscalls[].args", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.syscalls[].args[].index", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.syscalls[].args[].value", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.syscalls[].args[].valueTwo", how: How::Applied, note: "" },
    Field { path: "linux.seccomp.syscalls[].args[].op", how: How::Applied, note: "" },
    Field { path: "linux.sysctl", how: How::Applied, note: "" },
    Field { path: "linux.maskedPaths", how: How::Applied, note: "" },
    Field { path: "linux.readonlyPaths", how: How::Applied, note: "" },
    Field { path: "linux.mountLabel", how: How::Host, note: "needs SELinux enabled on the host" },
    Field { path: "linux.intelRdt", how: How::Refused, note: "no resctrl (Intel RDT) support" },
    Field { path: "linux.intelRdt.closID", how: How::Refused, note: "no resctrl (Intel RDT) support" },
    Field { path: "linux.intelRdt.schemata", how: How::Refused, note: "no resctrl (Intel RDT) support" },
    Field { path: "linux.intelRdt.l3CacheSchema", how: How::Refused, note: "no resctrl (Intel RDT) support" },
    Field { path: "linux.intelRdt.memBwSchema", how: How::Refused, note: "no resctrl (Intel RDT) support" },
    Field { path: "linux.intelRdt.enableMonitoring", how: How::Refused, note: "no resctrl (Intel RDT) support" },
    Field { path: "linux.memoryPolicy", how: How::Applied, note: "set_mempolicy" },
    Field { path: "linux.memoryPolicy.mode", how: How::Applied, note: "" },
    Field { path: "linux.memoryPolicy.nodes", how: How::Applied, note: "" },
    Field { path: "linux.memoryPolicy.flags", how: How::Applied, note: "" },
    Field { path: "linux.personality", how: How::Applied, note: "personality(2); no flags are defined by the spec" },
    Field { path: "linux.personality.domain", how: How::Applied, note: "" },
    Field { path: "linux.personality.flags", how: How::Applied, note: "" },
    Field { path: "linux.timeOffsets", how: How::Applied, note: "/proc/self/timens_offsets of a new time namespace" },
    Field { path: "linux.timeOffsets.boottime", how: How::Applied, note: "" },
    Field { path: "linux.timeOffsets.boottime.secs", how: How::Applied, note: "" },
    Field { path: "linux.timeOffsets.boottime.nanosecs", how: How::Applied, note: "" },
    Field { path: "linux.timeOffsets.monotonic", how: How::Applied, note: "" },
    Field { path: "linux.timeOffsets.monotonic.secs", how: How::Applied, note: "" },
    Field { path: "linux.timeOffsets.monotonic.nanosecs", how: How::Applied, note: "" },
];

/// The row of a concrete or schema path (`mounts[2].type` or `mounts[].type`).
pub fn field(path: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.path == path)
}

/// Is `path` (schema form) a field of the spec or the start of one?
fn known_prefix(path: &str) -> bool {
    FIELDS.iter().any(|f| {
        f.path == path
            || f.path
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

/// What the config parser dropped: the keys of `raw` (the config as JSON)
/// that are not in `parsed` (what was parsed, serialized again). `base` is
/// the schema path of `raw` ("" for a whole config, "process" for an
/// `exec --process` file). Returns the spec's fields among them (husk
/// must refuse those: a field of the spec read as nothing would be
/// silently ignored) and the properties the spec does not have (which the
/// spec says a runtime MUST ignore; husk warns).
pub fn unparsed(raw: &Value, parsed: &Value, base: &str) -> (Vec<String>, Vec<String>) {
    let mut spec_fields = Vec::new();
    let mut unknown = Vec::new();
    walk(raw, parsed, base, base, &mut spec_fields, &mut unknown);
    (spec_fields, unknown)
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

fn walk(raw: &Value, parsed: &Value, at: &str, schema: &str, spec: &mut Vec<String>, unknown: &mut Vec<String>) {
    match (raw, parsed) {
        (Value::Object(r), Value::Object(p)) => {
            for (k, rv) in r {
                if rv.is_null() {
                    continue;
                }
                let at_k = join(at, k);
                let named = join(schema, k);
                let schema_k = if known_prefix(&named) || !known_prefix(&join(schema, "*")) {
                    named
                } else {
                    join(schema, "*")
                };
                match p.get(k) {
                    Some(pv) if !pv.is_null() => walk(rv, pv, &at_k, &schema_k, spec, unknown),
                    _ => {
                        // A map's keys are data (annotations, sysctl, unified):
                        // only a field is looked up.
                        if known_prefix(&schema_k) {
                            spec.push(at_k);
                        } else {
                            unknown.push(at_k);
                        }
                    }
                }
            }
        }
        (Value::Array(r), Value::Array(p)) => {
            for (i, (rv, pv)) in r.iter().zip(p).enumerate() {
                walk(rv, pv, &format!("{at}[{i}]"), &format!("{schema}[]"), spec, unknown);
            }
        }
        _ => {}
    }
}

/// The README's table of fields (between its `fields-table` markers).
pub fn markdown_table() -> String {
    let mut s = String::from("| field | husk | how, or why not |\n|---|---|---|\n");
    for f in FIELDS {
        let how = match f.how {
            How::Applied => "applied",
            How::Host => "applied where the host can; else refused",
            How::Refused => "refused",
        };
        s.push_str(&format!("| `{}` | {how} | {} |\n", f.path, f.note));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unparsed_finds_dropped_fields() {
        let raw = json!({"process": {"args": ["sh"], "bogus": 1},
            "linux": {"sysctl": {"a.b": "1"}, "resources": {"rdma": {"mlx": {"hcaHandles": 1, "x": 2}}}},
            "mounts": [{"destination": "/a"}, {"destination": "/b", "uidMappings": []}]});
        let parsed = json!({"process": {"args": ["sh"]},
            "linux": {"sysctl": {"a.b": "1"}, "resources": {"rdma": {"mlx": {"hcaHandles": 1}}}},
            "mounts": [{"destination": "/a"}, {"destination": "/b"}]});
        let (spec, unknown) = unparsed(&raw, &parsed, "");
        assert_eq!(spec, vec!["mounts[1].uidMappings"]);
        assert_eq!(unknown, vec!["process.bogus", "linux.resources.rdma.mlx.x"]);
        // through the real parser: unknown properties warned about, by path
        let text = r#"{"ociVersion": "1.3.0", "root": {"path": "r"}, "rooot": {},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "argz": 1}}"#;
        let (_, warnings) = crate::bundle::parse_spec_warning(text).unwrap();
        let mut paths: Vec<String> = warnings.into_iter().map(|w| w.path).collect();
        paths.sort();
        assert_eq!(paths, vec!["process.argz", "rooot"]);
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for f in FIELDS {
            assert!(seen.insert(f.path), "{} twice", f.path);
        }
    }
}
