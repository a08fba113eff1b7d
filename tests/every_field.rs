//! No field silently ignored: every Linux field of runtime-spec 1.3's config
//! schema is set in a real container, one row each, and husk must either
//! apply it (seen from inside the container, or in its cgroup files from
//! the host) or refuse the config with an error that names the field.
//!
//! The rows' paths must be exactly those of tests/data/runtime-spec-1.3-config-paths.txt
//! (generated from the spec's schema by tools/spec-fields.py) and of husk's
//! own table (src/fields.rs), and the README's field table must be that
//! table: `HUSK_WRITE_README=1 cargo test --test every_field readme` writes it.
mod common;
use common::*;
use husk::fields::{FIELDS, How};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// How a row is proven.
enum Check {
    /// `run` a container with `set` (JSON object: pointer → value, a
    /// pointer ending in `/-` appends) running `sh -c SCRIPT`; its stdout
    /// must contain `want`.
    Out(&'static str, &'static str, &'static str),
    /// `create` with `set`, then the container's cgroup file must contain
    /// the value: (set, v1 file, v1 value, v2 file, v2 value).
    Cg(&'static str, &'static str, &'static str, &'static str, &'static str),
    /// `run` with `set` (`@F` in it: a file of the test on the host); then
    /// that file must contain `want` (hooks run on the host).
    HostFile(&'static str, &'static str),
    /// `create` with `set` must fail naming the field.
    Refused(&'static str),
    /// Proven by the row of this other field (the same container shows both).
    Via(&'static str),
    /// Proven by this test of another file (needs a helper process or a
    /// console socket): the row names it, and it must exist.
    Elsewhere(&'static str, &'static str),
}
use Check::*;

/// One row per schema path (parents without a row of their own are proven
/// by their fields' rows).
#[rustfmt::skip]
const ROWS: &[(&str, Check)] = &[
    ("ociVersion", Out(r#"{"/ociVersion": "1.3.0"}"#, "echo ok", "ok")),
    ("hooks.prestart[].path", HostFile(r#"{"/hooks/prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo $HK >> @F"], "env": ["HK=prestart"], "timeout": 5}]}"#, "prestart")),
    ("hooks.prestart[].args", Via("hooks.prestart[].path")),
    ("hooks.prestart[].env", Via("hooks.prestart[].path")),
    ("hooks.prestart[].timeout", Elsewhere("tests/hooks_tty.rs", "fn hook_timeout_kills_it")),
    ("hooks.createRuntime[].path", HostFile(r#"{"/hooks/createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo $HK >> @F"], "env": ["HK=createRuntime"], "timeout": 5}]}"#, "createRuntime")),
    ("hooks.createRuntime[].args", Via("hooks.createRuntime[].path")),
    ("hooks.createRuntime[].env", Via("hooks.createRuntime[].path")),
    ("hooks.createRuntime[].timeout", Via("hooks.prestart[].timeout")),
    ("hooks.createContainer[].path", HostFile(r#"{"/hooks/createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo $HK >> @F"], "env": ["HK=createContainer"], "timeout": 5}]}"#, "createContainer")),
    ("hooks.createContainer[].args", Via("hooks.createContainer[].path")),
    ("hooks.createContainer[].env", Via("hooks.createContainer[].path")),
    ("hooks.createContainer[].timeout", Via("hooks.prestart[].timeout")),
    ("hooks.startContainer[].path", Out(r#"{"/hooks/startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo $HK > /dev/shm/hk"], "env": ["HK=startContainer"], "timeout": 5}]}"#, "cat /dev/shm/hk", "startContainer")),
    ("hooks.startContainer[].args", Via("hooks.startContainer[].path")),
    ("hooks.startContainer[].env", Via("hooks.startContainer[].path")),
    ("hooks.startContainer[].timeout", Via("hooks.prestart[].timeout")),
    ("hooks.poststart[].path", HostFile(r#"{"/hooks/poststart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo $HK >> @F"], "env": ["HK=poststart"], "timeout": 5}]}"#, "poststart")),
    ("hooks.poststart[].args", Via("hooks.poststart[].path")),
    ("hooks.poststart[].env", Via("hooks.poststart[].path")),
    ("hooks.poststart[].timeout", Via("hooks.prestart[].timeout")),
    ("hooks.poststop[].path", HostFile(r#"{"/hooks/poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "echo $HK >> @F"], "env": ["HK=poststop"], "timeout": 5}]}"#, "poststop")),
    ("hooks.poststop[].args", Via("hooks.poststop[].path")),
    ("hooks.poststop[].env", Via("hooks.poststop[].path")),
    ("hooks.poststop[].timeout", Via("hooks.prestart[].timeout")),
    ("annotations", HostFile(r#"{"/annotations": {"org.example.every-field": "yes"}, "/hooks/createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "cat >> @F"]}]}"#, r#""org.example.every-field":"yes""#)),
    ("hostname", Out(r#"{"/hostname": "every-field"}"#, "hostname", "every-field")),
    ("domainname", Out(r#"{"/domainname": "every.example"}"#, "cat /proc/sys/kernel/domainname", "every.example")),
    ("mounts[].destination", Out(r#"{"/mounts/-": {"destination": "/mnt/ef", "type": "tmpfs", "source": "ef-src", "options": ["size=1m", "mode=711"]}}"#, "grep ' /mnt/ef ' /proc/self/mountinfo", "/mnt/ef rw,relatime - tmpfs ef-src rw,size=1024k,mode=711")),
    ("mounts[].source", Via("mounts[].destination")),
    ("mounts[].options", Via("mounts[].destination")),
    ("mounts[].type", Via("mounts[].destination")),
    ("mounts[].uidMappings", Elsewhere("tests/mounts.rs", "fn idmapped_mount_with_mappings_of_its_own")),
    ("mounts[].uidMappings[].containerID", Via("mounts[].uidMappings")),
    ("mounts[].uidMappings[].hostID", Via("mounts[].uidMappings")),
    ("mounts[].uidMappings[].size", Via("mounts[].uidMappings")),
    ("mounts[].gidMappings", Via("mounts[].uidMappings")),
    ("mounts[].gidMappings[].containerID", Via("mounts[].uidMappings")),
    ("mounts[].gidMappings[].hostID", Via("mounts[].uidMappings")),
    ("mounts[].gidMappings[].size", Via("mounts[].uidMappings")),
    ("root.path", Out("{}", "ls /bin/busybox", "/bin/busybox")),
    ("root.readonly", Out(r#"{"/root/readonly": true}"#, "touch /x 2>&1", "Read-only file system")),
    ("process.args", Out("{}", "echo args-ran", "args-ran")),
    ("process.commandLine", Refused(r#"{"/process/commandLine": "sh -c true"}"#)),
    ("process.consoleSize", Elsewhere("tests/hooks_tty.rs", r#""consoleSize"] = json!({"height": 33, "width": 111})"#)),
    ("process.consoleSize.height", Via("process.consoleSize")),
    ("process.consoleSize.width", Via("process.consoleSize")),
    ("process.cwd", Out(r#"{"/process/cwd": "/etc"}"#, "pwd", "/etc")),
    ("process.env", Out(r#"{"/process/env/-": "EVERY=field"}"#, "echo $EVERY", "field")),
    ("process.terminal", Out(r#"{"/process/terminal": false}"#, "test -t 1 || echo no-tty", "no-tty")),
    ("process.user.uid", Out(r#"{"/process/user": {"uid": 1234, "gid": 2345, "umask": 63, "additionalGids": [3456]}}"#, "echo $(id -u) $(id -g) $(umask); grep Groups /proc/self/status", "1234 2345 0077\nGroups:\t3456")),
    ("process.user.gid", Via("process.user.uid")),
    ("process.user.umask", Via("process.user.uid")),
    ("process.user.additionalGids", Via("process.user.uid")),
    ("process.user.username", Refused(r#"{"/process/user/username": "root"}"#)),
    ("process.capabilities.bounding", Out(r#"{"/process/capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"], "permitted": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_CHOWN"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}}"#, "grep Cap /proc/self/status", "CapInh:\t0000000000000020\nCapPrm:\t0000000000000021\nCapEff:\t0000000000000021\nCapBnd:\t0000000000000021\nCapAmb:\t0000000000000020")),
    ("process.capabilities.permitted", Via("process.capabilities.bounding")),
    ("process.capabilities.effective", Via("process.capabilities.bounding")),
    ("process.capabilities.inheritable", Via("process.capabilities.bounding")),
    ("process.capabilities.ambient", Via("process.capabilities.bounding")),
    ("process.apparmorProfile", Elsewhere("tests/isolation.rs", "fn apparmor_profile_applied_or_refused")),
    ("process.oomScoreAdj", Out(r#"{"/process/oomScoreAdj": 345}"#, "cat /proc/self/oom_score_adj", "345")),
    ("process.selinuxLabel", Elsewhere("tests/isolation.rs", "fn selinux_labels_applied_or_refused")),
    ("process.ioPriority.class", Out(r#"{"/process/ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6}}"#, "ionice -p $$", "best-effort: prio 6")),
    ("process.ioPriority.priority", Via("process.ioPriority.class")),
    ("process.noNewPrivileges", Out(r#"{"/process/noNewPrivileges": true}"#, "grep NoNewPrivs /proc/self/status", "NoNewPrivs:\t1")),
    ("process.scheduler.policy", Out(r#"{"/process/scheduler": {"policy": "SCHED_BATCH", "nice": 7, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}}"#, "cut -d' ' -f19,41 /proc/self/stat; grep -w policy /proc/self/sched", "7 3\npolicy                                       :                    3")),
    ("process.scheduler.nice", Via("process.scheduler.policy")),
    ("process.scheduler.priority", Out(r#"{"/process/scheduler": {"policy": "SCHED_FIFO", "priority": 3}, "/process/capabilities/bounding/-": "CAP_SYS_NICE", "/process/capabilities/effective/-": "CAP_SYS_NICE", "/process/capabilities/permitted/-": "CAP_SYS_NICE"}"#, "cut -d' ' -f18,41 /proc/self/stat", "-4 1")),
    ("process.scheduler.flags", Elsewhere("tests/compat.rs", "SCHED_FLAG_RESET_ON_FORK")),
    ("process.scheduler.runtime", Out(r#"{"/process/scheduler": {"policy": "SCHED_DEADLINE", "runtime": 1000000, "deadline": 5000000, "period": 10000000}, "/process/capabilities/bounding/-": "CAP_SYS_NICE", "/process/capabilities/effective/-": "CAP_SYS_NICE", "/process/capabilities/permitted/-": "CAP_SYS_NICE"}"#, "cut -d' ' -f41 /proc/self/stat", "6\n")),
    ("process.scheduler.deadline", Via("process.scheduler.runtime")),
    ("process.scheduler.period", Via("process.scheduler.runtime")),
    ("process.rlimits[].type", Out(r#"{"/process/rlimits": [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]}"#, "echo $(ulimit -n) $(ulimit -Hn)", "123 456")),
    ("process.rlimits[].soft", Via("process.rlimits[].type")),
    ("process.rlimits[].hard", Via("process.rlimits[].type")),
    ("process.execCPUAffinity.final", Out(r#"{"/process/execCPUAffinity": {"final": "0"}}"#, "grep Cpus_allowed_list /proc/self/status", "Cpus_allowed_list:\t0")),
    ("process.execCPUAffinity.initial", Elsewhere("tests/isolation.rs", r#"json!({"initial": "1"})"#)),
    ("linux.devices[].path", Out(r#"{"/linux/devices/-": {"path": "/dev/ef", "type": "c", "major": 1, "minor": 3, "fileMode": 384, "uid": 5, "gid": 6}}"#, "stat -c '%F %t:%T %a %u %g' /dev/ef", "character special file 1:3 600 5 6")),
    ("linux.devices[].type", Via("linux.devices[].path")),
    ("linux.devices[].fileMode", Via("linux.devices[].path")),
    ("linux.devices[].major", Via("linux.devices[].path")),
    ("linux.devices[].minor", Via("linux.devices[].path")),
    ("linux.devices[].uid", Via("linux.devices[].path")),
    ("linux.devices[].gid", Via("linux.devices[].path")),
    ("linux.netDevices.*.name", Elsewhere("tests/netdevices.rs", "fn host_devices_are_moved_renamed_with_their_addresses_and_up")),
    ("linux.uidMappings[].containerID", Out(r#"{"/linux/namespaces/-": {"type": "user"}, "/linux/uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}], "/linux/gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]}"#, "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '", " 0 100000 65536\n 0 200000 65536")),
    ("linux.uidMappings[].hostID", Via("linux.uidMappings[].containerID")),
    ("linux.uidMappings[].size", Via("linux.uidMappings[].containerID")),
    ("linux.gidMappings[].containerID", Via("linux.uidMappings[].containerID")),
    ("linux.gidMappings[].hostID", Via("linux.uidMappings[].containerID")),
    ("linux.gidMappings[].size", Via("linux.uidMappings[].containerID")),
    ("linux.namespaces[].type", Via("hostname")),
    ("linux.namespaces[].path", Out(r#"{"/linux/namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc", "path": "@IPCPATH"}, {"type": "uts"}, {"type": "mount"}]}"#, "readlink /proc/self/ns/ipc", "@IPC")),
    ("linux.resources.unified", Cg(r#"{"/linux/resources/unified": {"pids.max": "77"}}"#, "", "", "pids.max", "77")),
    ("linux.resources.devices[].allow", Cg(r#"{"/linux/resources/devices/-": {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}}"#, "devices.list", "c 1:11 r", "-", "")),
    ("linux.resources.devices[].type", Via("linux.resources.devices[].allow")),
    ("linux.resources.devices[].major", Via("linux.resources.devices[].allow")),
    ("linux.resources.devices[].minor", Via("linux.resources.devices[].allow")),
    ("linux.resources.devices[].access", Via("linux.resources.devices[].allow")),
    ("linux.resources.pids.limit", Cg(r#"{"/linux/resources/pids": {"limit": 77}}"#, "pids.max", "77", "pids.max", "77")),
    ("linux.resources.blockIO.weight", Cg(r#"{"/linux/resources/blockIO": {"weight": 300}}"#, "blkio.weight|blkio.bfq.weight", "300", "io.bfq.weight|io.weight", "300")),
    ("linux.resources.blockIO.leafWeight", Cg(r#"{"/linux/resources/blockIO": {"leafWeight": 300}}"#, "blkio.leaf_weight", "300", "", "")),
    ("linux.resources.blockIO.throttleReadBpsDevice[].major", Cg(r#"{"/linux/resources/blockIO": {"throttleReadBpsDevice": [{"major": @MAJ, "minor": @MIN, "rate": 1048576}]}}"#, "blkio.throttle.read_bps_device", "@DEV 1048576", "io.max", "@DEV rbps=1048576")),
    ("linux.resources.blockIO.throttleReadBpsDevice[].minor", Via("linux.resources.blockIO.throttleReadBpsDevice[].major")),
    ("linux.resources.blockIO.throttleReadBpsDevice[].rate", Via("linux.resources.blockIO.throttleReadBpsDevice[].major")),
    ("linux.resources.blockIO.throttleWriteBpsDevice[].major", Cg(r#"{"/linux/resources/blockIO": {"throttleWriteBpsDevice": [{"major": @MAJ, "minor": @MIN, "rate": 2097152}]}}"#, "blkio.throttle.write_bps_device", "@DEV 2097152", "io.max", "@DEV rbps=max wbps=2097152")),
    ("linux.resources.blockIO.throttleWriteBpsDevice[].minor", Via("linux.resources.blockIO.throttleWriteBpsDevice[].major")),
    ("linux.resources.blockIO.throttleWriteBpsDevice[].rate", Via("linux.resources.blockIO.throttleWriteBpsDevice[].major")),
    ("linux.resources.blockIO.throttleReadIOPSDevice[].major", Cg(r#"{"/linux/resources/blockIO": {"throttleReadIOPSDevice": [{"major": @MAJ, "minor": @MIN, "rate": 300}]}}"#, "blkio.throttle.read_iops_device", "@DEV 300", "io.max", "riops=300")),
    ("linux.resources.blockIO.throttleReadIOPSDevice[].minor", Via("linux.resources.blockIO.throttleReadIOPSDevice[].major")),
    ("linux.resources.blockIO.throttleReadIOPSDevice[].rate", Via("linux.resources.blockIO.throttleReadIOPSDevice[].major")),
    ("linux.resources.blockIO.throttleWriteIOPSDevice[].major", Cg(r#"{"/linux/resources/blockIO": {"throttleWriteIOPSDevice": [{"major": @MAJ, "minor": @MIN, "rate": 400}]}}"#, "blkio.throttle.write_iops_device", "@DEV 400", "io.max", "wiops=400")),
    ("linux.resources.blockIO.throttleWriteIOPSDevice[].minor", Via("linux.resources.blockIO.throttleWriteIOPSDevice[].major")),
    ("linux.resources.blockIO.throttleWriteIOPSDevice[].rate", Via("linux.resources.blockIO.throttleWriteIOPSDevice[].major")),
    ("linux.resources.blockIO.weightDevice[].weight", Cg(r#"{"/linux/resources/blockIO": {"weightDevice": [{"major": @MAJ, "minor": @MIN, "weight": 400}]}}"#, "blkio.weight_device|blkio.bfq.weight_device", "@DEV 400", "io.bfq.weight", "@DEV 400")),
    ("linux.resources.blockIO.weightDevice[].major", Via("linux.resources.blockIO.weightDevice[].weight")),
    ("linux.resources.blockIO.weightDevice[].minor", Via("linux.resources.blockIO.weightDevice[].weight")),
    ("linux.resources.blockIO.weightDevice[].leafWeight", Cg(r#"{"/linux/resources/blockIO": {"weightDevice": [{"major": @MAJ, "minor": @MIN, "leafWeight": 400}]}}"#, "blkio.leaf_weight_device", "@DEV 400", "", "")),
    ("linux.resources.cpu.cpus", Cg(r#"{"/linux/resources/cpu": {"cpus": "0", "mems": "0"}}"#, "cpuset.cpus", "0", "cpuset.cpus", "0")),
    ("linux.resources.cpu.mems", Cg(r#"{"/linux/resources/cpu": {"cpus": "0", "mems": "0"}}"#, "cpuset.mems", "0", "cpuset.mems", "0")),
    ("linux.resources.cpu.period", Cg(r#"{"/linux/resources/cpu": {"quota": 20000, "period": 50000}}"#, "cpu.cfs_period_us", "50000", "cpu.max", "20000 50000")),
    ("linux.resources.cpu.quota", Cg(r#"{"/linux/resources/cpu": {"quota": 20000, "period": 50000}}"#, "cpu.cfs_quota_us", "20000", "cpu.max", "20000 50000")),
    ("linux.resources.cpu.burst", Cg(r#"{"/linux/resources/cpu": {"quota": 20000, "period": 50000, "burst": 10000}}"#, "cpu.cfs_burst_us", "10000", "cpu.max.burst", "10000")),
    ("linux.resources.cpu.realtimePeriod", Cg(r#"{"/linux/resources/cpu": {"realtimePeriod": 500000}}"#, "cpu.rt_period_us", "500000", "", "")),
    ("linux.resources.cpu.realtimeRuntime", Cg(r#"{"/linux/resources/cpu": {"realtimeRuntime": 1000}}"#, "cpu.rt_runtime_us", "1000", "", "")),
    ("linux.resources.cpu.shares", Cg(r#"{"/linux/resources/cpu": {"shares": 512}}"#, "cpu.shares", "512", "cpu.weight", "59")),
    ("linux.resources.cpu.idle", Cg(r#"{"/linux/resources/cpu": {"idle": 1}}"#, "cpu.idle", "1", "cpu.idle", "1")),
    ("linux.resources.hugepageLimits[].pageSize", Cg(r#"{"/linux/resources/hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#, "hugetlb.2MB.limit_in_bytes", "4194304", "hugetlb.2MB.max", "4194304")),
    ("linux.resources.hugepageLimits[].limit", Via("linux.resources.hugepageLimits[].pageSize")),
    ("linux.resources.memory.kernel", Cg(r#"{"/linux/resources/memory": {"kernel": 67108864}}"#, "memory.kmem.limit_in_bytes", "67108864", "", "")),
    ("linux.resources.memory.kernelTCP", Cg(r#"{"/linux/resources/memory": {"kernelTCP": 67108864}}"#, "memory.kmem.tcp.limit_in_bytes", "67108864", "", "")),
    ("linux.resources.memory.limit", Cg(r#"{"/linux/resources/memory": {"limit": 67108864}}"#, "memory.limit_in_bytes", "67108864", "memory.max", "67108864")),
    ("linux.resources.memory.reservation", Cg(r#"{"/linux/resources/memory": {"reservation": 33554432}}"#, "memory.soft_limit_in_bytes", "33554432", "memory.low", "33554432")),
    ("linux.resources.memory.swap", Cg(r#"{"/linux/resources/memory": {"limit": 67108864, "swap": 134217728}}"#, "memory.memsw.limit_in_bytes", "134217728", "memory.swap.max", "67108864")),
    ("linux.resources.memory.swappiness", Cg(r#"{"/linux/resources/memory": {"swappiness": 17}}"#, "memory.swappiness", "17", "", "")),
    ("linux.resources.memory.disableOOMKiller", Cg(r#"{"/linux/resources/memory": {"disableOOMKiller": true}}"#, "memory.oom_control", "oom_kill_disable 1", "", "")),
    ("linux.resources.memory.useHierarchy", Cg(r#"{"/linux/resources/memory": {"useHierarchy": true}}"#, "memory.use_hierarchy", "1", "memory.max", "max")),
    ("linux.resources.memory.checkBeforeUpdate", Elsewhere("tests/cgroups.rs", "checkBeforeUpdate refuses a limit below the usage")),
    ("linux.resources.network.classID", Cg(r#"{"/linux/resources/network": {"classID": 1048577}}"#, "net_cls.classid", "1048577", "", "")),
    ("linux.resources.network.priorities[].name", Cg(r#"{"/linux/resources/network": {"priorities": [{"name": "lo", "priority": 5}]}}"#, "net_prio.ifpriomap", "lo 5", "", "")),
    ("linux.resources.network.priorities[].priority", Via("linux.resources.network.priorities[].name")),
    ("linux.resources.rdma.*.hcaHandles", Cg(r#"{"/linux/resources/rdma": {"ef_dev0": {"hcaHandles": 3, "hcaObjects": 4}}}"#, "rdma.max", "ef_dev0 hca_handle=3 hca_object=4", "rdma.max", "ef_dev0 hca_handle=3 hca_object=4")),
    ("linux.resources.rdma.*.hcaObjects", Via("linux.resources.rdma.*.hcaHandles")),
    ("linux.cgroupsPath", Cg(r#"{"/linux/cgroupsPath": "@CGPATH", "/linux/resources/pids": {"limit": 78}}"#, "pids.max", "78", "pids.max", "78")),
    ("linux.rootfsPropagation", Out(r#"{"/linux/rootfsPropagation": "private"}"#, "grep -c ' / / .*shared:' /proc/self/mountinfo", "0")),
    ("linux.seccomp.defaultAction", Out(r#"{"/linux/seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}, {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 255, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}}"#, "grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; kill -0 $$ 2>/dev/null || echo kill0-denied", "Seccomp:\t2\nmkdir: can't create directory '/tmp/x': Permission denied\nkill0-denied")),
    ("linux.seccomp.defaultErrnoRet", Out(r#"{"/linux/seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 13, "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}}"#, "mkdir /tmp/x 2>&1", "Operation not permitted")),
    ("linux.seccomp.flags", Via("linux.seccomp.defaultAction")),
    ("linux.seccomp.listenerPath", Elsewhere("tests/isolation.rs", "fn seccomp_notify_hands_the_fd_to_an_agent")),
    ("linux.seccomp.listenerMetadata", Via("linux.seccomp.listenerPath")),
    ("linux.seccomp.architectures", Via("linux.seccomp.defaultAction")),
    ("linux.seccomp.syscalls[].names", Via("linux.seccomp.defaultAction")),
    ("linux.seccomp.syscalls[].action", Via("linux.seccomp.defaultAction")),
    ("linux.seccomp.syscalls[].errnoRet", Via("linux.seccomp.defaultAction")),
    ("linux.seccomp.syscalls[].args[].index", Via("linux.seccomp.defaultAction")),
    ("linux.seccomp.syscalls[].args[].value", Via("linux.seccomp.defaultAction")),
    ("linux.seccomp.syscalls[].args[].valueTwo", Via("linux.seccomp.defaultAction")),
    ("linux.seccomp.syscalls[].args[].op", Via("linux.seccomp.defaultAction")),
    ("linux.sysctl", Out(r#"{"/linux/sysctl": {"net.ipv4.ip_forward": "1"}}"#, "cat /proc/sys/net/ipv4/ip_forward", "1")),
    ("linux.maskedPaths", Out(r#"{"/linux/maskedPaths": ["/etc/passwd"]}"#, "wc -c < /etc/passwd", "0")),
    ("linux.readonlyPaths", Out(r#"{"/root/readonly": false, "/linux/readonlyPaths": ["/tmp"]}"#, "touch /tmp/ef 2>&1", "Read-only file system")),
    ("linux.mountLabel", Elsewhere("tests/isolation.rs", "fn selinux_labels_applied_or_refused")),
    ("linux.intelRdt.closID", Refused(r#"{"/linux/intelRdt": {"closID": "ef"}}"#)),
    ("linux.intelRdt.schemata", Refused(r#"{"/linux/intelRdt": {"schemata": ["L3:0=f"]}}"#)),
    ("linux.intelRdt.l3CacheSchema", Refused(r#"{"/linux/intelRdt": {"l3CacheSchema": "L3:0=f"}}"#)),
    ("linux.intelRdt.memBwSchema", Refused(r#"{"/linux/intelRdt": {"memBwSchema": "MB:0=50"}}"#)),
    ("linux.intelRdt.enableMonitoring", Refused(r#"{"/linux/intelRdt": {"enableMonitoring": true}}"#)),
    ("linux.memoryPolicy.mode", Out(r#"{"/linux/memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}}"#, "head -1 /proc/self/numa_maps", " interleave=static:0")),
    ("linux.memoryPolicy.nodes", Via("linux.memoryPolicy.mode")),
    ("linux.memoryPolicy.flags", Via("linux.memoryPolicy.mode")),
    ("linux.personality.domain", Out(r#"{"/linux/personality": {"domain": "LINUX32", "flags": []}}"#, "uname -m", "i686")),
    ("linux.personality.flags", Via("linux.personality.domain")),
    ("linux.timeOffsets.boottime.secs", Out(r#"{"/linux/namespaces/-": {"type": "time"}, "/linux/timeOffsets": {"boottime": {"secs": 86400000, "nanosecs": 7}, "monotonic": {"secs": 172800000, "nanosecs": 9}}}"#, "tr -s ' ' < /proc/self/timens_offsets", "monotonic 172800000 9\nboottime 86400000 7")),
    ("linux.timeOffsets.boottime.nanosecs", Via("linux.timeOffsets.boottime.secs")),
    ("linux.timeOffsets.monotonic.secs", Via("linux.timeOffsets.boottime.secs")),
    ("linux.timeOffsets.monotonic.nanosecs", Via("linux.timeOffsets.boottime.secs")),
];

fn data_paths() -> Vec<String> {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/runtime-spec-1.3-config-paths.txt");
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("read {}: {e}", f.display()))
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// A schema path is proven by its row, or (an object or array without a
/// row) by the rows of its fields.
fn covered(path: &str) -> bool {
    ROWS.iter().any(|(p, _)| {
        *p == path
            || p.strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

#[test]
fn rows_cover_the_schema_and_husks_table() {
    let data = data_paths();
    let mut seen = HashSet::new();
    for (p, c) in ROWS {
        assert!(seen.insert(*p), "row {p} twice");
        assert!(data.iter().any(|d| d == p), "row {p} is not a path of the schema");
        if let Via(other) = c {
            assert!(
                ROWS.iter().any(|(q, c)| q == other && !matches!(c, Via(_))),
                "{p}: Via({other}) has no row of its own"
            );
        }
        if let Elsewhere(file, needle) = c {
            let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
            assert!(text.contains(needle), "{p}: {file} has no {needle:?}");
        }
        let f = husk::fields::field(p).unwrap_or_else(|| panic!("{p} is not in src/fields.rs"));
        let proof = match c {
            Via(other) => &ROWS.iter().find(|(q, _)| q == other).unwrap().1,
            c => c,
        };
        assert_eq!(
            matches!(proof, Refused(_)),
            f.how == How::Refused,
            "{p}: the row and src/fields.rs disagree on refusal"
        );
    }
    let mut dups = HashSet::new();
    for d in &data {
        assert!(dups.insert(d), "{d} twice in the data file");
        assert!(covered(d), "schema path {d} has no row in tests/every_field.rs");
    }
    let table: Vec<&str> = FIELDS.iter().map(|f| f.path).collect();
    assert_eq!(
        table,
        data.iter().map(String::as_str).collect::<Vec<_>>(),
        "src/fields.rs and the schema's list differ"
    );
}

#[test]
fn readme_table_is_the_field_table() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let (begin, end) = (
        "<!-- fields-table: generated by tests/every_field.rs -->\n",
        "<!-- end of fields-table -->",
    );
    let a = text.find(begin).expect("README.md has no fields-table marker") + begin.len();
    let b = a + text[a..]
        .find(end)
        .expect("README.md has no end of fields-table marker");
    let want = husk::fields::markdown_table();
    if std::env::var_os("HUSK_WRITE_README").is_some() {
        std::fs::write(&readme, format!("{}{want}{}", &text[..a], &text[b..])).unwrap();
        return;
    }
    assert!(
        text[a..b] == want,
        "README's field table is stale: HUSK_WRITE_README=1 cargo test --test every_field readme"
    );
}

/// Set `pointer` (a `/-` end appends) in `v`, making objects on the way.
fn put(v: &mut Value, pointer: &str, value: Value) {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let mut cur = v;
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if cur.is_null() {
            *cur = if *p == "-" { json!([]) } else { json!({}) };
        }
        if *p == "-" {
            let arr = cur.as_array_mut().unwrap_or_else(|| panic!("{pointer}: not an array"));
            arr.push(if last { value.clone() } else { json!({}) });
            let n = arr.len() - 1;
            cur = &mut arr[n];
            continue;
        }
        if cur.is_null() {
            *cur = if *p == "-" { json!([]) } else { json!({}) };
        }
        let obj = cur
            .as_object_mut()
            .unwrap_or_else(|| panic!("{pointer}: not an object"));
        if last {
            obj.insert(p.to_string(), value);
            return;
        }
        cur = obj.entry(p.to_string()).or_insert(Value::Null);
    }
}

/// A block device of this host: (major, minor), for the blkio rows.
fn block_device() -> Option<(u32, u32)> {
    let mut devs: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram"))
        .collect();
    devs.sort();
    let dev = std::fs::read_to_string(format!("/sys/block/{}/dev", devs.first()?)).ok()?;
    let (a, b) = dev.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

struct Ctx {
    e: Env,
    file: PathBuf,
    dev: Option<(u32, u32)>,
    cgpath: String,
}

impl Ctx {
    fn subst(&self, s: &str) -> String {
        let (maj, min) = self.dev.unwrap_or((0, 0));
        let ipc = std::fs::read_link("/proc/self/ns/ipc")
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        s.replace("@IPCPATH", &format!("/proc/{}/ns/ipc", std::process::id()))
            .replace("@F", &self.file.display().to_string())
            .replace("@MAJ", &maj.to_string())
            .replace("@MIN", &min.to_string())
            .replace("@DEV", &format!("{maj}:{min}"))
            .replace("@IPC", &ipc)
            .replace("@CGPATH", &self.cgpath)
    }

    fn bundle(&self, name: &str, set: &str, args: &[&str]) -> PathBuf {
        let set: Value = serde_json::from_str(&self.subst(set)).unwrap_or_else(|e| panic!("{name}: set {set}: {e}"));
        self.e.bundle(name, args, |v| {
            v["process"]["cwd"] = json!("/");
            for (k, val) in set.as_object().unwrap() {
                put(v, k, val.clone());
            }
        })
    }
}

/// The schema path `p` named in `err` (with `[0]` for `[]`, or the array
/// field itself; a map key's row by the map).
fn names(err: &str, p: &str) -> bool {
    let concrete = p.replace("[]", "[0]");
    let upto_array = p.split("[]").next().unwrap_or(p);
    let upto_map = p.split(".*").next().unwrap_or(p);
    // (a refusal of a combination names the object: process.scheduler)
    let object = p.rsplit_once('.').map_or(p, |(o, _)| o);
    err.contains(&concrete)
        || err.contains(upto_array)
        || err.contains(upto_map)
        || (object.contains('.') && err.contains(object))
}

/// Where a row's outcome was a refusal: allowed only for a Host field
/// (recorded as not checked) — an Applied field must apply.
fn refused_ok(p: &str, err: &str) {
    let f = husk::fields::field(p).unwrap();
    assert!(f.how == How::Host, "{p}: husk refused a field it must apply: {err}");
    assert!(names(err, p), "{p}: refused without naming the field: {err}");
    not_checked(
        &format!("{p} applied"),
        &format!("husk refused it on this host: {}", err.trim()),
    );
}

/// The container's cgroup file `file` (alternatives split by `|`) after `create`.
fn cgroup_file(e: &Env, id: &str, files: &str) -> Option<(String, String)> {
    let cg = e.state_cgroup(id);
    for file in files.split('|') {
        let controller = file.split('.').next().unwrap_or("");
        for d in cg["v1"].as_array().into_iter().flatten() {
            let ctrls: Vec<&str> = d["controllers"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c.as_str())
                .collect();
            if ctrls.contains(&controller) {
                let f = Path::new(d["path"].as_str().unwrap()).join(file);
                if let Ok(s) = std::fs::read_to_string(&f) {
                    return Some((f.display().to_string(), s));
                }
            }
        }
        if let Some(u) = cg["unified"].as_str() {
            let f = Path::new(u).join(file);
            if let Ok(s) = std::fs::read_to_string(&f) {
                return Some((f.display().to_string(), s));
            }
        }
    }
    None
}

fn check_row(cx: &Ctx, i: usize, p: &str, c: &Check) {
    let name = format!("r{i}");
    let id = cx.e.id(&name);
    match c {
        Out(set, sh, want) => {
            let b = cx.bundle(&name, set, &["sh", "-c", sh]);
            let o = cx.e.run(&b, &id);
            let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            if !o.status.success() && out.is_empty() {
                return refused_ok(p, &err);
            }
            let want = cx.subst(want);
            assert!(
                out.contains(&want),
                "{p}: want {want:?} in the container's output {out:?} (stderr {err:?})"
            );
        }
        HostFile(set, want) => {
            let _ = std::fs::remove_file(&cx.file);
            let b = cx.bundle(&name, set, &["true"]);
            let o = cx.e.run(&b, &id);
            assert!(o.status.success(), "{p}: {}", String::from_utf8_lossy(&o.stderr));
            let got = std::fs::read_to_string(&cx.file).unwrap_or_default();
            assert!(
                got.contains(want),
                "{p}: want {want:?} in {}: {got:?}",
                cx.file.display()
            );
        }
        Refused(set) => {
            let b = cx.bundle(&name, set, &["true"]);
            let err = cx.e.err(&["create", "-b", b.to_str().unwrap(), &id]);
            assert!(names(&err, p), "{p}: refused without naming the field: {err}");
        }
        Cg(set, f1, w1, f2, w2) => {
            if set.contains("@MAJ") && cx.dev.is_none() {
                not_checked(&format!("{p} applied"), "no block device in /sys/block");
                return;
            }
            let b = cx.bundle(&name, set, &["sleep", "100"]);
            let o = cx.e.husk(&["create", "-b", b.to_str().unwrap(), &id]);
            if !o.status.success() {
                return refused_ok(p, &String::from_utf8_lossy(&o.stderr));
            }
            // The v1 file where the host has the v1 controller, else the v2 one
            // (a hybrid host's cgroup2 mount holds some, e.g. hugetlb).
            let (files, want, got) = match (!f1.is_empty()).then(|| cgroup_file(&cx.e, &id, f1)).flatten() {
                Some(g) => (*f1, *w1, Some(g)),
                None if *f2 == "-" || f2.is_empty() => (*f2, *w2, None),
                None => (*f2, *w2, cgroup_file(&cx.e, &id, f2)),
            };
            let _ = cx.e.husk(&["delete", "--force", &id]);
            if files == "-" {
                not_checked(
                    &format!("{p} applied"),
                    "cgroup v2 device rules are an eBPF program (tests/cgroups.rs checks the program)",
                );
                return;
            }
            assert!(!files.is_empty(), "{p}: accepted where husk has no file to write it to");
            let want = cx.subst(want);
            match got {
                Some((f, s)) => assert!(s.contains(&want), "{p}: want {want:?} in {f}: {s:?}"),
                None => panic!("{p}: accepted, but the container's cgroup has no {files}"),
            }
        }
        Via(_) | Elsewhere(..) => {}
    }
}

fn check_rows(name: &str, prefix: &[&str], but: &[&str]) {
    let cx = Ctx {
        e: Env::new(name),
        file: std::env::temp_dir().join(format!("husk-every-field-{name}-{}", std::process::id())),
        dev: block_device(),
        cgpath: format!("/husk-every-field-{name}-{}", std::process::id()),
    };
    for (i, (p, c)) in ROWS.iter().enumerate() {
        if prefix.iter().any(|x| p.starts_with(x)) && !but.iter().any(|x| p.starts_with(x)) {
            check_row(&cx, i, p, c);
        }
    }
    let _ = std::fs::remove_file(&cx.file);
}

#[test]
fn fields_of_hooks_mounts_root_and_process() {
    check_rows(
        "ef-proc",
        &[
            "ociVersion",
            "hooks",
            "annotations",
            "hostname",
            "domainname",
            "mounts",
            "root",
            "process",
        ],
        &[],
    );
}

#[test]
fn fields_of_linux_but_resources() {
    check_rows("ef-linux", &["linux."], &["linux.resources", "linux.cgroupsPath"]);
}

#[test]
fn fields_of_linux_resources() {
    check_rows("ef-res", &["linux.resources", "linux.cgroupsPath"], &[]);
}

/// A property the spec does not have is ignored, as the spec asks, but
/// never silently: create warns naming it.
#[test]
fn unknown_property_is_named_in_a_warning() {
    let e = Env::new("ef-unknown");
    let b = e.bundle("a", &["true"], |v| v["linux"]["bogusEveryField"] = json!(1));
    let o = e.run(&b, &e.id("a"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("linux.bogusEveryField: unknown field (ignored)"), "{err}");
}

/// `husk features` lists exactly what the code takes: every namespace in it
/// is accepted by create (all at once, in one container), every mount
/// option word is one the option parser knows (none left for the
/// filesystem's data), every memory policy mode and flag parses, and what
/// it says is not supported is what the field table refuses.
#[test]
fn features_tell_what_create_accepts() {
    let e = Env::new("ef-features");
    let f: Value = serde_json::from_str(&e.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMax"], "1.3.0");
    let hooks: Vec<&str> = f["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    for h in &hooks {
        assert!(
            ROWS.iter().any(|(p, _)| p.starts_with(&format!("hooks.{h}["))),
            "hook {h} has no row"
        );
    }
    let namespaces: Vec<Value> = f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| json!({"type": n}))
        .collect();
    assert_eq!(namespaces.len(), 8, "{namespaces:?}");
    let b = e.bundle("ns", &["true"], |v| {
        v["ociVersion"] = f["ociVersionMax"].clone();
        v["linux"]["namespaces"] = json!(namespaces);
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let o = e.run(&b, &e.id("ns"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for w in f["mountOptions"].as_array().unwrap() {
        let w = w.as_str().unwrap().to_string();
        let parsed = husk::mount_options::parse_options(std::slice::from_ref(&w));
        assert!(
            parsed.data.is_empty(),
            "mount option {w:?} in features is not one husk's parser knows"
        );
    }
    for (key, field) in [("modes", "mode"), ("flags", "flags")] {
        for m in f["linux"]["memoryPolicy"][key].as_array().unwrap() {
            let policy = if field == "mode" {
                json!({"mode": m, "nodes": "0"})
            } else {
                json!({"mode": "MPOL_BIND", "nodes": "0", "flags": [m]})
            };
            let text = json!({"ociVersion": "1.3.0", "root": {"path": "r"}, "linux": {"memoryPolicy": policy}});
            husk::bundle::parse(&text.to_string()).unwrap_or_else(|err| panic!("memoryPolicy {m}: {err}"));
        }
    }
    for (feature, field) in [
        (&f["linux"]["netDevices"]["enabled"], "linux.netDevices"),
        (&f["linux"]["intelRdt"]["enabled"], "linux.intelRdt"),
        (
            &f["linux"]["mountExtensions"]["idmap"]["enabled"],
            "mounts[].uidMappings",
        ),
    ] {
        let refused = husk::fields::field(field).unwrap().how == How::Refused;
        assert_eq!(
            feature.as_bool(),
            Some(!refused),
            "features and src/fields.rs disagree on {field}"
        );
    }
    assert_eq!(
        f["potentiallyUnsafeConfigAnnotations"],
        json!(["org.systemd.property."])
    );
}
