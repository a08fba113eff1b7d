//! `plan()` golden tests (no root needed): the init's steps for a set of
//! configs on fixed host facts, rendered as `husk plan` prints them, and
//! compared with tests/data/plans/<name>.txt (HUSK_WRITE_GOLDEN=1
//! rewrites them). Plus, as root, that the `--debug` timeline of a real
//! create lists the steps `husk plan` prints for the same bundle.

mod common;

use husk::plan::{HostFacts, Options};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn facts(root: bool) -> HostFacts {
    HostFacts {
        root,
        last_cap: 40,
        kcore: true,
        selinux: false,
        listen_fds: 0,
    }
}

fn options() -> Options {
    Options {
        id: "golden".into(),
        rootfs: PathBuf::from("/bundle/rootfs"),
        bundle_dir: PathBuf::from("/bundle"),
        console_socket: Some(PathBuf::from("/run/console.sock")),
        ..Options::default()
    }
}

/// `husk spec` (with `args`) as JSON, written by the binary into a temp dir.
fn spec_json(args: &[&str]) -> Value {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("husk-plan-spec-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new(common::HUSK)
        .arg("spec")
        .args(args)
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let v = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    v
}

fn golden(name: &str, config: &Value, root: bool) {
    let spec = husk::bundle::parse(&config.to_string()).unwrap();
    let p = husk::plan::plan(&spec, &options(), &facts(root)).unwrap();
    // husk's own steps, as husk root (or uid/gid 1000) would take them, the
    // init cloned into a fixed cgroup v2 directory
    use husk::commands::plan as cmd;
    let dir = PathBuf::from("/sys/fs/cgroup/golden");
    let join = cmd::CgroupJoin::Cgroupfs {
        clone_into: Some(dir.clone()),
        procs: vec![dir],
        rootless: !root,
    };
    let id = if root { 0 } else { 1000 };
    let runtime = cmd::runtime_steps(&spec, &p, id, id, &join);
    let mut text = cmd::render(&runtime, &p, &cmd::render_cgroupfs(&Ok(Vec::new())), &[]);
    text.push_str("--- json\n");
    text.push_str(&serde_json::to_string_pretty(&p.steps).unwrap());
    text.push_str("\n--- runtime json\n");
    text.push_str(&serde_json::to_string_pretty(&runtime).unwrap());
    text.push('\n');
    compare_golden(name, &text);
}

/// `text` against tests/data/plans/<name>.txt (HUSK_WRITE_GOLDEN=1 writes it).
fn compare_golden(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/plans/{name}.txt"));
    if std::env::var_os("HUSK_WRITE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (HUSK_WRITE_GOLDEN=1 writes it)", path.display()));
    if want != text {
        let got = path.with_extension("got");
        std::fs::write(&got, text).unwrap();
        panic!(
            "the plan for {name} differs from {}: see diff -u {} {} (HUSK_WRITE_GOLDEN=1 accepts it)",
            path.display(),
            path.display(),
            got.display()
        );
    }
}

#[test]
fn runc_default_config() {
    golden("default", &spec_json(&[]), true);
}

#[test]
fn rootless_config() {
    let mut c = spec_json(&["--rootless"]);
    // as `husk spec --rootless` writes them for uid/gid 1000
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    golden("rootless", &c, false);
}

#[test]
fn user_namespace_config() {
    let mut c = spec_json(&[]);
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"});
    c["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]
    }));
    golden("userns", &c, true);
}

#[test]
fn no_mount_namespace_config() {
    let mut c = spec_json(&[]);
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    c["process"]["terminal"] = json!(false);
    golden("no-mount-ns", &c, true);
}

#[test]
fn every_mount_option() {
    let mut c = spec_json(&[]);
    let words: Vec<&str> = husk::mount_options::known_words()
        .into_iter()
        .filter(|w| !matches!(*w, "idmap" | "ridmap" | "remount"))
        .collect();
    let mounts = c["mounts"].as_array_mut().unwrap();
    for (i, w) in words.iter().enumerate() {
        mounts.push(
            json!({"destination": format!("/opt/tmpfs-{i}"), "type": "tmpfs", "source": "tmpfs",
            "options": [w, "size=1m"]}),
        );
        mounts.push(
            json!({"destination": format!("/opt/bind-{i}"), "type": "bind", "source": "/srv",
            "options": ["bind", w]}),
        );
    }
    mounts.push(json!({"destination": "/opt/idmapped", "type": "bind", "source": "/srv",
        "options": ["rbind", "ridmap"]}));
    c["linux"]["rootfsPropagation"] = json!("rshared");
    c["root"]["readonly"] = json!(true);
    c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]);
    c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64"], "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_NOTIFY"},
                     {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]});
    c["hooks"] = json!({"createRuntime": [{"path": "/bin/true"}], "createContainer": [{"path": "/bin/true"}],
        "startContainer": [{"path": "/bin/true"}]});
    golden("every-mount-option", &c, true);
}

/// The init runs the plan `husk plan` prints: its `--debug` timeline
/// names the same steps, in the same order, up to ready.
fn timeline_matches_plan(name: &str, edit: impl FnOnce(&mut Value)) {
    let e = common::Env::new(name);
    let b = e.bundle("b", &["sleep", "100"], edit);
    std::fs::create_dir_all(b.join("data")).unwrap();
    let id = e.id("t");
    let planned = e.ok(&["plan", "--json", "-b", b.to_str().unwrap(), "--id", &id]);
    let planned: Value = serde_json::from_str(&planned).unwrap();
    assert!(planned["steps"].as_array().is_some_and(|v| !v.is_empty()));
    // The labels, from plan() on the same bundle (what `husk plan` printed as JSON).
    let spec = husk::bundle::parse(&std::fs::read_to_string(b.join("config.json")).unwrap()).unwrap();
    let mut o = options();
    o.id = id.clone();
    o.rootfs = std::path::absolute(b.join(spec.root().as_ref().unwrap().path())).unwrap();
    o.console_socket = None;
    // relative bind sources: against the bundle, as create and husk plan take them
    o.bundle_dir = std::path::absolute(&b).unwrap();
    let p = husk::plan::plan(&spec, &o, &HostFacts::gather()).unwrap();
    assert_eq!(
        planned["steps"],
        serde_json::to_value(&p.steps).unwrap(),
        "husk plan prints plan()"
    );
    let want: Vec<String> = p.steps.iter().map(|s| s.label()).take_while(|l| l != "ready").collect();
    let log = e.base.join("debug.log");
    let out = common::output_via_files(
        e.cmd(&[
            "--debug",
            "--log-format",
            "json",
            "--log",
            log.to_str().unwrap(),
            "create",
            "-b",
            b.to_str().unwrap(),
            &id,
        ]),
        &e.base,
    );
    assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
    let pid = e.state(&id)["pid"].as_i64().unwrap();
    // (the init's own pid: 1 in its pid namespace)
    let mut got = timeline_labels(&log, |m| m.ends_with(&format!("(pid {pid})")) || m.ends_with("(pid 1)"));
    got.retain(|l| l != "ready");
    // husk's own timed steps, against the "husk (the runtime process)
    // will" part of the plan (the cgroup join as this host makes it)
    let timed = [
        husk::process::STEP_ID_MAPS,
        husk::process::STEP_IDMAP_TREES,
        husk::process::STEP_BIND_SOURCES,
        husk::process::STEP_IN_CGROUP,
        husk::process::STEP_JOIN_CGROUP,
    ];
    let want_runtime: Vec<&str> = planned["runtime"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["step"].as_str())
        .filter(|s| timed.contains(s))
        .collect();
    assert!(!want_runtime.is_empty(), "{}", planned["runtime"]);
    let got_runtime: Vec<&str> = timeline_labels(&log, |m| {
        !m.ends_with(&format!("(pid {pid})")) && !m.ends_with("(pid 1)")
    })
    .iter()
    .filter_map(|l| timed.into_iter().find(|t| l.starts_with(t)))
    .collect();
    e.ok(&["delete", "--force", &id]);
    assert_eq!(got, want, "the init's timeline against husk plan");
    assert_eq!(
        got_runtime, want_runtime,
        "husk's timeline against husk plan's runtime steps"
    );
}

#[test]
fn debug_timeline_lists_the_planned_steps() {
    if !nix::unistd::geteuid().is_root() {
        common::not_checked("plan: the debug timeline of a real create", "needs root");
        return;
    }
    timeline_matches_plan("plan-timeline", |_| {});
}

/// More kinds of step: a relative bind source, a read-only root, a
/// sysctl, rlimits, createContainer hooks, no_new_privs off.
#[test]
fn debug_timeline_lists_the_planned_steps_of_a_fuller_config() {
    if !nix::unistd::geteuid().is_root() {
        common::not_checked("plan: the debug timeline of a real create", "needs root");
        return;
    }
    timeline_matches_plan("plan-timeline-full", |c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "nosuid"]}),
        );
        c["root"]["readonly"] = json!(true);
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}]);
        c["process"]["noNewPrivileges"] = json!(false);
        c["hooks"] = json!({"createContainer": [{"path": "/bin/true"}]});
    });
}

// systemd hosts' cgroup mounts (shared with the unit tests of src/cgroups/scope.rs)
const V2_MOUNTINFO: &str = include_str!("data/mountinfo/v2");
const HYBRID_MOUNTINFO: &str = include_str!("data/mountinfo/systemd-hybrid");
const PROC_DEVICES: &str = "Character devices:\n  1 mem\n  5 /dev/tty\n 10 misc\n136 pts\n\nBlock devices:\n  8 sd\n";

/// `husk --systemd-cgroup plan`'s cgroup section for `config` on a host
/// with `mountinfo`, compared with tests/data/plans/<name>.txt.
fn systemd_golden(name: &str, config: &Value, mountinfo: &str, rootless: bool) {
    let b = husk::bundle::Bundle {
        dir: PathBuf::from("/bundle"),
        rootfs: PathBuf::from("/bundle/rootfs"),
        spec: husk::bundle::parse(&config.to_string()).unwrap(),
    };
    let (text, json) = husk::commands::plan::systemd_section(&b, "golden", rootless, mountinfo, PROC_DEVICES, true);
    let mut text = text;
    text.push_str("--- json\n");
    text.push_str(&serde_json::to_string_pretty(&json).unwrap());
    text.push('\n');
    compare_golden(name, &text);
}

/// Resources whose properties depend on systemd's version (the quota
/// period, the cpuset, cpu.idle), and an annotation property.
fn systemd_config(c: &mut Value) {
    c["linux"]["cgroupsPath"] = json!("machine.slice:libpod:golden");
    c["linux"]["resources"] = json!({
        "memory": {"limit": 1048576},
        "cpu": {"shares": 512, "quota": 12345, "period": 100000, "cpus": "0-1"},
        "pids": {"limit": 42},
        "devices": [{"allow": false, "access": "rwm"}]
    });
    c["annotations"] = json!({"org.systemd.property.TimeoutStopSec": "uint64 5"});
}

#[test]
fn systemd_driver_on_cgroup_v2() {
    let mut c = spec_json(&[]);
    systemd_config(&mut c);
    c["linux"]["resources"]["unified"] = json!({"cpu.idle": "1"});
    systemd_golden("systemd-v2", &c, V2_MOUNTINFO, false);
}

#[test]
fn systemd_driver_on_a_hybrid_host() {
    let mut c = spec_json(&[]);
    systemd_config(&mut c);
    systemd_golden("systemd-hybrid", &c, HYBRID_MOUNTINFO, false);
}

#[test]
fn systemd_driver_rootless() {
    let mut c = spec_json(&["--rootless"]);
    c["linux"]["resources"] = json!({"pids": {"limit": 42}});
    systemd_golden("systemd-rootless", &c, V2_MOUNTINFO, true);
    // a rootless scope on a v1 host is refused, and the plan says so
    let b = husk::bundle::Bundle {
        dir: PathBuf::from("/bundle"),
        rootfs: PathBuf::from("/bundle/rootfs"),
        spec: husk::bundle::parse(&c.to_string()).unwrap(),
    };
    let (text, json) = husk::commands::plan::systemd_section(&b, "golden", true, HYBRID_MOUNTINFO, PROC_DEVICES, false);
    assert!(
        text.contains("not planned: --systemd-cgroup rootless needs a pure cgroup v2 host"),
        "{text}"
    );
    assert!(text.contains("systemd is not running on this host"), "{text}");
    assert_eq!(json["systemd_running"], json!(false));
}

/// `husk --systemd-cgroup plan` on this host, where systemd may not run:
/// it connects to nothing and prints the unit and its properties.
#[test]
fn systemd_plan_needs_no_systemd() {
    if !nix::unistd::geteuid().is_root() {
        common::not_checked("plan: husk --systemd-cgroup plan as root", "needs root");
        return;
    }
    let e = common::Env::new("plan-systemd");
    let b = e.bundle("b", &["true"], |c| {
        c["linux"]["cgroupsPath"] = json!("system.slice:husk:plan-systemd");
        c["linux"]["resources"] = json!({"pids": {"limit": 42}, "cpu": {"quota": 50000, "period": 100000}});
    });
    let text = e.ok(&["--systemd-cgroup", "plan", "-b", b.to_str().unwrap()]);
    assert!(
        text.contains("the unit husk-plan-systemd.scope in system.slice"),
        "{text}"
    );
    assert!(text.contains("       TasksMax=42\n"), "{text}");
    assert!(text.contains("CPUQuotaPerSecUSec=500000"), "{text}");
    assert!(
        text.contains("CPUQuotaPeriodUSec=100000  (only if systemd >= 242"),
        "{text}"
    );
    if !std::path::Path::new("/run/systemd/system").is_dir() {
        assert!(text.contains("systemd is not running on this host"), "{text}");
    }
    let json: Value =
        serde_json::from_str(&e.ok(&["--systemd-cgroup", "plan", "--json", "-b", b.to_str().unwrap()])).unwrap();
    assert_eq!(
        json["cgroup"]["systemd"]["unit"],
        json!("husk-plan-systemd.scope"),
        "{json}"
    );
    assert!(json["steps"].as_array().is_some_and(|s| !s.is_empty()));
}

/// The step labels of a `--debug` log (JSON lines), in order, from the
/// messages `keep` accepts: "step LABEL: took at offset (pid N)".
fn timeline_labels(log: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .filter(|m| keep(m))
        .filter_map(|m| {
            let rest = m.strip_prefix("step ")?;
            let cut = rest.rfind(": ")?;
            Some(rest[..cut].to_string())
        })
        .collect()
}

/// The exec process runs the plan `husk plan exec` prints for the same
/// arguments: its `--debug` timeline names the same steps, in order (the
/// last, the exec itself, is not timed).
#[test]
fn exec_timeline_lists_the_planned_steps() {
    if !nix::unistd::geteuid().is_root() {
        common::not_checked("plan: the debug timeline of a real exec", "needs root");
        return;
    }
    let e = common::Env::new("plan-exec");
    let b = e.bundle("b", &["sleep", "100"], |_| {});
    let id = e.id("x");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let process = e.base.join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["true"], "cwd": "/tmp", "env": ["PATH=/bin", "X=1"],
               "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
               "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 256}],
               "noNewPrivileges": true, "capabilities": {"bounding": ["CAP_KILL"]}})
        .to_string(),
    )
    .unwrap();
    let p = process.to_str().unwrap();
    for args in [
        vec!["-e", "Y=2", id.as_str(), "true"],
        vec!["--process", p, id.as_str()],
    ] {
        let planned: Value =
            serde_json::from_str(&e.ok(&[&["plan", "--json", "exec"], args.as_slice()].concat())).unwrap();
        let steps = planned["steps"].as_array().unwrap();
        // labels as `husk plan exec` prints them, the untimed exec aside
        let text = e.ok(&[&["plan", "exec"], args.as_slice()].concat());
        let want: Vec<String> = text
            .lines()
            .filter_map(|l| {
                let (n, label) = l.trim_start().split_once(". ")?;
                n.parse::<usize>().ok().map(|_| label.to_string())
            })
            .collect();
        assert_eq!(want.len(), steps.len(), "{text}");
        let want = &want[..want.len() - 1];
        assert!(want.iter().any(|l| l == "join the container's namespaces"), "{want:?}");
        let log = e.base.join(format!("exec-{}.log", args.len()));
        let out = e.base.join("exec.out");
        let mut c = e.cmd(
            &[
                &[
                    "--debug",
                    "--log-format",
                    "json",
                    "--log",
                    log.to_str().unwrap(),
                    "exec",
                ],
                args.as_slice(),
            ]
            .concat(),
        );
        c.stdout(std::fs::File::create(&out).unwrap());
        c.stderr(std::fs::File::create(e.base.join("exec.err")).unwrap());
        let mut child = c.spawn().unwrap();
        let husk_pid = child.id();
        let st = child.wait().unwrap();
        assert!(
            st.success(),
            "exec {args:?}: {}",
            std::fs::read_to_string(e.base.join("exec.err")).unwrap_or_default()
        );
        // husk's own steps carry its pid; the exec process's, another
        let got = timeline_labels(&log, |m| !m.ends_with(&format!("(pid {husk_pid})")));
        assert_eq!(got, want, "the exec process's timeline against husk plan exec {args:?}");
    }
    e.ok(&["delete", "--force", &id]);
}
