//! Loading and validating an OCI bundle (config.json + rootfs).
//!
//! Errors name the file and, for JSON syntax errors, the line and column;
//! validation errors name the field (`mounts[3].destination must be absolute`).

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Load `<dir>/config.json` and validate it.
pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir).with_context(|| format!("bundle path {}", dir.display()))?;
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg).with_context(|| format!("read {}", cfg.display()))?;
    let spec = parse(&text).with_context(|| format!("parse {}", cfg.display()))?;
    let root = spec
        .root()
        .as_ref()
        .context("root.path is required: the config has no \"root\" object")?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("root.path {} is not a directory", rootfs.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("root.path {} does not exist", rootfs.display())
        }
        Err(e) => return Err(e).with_context(|| format!("root.path {}", rootfs.display())),
    }
    let rootfs = std::fs::canonicalize(&rootfs).with_context(|| format!("resolve root.path {}", rootfs.display()))?;
    validate(&spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Parse config.json text; the error carries line and column.
pub fn parse(text: &str) -> Result<Spec> {
    serde_json::from_str::<Spec>(text).map_err(|e| {
        anyhow::anyhow!(
            "{} (line {}, column {})",
            strip_position(&e.to_string()),
            e.line(),
            e.column()
        )
    })
}

fn strip_position(s: &str) -> &str {
    match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => s,
    }
}

pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// One problem found in a config: the JSON path of the field it is about
/// (`mounts[2].destination`, empty for the whole config) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// The runtime-spec MUST rules husk relies on, checked before anything is
/// created; the first problem is the error.
pub fn validate(spec: &Spec) -> Result<()> {
    match problems(spec).into_iter().next() {
        Some(p) => bail!("{}", p.message),
        None => Ok(()),
    }
}

/// Every rule violation in the config, in config order.
pub fn problems(spec: &Spec) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut e = |path: String, message: String| out.push(Problem { path, message });
    if let Some(p) = spec.process() {
        match p.args() {
            Some(a) if !a.is_empty() => {}
            _ => e("process.args".into(), "process.args must not be empty".into()),
        }
        if !p.cwd().is_absolute() {
            e(
                "process.cwd".into(),
                format!("process.cwd {:?} must be an absolute path", p.cwd()),
            );
        }
        if let Some(rl) = p.rlimits() {
            let mut seen = HashSet::new();
            for (i, r) in rl.iter().enumerate() {
                if !seen.insert(format!("{:?}", r.typ())) {
                    e(
                        format!("process.rlimits[{i}]"),
                        format!("process.rlimits[{i}]: duplicate rlimit type {:?}", r.typ()),
                    );
                }
                if r.soft() > r.hard() {
                    e(
                        format!("process.rlimits[{i}]"),
                        format!(
                            "process.rlimits[{i}]: soft limit {} exceeds hard limit {}",
                            r.soft(),
                            r.hard()
                        ),
                    );
                }
            }
        }
        for (i, v) in p.env().iter().flatten().enumerate() {
            if !v.contains('=') {
                e(
                    format!("process.env[{i}]"),
                    format!("process.env[{i}] {v:?} must have the form KEY=value"),
                );
            }
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            e(
                format!("mounts[{i}].destination"),
                format!("mounts[{i}].destination {:?} must be absolute", m.destination()),
            );
        }
        if m.destination()
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            e(
                format!("mounts[{i}].destination"),
                format!("mounts[{i}].destination {:?} must not contain \"..\"", m.destination()),
            );
        }
    }
    let linux = spec.linux().as_ref();
    let mut types = HashSet::new();
    for (i, ns) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !types.insert(ns.typ()) {
            e(
                format!("linux.namespaces[{i}]"),
                format!("linux.namespaces[{i}]: duplicate namespace type {}", ns_name(ns.typ())),
            );
        }
        if let Some(p) = ns.path()
            && !p.is_absolute()
        {
            e(
                format!("linux.namespaces[{i}].path"),
                format!("linux.namespaces[{i}].path {p:?} must be absolute"),
            );
        }
    }
    let new_userns = linux.and_then(|l| l.namespaces().as_ref()).is_some_and(|v| {
        v.iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
    });
    if let Some(l) = linux {
        let has_maps = l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if new_userns {
            if l.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                e(
                    "linux.namespaces".into(),
                    "linux.uidMappings is required with a new user namespace".into(),
                );
            }
            if l.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                e(
                    "linux.namespaces".into(),
                    "linux.gidMappings is required with a new user namespace".into(),
                );
            }
        } else if has_maps && !types.contains(&LinuxNamespaceType::User) {
            e(
                "linux.uidMappings".into(),
                "linux.uidMappings/gidMappings are set but there is no user namespace in linux.namespaces".into(),
            );
        }
        for (i, d) in l.devices().iter().flatten().enumerate() {
            if !d.path().is_absolute() {
                e(
                    format!("linux.devices[{i}].path"),
                    format!("linux.devices[{i}].path {:?} must be absolute", d.path()),
                );
            }
        }
        let mut keys: Vec<&String> = l.sysctl().iter().flat_map(|m| m.keys()).collect();
        keys.sort();
        for k in keys {
            if let Err(err) = validate_sysctl(k, &types) {
                e(format!("linux.sysctl.{k}"), err.to_string());
            }
        }
        if let Some(p) = l.rootfs_propagation()
            && !p.is_empty()
            && crate::rootfs::propagation_flag(p).is_none()
        {
            e(
                "linux.rootfsPropagation".into(),
                format!("linux.rootfsPropagation {p:?} is not a valid propagation mode"),
            );
        }
    }
    let has_uts = types.contains(&LinuxNamespaceType::Uts);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has_uts {
        e(
            "hostname".into(),
            "hostname is set but the config has no uts namespace: cannot set the hostname without a private UTS namespace".into(),
        );
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has_uts {
        e(
            "domainname".into(),
            "domainname is set but the config has no uts namespace".into(),
        );
    }
    out
}

fn validate_sysctl(key: &str, types: &HashSet<LinuxNamespaceType>) -> Result<()> {
    if key.contains("..") || key.contains('/') && key.contains('.') && key.starts_with('/') {
        bail!("linux.sysctl key {key:?} is not a valid sysctl name");
    }
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        if !types.contains(&LinuxNamespaceType::Ipc) {
            bail!("linux.sysctl {key:?} needs an ipc namespace in linux.namespaces");
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if !types.contains(&LinuxNamespaceType::Network) {
            bail!("linux.sysctl {key:?} needs a network namespace in linux.namespaces");
        }
        return Ok(());
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        if !types.contains(&LinuxNamespaceType::Uts) {
            bail!("linux.sysctl {key:?} needs a uts namespace in linux.namespaces");
        }
        return Ok(());
    }
    bail!("linux.sysctl {key:?} is not namespaced: a container may not set it")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<()> {
        let spec = parse(&v.to_string())?;
        validate(&spec)
    }

    #[test]
    fn accepts_a_minimal_config() {
        check(base()).unwrap();
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let e = parse("{\n  \"ociVersion\": \"1\",\n  oops\n}").unwrap_err();
        assert!(e.to_string().contains("line 3, column 3"), "{e}");
    }

    #[test]
    fn rejects_empty_args() {
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert_eq!(check(v).unwrap_err().to_string(), "process.args must not be empty");
    }

    #[test]
    fn rejects_relative_mount_destination() {
        let mut v = base();
        v["mounts"] = serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}
        ]);
        let e = check(v).unwrap_err().to_string();
        assert!(e.starts_with("mounts[1].destination"), "{e}");
        assert!(e.ends_with("must be absolute"), "{e}");
    }

    #[test]
    fn rejects_dotdot_in_mount_destination() {
        let mut v = base();
        v["mounts"] = serde_json::json!([{"destination": "/a/../../etc", "type": "tmpfs"}]);
        assert!(check(v).unwrap_err().to_string().contains("must not contain"));
    }

    #[test]
    fn rejects_duplicate_namespaces() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(
            check(v)
                .unwrap_err()
                .to_string()
                .contains("duplicate namespace type pid")
        );
    }

    #[test]
    fn rejects_unknown_namespace_type() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "bogus"}]);
        assert!(check(v).unwrap_err().to_string().contains("bogus"));
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]);
        let e = check(v).unwrap_err().to_string();
        assert!(e.contains("uidMappings is required"), "{e}");
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = base();
        v["hostname"] = serde_json::json!("box");
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        assert!(check(v).unwrap_err().to_string().contains("uts namespace"));
    }

    #[test]
    fn unknown_capability_is_an_error() {
        let mut v = base();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_NOPE"]});
        assert!(check(v).is_err());
    }

    #[test]
    fn sysctl_rules() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(check(v.clone()).unwrap_err().to_string().contains("network namespace"));
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(check(v).unwrap_err().to_string().contains("not namespaced"));
    }
}
