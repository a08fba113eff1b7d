//! `husk features`: what this build supports, in the runtime-spec
//! features.md format. It must tell the truth: managers read it.

use anyhow::Result;

pub fn features() -> Result<()> {
    let caps: Vec<String> = crate::capabilities::NAMES.iter().map(|n| format!("CAP_{n}")).collect();
    // The table parse_options reads: features cannot list a word husk
    // does not apply, nor miss one it does.
    let mount_options = crate::mount_options::known_words();
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::output::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": crate::namespaces::TABLE.map(|(_, name, _, _)| name),
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false, "schemata": false, "monitoring": false},
            // id-mapped bind mounts (crate::idmap), idmap/ridmap in the option table
            "mountExtensions": {"idmap": {"enabled": crate::mount_options::known_words().contains(&"idmap")}},
            // linux.netDevices moved into the container's network namespace (crate::netdev)
            "netDevices": {"enabled": true},
            "memoryPolicy": {
                "modes": crate::process_attrs::MEMORY_POLICY_MODES.map(|(name, _, _)| name),
                "flags": crate::process_attrs::MEMORY_POLICY_FLAGS.map(|(name, _, _)| name)
            }
        },
        "potentiallyUnsafeConfigAnnotations": [crate::systemd::SYSTEMD_PROPERTY_ANNOTATION],
        "annotations": {
            "io.github.husk.version": crate::output::VERSION,
            "io.github.husk.checkpoint": "checkpoint and restore with CRIU (criu swrk RPC; runc's flags); refused: --lazy-pages, --status-fd, --page-server, restore --no-pivot, restore --systemd-cgroup, namespaces joined by path, a cgroup mount without cgroup namespace on v1/hybrid hosts",
            "io.github.husk.cgroup.systemd": "--systemd-cgroup: transient scopes over D-Bus (runc's slice:prefix:name); cgroup v2, v1 and hybrid hosts; rootless through the user's systemd on pure cgroup v2 only"
        }
    });
    crate::output::out(&(serde_json::to_string_pretty(&v)? + "\n"));
    Ok(())
}
