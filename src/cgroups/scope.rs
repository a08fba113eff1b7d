//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup
//! is a transient systemd scope, created over D-Bus ([`crate::systemd`])
//! with the init as its first process, and then driven through the
//! delegated cgroup files like the cgroupfs driver's.
//!
//! - Before the clone ([`ScopePlan::new`]): systemd must be running (sd_booted),
//!   `linux.cgroupsPath` must be runc's `slice:prefix:name`; rootless needs
//!   a pure v2 host. Nothing is made yet.
//! - After the clone, before the init may go on (`on_clone`, before `C`:
//!   [`ScopePlan::start`]): connect (so the init never holds the bus fd),
//!   `StartTransientUnit` with `PIDs=[init]`, `Delegate=yes` and the
//!   resource properties systemd knows, waiting for the job; then the
//!   directories systemd did not make (v1 hierarchies it does not manage)
//!   are made, the init is written into the hierarchies it is not in yet
//!   (never on pure v2: systemd moved it), and `linux.resources` is
//!   written to the files as the cgroupfs driver writes it — the same
//!   values, so that systemd putting its properties back (daemon-reload,
//!   set-property) changes nothing.
//! - Devices. Pure v2: no DevicePolicy/DeviceAllow is sent, so systemd
//!   attaches no device program of its own and only ever detaches the ones
//!   it attached: husk's eBPF program (attached with BPF_F_ALLOW_MULTI
//!   after the scope exists) is the one filter, as under cgroupfs, and a
//!   daemon-reload leaves it alone. v1 devices hierarchy (v1 and hybrid
//!   hosts): systemd writes `devices.allow a` into a unit without a device
//!   policy whenever it applies the unit's cgroup settings, so husk sends
//!   `DevicePolicy=strict` and a `DeviceAllow` list equal to the rules
//!   ([`device_properties`]; a rule systemd cannot express is left out with
//!   a warning: after a reload the container may get less, never more),
//!   and writes its own devices files after the start. Those writes (and
//!   systemd's) go through "deny all, then allow", so there the init waits
//!   for `C` before its rootfs setup ([`ScopePlan::rewrites_devices`]).
//! - `update`: SetUnitProperties (runtime) with the new properties, then
//!   the files ([`set_resources`]). Pause/resume, kill, ps, events and
//!   stats use the files. `delete`: the cgroup is killed, the unit stopped
//!   ([`stop`]), what is left of the directories removed.
//! - The CPU quota is rounded like systemd's CPUQuotaPerSecUSec (whole
//!   10 ms per second) and the rounded quota is the one written.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::LinuxResources;

use super::devices::{DevKind, DeviceState};
use super::{Cgroup, Layout, mountinfo};
use crate::dbus;
use crate::systemd::{self, Manager, Placement, Property, ScopeSpec};

/// Where the scope of a container goes, decided before the clone.
#[derive(Debug, Clone)]
pub struct ScopePlan {
    pub placement: Placement,
    /// The user's systemd (rootless), not the system's.
    pub user: bool,
    mounts: mountinfo::Mounts,
    cgroups_path: String,
    /// Unit properties from `org.systemd.property.*` annotations, sent
    /// after the resource properties (as runc does).
    pub annotation_properties: Vec<systemd::Property>,
}

/// The error for a host without systemd.
pub fn not_booted() -> anyhow::Error {
    anyhow!(
        "--systemd-cgroup: systemd is not running on this host (/run/systemd/system does not exist: \
         the host was not booted with systemd as PID 1); without --systemd-cgroup husk manages the \
         container's cgroup itself (cgroupfs)"
    )
}

impl ScopePlan {
    /// Check what can be checked before anything exists, on husk's cgroup
    /// mounts `mounts`: the cgroupsPath is runc's `slice:prefix:name`
    /// (empty: `husk-<id>.scope` in system.slice, or user.slice rootless),
    /// rootless only on pure v2. Whether systemd runs ([`systemd::booted`],
    /// else [`not_booted`]) is create's question, not `husk plan`'s.
    pub fn new(cgroups_path: Option<&str>, id: &str, rootless: bool, mounts: mountinfo::Mounts) -> Result<ScopePlan> {
        let cgroups_path = cgroups_path.unwrap_or("").to_string();
        let placement = systemd::parse_cgroups_path(&cgroups_path, id, rootless)?;
        let layout = mounts.layout()?;
        if rootless && layout != Layout::V2 {
            bail!(
                "--systemd-cgroup rootless needs a pure cgroup v2 host: this host's cgroups are {} \
                 (systemd delegates no cgroup v1 controller to a user)",
                layout_name(layout)
            );
        }
        Ok(ScopePlan {
            placement,
            user: rootless,
            mounts,
            cgroups_path,
            annotation_properties: Vec::new(),
        })
    }
}

fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::V1 => "cgroup v1",
        Layout::Hybrid => "hybrid (cgroup v1 controllers and a cgroup2 mount)",
        Layout::V2 => "cgroup v2",
    }
}

/// Whether the device rules go through a v1 devices hierarchy (v1 and
/// hybrid hosts), where both systemd and husk rewrite them as "deny all,
/// then allow".
fn v1_devices(layout: Layout, has_v1_devices: bool) -> bool {
    layout != Layout::V2 && has_v1_devices
}

impl ScopePlan {
    /// The unit (`docker-<id>.scope`).
    pub fn unit(&self) -> &str {
        &self.placement.unit
    }

    /// Whether the container's device rules are rewritten (deny all, then
    /// allow) while the init is already in the cgroup: then the init must
    /// wait until that is done before it makes or opens device nodes.
    pub fn rewrites_devices(&self) -> bool {
        let layout = self.mounts.layout().unwrap_or(Layout::V2);
        let has = self
            .mounts
            .v1
            .iter()
            .any(|m| m.controllers.iter().any(|c| c == "devices"));
        v1_devices(layout, has)
    }

    /// The scope's cgroup: below `manager_cg`, the cgroup of the systemd
    /// that makes it ("/" for the system's; the user's systemd is asked).
    pub fn cgroup(&self, manager_cg: &str) -> Result<Cgroup> {
        let path = self.placement.dir(Path::new("/"), manager_cg)?;
        Cgroup::for_systemd(&self.mounts, &path, self.unit(), self.user)
    }

    /// What create asks of systemd for the scope of container `id` whose
    /// init is `pid`, and what husk writes itself once the unit exists,
    /// given systemd's `version` (0 where [`systemd::needs_version`] says it
    /// does not matter) and /proc/devices (`proc_devices`, v1 devices
    /// hierarchy only). Refuses what the files cannot take. The one
    /// computation behind [`ScopePlan::start`] and `husk plan`.
    pub fn request(
        &self,
        cg: Cgroup,
        id: &str,
        pid: u32,
        resources: &LinuxResources,
        version: u32,
        proc_devices: &str,
    ) -> Result<ScopeRequest> {
        let (mut extra, adjusted, warnings) = unit_properties(&cg, resources, version, proc_devices)?;
        extra.extend(self.annotation_properties.iter().cloned());
        let files = cg.plan(&adjusted, true)?;
        let spec = ScopeSpec {
            unit: self.unit().to_string(),
            slice: self.placement.slice.clone(),
            description: format!("husk container {id}"),
            pid,
            extra,
        };
        Ok(ScopeRequest {
            cgroup: cg,
            spec,
            files,
            warnings,
        })
    }

    /// What [`ScopePlan::start`] will do, without systemd: the unit, its
    /// properties and the files husk writes after it, for `husk plan`.
    /// Where systemd's answers matter, they are stated, not guessed: the
    /// user's systemd's cgroup (rootless) is a placeholder, and a property
    /// that depends on systemd's version (asked at create) says for which
    /// versions it is sent.
    pub fn describe(&self, id: &str, resources: &LinuxResources, proc_devices: &str) -> Result<ScopeDescription> {
        let manager_cg = if self.user { USER_MANAGER_CGROUP } else { "/" };
        let cg = self.cgroup(manager_cg)?;
        let v1 = cg.layout != Layout::V2;
        let version_asked = systemd::needs_version(resources, v1);
        // the lowest version of each range in which the properties are the same
        let mut lows = vec![0];
        if version_asked {
            lows.extend(systemd::VERSION_GATES);
        }
        let mut requests = Vec::new();
        for v in &lows {
            requests.push(self.request(cg.clone(), id, 0, resources, *v, proc_devices)?);
        }
        // each property as (Name=value, how many times it was sent before):
        // a property sent twice (CPUWeight from shares and from unified) is
        // two lines of the plan
        let said: Vec<Vec<(String, usize)>> = requests
            .iter()
            .map(|r| {
                let mut seen: Vec<String> = Vec::new();
                r.spec
                    .properties()
                    .iter()
                    .map(|p| {
                        let d = describe_property(p);
                        let n = seen.iter().filter(|s| **s == d).count();
                        seen.push(d.clone());
                        (d, n)
                    })
                    .collect()
            })
            .collect();
        let mut properties: Vec<PlannedProperty> = Vec::new();
        let mut listed: Vec<&(String, usize)> = Vec::new();
        // newest first: the order create sends them in to a current systemd
        for list in said.iter().rev() {
            for p in list {
                if listed.contains(&p) {
                    continue;
                }
                listed.push(p);
                let ranges: Vec<usize> = (0..said.len()).filter(|i| said[*i].contains(p)).collect();
                properties.push(PlannedProperty {
                    property: p.0.clone(),
                    only_if: version_condition(&ranges, &lows),
                });
            }
        }
        // the files do not depend on the version: the quota written is
        // the one rounded for CPUQuotaPerSecUSec, sent by every version
        let Some(last) = requests.pop() else {
            bail!("no systemd version to plan for");
        };
        let mut files: Vec<PlannedFile> = last
            .files
            .writes
            .iter()
            .map(|(dir, s)| PlannedFile {
                file: dir.join(&s.file),
                value: s.value.clone(),
            })
            .collect();
        let devices = match &last.files.devices {
            None => None,
            Some(super::DevicePlan::V1(dir, writes)) => {
                files.extend(writes.iter().map(|(f, v)| PlannedFile {
                    file: dir.join(f),
                    value: v.clone(),
                }));
                Some(format!(
                    "deny all, then allow, in the devices.deny and devices.allow files of {} (above)",
                    dir.display()
                ))
            }
            Some(super::DevicePlan::Bpf(dir, prog)) => Some(format!(
                "eBPF device program ({} instructions) attached to {} (BPF_F_ALLOW_MULTI, beside systemd's none)",
                prog.len(),
                dir.display()
            )),
        };
        Ok(ScopeDescription {
            unit: self.unit().to_string(),
            slice: self.placement.slice.clone(),
            manager: if self.user { "the user's systemd" } else { "systemd" },
            layout: cg.layout,
            cgroup: last.cgroup.all_dirs().into_iter().map(Path::to_path_buf).collect(),
            version_asked,
            properties,
            files,
            devices,
            warnings: last.warnings,
            init_waits_for_cgroup: self.rewrites_devices(),
        })
    }

    /// Create the scope with the init `pid` in it and apply `resources`
    /// (device rules completed as for cgroupfs). `made` is told the cgroup
    /// as soon as the unit may exist (systemd accepted the start), so that
    /// a failure from there on stops the unit and removes the directories
    /// ([`Cgroup::kill_all`] + [`Cgroup::destroy`]); a start systemd
    /// refused (a unit of that name in use) leaves it untold.
    pub fn start(
        &self,
        id: &str,
        pid: i32,
        resources: &LinuxResources,
        made: &mut dyn FnMut(&Cgroup),
    ) -> Result<Cgroup> {
        let unit = self.unit();
        let which = if self.user { "the user's systemd" } else { "systemd" };
        let mut m = crate::logging::step(
            "connect to systemd",
            || which.to_string(),
            || Manager::connect(self.user),
        )
        .with_context(|| format!("--systemd-cgroup: cannot create the container's scope {unit}"))?;
        let manager_cg = if self.user {
            m.manager_cgroup().context("the user's systemd: read its cgroup")?
        } else {
            "/".to_string()
        };
        let cg = self.cgroup(&manager_cg)?;
        let v1 = cg.layout != Layout::V2;
        let version = if systemd::needs_version(resources, v1) {
            m.version()?
        } else {
            0
        };
        let devices_text = if v1 { read_proc_devices() } else { String::new() };
        // refuses what the files cannot take before the unit exists
        let ScopeRequest {
            cgroup: cg,
            spec,
            files: plan,
            warnings,
        } = self.request(cg, id, pid as u32, resources, version, &devices_text)?;
        for w in warnings {
            crate::warn!("{w}");
        }
        if self.user
            && let Some(mount) = &cg.unified_mount
        {
            // a controller the user's systemd was not given cannot be
            // enabled for the scope: refuse its limit before the unit exists
            let mgr_dir = mount.join(manager_cg.trim_start_matches('/'));
            let file = mgr_dir.join("cgroup.controllers");
            let delegated = fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
            let settings: Vec<&super::Setting> = plan.writes.iter().map(|(_, s)| s).collect();
            if let Some((what, controller)) = undelegated(&settings, &delegated) {
                bail!(
                    "cannot set {what}: the {controller} controller is not delegated to the user's systemd \
                     ({} has: {}); a rootless container gets only the controllers the user's systemd has \
                     (Delegate= of user@.service)",
                    mgr_dir.display(),
                    delegated.trim()
                );
            }
        }
        let started = crate::logging::step(
            "start the systemd scope",
            || format!("{unit} in {}", spec.slice),
            || m.start_transient_scope(&spec),
        );
        // A refused call made nothing: the unit of that name (UnitExists)
        // and its cgroup are someone else's and must not be cleaned up.
        // Anything else (a job that failed or did not finish) is ours.
        if !matches!(&started, Err(e) if dbus::remote_error(e).is_some()) {
            made(&cg);
        }
        started.map_err(|e| explain(e, unit, &self.cgroups_path, &spec.properties()))?;
        drop(m);
        let mut created = Vec::new();
        cg.create_dirs(&mut created)?;
        if v1 {
            join_missing(&cg, pid)?;
        }
        Cgroup::apply_plan(&plan)?;
        Ok(cg)
    }
}

/// What [`ScopePlan::request`] gives: the cgroup, the unit (its
/// properties: [`ScopeSpec::properties`]), the files husk writes once it
/// exists, and warnings about device rules systemd cannot express.
pub struct ScopeRequest {
    pub cgroup: Cgroup,
    pub spec: ScopeSpec,
    files: super::Plan,
    pub warnings: Vec<String>,
}

/// The user's systemd's cgroup in a plan: only that systemd knows it.
pub const USER_MANAGER_CGROUP: &str = "<the user's systemd's cgroup, asked at create>";

/// /proc/devices (the names systemd's DeviceAllow groups use), or nothing.
pub fn read_proc_devices() -> String {
    fs::read_to_string("/proc/devices").unwrap_or_default()
}

/// A unit property in a plan: `Name=value`, and for which systemd versions
/// it is sent when that depends on the version.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlannedProperty {
    pub property: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_if: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlannedFile {
    pub file: PathBuf,
    pub value: String,
}

/// The systemd driver's part of `husk plan` ([`ScopePlan::describe`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScopeDescription {
    pub unit: String,
    pub slice: String,
    /// Who makes the unit: "systemd" or "the user's systemd".
    pub manager: &'static str,
    pub layout: Layout,
    /// The scope's directories (v1 hierarchies, then cgroup2).
    pub cgroup: Vec<PathBuf>,
    /// Whether create asks systemd its version (some property depends on it).
    pub version_asked: bool,
    /// StartTransientUnit's properties, in the order sent.
    pub properties: Vec<PlannedProperty>,
    /// The files husk writes after the unit exists.
    pub files: Vec<PlannedFile>,
    pub devices: Option<String>,
    pub warnings: Vec<String>,
    /// The init waits for the cgroup (`C`) before its rootfs setup.
    pub init_waits_for_cgroup: bool,
}

/// `Name=value` of a property in a plan: the init's pid is not known yet.
fn describe_property(p: &Property) -> String {
    if p.name == "PIDs" {
        return "PIDs=<the init's pid>".to_string();
    }
    p.describe()
}

/// For which systemd versions a property is sent: `ranges` are the indices
/// of the version ranges it is in (range i starts at `lows[i]` and ends
/// where the next starts), `None` when in all of them.
fn version_condition(ranges: &[usize], lows: &[u32]) -> Option<String> {
    if ranges.len() == lows.len() {
        return None;
    }
    let end = |i: usize| lows.get(i + 1).copied();
    let contiguous = ranges.windows(2).all(|w| w[1] == w[0] + 1);
    let (first, last) = (*ranges.first()?, *ranges.last()?);
    let text = match (contiguous, first, end(last)) {
        (true, 0, Some(hi)) => format!("systemd < {hi}"),
        (true, _, None) => format!("systemd >= {}", lows[first]),
        _ => ranges
            .iter()
            .map(|i| match end(*i) {
                Some(hi) => format!("{} <= systemd < {hi}", lows[*i]),
                None => format!("systemd >= {}", lows[*i]),
            })
            .collect::<Vec<_>>()
            .join(" or "),
    };
    Some(format!("only if {text}; systemd's version is asked at create"))
}

/// The first setting whose controller (its file's prefix: `cpuset` of
/// `cpuset.cpus`) is not in `delegated` (a `cgroup.controllers` text), as
/// (what it sets, the controller). `cgroup.*` files belong to no
/// controller; an optional setting (skipped where its file is missing) is
/// not a limit anyone asked for.
fn undelegated(settings: &[&super::Setting], delegated: &str) -> Option<(&'static str, String)> {
    settings.iter().find_map(|s| {
        let controller = s.file.split_once('.').map_or(s.file.as_str(), |(c, _)| c);
        (!s.optional && controller != "cgroup" && !delegated.split_whitespace().any(|d| d == controller))
            .then(|| (s.what, controller.to_string()))
    })
}

/// The unit properties for `resources` (devices first, as runc sends
/// them), the resources to write to the files (the CPU quota rounded
/// as systemd rounds it) and warnings for device rules systemd cannot
/// express.
pub fn unit_properties(
    cg: &Cgroup,
    resources: &LinuxResources,
    version: u32,
    proc_devices: &str,
) -> Result<(Vec<Property>, LinuxResources, Vec<String>)> {
    let v1 = cg.layout != Layout::V2;
    let mut props = Vec::new();
    let mut warnings = Vec::new();
    if v1_devices(cg.layout, cg.v1_dir("devices").is_some())
        && let Some(rules) = resources.devices()
    {
        let st = DeviceState::from_rules(rules)?;
        let (p, w) = device_properties(&st, proc_devices);
        warnings = w;
        props.extend(p);
    }
    let rp = if v1 {
        systemd::resource_properties_v1(resources, version)?
    } else {
        systemd::resource_properties(resources, version)?
    };
    props.extend(rp.properties);
    Ok((props, with_quota(resources, rp.cpu_quota), warnings))
}

/// `resources` with the CPU quota systemd will apply (`quota`, from
/// [`systemd::cpu_quota_per_sec`]): in `unified["cpu.max"]` when the
/// quota came from there, else in `cpu.quota`.
pub fn with_quota(resources: &LinuxResources, quota: Option<i64>) -> LinuxResources {
    let mut out = resources.clone();
    let Some(q) = quota else {
        return out;
    };
    if let Some(mut u) = out.unified().clone()
        && let Some(v) = u.get("cpu.max")
    {
        let period = v.split_whitespace().nth(1).unwrap_or("100000").to_string();
        let q = if q > 0 { q.to_string() } else { "max".to_string() };
        u.insert("cpu.max".into(), format!("{q} {period}"));
        out.set_unified(Some(u));
        return out;
    }
    if let Some(mut c) = out.cpu().clone() {
        c.set_quota(Some(q));
        out.set_cpu(Some(c));
    }
    out
}

/// `/proc/devices`: (kind, major, name) of every registered driver.
fn proc_devices(text: &str) -> Vec<(DevKind, u32, String)> {
    let mut out = Vec::new();
    let mut kind = None;
    for l in text.lines() {
        let l = l.trim();
        match l {
            "Character devices:" => kind = Some(DevKind::Char),
            "Block devices:" => kind = Some(DevKind::Block),
            _ => {
                let (Some(k), Some((num, name))) = (kind, l.split_once(char::is_whitespace)) else {
                    continue;
                };
                if let Ok(major) = num.parse() {
                    out.push((k, major, name.trim().to_string()));
                }
            }
        }
    }
    out
}

/// The `char-NAME`/`block-NAME` group that stands for exactly the devices
/// of `major`: a name systemd matches literally (no glob or path
/// characters) that no other major of that kind carries.
fn device_group(devs: &[(DevKind, u32, String)], kind: DevKind, major: u32) -> Option<String> {
    devs.iter()
        .filter(|(k, m, _)| *k == kind && *m == major)
        .map(|(_, _, n)| n)
        .find(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
                && !devs
                    .iter()
                    .any(|(k, m, other)| *k == kind && other == *n && *m != major)
        })
        .map(|n| {
            let prefix = if kind == DevKind::Char { "char" } else { "block" };
            format!("{prefix}-{n}")
        })
}

fn access(acc: u8) -> String {
    use super::devices::{ACC_MKNOD, ACC_READ, ACC_WRITE};
    let mut s = String::new();
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if acc & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The device rules as systemd's `DevicePolicy` + `DeviceAllow` (for a v1
/// devices hierarchy, see the module documentation), and warnings for
/// what systemd cannot express: `c *:5`-style rules and a major without a
/// name of its own in /proc/devices are left out (a reload by systemd
/// then denies them), and a deny list on top of "allow everything"
/// becomes "deny everything" (runc does the same). The result never allows
/// more than the rules.
pub fn device_properties(st: &DeviceState, proc_devices_text: &str) -> (Vec<Property>, Vec<String>) {
    let mut warnings = Vec::new();
    if st.default_allow {
        if st.exceptions.is_empty() {
            return (
                vec![Property::string("DevicePolicy", "auto"), Property::device_allow(&[])],
                warnings,
            );
        }
        warnings.push(
            "systemd cannot express device deny rules on top of \"allow all\": the unit's device policy \
             denies every device (a systemd reload applies it)"
                .to_string(),
        );
        return (
            vec![Property::string("DevicePolicy", "strict"), Property::device_allow(&[])],
            warnings,
        );
    }
    let devs = proc_devices(proc_devices_text);
    let mut allow: Vec<(String, String)> = Vec::new();
    for key in &st.order {
        let Some(acc) = st.exceptions.get(key) else { continue };
        let (class, dir) = match key.kind {
            DevKind::Char => ("char", "char"),
            DevKind::Block => ("block", "block"),
        };
        let path = match (key.major, key.minor) {
            (None, None) => format!("{class}-*"),
            (Some(ma), Some(mi)) => format!("/dev/{dir}/{ma}:{mi}"),
            (Some(ma), None) => match device_group(&devs, key.kind, ma) {
                Some(g) => g,
                None => {
                    warnings.push(format!(
                        "systemd cannot express the device rule {} {ma}:* {} (no name of its own in /proc/devices): left out of the unit's DeviceAllow",
                        &class[..1],
                        access(*acc)
                    ));
                    continue;
                }
            },
            (None, Some(mi)) => {
                warnings.push(format!(
                    "systemd cannot express the device rule {} *:{mi} {}: left out of the unit's DeviceAllow",
                    &class[..1],
                    access(*acc)
                ));
                continue;
            }
        };
        allow.push((path, access(*acc)));
    }
    let pairs: Vec<(&str, &str)> = allow.iter().map(|(p, a)| (p.as_str(), a.as_str())).collect();
    (
        vec![
            Property::string("DevicePolicy", "strict"),
            Property::device_allow(&pairs),
        ],
        warnings,
    )
}

/// Whether `name` appears in `text` as a word of its own.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// A refused StartTransientUnit or SetUnitProperties, said so that a
/// person can act on it: a unit of that name that is in use, or the
/// property (with the value husk sent) systemd refused.
fn explain(e: anyhow::Error, unit: &str, cgroups_path: &str, props: &[Property]) -> anyhow::Error {
    if dbus::is_remote_error(&e, systemd::UNIT_EXISTS) {
        let path = if cgroups_path.is_empty() {
            String::new()
        } else {
            format!(" (cgroupsPath {cgroups_path:?})")
        };
        return e.context(format!(
            "systemd unit {unit}{path} already exists and is active: another container or service has that name; \
             delete it or choose another name"
        ));
    }
    if let Some(r) = dbus::remote_error(&e) {
        let named: Vec<String> = props
            .iter()
            .filter(|p| mentions(&r.message, &p.name))
            .map(Property::describe)
            .collect();
        let property_error = r.name.ends_with(".InvalidArgs") || r.name.ends_with(".PropertyReadOnly");
        if !named.is_empty() {
            return e.context(format!("systemd refused {} for unit {unit}", named.join(", ")));
        }
        if property_error {
            let all: Vec<String> = props.iter().map(Property::describe).collect();
            return e.context(format!(
                "systemd refused a property of unit {unit}; husk sent {}",
                all.join(", ")
            ));
        }
    }
    e.context(format!("--systemd-cgroup: create the container's scope {unit}"))
}

/// The (directory, expected cgroup path) pairs the init must be in, one
/// per hierarchy (v1, then the hybrid cgroup2 mount), each with whether
/// /proc/<pid>/cgroup (`own`) already has it there.
fn join_targets(cg: &Cgroup, own: &[mountinfo::OwnCgroup]) -> Vec<(PathBuf, bool)> {
    let rel =
        |mount: &Path, dir: &Path| -> Option<PathBuf> { dir.strip_prefix(mount).ok().map(|r| Path::new("/").join(r)) };
    let mut out = Vec::new();
    for d in &cg.v1 {
        let there = rel(&d.mount, &d.path).is_some_and(|want| {
            own.iter()
                .any(|o| o.controllers.iter().any(|c| d.controllers.contains(c)) && o.path == want)
        });
        out.push((d.path.clone(), there));
    }
    if let (Some(u), Some(m)) = (&cg.unified, &cg.unified_mount) {
        let there = rel(m, u).is_some_and(|want| own.iter().any(|o| o.controllers.is_empty() && o.path == want));
        out.push((u.clone(), there));
    }
    out
}

/// v1 and hybrid: write the init into every hierarchy systemd did not put
/// it in (the ones systemd does not manage: cpuset, freezer, net_cls …).
fn join_missing(cg: &Cgroup, pid: i32) -> Result<()> {
    let own = super::read_proc_cgroup(&pid.to_string()).unwrap_or_default();
    for (dir, there) in join_targets(cg, &own) {
        if there {
            continue;
        }
        let path = dir.join("cgroup.procs");
        super::write_file(&path, &pid.to_string()).map_err(|e| {
            anyhow!(
                "cannot move process {pid} into cgroup: write {pid} to {}: {}",
                path.display(),
                crate::sys::errno_text(&e)
            )
        })?;
    }
    Ok(())
}

/// `update` under the systemd driver: the new limits as unit properties
/// (SetUnitProperties, runtime), before the files; returns the resources
/// to write (the CPU quota rounded as systemd applies it).
pub fn set_resources(cg: &Cgroup, unit: &str, resources: &LinuxResources) -> Result<LinuxResources> {
    let v1 = cg.layout != Layout::V2;
    let connect = || Manager::connect(cg.systemd_user).with_context(|| format!("update the systemd unit {unit}"));
    let mut mgr: Option<Manager> = None;
    let version = if systemd::needs_version(resources, v1) {
        mgr.insert(connect()?).version()?
    } else {
        0
    };
    let rp = if v1 {
        systemd::resource_properties_v1(resources, version)?
    } else {
        systemd::resource_properties(resources, version)?
    };
    if !rp.properties.is_empty() {
        let m = match mgr.as_mut() {
            Some(m) => m,
            None => mgr.insert(connect()?),
        };
        m.set_properties(unit, &rp.properties)
            .map_err(|e| explain(e, unit, "", &rp.properties))?;
    }
    Ok(with_quota(resources, rp.cpu_quota))
}

/// Move `pid` into the container's cgroup: the cgroup.procs write, and for
/// a unit of the user's systemd that the write may not do, the user's
/// systemd. Moving a process needs write access to cgroup.procs of the
/// closest cgroup that holds both the old and the new one: when the caller
/// runs outside the user's systemd (a login session's session-N.scope, a
/// system service), that is a cgroup of root's, and the write fails with
/// EACCES. Then `AttachProcessesToUnit` on the user's systemd moves it,
/// which asks the system manager in turn (systemd 238+; runc 1.2 does the
/// same).
pub fn add_process(cg: &Cgroup, pid: i32) -> Result<()> {
    let written = cg.add_process(pid);
    let (Err(e), Some(unit), true) = (&written, &cg.systemd_unit, cg.systemd_user) else {
        return written;
    };
    crate::logging::step(
        "attach the process to the systemd unit",
        || format!("{pid} to {unit}"),
        || Manager::connect(true).and_then(|mut m| m.attach_processes(unit, "", &[pid as u32])),
    )
    .map_err(|e2| {
        anyhow!("{e:#}; and asking the user's systemd to move it (AttachProcessesToUnit {unit}) failed: {e2:#}")
    })
}

/// Stop the unit and wait until it is gone (a unit already gone is fine).
/// A failure is a warning: the caller removes the directories itself, and
/// systemd drops a scope whose cgroup has become empty on its own.
pub fn stop(unit: &str, user: bool) {
    let r = crate::logging::step(
        "stop the systemd unit",
        || unit.to_string(),
        || Manager::connect(user).and_then(|mut m| m.stop_unit(unit)),
    );
    if let Err(e) = r {
        crate::warn!(
            "cannot stop systemd unit {unit}: {e:#}; removing its cgroup directly (systemd drops an empty scope by itself)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undelegated_names_the_first_setting_without_its_controller() {
        let mem = super::super::Setting::new("memory.max", 1, "memory limit (linux.resources.memory.limit)");
        let cpus = super::super::Setting::new("cpuset.cpus", "0", "cpuset cpus (linux.resources.cpu.cpus)");
        let freeze = super::super::Setting::new("cgroup.freeze", 0, "freezer");
        let rsvd = super::super::Setting::new("hugetlb.2MB.rsvd.max", 1, "hugepage reservation").optional();
        assert_eq!(undelegated(&[&mem, &freeze, &rsvd], "cpu memory pids\n"), None);
        assert_eq!(
            undelegated(&[&mem, &cpus], "cpu memory pids\n"),
            Some(("cpuset cpus (linux.resources.cpu.cpus)", "cpuset".to_string()))
        );
        assert_eq!(
            undelegated(&[&mem], "cpu pids"),
            Some(("memory limit (linux.resources.memory.limit)", "memory".to_string()))
        );
    }
    use crate::dbus::Value;

    // systemd hosts' cgroup mounts (shared with tests/plan.rs's goldens)
    const HYBRID: &str = include_str!("../../tests/data/mountinfo/systemd-hybrid");
    const V1: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
";
    const V2: &str = include_str!("../../tests/data/mountinfo/v2");
    const PROC_DEVICES: &str = "Character devices:
  1 mem
  4 /dev/vc/0
  4 tty
  4 ttyS
  5 /dev/tty
  5 /dev/console
  5 /dev/ptmx
 10 misc
136 pts
180 usb
189 usb_device
226 drm
240 twin
241 twin

Block devices:
  7 loop
  8 sd
 65 sd
253 device-mapper
";

    fn mounts(text: &str) -> mountinfo::Mounts {
        mountinfo::parse_mountinfo(text).unwrap()
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn placement_becomes_a_cgroup_in_every_layout() {
        let p = systemd::parse_cgroups_path("system.slice:docker:abc", "x", false).unwrap();
        let path = p.dir(Path::new("/"), "/").unwrap();
        assert_eq!(path, Path::new("/system.slice/docker-abc.scope"));

        let cg = Cgroup::for_systemd(&mounts(V2), &path, &p.unit, false).unwrap();
        assert_eq!(cg.layout, Layout::V2);
        assert!(cg.v1.is_empty());
        assert_eq!(
            cg.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/system.slice/docker-abc.scope"))
        );
        assert_eq!(cg.systemd_unit.as_deref(), Some("docker-abc.scope"));
        assert_eq!(cg, {
            let mut v2 = Cgroup::new_v2_in(Path::new("/sys/fs/cgroup"), &path);
            v2.systemd_unit = Some("docker-abc.scope".into());
            v2
        });

        // v1 and hybrid: the unit's path in every hierarchy, systemd's own
        // (name=systemd) and the ones systemd does not manage (cpuset)
        let cg = Cgroup::for_systemd(&mounts(HYBRID), &path, &p.unit, false).unwrap();
        assert_eq!(cg.layout, Layout::Hybrid);
        let dirs: Vec<&Path> = cg.v1.iter().map(|d| d.path.as_path()).collect();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/cpu,cpuacct/system.slice/docker-abc.scope",
                "/sys/fs/cgroup/cpuset/system.slice/docker-abc.scope",
                "/sys/fs/cgroup/memory/system.slice/docker-abc.scope",
                "/sys/fs/cgroup/devices/system.slice/docker-abc.scope",
                "/sys/fs/cgroup/blkio/system.slice/docker-abc.scope",
                "/sys/fs/cgroup/pids/system.slice/docker-abc.scope",
                "/sys/fs/cgroup/systemd/system.slice/docker-abc.scope",
            ]
            .map(Path::new)
        );
        assert_eq!(
            cg.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/system.slice/docker-abc.scope"))
        );
        let cg = Cgroup::for_systemd(&mounts(V1), &path, &p.unit, false).unwrap();
        assert_eq!(cg.layout, Layout::V1);
        assert_eq!(cg.v1.len(), 3);
        assert!(cg.unified.is_none());

        // rootless: below the user manager's cgroup
        let p = systemd::parse_cgroups_path("", "ctr", true).unwrap();
        let path = p
            .dir(Path::new("/"), "/user.slice/user-1000.slice/user@1000.service")
            .unwrap();
        let cg = Cgroup::for_systemd(&mounts(V2), &path, &p.unit, true).unwrap();
        assert_eq!(
            cg.unified.as_deref(),
            Some(Path::new(
                "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/husk-ctr.scope"
            ))
        );
        assert!(cg.systemd_user);

        assert!(Cgroup::for_systemd(&mounts(V2), Path::new("/a/../b"), "u.scope", false).is_err());
        assert!(Cgroup::for_systemd(&mounts(V2), Path::new("a"), "u.scope", false).is_err());
    }

    #[test]
    fn driver_round_trips_through_the_state() {
        let p = systemd::parse_cgroups_path("machine.slice:libpod:abc", "x", false).unwrap();
        let path = p.dir(Path::new("/"), "/").unwrap();
        let cg = Cgroup::for_systemd(&mounts(HYBRID), &path, &p.unit, false).unwrap();
        let json = serde_json::to_string(&cg).unwrap();
        assert!(json.contains("\"systemd_unit\":\"libpod-abc.scope\""), "{json}");
        assert!(!json.contains("systemd_user"), "{json}");
        assert_eq!(serde_json::from_str::<Cgroup>(&json).unwrap(), cg);
        let user = Cgroup {
            systemd_user: true,
            ..cg.clone()
        };
        let json = serde_json::to_string(&user).unwrap();
        assert!(json.contains("\"systemd_user\":true"), "{json}");
        assert_eq!(serde_json::from_str::<Cgroup>(&json).unwrap(), user);
        // a cgroupfs cgroup: the record husk always wrote
        let fs = Cgroup {
            systemd_unit: None,
            systemd_user: false,
            ..cg
        };
        let json = serde_json::to_string(&fs).unwrap();
        assert!(!json.contains("systemd_"), "{json}");
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back.systemd_unit, None);
    }

    fn default_rules() -> DeviceState {
        let mut rules = vec![{
            let mut r = oci_spec::runtime::LinuxDeviceCgroup::default();
            r.set_allow(false);
            r.set_access(Some("rwm".into()));
            r
        }];
        rules.extend(crate::cgroups::default_device_rules());
        DeviceState::from_rules(&rules).unwrap()
    }

    fn allow_list(p: &[Property]) -> Vec<(String, String)> {
        let dev = p.iter().find(|p| p.name == "DeviceAllow").unwrap();
        let Value::Array(sig, items) = &dev.value else { panic!() };
        assert_eq!(sig, "(ss)");
        items
            .iter()
            .map(|i| {
                let Value::Struct(f) = i else { panic!() };
                (f[0].as_str().unwrap().to_string(), f[1].as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn device_rules_become_device_allow() {
        let (p, w) = device_properties(&default_rules(), PROC_DEVICES);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(p[0], Property::string("DevicePolicy", "strict"));
        let l = allow_list(&p);
        let want = [
            ("char-*", "m"),
            ("block-*", "m"),
            ("/dev/char/1:3", "rwm"),
            ("/dev/char/1:8", "rwm"),
            ("/dev/char/1:7", "rwm"),
            ("/dev/char/5:0", "rwm"),
            ("/dev/char/1:5", "rwm"),
            ("/dev/char/1:9", "rwm"),
            ("char-pts", "rwm"),
            ("/dev/char/5:2", "rwm"),
            ("/dev/char/10:200", "rwm"),
        ];
        assert_eq!(l, want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec(), "{l:?}");

        // groups: only a name that stands for that major alone
        let devs = proc_devices(PROC_DEVICES);
        assert_eq!(device_group(&devs, DevKind::Char, 4).as_deref(), Some("char-tty"));
        assert_eq!(device_group(&devs, DevKind::Char, 136).as_deref(), Some("char-pts"));
        assert_eq!(device_group(&devs, DevKind::Char, 240), None, "twin is 240 and 241");
        assert_eq!(device_group(&devs, DevKind::Block, 8), None, "sd is 8 and 65");
        assert_eq!(
            device_group(&devs, DevKind::Block, 253).as_deref(),
            Some("block-device-mapper")
        );
        assert_eq!(device_group(&devs, DevKind::Char, 99), None);

        // what systemd cannot say is left out, with a warning
        let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "minor": 5, "access": "r"},
                {"allow": true, "type": "b", "major": 8, "access": "rw"},
                {"allow": true, "type": "b", "major": 253, "access": "r"}]"#,
        )
        .unwrap();
        let (p, w) = device_properties(&DeviceState::from_rules(&rules).unwrap(), PROC_DEVICES);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("c *:5 r"), "{w:?}");
        assert!(w[1].contains("b 8:* rw"), "{w:?}");
        assert_eq!(allow_list(&p), vec![("block-device-mapper".into(), "r".into())]);

        // allow all: no policy; a deny list: deny all (never wider)
        let all: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": true, "access": "rwm"}]"#).unwrap();
        let (p, w) = device_properties(&DeviceState::from_rules(&all).unwrap(), PROC_DEVICES);
        assert!(w.is_empty());
        assert_eq!(p[0], Property::string("DevicePolicy", "auto"));
        assert!(allow_list(&p).is_empty());
        let deny: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#,
        )
        .unwrap();
        let (p, w) = device_properties(&DeviceState::from_rules(&deny).unwrap(), PROC_DEVICES);
        assert_eq!(w.len(), 1);
        assert_eq!(p[0], Property::string("DevicePolicy", "strict"));
        assert!(allow_list(&p).is_empty());
    }

    #[test]
    fn properties_per_layout_and_device_back_end() {
        let path = Path::new("/system.slice/husk-x.scope");
        let r = res(r#"{"memory": {"limit": 1048576, "reservation": 4096},
                       "cpu": {"shares": 512, "quota": 12345, "period": 100000},
                       "blockIO": {"weight": 300}, "pids": {"limit": 42},
                       "devices": [{"allow": false, "access": "rwm"},
                                   {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#);
        // hybrid: v1 names, and device rules (a v1 devices hierarchy)
        let cg = Cgroup::for_systemd(&mounts(HYBRID), path, "husk-x.scope", false).unwrap();
        let (p, adjusted, _) = unit_properties(&cg, &r, 252, PROC_DEVICES).unwrap();
        let names: Vec<String> = p.iter().map(Property::describe).collect();
        assert_eq!(
            names,
            [
                "DevicePolicy=strict",
                "DeviceAllow=/dev/char/1:3 rwm",
                "MemoryLimit=1048576",
                "CPUShares=512",
                "CPUQuotaPeriodUSec=100000",
                "CPUQuotaPerSecUSec=130000",
                "BlockIOWeight=300",
                "TasksMax=42",
            ]
        );
        // the rounded quota is the one written
        assert_eq!(adjusted.cpu().as_ref().unwrap().quota(), Some(13_000));
        assert_eq!(adjusted.memory(), r.memory());
        let plan = cg.plan(&adjusted, true).unwrap();
        let quota = plan.writes.iter().find(|(_, s)| s.file == "cpu.cfs_quota_us").unwrap();
        assert_eq!(quota.1.value, "13000");
        let shares = plan.writes.iter().find(|(_, s)| s.file == "cpu.shares").unwrap();
        assert_eq!(shares.1.value, "512");

        // pure v2: v2 names, CPUWeight equal to the cpu.weight written, IOWeight, no device properties
        let cg = Cgroup::for_systemd(&mounts(V2), path, "husk-x.scope", false).unwrap();
        let (p, adjusted, _) = unit_properties(&cg, &r, 252, PROC_DEVICES).unwrap();
        let names: Vec<String> = p.iter().map(Property::describe).collect();
        assert_eq!(
            names,
            [
                "MemoryMax=1048576",
                "MemoryLow=4096",
                "CPUWeight=59",
                "CPUQuotaPeriodUSec=100000",
                "CPUQuotaPerSecUSec=130000",
                "TasksMax=42",
                // blockIO.weight 300, converted as the v2 driver converts it
                "IOWeight=2930",
            ]
        );
        let plan = cg.plan(&adjusted, true).unwrap();
        let get = |f: &str| plan.writes.iter().find(|(_, s)| s.file == f).unwrap().1.value.clone();
        assert_eq!(get("cpu.weight"), "59");
        assert_eq!(get("cpu.max"), "13000 100000");
        assert_eq!(get("memory.max"), "1048576");
        assert!(matches!(plan.devices, Some(crate::cgroups::DevicePlan::Bpf(..))));

        // the unified cpu.max is the one rounded when it is there
        let r = res(r#"{"cpu": {"quota": 50000}, "unified": {"cpu.max": "12345 100000"}}"#);
        let (p, adjusted, _) = unit_properties(&cg, &r, 252, "").unwrap();
        assert_eq!(p.last().unwrap().describe(), "CPUQuotaPerSecUSec=130000");
        assert_eq!(adjusted.unified().as_ref().unwrap()["cpu.max"], "13000 100000");
        let r = res(r#"{"unified": {"cpu.max": "max"}}"#);
        let (_, adjusted, _) = unit_properties(&cg, &r, 252, "").unwrap();
        assert_eq!(adjusted.unified().as_ref().unwrap()["cpu.max"], "max 100000");
        // no quota: nothing changes
        let r = res(r#"{"cpu": {"shares": 100}}"#);
        assert_eq!(with_quota(&r, None), r);
    }

    #[test]
    fn version_is_asked_only_when_it_matters() {
        for (json, v2, v1) in [
            (r#"{"memory": {"limit": 1}, "pids": {"limit": 3}}"#, false, false),
            (r#"{"cpu": {"shares": 512}}"#, false, false),
            (r#"{"cpu": {"quota": 1000}}"#, true, true),
            (r#"{"cpu": {"period": 1000}}"#, true, true),
            (r#"{"cpu": {"cpus": "0-1"}}"#, true, false),
            (r#"{"cpu": {"idle": 1}}"#, true, false),
            (r#"{"unified": {"cpu.max": "max"}}"#, true, false),
            (r#"{"unified": {"memory.high": "5"}}"#, false, false),
        ] {
            let r = res(json);
            assert_eq!(systemd::needs_version(&r, false), v2, "{json}");
            assert_eq!(systemd::needs_version(&r, true), v1, "{json}");
            // where it does not matter, any version gives the same properties
            if !v2 {
                assert_eq!(
                    systemd::resource_properties(&r, 0).unwrap(),
                    systemd::resource_properties(&r, u32::MAX).unwrap(),
                    "{json}"
                );
            }
            if !v1 {
                assert_eq!(
                    systemd::resource_properties_v1(&r, 0).unwrap(),
                    systemd::resource_properties_v1(&r, u32::MAX).unwrap(),
                    "{json}"
                );
            }
        }
    }

    #[test]
    fn version_conditions_name_the_ranges() {
        let lows = [0, 242, 244, 252];
        assert_eq!(version_condition(&[0, 1, 2, 3], &lows), None);
        let c = |r: &[usize]| version_condition(r, &lows).unwrap();
        assert!(
            c(&[1, 2, 3]).starts_with("only if systemd >= 242;"),
            "{}",
            c(&[1, 2, 3])
        );
        assert!(c(&[0, 1, 2]).starts_with("only if systemd < 252;"), "{}", c(&[0, 1, 2]));
        assert!(
            c(&[1, 3]).starts_with("only if 242 <= systemd < 244 or systemd >= 252;"),
            "{}",
            c(&[1, 3])
        );
    }

    #[test]
    fn the_init_is_joined_only_where_systemd_did_not_put_it() {
        let path = Path::new("/system.slice/husk-x.scope");
        let cg = Cgroup::for_systemd(&mounts(HYBRID), path, "husk-x.scope", false).unwrap();
        let own = mountinfo::parse_proc_cgroup(
            "9:name=systemd:/system.slice/husk-x.scope\n5:devices:/system.slice/husk-x.scope\n\
             4:memory:/system.slice/husk-x.scope\n3:cpuset:/\n2:cpu,cpuacct:/user.slice\n0::/system.slice/husk-x.scope\n",
        )
        .unwrap();
        let t = join_targets(&cg, &own);
        let missing: Vec<String> = t
            .iter()
            .filter(|(_, there)| !there)
            .map(|(d, _)| d.display().to_string())
            .collect();
        assert_eq!(
            missing,
            [
                "/sys/fs/cgroup/cpu,cpuacct/system.slice/husk-x.scope",
                "/sys/fs/cgroup/cpuset/system.slice/husk-x.scope",
                "/sys/fs/cgroup/blkio/system.slice/husk-x.scope",
                "/sys/fs/cgroup/pids/system.slice/husk-x.scope"
            ]
        );
        assert_eq!(t.len(), 8);
        // nothing known: every hierarchy
        assert!(join_targets(&cg, &[]).iter().all(|(_, there)| !there));
    }

    #[test]
    fn refusals_name_the_property_and_value() {
        let remote = |name: &str, msg: &str| {
            anyhow::Error::new(dbus::RemoteError {
                name: name.into(),
                message: msg.into(),
            })
        };
        let props = vec![Property::u64("TasksMax", 7), Property::u64("MemoryMax", u64::MAX)];
        let e = explain(
            remote(
                "org.freedesktop.DBus.Error.InvalidArgs",
                "Value specified in TasksMax is out of range",
            ),
            "husk-x.scope",
            "",
            &props,
        );
        assert_eq!(
            format!("{e:#}"),
            "systemd refused TasksMax=7 for unit husk-x.scope: org.freedesktop.DBus.Error.InvalidArgs: \
             Value specified in TasksMax is out of range"
        );
        let e = explain(
            remote("org.freedesktop.DBus.Error.InvalidArgs", "Invalid argument"),
            "husk-x.scope",
            "",
            &props,
        );
        assert!(
            format!("{e:#}").starts_with(
                "systemd refused a property of unit husk-x.scope; husk sent TasksMax=7, MemoryMax=infinity:"
            ),
            "{e:#}"
        );
        let e = explain(
            remote(systemd::UNIT_EXISTS, "Unit docker-a.scope already exists."),
            "docker-a.scope",
            "system.slice:docker:a",
            &props,
        );
        assert!(
            format!("{e:#}").starts_with(
                "systemd unit docker-a.scope (cgroupsPath \"system.slice:docker:a\") already exists and is active"
            ),
            "{e:#}"
        );
        assert!(mentions(
            "Cannot set property TasksMax, or unknown property.",
            "TasksMax"
        ));
        assert!(!mentions("Cannot set property TasksMaxScale.", "TasksMax"));
        let e = explain(anyhow!("timeout"), "u.scope", "", &props);
        assert_eq!(
            format!("{e:#}"),
            "--systemd-cgroup: create the container's scope u.scope: timeout"
        );
    }
}
