//! `husk spec`: write runc's default config.json (the one tools and test
//! suites start from and edit).

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::Path;

pub fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "husk",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// The changes that make the default config work for a non-root user.
pub fn make_rootless(v: &mut Value, uid: u32, gid: u32) {
    let linux = &mut v["linux"];
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "user"}));
    }
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(o) = linux.as_object_mut() {
        o.remove("resources");
    }
    if let Some(mounts) = v["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["type"] == "sysfs" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            } else if m["type"] == "devpts"
                && let Some(opts) = m["options"].as_array_mut()
            {
                opts.retain(|o| o != "gid=5");
            }
        }
    }
}

#[derive(Default)]
pub struct SpecOptions {
    pub rootless: bool,
    pub args: Option<Vec<String>>,
    pub terminal: Option<bool>,
    pub hostname: Option<String>,
}

pub fn spec(bundle: &Path, o: &SpecOptions) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let mut v = default_spec();
    if o.rootless {
        make_rootless(&mut v, nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    }
    if let Some(a) = &o.args {
        v["process"]["args"] = json!(a);
    }
    if let Some(t) = o.terminal {
        v["process"]["terminal"] = json!(t);
    }
    if let Some(h) = &o.hostname {
        v["hostname"] = json!(h);
    }
    let text = serde_json::to_string_pretty(&v)? + "\n";
    std::fs::write(&path, text)
        .errno()
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_and_validates() {
        let spec = crate::bundle::parse(&default_spec().to_string()).unwrap();
        crate::bundle::validate(&spec).unwrap();
        let mut r = default_spec();
        make_rootless(&mut r, 1000, 1000);
        let spec = crate::bundle::parse(&r.to_string()).unwrap();
        crate::bundle::validate(&spec).unwrap();
        assert_eq!(r["linux"]["uidMappings"][0]["hostID"], 1000);
    }
}
