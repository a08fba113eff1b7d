//! `husk plan`: what husk would do with this bundle on this host — the
//! init's steps from [`crate::plan::plan`] (the very list the init
//! executes) and the cgroup files and values the cgroups module plans —
//! printed without creating anything (no namespace, cgroup or file).

use anyhow::{Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

use crate::plan::{HostFacts, MountOp, Options, Plan, Step};
use crate::sys::ErrnoResult as _;

pub struct PlanArgs {
    pub bundle: PathBuf,
    pub json: bool,
    pub id: String,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// The state directory root (`--root`): where create would put the
    /// sd_notify directory.
    pub state_root: PathBuf,
    pub systemd_cgroup: bool,
    pub rootless: bool,
}

/// The cgroup writes create would make: (file, value) pairs, or why none.
fn cgroup_writes(b: &crate::bundle::Bundle, id: &str, rootless: bool) -> Result<Vec<(PathBuf, String)>, String> {
    let path = b.spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
    let cg = crate::cgroups::Cgroup::new(path, id).map_err(|e| format!("{e:#}"))?;
    let res = crate::container::cgroupfs_resources(b, rootless).map_err(|e| format!("{e:#}"))?;
    cg.planned_settings(&res)
        .map(|v| v.into_iter().map(|(dir, s)| (dir.join(&s.file), s.value)).collect())
        .map_err(|e| format!("{e:#}"))
}

/// The systemd driver's part of the plan for bundle `b` on the cgroup
/// mounts `mounts` and /proc/devices `proc_devices`: what create asks of
/// systemd and writes itself ([`crate::cgroups::scope::ScopePlan::describe`],
/// from the same plan and resources create uses). No connection is made.
fn systemd_description(
    b: &crate::bundle::Bundle,
    id: &str,
    rootless: bool,
    mounts: crate::cgroups::mountinfo::Mounts,
    proc_devices: &str,
) -> Result<crate::cgroups::scope::ScopeDescription> {
    let scope = crate::container::scope_plan(b, id, rootless, mounts)?;
    let r = crate::container::scope_resources(b, &scope);
    scope.describe(id, &r, proc_devices)
}

/// The systemd driver's section of `husk plan`, as text and as JSON, for
/// bundle `b` on a host whose /proc/self/mountinfo and /proc/devices say
/// `mountinfo` and `proc_devices` (tests feed fixed ones; `husk plan`
/// reads this host's). `systemd_running`: whether this host runs systemd
/// (create refuses the driver without it; the plan is printed anyway).
pub fn systemd_section(
    b: &crate::bundle::Bundle,
    id: &str,
    rootless: bool,
    mountinfo: &str,
    proc_devices: &str,
    systemd_running: bool,
) -> (String, serde_json::Value) {
    let d = crate::cgroups::mountinfo::parse_mountinfo(mountinfo)
        .and_then(|m| systemd_description(b, id, rootless, m, proc_devices))
        .map_err(|e| format!("{e:#}"));
    (render_systemd(&d, systemd_running), systemd_json(&d, systemd_running))
}

fn systemd_json(d: &Result<crate::cgroups::scope::ScopeDescription, String>, running: bool) -> serde_json::Value {
    match d {
        Ok(d) => json!({"systemd": d, "systemd_running": running}),
        Err(e) => json!({"error": e, "systemd_running": running}),
    }
}

fn render_systemd(d: &Result<crate::cgroups::scope::ScopeDescription, String>, running: bool) -> String {
    let mut s = String::from("cgroup (systemd driver; this plan asked systemd nothing):\n");
    if !running {
        s.push_str(&format!("     note: {:#}\n", crate::cgroups::scope::not_booted()));
    }
    let d = match d {
        Ok(d) => d,
        Err(e) => {
            s.push_str(&format!("     not planned: {e}\n"));
            return s;
        }
    };
    s.push_str(&format!(
        "     {} starts the unit {} in {} (StartTransientUnit, the init as its process) with:\n",
        d.manager, d.unit, d.slice
    ));
    for p in &d.properties {
        match &p.only_if {
            Some(c) => s.push_str(&format!("       {}  ({c})\n", p.property)),
            None => s.push_str(&format!("       {}\n", p.property)),
        }
    }
    if d.version_asked {
        s.push_str("     (create asks systemd its version: some of these depend on it)\n");
    }
    if d.manager != "systemd" {
        s.push_str(&format!(
            "     {}: only the user's systemd knows it (create asks it; it also checks that \
             every controller a limit needs is delegated there)\n",
            crate::cgroups::scope::USER_MANAGER_CGROUP
        ));
    }
    s.push_str("     its cgroup:\n");
    for dir in &d.cgroup {
        s.push_str(&format!("       {}\n", dir.display()));
    }
    s.push_str(if d.layout == crate::cgroups::Layout::V2 {
        "     then husk writes:\n"
    } else {
        "     then husk makes the directories systemd did not, writes the init into the hierarchies \
         systemd did not put it in, and writes:\n"
    });
    if d.files.is_empty() {
        s.push_str("       none\n");
    }
    for f in &d.files {
        s.push_str(&format!("       {} = {:?}\n", f.file.display(), f.value));
    }
    if let Some(dev) = &d.devices {
        s.push_str(&format!("     devices: {dev}\n"));
    }
    for w in &d.warnings {
        s.push_str(&format!("     warning: {w}\n"));
    }
    s.push_str(&format!(
        "     the init waits for the cgroup before its rootfs setup: {}\n",
        if d.init_waits_for_cgroup {
            "yes (systemd and husk rewrite the v1 device rules: deny all, then allow)"
        } else {
            "no"
        }
    ));
    s
}

pub fn plan(a: &PlanArgs) -> Result<i32> {
    let b = crate::bundle::load(&a.bundle)?;
    // As create: relative bind sources are taken against the bundle.
    std::env::set_current_dir(&b.dir)
        .errno()
        .with_context(|| format!("chdir to the bundle {}", b.dir.display()))?;
    let facts = HostFacts::gather();
    // What create's environment and flags add, as create derives them.
    let notify = std::env::var("NOTIFY_SOCKET").ok().filter(|s| !s.is_empty());
    let scope = if a.systemd_cgroup {
        let running = crate::systemd::booted();
        // as create reads them (the one reader of each)
        let d = crate::cgroups::read_mounts()
            .and_then(|m| {
                let v1 = m.layout()? != crate::cgroups::Layout::V2;
                let devices = if v1 {
                    crate::cgroups::scope::read_proc_devices()
                } else {
                    String::new()
                };
                systemd_description(&b, &a.id, a.rootless, m, &devices)
            })
            .map_err(|e| format!("{e:#}"));
        Some((d, running))
    } else {
        None
    };
    let cgroup_before_setup = matches!(&scope, Some((Ok(d), _)) if d.init_waits_for_cgroup);
    let o = Options {
        id: a.id.clone(),
        rootfs: b.rootfs.clone(),
        bundle_dir: b.dir.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        console_socket: a.console_socket.clone(),
        notify_dir: notify.map(|_| a.state_root.join(&a.id).join("notify")),
        cgroup_before_setup,
    };
    let p = crate::plan::plan(&b.spec, &o, &facts)?;
    let hooks = hooks_summary(&b.spec);
    let join = match &scope {
        Some((Ok(d), _)) => CgroupJoin::Systemd { unit: d.unit.clone() },
        Some((Err(e), _)) => CgroupJoin::NotPlanned(e.clone()),
        None => CgroupJoin::cgroupfs(&b.spec, &a.id, a.rootless),
    };
    let runtime = runtime_steps(
        &b.spec,
        &p,
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
        &join,
    );
    if a.json {
        let cg = match &scope {
            Some((d, running)) => systemd_json(d, *running),
            None => match cgroup_writes(&b, &a.id, a.rootless) {
                Ok(w) => json!(
                    w.iter()
                        .map(|(f, v)| json!({"file": f, "value": v}))
                        .collect::<Vec<_>>()
                ),
                Err(e) => json!({"error": e}),
            },
        };
        let v = json!({
            "host": facts,
            "options": o,
            "runtime": runtime,
            "steps": p.steps,
            "cgroup": cg,
            "hooks": hooks,
        });
        crate::output::out(&(serde_json::to_string_pretty(&v)? + "\n"));
        return Ok(0);
    }
    let cgroup = match &scope {
        Some((d, running)) => render_systemd(d, *running),
        None => render_cgroupfs(&cgroup_writes(&b, &a.id, a.rootless)),
    };
    crate::output::out(&render(&runtime, &p, &cgroup, &hooks));
    Ok(0)
}

/// One thing husk itself (the runtime process, not the init) does for a
/// create, in order: its `--debug` timeline name where it has one, and
/// what it acts on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuntimeStep {
    pub step: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

fn rstep(step: impl Into<String>, details: Vec<String>) -> RuntimeStep {
    RuntimeStep {
        step: step.into(),
        details,
    }
}

/// How the init gets into its cgroup, as create decides it.
pub enum CgroupJoin {
    /// The cgroupfs driver's cgroup: cloned into `clone_into` (pure v2,
    /// clone3), else the pid written to cgroup.procs of each of `procs`.
    /// `rootless`: no cgroup at all when the tree is not writable and the
    /// config sets no limits.
    Cgroupfs {
        clone_into: Option<PathBuf>,
        procs: Vec<PathBuf>,
        rootless: bool,
    },
    /// The systemd driver: systemd moves the init into `unit`.
    Systemd { unit: String },
    /// No cgroup planned, and why.
    NotPlanned(String),
}

impl CgroupJoin {
    /// The cgroupfs driver's join for container `id` of `spec`, from the
    /// cgroup create makes ([`crate::cgroups::Cgroup::new`]).
    fn cgroupfs(spec: &oci_spec::runtime::Spec, id: &str, rootless: bool) -> CgroupJoin {
        let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
        match crate::cgroups::Cgroup::new(path, id) {
            Ok(cg) => CgroupJoin::Cgroupfs {
                clone_into: cg.unified.clone().filter(|_| cg.clones_into()),
                procs: cg.all_dirs().into_iter().map(Path::to_path_buf).collect(),
                rootless,
            },
            Err(e) => CgroupJoin::NotPlanned(format!("{e:#}")),
        }
    }
}

/// What husk itself does for a create of `spec` whose init runs `steps`,
/// as husk (euid `euid`, egid `egid`) would: each item from the helper
/// create calls (the namespace plan, the id map writes, the id-mapped
/// mounts, the network devices, the bind sources husk opens, the cgroup
/// join, the hooks husk runs).
pub fn runtime_steps(
    spec: &oci_spec::runtime::Spec,
    steps: &Plan,
    euid: u32,
    egid: u32,
    cgroup: &CgroupJoin,
) -> Vec<RuntimeStep> {
    use crate::namespaces::{self, TABLE};
    use oci_spec::runtime::LinuxNamespaceType as T;
    let ns = namespaces::Plan::from_spec(spec);
    let mut out = Vec::new();
    let new: Vec<&str> = TABLE
        .iter()
        .filter(|(t, ..)| ns.new_ns(*t) && !matches!(t, T::Time | T::Cgroup))
        .map(|(_, name, ..)| *name)
        .collect();
    let new = if new.is_empty() {
        "none".to_string()
    } else {
        new.join(" ")
    };
    let mut clone = Vec::new();
    if let CgroupJoin::Cgroupfs {
        clone_into: Some(dir), ..
    } = cgroup
    {
        clone.push(format!(
            "clone3(CLONE_INTO_CGROUP) into {} (if the kernel refuses: a plain clone, then cgroup.procs)",
            dir.display()
        ));
    }
    if ns.direct() {
        clone.insert(0, format!("new namespaces: {new}"));
        out.push(rstep("clone the init", clone));
    } else {
        let mut d: Vec<String> = ns
            .joins
            .iter()
            .map(|(t, p)| format!("setns {} {}", namespaces::config_name(*t), p.display()))
            .collect();
        if ns.new_time {
            let offs: Vec<String> = ns
                .time_offsets
                .iter()
                .map(|(c, s, n)| format!("{c} {s}s {n}ns"))
                .collect();
            d.push(format!(
                "unshare a time namespace, offsets: {}",
                if offs.is_empty() {
                    "none".into()
                } else {
                    offs.join(", ")
                }
            ));
        }
        d.push(format!("clone the init (CLONE_PARENT), new namespaces: {new}"));
        d.extend(clone);
        out.push(rstep(
            "fork an intermediate process that joins the namespaces (user first)",
            d,
        ));
    }
    if ns.new_cgroup_ns {
        out.push(rstep(
            "(the init unshares its cgroup namespace once in its cgroup)",
            Vec::new(),
        ));
    }
    if ns.new_ns(T::User)
        && let Some(linux) = spec.linux()
    {
        let d = crate::process::id_map_writes(linux, euid, egid)
            .into_iter()
            .map(|w| match w {
                crate::process::IdMapWrite::File { name, content } => {
                    format!("write {content:?} to /proc/<init>/{name}")
                }
                crate::process::IdMapWrite::Helper { tool, args } => format!("run {tool} <init> {}", args.join(" ")),
            })
            .collect();
        out.push(rstep(crate::process::STEP_ID_MAPS, d));
    }
    let idmapped: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, m)| {
            let im = crate::idmap::of(m)?;
            Some(format!(
                "mounts[{i}] {} from {}{}: in {}",
                m.destination().display(),
                m.source().as_deref().unwrap_or(Path::new("")).display(),
                if im.recursive { " (every mount of the tree)" } else { "" },
                if im.own_mappings {
                    "a throwaway user namespace with the mount's own mappings"
                } else {
                    "the container's user namespace"
                }
            ))
        })
        .collect();
    if !idmapped.is_empty() {
        out.push(rstep(crate::process::STEP_IDMAP_TREES, idmapped));
    }
    for (host, inside) in crate::netdev::devices(spec) {
        out.push(rstep(
            crate::netdev::STEP_MOVE,
            vec![format!("{host} as {inside} (its permanent global addresses kept)")],
        ));
    }
    let sources: Vec<String> = crate::process::husk_bind_sources(steps)
        .into_iter()
        .map(|(i, m, src)| format!("mounts[{i}] {}: {}", m.destination.display(), src.display()))
        .collect();
    if !sources.is_empty() {
        out.push(rstep(crate::process::STEP_BIND_SOURCES, sources));
    }
    out.push(rstep("send G (the init goes on)", Vec::new()));
    let oom = spec
        .process()
        .as_ref()
        .and_then(|p| p.oom_score_adj())
        .map(|v| format!("write {v} to /proc/<init>/oom_score_adj"));
    let (label, mut d) = match cgroup {
        CgroupJoin::Cgroupfs {
            clone_into: Some(_), ..
        } => (crate::process::STEP_IN_CGROUP, Vec::new()),
        CgroupJoin::Cgroupfs { procs, rootless, .. } => {
            let mut d: Vec<String> = procs
                .iter()
                .map(|p| format!("write the init's pid to {}/cgroup.procs", p.display()))
                .collect();
            if *rootless {
                d.push("rootless: no cgroup when the tree is not writable and the config sets no limits".into());
            }
            (crate::process::STEP_JOIN_CGROUP, d)
        }
        CgroupJoin::Systemd { unit } => (
            crate::process::STEP_JOIN_CGROUP,
            vec![format!(
                "the systemd scope {unit} is started with the init in it (see cgroup below)"
            )],
        ),
        CgroupJoin::NotPlanned(e) => (crate::process::STEP_JOIN_CGROUP, vec![format!("not planned: {e}")]),
    };
    d.extend(oom);
    out.push(rstep(label, d));
    out.push(rstep("send C (in its cgroup)", Vec::new()));
    #[allow(deprecated)]
    let count = |f: fn(&oci_spec::runtime::Hooks) -> &Option<Vec<oci_spec::runtime::Hook>>| {
        spec.hooks().as_ref().and_then(|h| f(h).as_ref()).map_or(0, Vec::len)
    };
    #[allow(deprecated)]
    let (prestart, create_runtime) = (count(|h| h.prestart()), count(|h| h.create_runtime()));
    if prestart + create_runtime > 0 {
        out.push(rstep(
            "run hooks when the init asks (H)",
            vec![format!(
                "prestart: {prestart}, createRuntime: {create_runtime} (in the runtime's namespaces)"
            )],
        ));
    }
    out.push(rstep("write state.json and the --pid-file, send A", Vec::new()));
    let (poststart, poststop) = (count(|h| h.poststart()), count(|h| h.poststop()));
    if poststart > 0 {
        out.push(rstep(
            format!("husk start: run {poststart} poststart hooks after the exec"),
            Vec::new(),
        ));
    }
    if poststop > 0 {
        out.push(rstep(format!("husk delete: run {poststop} poststop hooks"), Vec::new()));
    }
    out
}

/// husk's own steps as text: "husk (the runtime process) will:" and one
/// line each.
pub fn render_runtime(steps: &[RuntimeStep]) -> String {
    let mut s = String::from("husk (the runtime process) will:\n");
    for st in steps {
        s.push_str(&format!("     - {}\n", st.step));
        for d in &st.details {
            s.push_str(&format!("         {d}\n"));
        }
    }
    s
}

fn hooks_summary(spec: &oci_spec::runtime::Spec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(h) = spec.hooks() else { return out };
    #[allow(deprecated)]
    let kinds = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in kinds {
        for hook in list.iter().flatten() {
            let mut line = hook.path().display().to_string();
            if let Some(args) = hook.args() {
                line = format!("{line} {args:?}");
            }
            if let Some(t) = hook.timeout() {
                line.push_str(&format!(" (timeout {t}s)"));
            }
            out.push((kind.to_string(), line));
        }
    }
    out
}

/// The human-readable plan: husk's own steps ([`render_runtime`]), then one
/// numbered line per init step (the words the `--debug` timeline uses),
/// details indented below it; then the cgroup
/// section ([`render_cgroupfs`], or the systemd driver's) and the hooks.
pub fn render(runtime: &[RuntimeStep], p: &Plan, cgroup: &str, hooks: &[(String, String)]) -> String {
    let mut s = render_runtime(runtime);
    s.push_str(&render_steps("init steps (as the --debug timeline names them):", p));
    s.push_str(cgroup);
    s.push_str("hooks:\n");
    if hooks.is_empty() {
        s.push_str("     none\n");
    }
    for (k, h) in hooks {
        s.push_str(&format!("     {k}: {h}\n"));
    }
    s
}

/// `title`, then one numbered line per step of `p` (the words the
/// `--debug` timeline uses), details indented below it.
pub fn render_steps(title: &str, p: &Plan) -> String {
    let mut s = format!("{title}\n");
    for (i, st) in p.steps.iter().enumerate() {
        s.push_str(&format!("{:3}. {}\n", i + 1, st.label()));
        for d in details(st) {
            s.push_str(&format!("       {d}\n"));
        }
    }
    s
}

/// The cgroupfs driver's section: the files husk writes before the clone.
pub fn render_cgroupfs(cgroup: &Result<Vec<(PathBuf, String)>, String>) -> String {
    let mut s = String::from("cgroup files (written by husk before the clone):\n");
    match cgroup {
        Ok(w) if w.is_empty() => s.push_str("     none\n"),
        Ok(w) => {
            for (f, v) in w {
                s.push_str(&format!("     {} = {v:?}\n", f.display()));
            }
        }
        Err(e) => s.push_str(&format!("     not planned: {e}\n")),
    }
    s
}

fn details(st: &Step) -> Vec<String> {
    let mut d = Vec::new();
    match st {
        Step::Mount(m) => {
            match &m.op {
                MountOp::Bind {
                    source,
                    recursive,
                    remount,
                    keep_locked_except,
                } => {
                    d.push(format!(
                        "bind{} from {}",
                        if *recursive { " (recursive)" } else { "" },
                        match source {
                            crate::plan::BindSource::Path(p) => format!("{} (opened by the init)", p.display()),
                            crate::plan::BindSource::FromHusk(p) =>
                                format!("{} (opened by husk, sent with F)", p.display()),
                            crate::plan::BindSource::IdmappedTree { source, ridmap } => format!(
                                "{} (id-mapped tree{}, made by husk, sent with F)",
                                source.display(),
                                if *ridmap { ", recursive" } else { "" }
                            ),
                        }
                    ));
                    if let Some(f) = remount {
                        d.push(format!(
                            "remount MS_REMOUNT|MS_BIND|{f} + locked flags except {keep_locked_except}"
                        ));
                    }
                }
                MountOp::Cgroup {
                    flags,
                    cgroup_ns,
                    rootless_fallback,
                } => {
                    d.push(format!(
                        "cgroup hierarchies, flags {flags}, {}",
                        if *cgroup_ns {
                            "mounted fresh (cgroup namespace)"
                        } else {
                            "the container's directories bound"
                        }
                    ));
                    if *rootless_fallback {
                        d.push("fallback: a missing hierarchy → read-only empty tmpfs".into());
                    }
                }
                MountOp::Sysfs {
                    flags,
                    data,
                    userns_fallback,
                } => {
                    d.push(format!(
                        "sysfs, flags {flags}, data {:?}",
                        data.as_deref().unwrap_or("")
                    ));
                    if *userns_fallback {
                        d.push("fallback: EPERM → bind the host's /sys read-only all through".into());
                    }
                }
                MountOp::Fs {
                    source,
                    fstype,
                    flags,
                    data,
                    mode_of_directory,
                    copy_up,
                    ..
                } => {
                    d.push(format!(
                        "mount({source:?}, type {}, flags {flags}, data {:?})",
                        fstype.as_deref().unwrap_or("none"),
                        data.as_deref().unwrap_or("")
                    ));
                    if *mode_of_directory {
                        d.push("mode= of the existing directory first".into());
                    }
                    if *copy_up {
                        d.push("tmpcopyup: the directory's content copied in".into());
                    }
                }
            }
            if let Some(r) = &m.recursive_attrs {
                d.push(format!(
                    "mount_setattr(AT_RECURSIVE) set {:#x} clear {:#x} ({})",
                    r.set,
                    r.clear,
                    r.words.join(",")
                ));
            }
            for p in &m.propagation {
                d.push(format!("propagation {p}"));
            }
        }
        Step::Device(dev) => d.push(format!(
            "mode {:04o}, uid {}, gid {}",
            dev.mode,
            dev.uid.map_or("-".into(), |u| u.to_string()),
            dev.gid.map_or("-".into(), |g| g.to_string())
        )),
        Step::Sysctl { path, .. } => d.push(format!("write to {path}")),
        Step::Executable {
            args, env, final_cpus, ..
        } => {
            d.push(format!("args {args:?}"));
            d.push(format!("env {env:?}"));
            if let Some(c) = final_cpus {
                d.push(format!("execCPUAffinity.final {c} (right before execve)"));
            }
        }
        Step::Capabilities { sets, .. } => {
            for (n, set) in [
                ("bounding", &sets.bounding),
                ("effective", &sets.effective),
                ("permitted", &sets.permitted),
                ("inheritable", &sets.inheritable),
                ("ambient", &sets.ambient),
            ] {
                d.push(format!(
                    "{n}: {}",
                    if set.is_empty() { "none".into() } else { set.join(" ") }
                ));
            }
        }
        Step::SeccompBuild(sc) => d.push(format!(
            "default {}{}, {} rules ({} syscalls), architectures [{}], flags [{}], listener {}, loaded {}",
            sc.default_action,
            sc.default_errno.map_or(String::new(), |e| format!(" (errno {e})")),
            sc.rules,
            sc.syscalls,
            sc.architectures.join(" "),
            sc.flags.join(" "),
            sc.listener
                .as_deref()
                .map_or("none".into(), |p: &Path| p.display().to_string()),
            if sc.early {
                "before ready (for the agent)"
            } else {
                "last, before execve"
            }
        )),
        _ => {}
    }
    d
}
