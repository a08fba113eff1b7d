//! Pure parsing of /proc/self/mountinfo and /proc/self/cgroup, and the
//! placement of a container's cgroup in every hierarchy (runc's cgroupfs
//! semantics). Nothing here touches the filesystem.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::Layout;

/// The cgroup v1 controllers husk knows by name. Other mount options of a
/// `cgroup` mount (rw, xattr, clone_children, release_agent=...) are not
/// controllers; `name=...` hierarchies are kept as they are.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One cgroup v1 hierarchy as mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Mount {
    /// Where it is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct.
    pub mountpoint: PathBuf,
    /// The cgroup that is the root of this mount (field 4 of mountinfo).
    pub root: PathBuf,
    /// Controllers of the hierarchy, e.g. ["cpu", "cpuacct"] or ["name=systemd"].
    pub controllers: Vec<String>,
}

/// The cgroup2 mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2Mount {
    pub mountpoint: PathBuf,
    pub root: PathBuf,
}

/// All cgroup mounts of the mount namespace.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Mounts {
    pub v1: Vec<V1Mount>,
    pub v2: Option<V2Mount>,
}

impl Mounts {
    /// The layout these mounts form: V2 when only a cgroup2 mount is there,
    /// Hybrid when v1 controllers and a cgroup2 mount are both there, V1
    /// when there is no cgroup2 mount.
    pub fn layout(&self) -> Result<Layout> {
        let has_v1_controllers = self
            .v1
            .iter()
            .any(|m| m.controllers.iter().any(|c| !c.starts_with("name=")));
        match (has_v1_controllers, &self.v2) {
            (true, Some(_)) => Ok(Layout::Hybrid),
            (true, None) => Ok(Layout::V1),
            (false, Some(_)) => Ok(Layout::V2),
            (false, None) => bail!("no cgroup mount found in /proc/self/mountinfo"),
        }
    }
}

/// Undo the octal escapes (`\040` for a space, ...) mountinfo uses in paths.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = u32::from(oct[0] - b'0') * 64 + u32::from(oct[1] - b'0') * 8 + u32::from(oct[2] - b'0');
                if let Ok(b) = u8::try_from(v) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Parse the text of /proc/self/mountinfo, keeping the cgroup mounts. When a
/// hierarchy is mounted more than once the first mount wins; for cgroup2 a
/// mount at /sys/fs/cgroup or /sys/fs/cgroup/unified is preferred.
pub fn parse_mountinfo(text: &str) -> Result<Mounts> {
    let mut mounts = Mounts::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields
            .iter()
            .position(|f| *f == "-")
            .with_context(|| format!("mountinfo line {}: no ' - ' separator: {line:?}", n + 1))?;
        if sep < 6 || fields.len() < sep + 4 {
            bail!("mountinfo line {}: too few fields: {line:?}", n + 1);
        }
        let root = unescape(fields[3]);
        let mountpoint = unescape(fields[4]);
        let fstype = fields[sep + 1];
        let super_opts = fields[sep + 3];
        match fstype {
            "cgroup" => {
                let controllers: Vec<String> = super_opts
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(str::to_string)
                    .collect();
                if controllers.is_empty() {
                    continue;
                }
                if mounts
                    .v1
                    .iter()
                    .any(|m| m.controllers.iter().any(|c| controllers.contains(c)))
                {
                    continue;
                }
                mounts.v1.push(V1Mount {
                    mountpoint,
                    root,
                    controllers,
                });
            }
            "cgroup2" => {
                let preferred =
                    mountpoint == Path::new("/sys/fs/cgroup") || mountpoint == Path::new("/sys/fs/cgroup/unified");
                let replace = match &mounts.v2 {
                    None => true,
                    Some(old) => {
                        preferred
                            && old.mountpoint != Path::new("/sys/fs/cgroup")
                            && old.mountpoint != Path::new("/sys/fs/cgroup/unified")
                    }
                };
                if replace {
                    mounts.v2 = Some(V2Mount { mountpoint, root });
                }
            }
            _ => {}
        }
    }
    Ok(mounts)
}

/// One line of /proc/<pid>/cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnCgroup {
    /// Controllers of the hierarchy; empty for the cgroup2 line ("0::/...").
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// Parse /proc/self/cgroup.
pub fn parse_proc_cgroup(text: &str) -> Result<Vec<OwnCgroup>> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("malformed /proc/self/cgroup line {line:?}");
        };
        let controllers = if ctrls.is_empty() {
            Vec::new()
        } else {
            ctrls.split(',').map(str::to_string).collect()
        };
        out.push(OwnCgroup {
            controllers,
            path: PathBuf::from(path),
        });
    }
    Ok(out)
}

/// runc's CleanPath: a lexical clean that never climbs above "/" (for an
/// absolute path) or above the starting point (for a relative one).
/// Returns an empty path for an empty input.
pub fn clean_path(p: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let mut out = if p.is_absolute() {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    for s in parts {
        out.push(s);
    }
    out
}

/// Join `rel` (absolute or not) below `base` without letting it escape.
fn join_below(base: &Path, rel: &Path) -> PathBuf {
    let cleaned = clean_path(&Path::new("/").join(rel));
    match cleaned.strip_prefix("/") {
        Ok(r) if !r.as_os_str().is_empty() => base.join(r),
        _ => base.to_path_buf(),
    }
}

/// Where a cgroup path seen in /proc/self/cgroup lives on the filesystem,
/// given the mount's root and mountpoint.
pub fn own_dir(mountpoint: &Path, mount_root: &Path, own: &Path) -> PathBuf {
    let rel = own.strip_prefix(mount_root).unwrap_or(own);
    join_below(mountpoint, rel)
}

/// The resolved directories of one container cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// (controllers of the hierarchy, cgroup directory) per v1 hierarchy.
    pub v1: Vec<(Vec<String>, PathBuf)>,
    /// The cgroup2 directory (V2, or Hybrid's cgroup2 mount).
    pub unified: Option<PathBuf>,
}

/// Resolve the container's cgroup directories with runc's cgroupfs
/// semantics: an absolute `cgroups_path` is taken below each hierarchy's
/// mountpoint; a relative one below husk's own cgroup (v1: the own cgroup
/// of that hierarchy; pure v2: the parent of husk's own cgroup, like runc,
/// as a cgroup with processes cannot delegate controllers — the mount
/// itself when husk sits in the root cgroup; the cgroup2 mount of a hybrid
/// host: below the mountpoint, as runc joins it at
/// `/sys/fs/cgroup/unified/<path>` whatever its own cgroup there); an empty
/// or missing one is the relative path `<id>`, as runc's default (its
/// cgroup name is the container id).
pub fn resolve(mounts: &Mounts, own: &[OwnCgroup], cgroups_path: Option<&Path>, id: &str) -> Result<Placement> {
    let layout = mounts.layout()?;
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        bail!("invalid container id {id:?} for a cgroup name");
    }
    let inner = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => clean_path(p),
        _ => PathBuf::from(id),
    };
    let absolute = inner.is_absolute();
    let mut placement = Placement {
        v1: Vec::new(),
        unified: None,
    };
    if layout != Layout::V2 {
        for m in &mounts.v1 {
            let dir = if absolute {
                join_below(&m.mountpoint, &inner)
            } else {
                let own_path = own
                    .iter()
                    .find(|o| o.controllers.iter().any(|c| m.controllers.contains(c)))
                    .map(|o| o.path.clone())
                    .with_context(|| {
                        format!(
                            "husk's own cgroup for {} not found in /proc/self/cgroup",
                            m.controllers.join(",")
                        )
                    })?;
                join_below(&own_dir(&m.mountpoint, &m.root, &own_path), &inner)
            };
            placement.v1.push((m.controllers.clone(), dir));
        }
    }
    if let Some(m) = &mounts.v2 {
        let dir = if absolute || layout != Layout::V2 {
            join_below(&m.mountpoint, &inner)
        } else {
            let own_path = own
                .iter()
                .find(|o| o.controllers.is_empty())
                .map(|o| o.path.clone())
                .context("husk's own cgroup2 cgroup not found in /proc/self/cgroup")?;
            let base = own_dir(&m.mountpoint, &m.root, &own_path);
            let base = if base != m.mountpoint {
                base.parent().map(Path::to_path_buf).unwrap_or(base)
            } else {
                base
            };
            join_below(&base, &inner)
        };
        placement.unified = Some(dir);
    }
    Ok(placement)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const HYBRID: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    pub const V1: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
99 31 0:32 / /mnt/memory\\040again rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
";

    pub const V2: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
77 22 0:27 /user.slice /mnt/c\\040g rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn layouts() {
        let h = parse_mountinfo(HYBRID).unwrap();
        assert_eq!(h.layout().unwrap(), Layout::Hybrid);
        assert_eq!(h.v1.len(), 5);
        assert_eq!(h.v1[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(h.v1[1].controllers, vec!["cpuset"]);
        assert_eq!(h.v1[4].controllers, vec!["name=systemd"]);
        assert_eq!(h.v2.as_ref().unwrap().mountpoint, Path::new("/sys/fs/cgroup/unified"));

        let v1 = parse_mountinfo(V1).unwrap();
        assert_eq!(v1.layout().unwrap(), Layout::V1);
        assert_eq!(v1.v1.len(), 3, "a second mount of memory is ignored");

        let v2 = parse_mountinfo(V2).unwrap();
        assert_eq!(v2.layout().unwrap(), Layout::V2);
        assert!(v2.v1.is_empty());
        assert_eq!(v2.v2.as_ref().unwrap().mountpoint, Path::new("/sys/fs/cgroup"));

        let only_named = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        assert!(parse_mountinfo(only_named).unwrap().layout().is_err());
        assert!(parse_mountinfo("").unwrap().layout().is_err());
        assert!(parse_mountinfo("garbage line\n").is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("/mnt/c\\040g"), Path::new("/mnt/c g"));
        assert_eq!(unescape("/a\\\\b"), Path::new("/a\\\\b"));
        assert_eq!(unescape("/end\\04"), Path::new("/end\\04"));
    }

    #[test]
    fn proc_cgroup() {
        let own = parse_proc_cgroup("4:memory:/a/b\n1:cpu,cpuacct:/\n0::/user.slice/x.scope\n").unwrap();
        assert_eq!(own.len(), 3);
        assert_eq!(own[0].controllers, vec!["memory"]);
        assert_eq!(own[1].controllers, vec!["cpu", "cpuacct"]);
        assert!(own[2].controllers.is_empty());
        assert_eq!(own[2].path, Path::new("/user.slice/x.scope"));
        assert!(parse_proc_cgroup("nonsense").is_err());
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean_path(Path::new("/a/../../b/./c/")), Path::new("/b/c"));
        assert_eq!(clean_path(Path::new("../../x")), Path::new("x"));
        assert_eq!(clean_path(Path::new("")), Path::new(""));
        assert_eq!(join_below(Path::new("/m"), Path::new("../../etc")), Path::new("/m/etc"));
        assert_eq!(join_below(Path::new("/m"), Path::new("/")), Path::new("/m"));
    }

    #[test]
    fn resolve_paths() {
        let own = parse_proc_cgroup(
            "4:memory:/process_api/abc\n3:cpuset:/\n1:cpu,cpuacct:/\n9:name=systemd:/\n5:devices:/\n0::/init.scope\n",
        )
        .unwrap();
        let h = parse_mountinfo(HYBRID).unwrap();

        // Empty path: runc's default, the relative path <id>: below husk's
        // own cgroup in each v1 hierarchy (as runc 1.1.5 measured on a
        // hybrid host: memory:/process_api/abc/<id>, cpu:/<id>), below the
        // mountpoint in the hybrid cgroup2 mount (runc joins
        // /sys/fs/cgroup/unified/<id> whatever its own cgroup there).
        let p = resolve(&h, &own, None, "c1").unwrap();
        assert_eq!(p.v1[0].1, Path::new("/sys/fs/cgroup/cpu,cpuacct/c1"));
        assert_eq!(p.v1[2].1, Path::new("/sys/fs/cgroup/memory/process_api/abc/c1"));
        assert_eq!(p.v1[4].1, Path::new("/sys/fs/cgroup/systemd/c1"));
        assert_eq!(p.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/c1")));
        assert_eq!(resolve(&h, &own, Some(Path::new("")), "c1").unwrap(), p);
        assert_eq!(resolve(&h, &own, Some(Path::new("c1")), "other").unwrap(), p);

        // Absolute, with an attempt to climb out.
        let p = resolve(&h, &own, Some(Path::new("/../x/y")), "c1").unwrap();
        assert_eq!(p.v1[2].1, Path::new("/sys/fs/cgroup/memory/x/y"));

        // Relative: below husk's own cgroup in each v1 hierarchy; below the
        // mountpoint in the hybrid cgroup2 mount (husk is in /init.scope
        // there), as runc.
        let p = resolve(&h, &own, Some(Path::new("rel/c")), "c1").unwrap();
        assert_eq!(p.v1[2].1, Path::new("/sys/fs/cgroup/memory/process_api/abc/rel/c"));
        assert_eq!(p.v1[1].1, Path::new("/sys/fs/cgroup/cpuset/rel/c"));
        assert_eq!(p.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/rel/c")));

        // v2: relative to the parent of the own cgroup, like runc.
        let v2 = parse_mountinfo(V2).unwrap();
        let own2 = parse_proc_cgroup("0::/user.slice/session-1.scope\n").unwrap();
        let p = resolve(&v2, &own2, Some(Path::new("ctr")), "c1").unwrap();
        assert!(p.v1.is_empty());
        assert_eq!(p.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/user.slice/ctr")));
        let p = resolve(&v2, &own2, Some(Path::new("/machine/ctr")), "c1").unwrap();
        assert_eq!(p.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/machine/ctr")));
        // v2 default: <parent of the own cgroup>/<id>; from the root
        // cgroup (runc: filepath.Dir("/") is "/"), <mount>/<id>.
        let p = resolve(&v2, &own2, None, "c1").unwrap();
        assert_eq!(p.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/user.slice/c1")));
        let at_root = parse_proc_cgroup("0::/\n").unwrap();
        let p = resolve(&v2, &at_root, None, "c1").unwrap();
        assert_eq!(p.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/c1")));
        let one_down = parse_proc_cgroup("0::/init.scope\n").unwrap();
        let p = resolve(&v2, &one_down, None, "c1").unwrap();
        assert_eq!(p.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/c1")));
        // v1 only: every hierarchy relative to the own cgroup.
        let v1 = parse_mountinfo(V1).unwrap();
        let own1 = parse_proc_cgroup("3:pids:/a\n2:memory:/\n1:cpu,cpuacct:/b/c\n").unwrap();
        let p = resolve(&v1, &own1, None, "c1").unwrap();
        assert_eq!(p.v1[0].1, Path::new("/sys/fs/cgroup/cpu,cpuacct/b/c/c1"));
        assert_eq!(p.v1[1].1, Path::new("/sys/fs/cgroup/memory/c1"));
        assert_eq!(p.v1[2].1, Path::new("/sys/fs/cgroup/pids/a/c1"));
        assert!(p.unified.is_none());
        // A hierarchy missing from /proc/self/cgroup: an error naming it.
        let e = resolve(&v1, &own1[..2], None, "c1").unwrap_err().to_string();
        assert!(e.contains("own cgroup for cpu,cpuacct not found"), "{e}");

        // A mount whose root is not "/" (inside a cgroup namespace / bind).
        let m = Mounts {
            v1: vec![],
            v2: Some(V2Mount {
                mountpoint: "/sys/fs/cgroup".into(),
                root: "/outer".into(),
            }),
        };
        let own3 = parse_proc_cgroup("0::/outer/me/leaf\n").unwrap();
        let p = resolve(&m, &own3, Some(Path::new("ctr")), "c1").unwrap();
        assert_eq!(p.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/me/ctr")));

        assert!(resolve(&h, &own, None, "a/b").is_err());
        assert!(resolve(&h, &own, None, "").is_err());
    }
}
