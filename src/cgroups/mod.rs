//! Container cgroups on cgroup v1, v2 and hybrid hosts.
//!
//! The layout is detected from /proc/self/mountinfo. A [`Cgroup`] holds the
//! resolved directory of the container in every hierarchy and is stored in
//! the container's state. Resources are first turned into a list of
//! [`Setting`]s (file, value) by the pure functions of [`v1`] and [`v2`],
//! then written by one writer. Device rules become devices.allow/deny
//! writes on v1 and an eBPF program on v2 ([`devices`], [`bpf`]).
//!
//! On a hybrid host the v1 controllers are used; a resource whose v1
//! controller is not mounted is written in its v2 form to the container's
//! directory in the cgroup2 mount when that controller is available there
//! (hugetlb on some hosts), and refused with an error otherwise.
//!
//! The systemd driver ([`scope`], `--systemd-cgroup`) makes the cgroup a
//! transient systemd scope and then uses the same placement, settings and
//! writer; the stored [`Cgroup`] names its unit.
//!
//! Testing: the pure parts (mountinfo of all three layouts, placement,
//! every resource → setting for v1 and v2 with runc's conversions, the
//! device rules and the eBPF program, run by a small interpreter in the
//! unit tests) are unit-tested. tests/cgroups.rs drives the real kernel as
//! root: the v1 back end fully on a v1/hybrid host (the resources whose
//! files depend on the host, such as the blkio weight, either way: written
//! where the files exist, refused naming the config field where they do
//! not), and the v2 back end on
//! the cgroup2 mount as far as a hybrid host's cgroup2 reaches (create,
//! nested directories, subtree_control, hugetlb, the device eBPF program
//! loaded, attached, replaced and enforced, cgroup.procs, cgroup.freeze,
//! cgroup.kill, stats, destroy, a rejected value). The v2 memory, cpu,
//! cpuset, io, pids and rdma files are only checked in unit tests there,
//! because that hierarchy has no such controllers on a hybrid host.

pub mod bpf;
pub(crate) mod devices;
pub mod mountinfo;
pub(crate) mod scope;
pub(crate) mod v1;
pub(crate) mod v2;

use crate::sys::ErrnoResult as _;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use devices::default_device_rules;

/// How the cgroup hierarchies of the host are mounted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only cgroup v1 hierarchies.
    V1,
    /// cgroup v1 controllers plus a cgroup2 mount (usually /sys/fs/cgroup/unified).
    Hybrid,
    /// Only the cgroup2 unified hierarchy.
    V2,
}

/// husk's mounts, from /proc/self/mountinfo (parsed by [`mountinfo`], the
/// one parser of that file).
pub(crate) fn read_mounts() -> Result<mountinfo::Mounts> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .errno()
        .context("read /proc/self/mountinfo")?;
    mountinfo::parse_mountinfo(&text)
}

/// The cgroups of a process, from /proc/<pid>/cgroup (`pid` "self" for
/// husk's own), parsed by [`mountinfo::parse_proc_cgroup`].
pub(crate) fn read_proc_cgroup(pid: &str) -> Result<Vec<mountinfo::OwnCgroup>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = fs::read_to_string(&path)
        .errno()
        .with_context(|| format!("read {path}"))?;
    mountinfo::parse_proc_cgroup(&text)
}

/// Detect the host's layout from /proc/self/mountinfo.
pub fn detect_layout() -> Result<Layout> {
    read_mounts()?.layout()
}

/// One value to write into one cgroup file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub file: String,
    pub value: String,
    /// What the value is, for error messages ("memory limit (linux.resources.memory.limit)").
    pub what: &'static str,
    /// File and value used instead when `file` does not exist (for example
    /// io.weight with a converted value when there is no io.bfq.weight).
    pub fallback: Option<(String, String)>,
    /// Why a kernel may have neither `file` nor the fallback's file, for
    /// the error that refuses the setting then.
    pub absent: Option<&'static str>,
    /// Skipped silently when the file does not exist.
    pub optional: bool,
    /// Read the file back after writing it: a kernel that takes the write
    /// and ignores it (memory.kmem.limit_in_bytes since Linux 6.1) is an
    /// error naming the field, not a limit that silently is not there.
    pub verify: Option<&'static str>,
}

impl Setting {
    pub fn new(file: impl Into<String>, value: impl ToString, what: &'static str) -> Setting {
        Setting {
            file: file.into(),
            value: value.to_string(),
            what,
            fallback: None,
            absent: None,
            optional: false,
            verify: None,
        }
    }

    /// Refuse with `absent` (why a kernel may lack the file) when the file
    /// does not exist, instead of the bare ENOENT of the write.
    fn or_absent(mut self, absent: &'static str) -> Setting {
        self.absent = Some(absent);
        self
    }

    /// A byte limit to read back after the write (see [`Setting::verify`]);
    /// `ignored` says why a kernel may take the write and keep its value.
    fn verified(mut self, ignored: &'static str) -> Setting {
        self.verify = Some(ignored);
        self
    }

    fn optional(mut self) -> Setting {
        self.optional = true;
        self
    }

    /// Use `file` with `value` when the setting's own file does not exist;
    /// `absent` says why a kernel may have neither.
    fn or_file(mut self, file: &str, value: String, absent: &'static str) -> Setting {
        self.fallback = Some((file.to_string(), value));
        self.absent = Some(absent);
        self
    }
}

/// The (file, value) pairs of a list of settings.
#[cfg(test)]
pub fn pairs(settings: &[Setting]) -> Vec<(String, String)> {
    settings.iter().map(|s| (s.file.clone(), s.value.clone())).collect()
}

/// `linux.resources.pids.limit`: negative is no limit; 0 is a real limit
/// (spec 1.3: "0 is a valid limit value ... and SHOULD be treated as
/// such"), written as 1 like runc ≥ 1.4 does on both drivers (systemd
/// refuses TasksMax=0; a cgroup with processes in it behaves the same at
/// 0 and 1: nothing more can fork). A `pids` object without a limit is no
/// setting at all: [`drop_pids_without_limit`] turns it into `None` where
/// the JSON is read, since the parsed object has 0 for a missing limit.
/// cpuset.cpus and cpuset.mems (the same files in v1 and v2); an empty
/// string is no setting.
fn cpuset_settings(res: &LinuxResources) -> Vec<Setting> {
    let mut out = Vec::new();
    if let Some(c) = res.cpu() {
        if let Some(v) = c.cpus().as_ref().filter(|v| !v.is_empty()) {
            out.push(Setting::new("cpuset.cpus", v, "cpuset cpus (linux.resources.cpu.cpus)"));
        }
        if let Some(v) = c.mems().as_ref().filter(|v| !v.is_empty()) {
            out.push(Setting::new("cpuset.mems", v, "cpuset mems (linux.resources.cpu.mems)"));
        }
    }
    out
}

fn pids_setting(limit: i64) -> Option<Setting> {
    Some(match limit {
        l if l < 0 => Setting::new("pids.max", "max", "pids limit (linux.resources.pids.limit)"),
        0 => Setting::new("pids.max", 1, "pids limit (linux.resources.pids.limit)"),
        l => Setting::new("pids.max", l, "pids limit (linux.resources.pids.limit)"),
    })
}

/// oci-spec reads `"pids": {}` (limit unset, spec 1.3: OPTIONAL) as limit
/// 0, which husk applies; `raw_pids` is that object as JSON: without a
/// `limit` (or with `"limit": null`) the `pids` entry of `res` is
/// removed, so that nothing is written, as runc leaves pids.max alone.
pub fn drop_pids_without_limit(res: &mut LinuxResources, raw_pids: Option<&Value>) {
    let has_limit = raw_pids.and_then(|p| p.get("limit")).is_some_and(|l| !l.is_null());
    if res.pids().is_some() && !has_limit {
        res.set_pids(None);
    }
}

fn rdma_settings(res: &LinuxResources) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    let mut devs: Vec<_> = res.rdma().iter().flatten().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, r) in devs {
        if dev.is_empty() || dev.contains(char::is_whitespace) || dev.contains('/') {
            bail!("invalid rdma device name {dev:?}");
        }
        let mut v = dev.clone();
        if let Some(h) = r.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = r.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        if v.len() > dev.len() {
            out.push(Setting::new("rdma.max", v, "rdma limit (linux.resources.rdma)"));
        }
    }
    Ok(out)
}

fn check_hugepage_size(size: &str) -> Result<()> {
    let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &size[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !["KB", "MB", "GB"].contains(&unit) {
        bail!("invalid hugepage size {size:?} (expected a size like 2MB or 1GB)");
    }
    Ok(())
}

/// The host's hugepage sizes in cgroup file notation ("2MB", "1GB").
pub fn hugepage_sizes() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(kb) = name
            .strip_prefix("hugepages-")
            .and_then(|s| s.strip_suffix("kB"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        out.push(if kb % (1024 * 1024) == 0 {
            format!("{}GB", kb / (1024 * 1024))
        } else if kb % 1024 == 0 {
            format!("{}MB", kb / 1024)
        } else {
            format!("{kb}KB")
        });
    }
    out.sort();
    out
}

fn read_trimmed(path: &Path) -> Result<String> {
    Ok(fs::read_to_string(path)
        .with_context(|| format!("read {}", path.display()))?
        .trim()
        .to_string())
}

fn read_u64(path: &Path) -> Result<u64> {
    let s = read_trimmed(path)?;
    s.parse()
        .with_context(|| format!("parse {s:?} from {}", path.display()))
}

/// Write one value to one cgroup file in a single write(2), without
/// creating or truncating it.
fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() && !value.is_empty() {
        return Err(std::io::Error::new(ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

fn write_err(what: &str, value: &str, path: &Path, e: &std::io::Error) -> anyhow::Error {
    anyhow!(
        "cannot set {what}: write {value} to {}: {}",
        path.display(),
        crate::sys::errno_text(e)
    )
}

/// Write one setting into `dir`, honouring its fallback and optional flag.
fn apply_setting(dir: &Path, s: &Setting) -> Result<()> {
    let path = dir.join(&s.file);
    match write_file(&path, &s.value) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some((file, value)) = &s.fallback {
                let fb = dir.join(file);
                match write_file(&fb, value) {
                    Ok(()) => return Ok(()),
                    Err(e2) if e2.kind() == ErrorKind::NotFound && s.optional => return Ok(()),
                    Err(e2) if e2.kind() == ErrorKind::NotFound => {
                        return Err(anyhow!(
                            "cannot set {}: neither {} nor {} exists{}",
                            s.what,
                            path.display(),
                            fb.display(),
                            s.absent.map(|a| format!(" ({a})")).unwrap_or_default()
                        ));
                    }
                    Err(e2) => return Err(write_err(s.what, value, &fb, &e2)),
                }
            }
            if s.optional {
                Ok(())
            } else if let Some(absent) = s.absent {
                Err(anyhow!(
                    "cannot set {}: {} does not exist ({absent})",
                    s.what,
                    path.display()
                ))
            } else {
                Err(write_err(s.what, &s.value, &path, &e))
            }
        }
        Err(e) => Err(rt_hint(write_err(s.what, &s.value, &path, &e), &path, &s.value, &e)),
    }?;
    match s.verify {
        Some(ignored) => verify_limit(&path, s, ignored),
        None => Ok(()),
    }
}

/// v1 `cpu.rt_runtime_us` refused with EINVAL: the usual cause is a
/// parent whose own realtime budget is smaller (a new v1 cgroup gets 0).
/// runc does not raise the parents' budgets either (its tests write them
/// by hand first): say which parent holds how much.
fn rt_hint(err: anyhow::Error, path: &Path, value: &str, e: &std::io::Error) -> anyhow::Error {
    if e.raw_os_error() != Some(libc::EINVAL) || path.file_name().is_none_or(|f| f != "cpu.rt_runtime_us") {
        return err;
    }
    let Some(parent) = path.parent().and_then(Path::parent) else {
        return err;
    };
    let file = parent.join("cpu.rt_runtime_us");
    match (
        read_trimmed(&file).ok().and_then(|v| v.parse::<i64>().ok()),
        value.parse::<i64>(),
    ) {
        (Some(have), Ok(want)) if have >= 0 && have < want => anyhow!(
            "{err:#} (the parent cgroup has a realtime budget of {have} µs in {}, and a cgroup's realtime runtime must fit \
             in its parent's; a new cgroup v1 directory starts with 0: give every cgroup above the container a budget \
             first, as runc also requires, or place the container where its parent has one)",
            file.display()
        ),
        _ => err,
    }
}

/// A byte limit written to `path` must read back as itself, rounded down
/// to whole pages as the kernel keeps it (-1: the kernel's "unlimited",
/// a page-aligned value near i64::MAX).
fn verify_limit(path: &Path, s: &Setting, ignored: &str) -> Result<()> {
    let want: i64 = s
        .value
        .parse()
        .with_context(|| format!("internal error: {} value {:?} is not a number", s.what, s.value))?;
    let got = read_trimmed(path)?;
    let got_n: i64 = got
        .parse()
        .with_context(|| format!("parse {got:?} from {}", path.display()))?;
    #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(1, i64::from)
        .max(1);
    let taken = if want < 0 {
        got_n >= i64::MAX - page * 1024
    } else {
        want - got_n >= 0 && want - got_n < page
    };
    if !taken {
        bail!(
            "cannot set {}: wrote {} to {} but it reads {got}: {ignored}",
            s.what,
            s.value,
            path.display()
        );
    }
    Ok(())
}

/// Apply settings in order. The kernel checks some values against others
/// (memory limit ≤ memory+swap limit, rt runtime ≤ rt period, burst ≤
/// quota), so a write that fails is retried once after all the others,
/// which covers both orders of every such pair; the retry's error is
/// returned.
pub fn write_settings(writes: &[(PathBuf, Setting)]) -> Result<()> {
    let mut failed = Vec::new();
    for (dir, s) in writes {
        if apply_setting(dir, s).is_err() {
            failed.push((dir, s));
        }
    }
    for (dir, s) in failed {
        apply_setting(dir, s)?;
    }
    Ok(())
}

/// The cgroup directory of a container in one v1 hierarchy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct V1Dir {
    /// Controllers of the hierarchy, e.g. ["cpu", "cpuacct"] or ["name=systemd"].
    pub controllers: Vec<String>,
    /// Mountpoint of the hierarchy.
    pub mount: PathBuf,
    /// The container's cgroup directory.
    pub path: PathBuf,
}

/// A container's cgroup: its directory in every hierarchy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    pub layout: Layout,
    /// One entry per mounted v1 hierarchy (V1 and Hybrid).
    pub v1: Vec<V1Dir>,
    /// The directory in the cgroup2 hierarchy (V2, and Hybrid's cgroup2 mount).
    pub unified: Option<PathBuf>,
    /// Mountpoint of the cgroup2 hierarchy.
    pub unified_mount: Option<PathBuf>,
    /// The systemd driver (`--systemd-cgroup`): the transient unit that owns
    /// the cgroup (`docker-<id>.scope`). Every later command reads the
    /// driver from here, since managers pass the flag only to some of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// The unit belongs to the user's systemd (rootless), not the system's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub systemd_user: bool,
}

/// An open cgroup2 directory a child can be cloned into
/// ([`Cgroup::open_unified_dir`]).
#[derive(Debug)]
pub struct UnifiedDir {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

enum DevicePlan {
    V1(PathBuf, Vec<(String, String)>),
    Bpf(PathBuf, Vec<devices::BpfInsn>),
}

struct Plan {
    writes: Vec<(PathBuf, Setting)>,
    devices: Option<DevicePlan>,
}

/// The v2 name of a v1 resource group, when v2 has one.
fn v2_group_of(v1_group: &str) -> Option<&'static str> {
    match v1_group {
        "blkio" => Some("io"),
        "memory" => Some("memory"),
        "cpu" => Some("cpu"),
        "cpuset" => Some("cpuset"),
        "pids" => Some("pids"),
        "hugetlb" => Some("hugetlb"),
        "rdma" => Some("rdma"),
        _ => None,
    }
}

/// The config field a v1 resource group comes from (for errors).
fn config_field_of(v1_group: &str) -> &'static str {
    match v1_group {
        "blkio" => "linux.resources.blockIO",
        "memory" => "linux.resources.memory",
        "cpu" | "cpuset" => "linux.resources.cpu",
        "pids" => "linux.resources.pids",
        "hugetlb" => "linux.resources.hugepageLimits",
        "net_cls" => "linux.resources.network.classID",
        "net_prio" => "linux.resources.network.priorities",
        "rdma" => "linux.resources.rdma",
        _ => "linux.resources",
    }
}

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
const RMDIR_TIMEOUT: Duration = Duration::from_secs(5);

/// Poll `cond` with a growing pause (1ms .. 20ms) until it holds or
/// `timeout` passes; returns whether it held.
fn poll(timeout: Duration, mut cond: impl FnMut() -> Result<bool>) -> Result<bool> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if cond()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn mkdir_tracked(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => bail!("cannot create cgroup {}: {}", d.display(), crate::sys::errno_text(&e)),
        }
    }
    Ok(())
}

/// Directories from just below `mount` down to `leaf`.
fn levels_below(mount: &Path, leaf: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = leaf;
    while cur != mount && cur.starts_with(mount) {
        out.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    out.reverse();
    out
}

/// Remove a cgroup directory and every cgroup below it, children first;
/// a missing directory is fine, EBUSY (tasks still leaving) is retried.
fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("cannot list cgroup {}: {}", dir.display(), crate::sys::errno_text(&e)),
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    let mut last = None;
    let done = poll(RMDIR_TIMEOUT, || match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            last = Some(e);
            Ok(false)
        }
        Err(e) => bail!("cannot remove cgroup {}: {}", dir.display(), crate::sys::errno_text(&e)),
    })?;
    if !done {
        let why = last.map(|e| crate::sys::errno_text(&e)).unwrap_or_default();
        bail!("cannot remove cgroup {}: {why} (processes still in it?)", dir.display());
    }
    Ok(())
}

fn read_procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let text = match fs::read_to_string(&procs) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("cannot read {}: {}", procs.display(), crate::sys::errno_text(&e)),
    };
    for l in text.lines() {
        let pid: i32 = l
            .trim()
            .parse()
            .with_context(|| format!("bad pid {l:?} in {}", procs.display()))?;
        out.push(pid);
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                read_procs_recursive(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Cgroup {
    /// Resolve the placement from linux.cgroupsPath with runc's cgroupfs
    /// semantics (see [`mountinfo::resolve`]); no filesystem changes.
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let mounts = read_mounts()?;
        let own = read_proc_cgroup("self")?;
        Self::from_mounts(&mounts, &own, cgroups_path, id)
    }

    /// [`Cgroup::new`] on given mounts and own cgroups (pure).
    pub fn from_mounts(
        mounts: &mountinfo::Mounts,
        own: &[mountinfo::OwnCgroup],
        cgroups_path: Option<&Path>,
        id: &str,
    ) -> Result<Cgroup> {
        let layout = mounts.layout()?;
        let p = mountinfo::resolve(mounts, own, cgroups_path, id)?;
        let v1 =
            p.v1.into_iter()
                .zip(&mounts.v1)
                .map(|((controllers, path), m)| V1Dir {
                    controllers,
                    mount: m.mountpoint.clone(),
                    path,
                })
                .collect();
        Ok(Cgroup {
            layout,
            v1,
            unified: p.unified,
            unified_mount: mounts.v2.as_ref().map(|m| m.mountpoint.clone()),
            systemd_unit: None,
            systemd_user: false,
        })
    }

    /// The cgroup of a systemd unit whose cgroup path (below the root of
    /// the hierarchy, the manager's own cgroup included) is `path`: on a
    /// pure v2 host the directory under the cgroup2 mount, on v1 and
    /// hybrid hosts the same path in every hierarchy (as runc's v1 systemd
    /// driver joins them all, systemd's and the others). Pure.
    pub fn for_systemd(mounts: &mountinfo::Mounts, path: &Path, unit: &str, user: bool) -> Result<Cgroup> {
        if !path.is_absolute()
            || path
                .components()
                .any(|c| !matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)))
        {
            bail!("invalid cgroup path {} for systemd unit {unit}", path.display());
        }
        let mut cg = Self::from_mounts(mounts, &[], Some(path), unit)?;
        cg.systemd_unit = Some(unit.to_string());
        cg.systemd_user = user;
        Ok(cg)
    }

    /// A cgroup handled as pure v2 at `path` (absolute below the mount) in
    /// the cgroup2 hierarchy mounted at `mount`, whatever the host layout
    /// is: used to drive the v2 back end on a hybrid host's cgroup2 mount.
    pub fn new_v2_in(mount: &Path, path: &Path) -> Cgroup {
        let rel = mountinfo::clean_path(&Path::new("/").join(path));
        let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
        Cgroup {
            layout: Layout::V2,
            v1: Vec::new(),
            unified: Some(mount.join(rel)),
            unified_mount: Some(mount.to_path_buf()),
            systemd_unit: None,
            systemd_user: false,
        }
    }

    fn v1_dir(&self, controller: &str) -> Option<&V1Dir> {
        self.v1.iter().find(|d| d.controllers.iter().any(|c| c == controller))
    }

    fn unified_controllers(&self) -> Vec<String> {
        self.unified_mount
            .as_ref()
            .and_then(|m| fs::read_to_string(m.join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn plan(&self, res: &LinuxResources, with_devices: bool) -> Result<Plan> {
        let mut writes = Vec::new();
        let unified = self.unified.clone();
        match self.layout {
            Layout::V2 => {
                let dir = unified.clone().context("v2 cgroup without a unified directory")?;
                for s in v2::settings(res)? {
                    writes.push((dir.clone(), s));
                }
            }
            Layout::V1 | Layout::Hybrid => {
                if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
                    bail!(
                        "linux.resources.unified is only supported on cgroup v2, and this host's controllers are cgroup v1 ({:?} layout)",
                        self.layout
                    );
                }
                let v2_available = self.unified_controllers();
                for g in v1::GROUPS {
                    let settings = v1::group_settings(res, g)?;
                    if settings.is_empty() {
                        continue;
                    }
                    if let Some(d) = self.v1_dir(g) {
                        for s in settings {
                            writes.push((d.path.clone(), s));
                        }
                        continue;
                    }
                    let fallback = match (self.layout, v2_group_of(g), &unified) {
                        (Layout::Hybrid, Some(g2), Some(dir)) if v2_available.iter().any(|c| c == g2) => {
                            Some((g2, dir))
                        }
                        _ => None,
                    };
                    let Some((g2, dir)) = fallback else {
                        bail!(
                            "cannot apply {} ({}): the {g} cgroup controller is not mounted on this host",
                            config_field_of(g),
                            settings[0].what
                        );
                    };
                    for s in v2::group_settings(res, g2)? {
                        writes.push((dir.clone(), s));
                    }
                }
            }
        }
        let mut devices = None;
        if with_devices && let Some(rules) = res.devices() {
            let st = devices::DeviceState::from_rules(rules)?;
            devices = Some(match (self.layout, self.v1_dir("devices"), &unified) {
                (Layout::V1 | Layout::Hybrid, Some(d), _) => DevicePlan::V1(d.path.clone(), st.v1_writes()),
                (Layout::V2 | Layout::Hybrid, _, Some(u)) => DevicePlan::Bpf(u.clone(), devices::device_program(&st)),
                _ => bail!("device rules given but no devices cgroup controller is mounted"),
            });
        }
        Ok(Plan { writes, devices })
    }

    /// Whether a process is cloned straight into this cgroup (clone3 with
    /// CLONE_INTO_CGROUP: pure v2, [`Cgroup::open_unified_dir`]) rather
    /// than written into each directory's cgroup.procs ([`Cgroup::add_process`]).
    pub fn clones_into(&self) -> bool {
        self.layout == Layout::V2
    }

    /// All directories of the container (v1 hierarchies, then cgroup2):
    /// the ones [`Cgroup::add_process`] writes the pid into.
    pub fn all_dirs(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = self.v1.iter().map(|d| d.path.as_path()).collect();
        if let Some(u) = &self.unified {
            out.push(u);
        }
        out
    }

    /// Enable every available controller in cgroup.subtree_control of each
    /// cgroup from the mount down to the leaf's parent. A controller the
    /// kernel refuses there is skipped; writing its files fails later with
    /// a message naming the file.
    fn enable_controllers(mount: &Path, leaf: &Path) {
        let mut dirs = vec![mount.to_path_buf()];
        dirs.extend(levels_below(mount, leaf));
        dirs.pop();
        for d in dirs {
            let avail = fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
            let enabled = fs::read_to_string(d.join("cgroup.subtree_control")).unwrap_or_default();
            let enabled: Vec<&str> = enabled.split_whitespace().collect();
            for c in avail.split_whitespace() {
                if !enabled.contains(&c) {
                    let _ = write_file(&d.join("cgroup.subtree_control"), &format!("+{c}"));
                }
            }
        }
    }

    /// v1 cpuset: a new cgroup starts with empty cpus/mems; copy them down
    /// from the parent at each level, like runc.
    fn init_cpuset(mount: &Path, leaf: &Path) -> Result<()> {
        for d in levels_below(mount, leaf) {
            let Some(parent) = d.parent() else { continue };
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let cur = read_trimmed(&d.join(f))?;
                if cur.is_empty() {
                    let v = read_trimmed(&parent.join(f))?;
                    write_file(&d.join(f), &v).map_err(|e| write_err("the inherited cpuset", &v, &d.join(f), &e))?;
                }
            }
        }
        Ok(())
    }

    fn create_dirs(&self, created: &mut Vec<PathBuf>) -> Result<()> {
        for d in &self.v1 {
            mkdir_tracked(&d.path, created)?;
            if d.controllers.iter().any(|c| c == "cpuset") {
                Self::init_cpuset(&d.mount, &d.path)?;
            }
        }
        if let (Some(u), Some(m)) = (&self.unified, &self.unified_mount) {
            mkdir_tracked(u, created)?;
            Self::enable_controllers(m, u);
        }
        Ok(())
    }

    fn apply_plan(plan: &Plan) -> Result<()> {
        write_settings(&plan.writes)?;
        match &plan.devices {
            None => {}
            Some(DevicePlan::V1(dir, writes)) => {
                for (file, value) in writes {
                    let path = dir.join(file);
                    write_file(&path, value).map_err(|e| write_err("device rule", value, &path, &e))?;
                }
            }
            Some(DevicePlan::Bpf(dir, prog)) => bpf::set_device_program(dir, prog)?,
        }
        Ok(())
    }

    /// Create the directories in every hierarchy (v2: enable the available
    /// controllers in cgroup.subtree_control along the path) and apply
    /// `resources`, including the device rules when `resources.devices` is
    /// set (the list is reduced from "deny everything"; merge
    /// [`default_device_rules`] in first). On failure everything created
    /// is removed again.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let plan = match resources {
            Some(r) => Some(self.plan(r, true)?),
            None => None,
        };
        let mut created = Vec::new();
        let result = self
            .create_dirs(&mut created)
            .and_then(|()| plan.as_ref().map_or(Ok(()), Self::apply_plan));
        if let Err(e) = result {
            for d in created.iter().rev() {
                let _ = fs::remove_dir(d);
            }
            return Err(e);
        }
        Ok(())
    }

    /// The (directory, setting) writes [`Cgroup::create`] makes for
    /// `resources`, device rules aside, without touching anything.
    pub fn planned_settings(&self, resources: &LinuxResources) -> Result<Vec<(PathBuf, Setting)>> {
        Ok(self.plan(resources, false)?.writes)
    }

    /// Move a process into the cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        for d in self.all_dirs() {
            let path = d.join("cgroup.procs");
            write_file(&path, &pid.to_string()).map_err(|e| {
                anyhow!(
                    "cannot move process {pid} into cgroup: write {pid} to {}: {}",
                    path.display(),
                    crate::sys::errno_text(&e)
                )
            })?;
        }
        Ok(())
    }

    /// Move a process into existing sub-cgroups of the container (`exec
    /// --cgroup`): `spec` is `PATH` (every hierarchy) or a comma-separated
    /// list of `CONTROLLER:PATH`; hierarchies not named stay the container's.
    pub fn add_process_sub(&self, pid: i32, spec: &str) -> Result<()> {
        for t in self.sub_targets(spec)? {
            let path = t.join("cgroup.procs");
            write_file(&path, &pid.to_string())
                .map_err(|e| anyhow!("write {pid} to {}: {}", path.display(), crate::sys::errno_text(&e)))?;
        }
        Ok(())
    }

    /// The directories `exec --cgroup SPEC` names, one per hierarchy (v1
    /// hierarchies first, then the cgroup2 one); each must exist.
    fn sub_targets(&self, spec: &str) -> Result<Vec<PathBuf>> {
        let mut all: Option<String> = None;
        let mut by_ctrl: Vec<(String, String)> = Vec::new();
        for part in spec.split(',') {
            match part.split_once(':') {
                Some((c, p)) => by_ctrl.push((c.to_string(), p.to_string())),
                None => all = Some(part.to_string()),
            }
        }
        let check = |p: &str| -> Result<PathBuf> {
            let rel = Path::new(p.trim_start_matches('/'));
            if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                bail!("exec --cgroup {p:?}: must be a path below the container's cgroup, without ..");
            }
            Ok(rel.to_path_buf())
        };
        let mut targets: Vec<PathBuf> = Vec::new();
        for d in &self.v1 {
            let sub = by_ctrl
                .iter()
                .find(|(c, _)| d.controllers.iter().any(|x| x == c))
                .map(|(_, p)| p.clone())
                .or_else(|| all.clone());
            targets.push(match sub {
                Some(p) => d.path.join(check(&p)?),
                None => d.path.clone(),
            });
        }
        if let Some(u) = &self.unified {
            let sub = by_ctrl
                .iter()
                .find(|(c, _)| c.is_empty())
                .map(|(_, p)| p.clone())
                .or_else(|| all.clone());
            targets.push(match sub {
                Some(p) => u.join(check(&p)?),
                None => u.clone(),
            });
        }
        for t in &targets {
            if !t.is_dir() {
                bail!("exec --cgroup {spec:?}: {} does not exist", t.display());
            }
        }
        Ok(targets)
    }

    /// v2 only: the container's cgroup directory (or, with `sub`, the
    /// sub-cgroup `exec --cgroup SUB` names) opened O_PATH|O_DIRECTORY, for
    /// clone3(CLONE_INTO_CGROUP); None on v1 and hybrid hosts, where a
    /// process joins its cgroups through cgroup.procs.
    pub fn open_unified_dir(&self, sub: Option<&str>) -> Result<Option<UnifiedDir>> {
        if !self.clones_into() {
            return Ok(None);
        }
        let dir = match sub {
            None => self.unified.clone().context("v2 cgroup without a directory")?,
            // v2: no v1 hierarchies, so the only target is the cgroup2 one.
            Some(s) => self.sub_targets(s)?.pop().context("v2 cgroup without a directory")?,
        };
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir)
            .with_context(|| format!("open cgroup directory {}", dir.display()))?;
        Ok(Some(UnifiedDir {
            fd: OwnedFd::from(f),
            path: dir,
        }))
    }

    /// Apply changed resources to the existing cgroup. Device rules are
    /// not changed (like `runc update`). With memory.checkBeforeUpdate a
    /// new limit below the current usage is refused.
    ///
    /// Under the systemd driver the unit's properties are set first
    /// (SetUnitProperties, runtime), then the same values are written to
    /// the files ([`scope::set_resources`]).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        let mut plan = self.plan(resources, false)?;
        if let Some(m) = resources.memory()
            && m.check_before_update() == Some(true)
            && let Some(limit) = m.limit().filter(|l| *l > 0)
        {
            let usage_file = match self.v1_dir("memory") {
                Some(d) => d.path.join("memory.usage_in_bytes"),
                None => self
                    .unified
                    .as_ref()
                    .context("no memory cgroup")?
                    .join("memory.current"),
            };
            let usage = read_u64(&usage_file)?;
            if (limit as u64) < usage {
                bail!(
                    "cannot set memory limit: the new limit {limit} is below the current usage {usage} ({}) and checkBeforeUpdate is set",
                    usage_file.display()
                );
            }
        }
        if let Some(unit) = &self.systemd_unit {
            let adjusted = scope::set_resources(self, unit, resources)?;
            plan = self.plan(&adjusted, false)?;
        }
        Self::apply_plan(&plan)
    }

    /// The directory whose cgroup.procs lists the container's processes.
    fn procs_dir(&self) -> Result<&Path> {
        if self.layout == Layout::V2 {
            return self.unified.as_deref().context("v2 cgroup without a directory");
        }
        for c in ["freezer", "pids", "memory", "cpu", "devices"] {
            if let Some(d) = self.v1_dir(c) {
                return Ok(&d.path);
            }
        }
        self.v1
            .first()
            .map(|d| d.path.as_path())
            .or(self.unified.as_deref())
            .context("cgroup has no directory")
    }

    /// All processes in the container cgroup, sub-cgroups included.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        read_procs_recursive(self.procs_dir()?, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn freezer(&self) -> Result<Freezer> {
        if self.layout != Layout::V2
            && let Some(d) = self.v1_dir("freezer")
        {
            return Ok(Freezer::V1(d.path.clone()));
        }
        if let Some(u) = &self.unified
            && u.join("cgroup.freeze").exists()
        {
            return Ok(Freezer::V2(u.clone()));
        }
        bail!("no cgroup freezer available (neither a v1 freezer hierarchy nor cgroup.freeze)")
    }

    fn v2_frozen(dir: &Path) -> Result<bool> {
        let ev = fs::read_to_string(dir.join("cgroup.events"))
            .with_context(|| format!("read {}", dir.join("cgroup.events").display()))?;
        Ok(ev.lines().any(|l| l.trim() == "frozen 1"))
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(d) => {
                let path = d.join("freezer.state");
                let want = if frozen { "FROZEN" } else { "THAWED" };
                let ok = poll(FREEZE_TIMEOUT, || {
                    // Writing FROZEN again nudges tasks that were not yet
                    // frozen (like runc does).
                    write_file(&path, want).map_err(|e| write_err("freezer state", want, &path, &e))?;
                    Ok(read_trimmed(&path)? == want)
                })?;
                if !ok {
                    if frozen {
                        let _ = write_file(&path, "THAWED");
                    }
                    bail!("timed out waiting for {} to become {want}", path.display());
                }
            }
            Freezer::V2(d) => {
                let path = d.join("cgroup.freeze");
                let v = if frozen { "1" } else { "0" };
                write_file(&path, v).map_err(|e| write_err("freezer state", v, &path, &e))?;
                let ok = poll(FREEZE_TIMEOUT, || Ok(Self::v2_frozen(&d)? == frozen))?;
                if !ok {
                    if frozen {
                        let _ = write_file(&path, "0");
                    }
                    bail!(
                        "timed out waiting for {} to report frozen {v}",
                        d.join("cgroup.events").display()
                    );
                }
            }
        }
        Ok(())
    }

    /// Freeze every process and wait until the cgroup is frozen.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaw the cgroup and wait until it is.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer()? {
            Freezer::V1(d) => Ok(read_trimmed(&d.join("freezer.state"))? == "FROZEN"),
            Freezer::V2(d) => Self::v2_frozen(&d),
        }
    }

    /// Signal every process. SIGKILL uses cgroup.kill where the kernel has
    /// it; otherwise the cgroup is frozen, every process signalled and the
    /// cgroup thawed again (left frozen for other signals if it was
    /// frozen before), so that no process forks away unsignalled.
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        // A cgroup that is gone holds no process: systemd removes an empty
        // scope's cgroup as soon as its last process died, which may be
        // between our look and our write (ENODEV from a removed cgroup's
        // file, ENOENT once its directory is gone).
        let gone = |e: &std::io::Error| matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ENOENT));
        if self.all_dirs().iter().all(|d| !d.exists()) {
            return Ok(());
        }
        if sig == libc::SIGKILL
            && self.layout != Layout::V1
            && let Some(u) = &self.unified
            && u.join("cgroup.kill").exists()
        {
            let path = u.join("cgroup.kill");
            match write_file(&path, "1") {
                Ok(()) => {}
                Err(e) if gone(&e) => return Ok(()),
                Err(e) => return Err(write_err("cgroup kill", "1", &path, &e)),
            }
            // A task frozen by the v1 freezer of a hybrid host only dies
            // once thawed.
            // (A freezer directory already removed — by a delete killed
            // half-way — freezes nothing.)
            if self.layout == Layout::Hybrid
                && self.v1_dir("freezer").is_some_and(|d| d.path.exists())
                && self.is_frozen()?
            {
                self.thaw()?;
            }
            return Ok(());
        }
        let signal = nix::sys::signal::Signal::try_from(sig).with_context(|| format!("invalid signal {sig}"))?;
        let was_frozen = self.is_frozen().unwrap_or(false);
        let froze = !was_frozen && self.freeze().is_ok();
        let pids = self.pids();
        let mut result = Ok(());
        if let Ok(pids) = &pids {
            for &pid in pids {
                match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => {
                        result = Err(anyhow!("cannot send signal {sig} to process {pid}: {e}"));
                    }
                }
            }
        }
        if froze || (was_frozen && sig == libc::SIGKILL) {
            self.thaw()?;
        }
        if pids.is_err() && self.all_dirs().iter().all(|d| !d.exists()) {
            return Ok(());
        }
        pids?;
        result
    }

    /// Remove the cgroup in every hierarchy, sub-cgroups included. Under
    /// the systemd driver the unit is stopped first (systemd removes what
    /// it made; a unit already gone is fine), then whatever is left is
    /// removed. Call it once the cgroup is empty ([`Cgroup::kill_all`]).
    pub fn destroy(&self) -> Result<()> {
        if let Some(unit) = &self.systemd_unit {
            scope::stop(unit, self.systemd_user);
        }
        let mut first_err = None;
        for d in self.all_dirs() {
            if let Err(e) = remove_tree(d) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// runc's `events --stats` "data" object.
    pub fn stats(&self) -> Result<Value> {
        let mut out = Map::new();
        match self.layout {
            Layout::V2 => {
                let d = self.unified.as_ref().context("v2 cgroup without a directory")?;
                v2::stats(d, &mut out);
            }
            Layout::V1 | Layout::Hybrid => {
                let dir_of = |c: &str| self.v1_dir(c).map(|d| d.path.clone());
                v1::stats(&dir_of, &mut out);
                if let Some(u) = &self.unified {
                    let mut v2out = Map::new();
                    v2::stats(u, &mut v2out);
                    for k in ["memory", "pids", "hugetlb", "blkio"] {
                        if !out.contains_key(k)
                            && let Some(v) = v2out.remove(k)
                        {
                            out.insert(k.into(), v);
                        }
                    }
                    let empty_hugetlb = out
                        .get("hugetlb")
                        .and_then(Value::as_object)
                        .is_none_or(|m| m.is_empty());
                    if empty_hugetlb && let Some(h) = v2out.remove("hugetlb") {
                        out.insert("hugetlb".into(), h);
                    }
                }
            }
        }
        for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
            out.entry(k).or_insert_with(|| Value::Object(Map::new()));
        }
        Ok(Value::Object(out))
    }

    /// How many processes the OOM killer killed in this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        let (file, key) = match (self.layout, self.v1_dir("memory"), &self.unified) {
            (Layout::V1 | Layout::Hybrid, Some(d), _) => (d.path.join("memory.oom_control"), "oom_kill"),
            (_, _, Some(u)) if u.join("memory.events").exists() => (u.join("memory.events"), "oom_kill"),
            _ => bail!("no memory cgroup to read OOM kills from"),
        };
        let text = fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        for l in text.lines() {
            if let Some(v) = l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')) {
                return v
                    .trim()
                    .parse()
                    .with_context(|| format!("parse {key} in {}", file.display()));
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugepage_size_check() {
        assert!(check_hugepage_size("2MB").is_ok());
        assert!(check_hugepage_size("1GB").is_ok());
        assert!(check_hugepage_size("64KB").is_ok());
        assert!(check_hugepage_size("2M").is_err());
        assert!(check_hugepage_size("MB").is_err());
        assert!(check_hugepage_size("2MB/../x").is_err());
    }

    #[test]
    fn cgroup_from_mounts_and_serde() {
        let mounts = mountinfo::parse_mountinfo(
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        let own = mountinfo::parse_proc_cgroup("4:memory:/x\n0::/\n").unwrap();
        let cg = Cgroup::from_mounts(&mounts, &own, None, "abc").unwrap();
        assert_eq!(cg.layout, Layout::Hybrid);
        assert_eq!(cg.v1[0].path, Path::new("/sys/fs/cgroup/memory/x/abc"));
        assert_eq!(cg.v1[0].mount, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(cg.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/abc")));
        let json = serde_json::to_string(&cg).unwrap();
        assert!(json.contains("\"hybrid\""));
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cg);

        let v2 = Cgroup::new_v2_in(Path::new("/sys/fs/cgroup/unified"), Path::new("/../t/x"));
        assert_eq!(v2.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/t/x")));
        assert_eq!(v2.layout, Layout::V2);
    }

    #[test]
    fn plans() {
        // A pure v1 host without net_cls: an honest error naming the controller.
        let cg = Cgroup {
            layout: Layout::V1,
            v1: vec![V1Dir {
                controllers: vec!["memory".into()],
                mount: "/m".into(),
                path: "/m/x".into(),
            }],
            unified: None,
            unified_mount: None,
            systemd_unit: None,
            systemd_user: false,
        };
        let res: LinuxResources = serde_json::from_str(r#"{"network": {"classID": 5}}"#).unwrap();
        let e = cg.plan(&res, true).err().unwrap().to_string();
        assert!(e.contains("net_cls cgroup controller is not mounted"), "{e}");
        assert!(e.starts_with("cannot apply linux.resources.network.classID"), "{e}");
        let res: LinuxResources =
            serde_json::from_str(r#"{"memory": {"limit": 100}, "devices": [{"allow": false}]}"#).unwrap();
        let e = cg.plan(&res, true).err().unwrap().to_string();
        assert!(e.contains("no devices cgroup"), "{e}");
        let plan = cg.plan(&res, false).unwrap();
        assert_eq!(plan.writes[0].0, Path::new("/m/x"));
        assert_eq!(plan.writes[0].1.file, "memory.limit_in_bytes");
        let res: LinuxResources = serde_json::from_str(r#"{"unified": {"memory.max": "1"}}"#).unwrap();
        assert!(cg.plan(&res, true).is_err());
    }

    /// The blkio weight goes to blkio.weight, else blkio.bfq.weight; with
    /// neither file (no BFQ, no CFQ) it is refused, naming the field and why.
    #[test]
    fn blkio_weight_fallback_and_refusal() {
        struct Removed(PathBuf);
        impl Drop for Removed {
            fn drop(&mut self) {
                let _ = fs::remove_dir_all(&self.0);
            }
        }
        let tmp = Removed(std::env::temp_dir().join(format!("husk-unit-weight-{}", std::process::id())));
        let dir = tmp.0.clone();
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let res: LinuxResources = serde_json::from_str(r#"{"blockIO": {"weight": 300}}"#).unwrap();
        let s = &v1::group_settings(&res, "blkio").unwrap()[0];
        let e = apply_setting(&dir, s).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "cannot set blkio weight (linux.resources.blockIO.weight): neither {} nor {} exists \
                 (the kernel has a blkio weight only with an I/O scheduler that has one: BFQ, or CFQ before Linux 5.0)",
                dir.join("blkio.weight").display(),
                dir.join("blkio.bfq.weight").display()
            )
        );
        fs::write(dir.join("blkio.bfq.weight"), "").unwrap();
        apply_setting(&dir, s).unwrap();
        assert_eq!(fs::read_to_string(dir.join("blkio.bfq.weight")).unwrap(), "300");
        fs::write(dir.join("blkio.weight"), "").unwrap();
        apply_setting(&dir, s).unwrap();
        assert_eq!(fs::read_to_string(dir.join("blkio.weight")).unwrap(), "300");
    }
}
