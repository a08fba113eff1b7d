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
fn cgroup_writes(b: &crate::bundle::Bundle, id: &str) -> Result<Vec<(PathBuf, String)>, String> {
    let path = b.spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
    let cg = crate::cgroups::Cgroup::new(path, id).map_err(|e| format!("{e:#}"))?;
    let res = crate::container::container_resources(b);
    cg.planned_settings(&res)
        .map(|v| v.into_iter().map(|(dir, s)| (dir.join(&s.file), s.value)).collect())
        .map_err(|e| format!("{e:#}"))
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
    let cgroup_before_setup = if a.systemd_cgroup {
        let path = b.spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
        let path = path
            .map(|p| p.to_str().context("linux.cgroupsPath is not UTF-8"))
            .transpose()?;
        crate::cgroups::scope::prepare(path, &a.id, a.rootless)?.rewrites_devices()
    } else {
        false
    };
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
    let cgroup = if a.systemd_cgroup {
        Err("systemd driver: the scope is started with the init, then its unit properties and the files systemd leaves to husk are written (not planned here)".to_string())
    } else {
        cgroup_writes(&b, &a.id)
    };
    let hooks = hooks_summary(&b.spec);
    if a.json {
        let cg = match &cgroup {
            Ok(w) => json!(
                w.iter()
                    .map(|(f, v)| json!({"file": f, "value": v}))
                    .collect::<Vec<_>>()
            ),
            Err(e) => json!({"error": e}),
        };
        let v = json!({
            "host": facts,
            "options": o,
            "steps": p.steps,
            "cgroup": cg,
            "hooks": hooks,
        });
        crate::output::out(&(serde_json::to_string_pretty(&v)? + "\n"));
        return Ok(0);
    }
    crate::output::out(&render(&p, &cgroup, &hooks));
    Ok(0)
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

/// The human-readable plan: one numbered line per step (the words the
/// `--debug` timeline uses), details indented below it.
pub fn render(p: &Plan, cgroup: &Result<Vec<(PathBuf, String)>, String>, hooks: &[(String, String)]) -> String {
    let mut s = String::from("init steps (as the --debug timeline names them):\n");
    for (i, st) in p.steps.iter().enumerate() {
        s.push_str(&format!("{:3}. {}\n", i + 1, st.label()));
        for d in details(st) {
            s.push_str(&format!("       {d}\n"));
        }
    }
    s.push_str("cgroup files (written by husk before the clone):\n");
    match cgroup {
        Ok(w) if w.is_empty() => s.push_str("     none\n"),
        Ok(w) => {
            for (f, v) in w {
                s.push_str(&format!("     {} = {v:?}\n", f.display()));
            }
        }
        Err(e) => s.push_str(&format!("     not planned: {e}\n")),
    }
    s.push_str("hooks:\n");
    if hooks.is_empty() {
        s.push_str("     none\n");
    }
    for (k, h) in hooks {
        s.push_str(&format!("     {k}: {h}\n"));
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
