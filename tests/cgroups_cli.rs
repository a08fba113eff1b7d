//! Cgroups through the command line on this host: limits, pause/resume,
//! ps, update, events, and nothing left behind.
mod common;
use common::*;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

fn cgroup_dirs(e: &Env, id: &str) -> Vec<PathBuf> {
    stored_cgroup_dirs(&e.state_cgroup(id))
}

fn find(dirs: &[PathBuf], file: &str) -> String {
    for d in dirs {
        if let Ok(s) = std::fs::read_to_string(d.join(file)) {
            return s.trim().to_string();
        }
    }
    panic!("{file} not found in {dirs:?}");
}

#[test]
fn limits_pause_ps_update_and_cleanup() {
    if !v1_host("tests/cgroups_cli.rs limits_pause_ps_update_and_cleanup") {
        return;
    }
    let e = Env::new("cgcli");
    let b = e.bundle(
        "b",
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/count; done",
        ],
        |v| {
            v["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
            v["linux"]["resources"]["pids"] = json!({"limit": 50});
            v["linux"]["resources"]["cpu"] = json!({"shares": 512});
        },
    );
    let id = e.id("c");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let dirs = cgroup_dirs(&e, &id);
    assert_eq!(find(&dirs, "memory.limit_in_bytes"), (64u64 << 20).to_string());
    assert_eq!(find(&dirs, "pids.max"), "50");
    assert_eq!(find(&dirs, "cpu.shares"), "512");
    let init = e.state(&id)["pid"].as_i64().unwrap();
    // ps lists the init
    let pids: Vec<i64> = serde_json::from_str(&e.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&init), "{pids:?}");
    assert!(e.ok(&["ps", &id]).lines().count() >= 2);
    // pause: the counter stops moving
    e.ok(&["pause", &id]);
    assert_eq!(e.status(&id), "paused");
    let read = || e.ok(&["exec", "--ignore-paused", &id, "cat", "/dev/shm/count"]);
    let _ = read; // exec into a frozen cgroup would freeze the exec'd process too
    let shm_count = || std::fs::read_to_string(format!("/proc/{init}/root/dev/shm/count")).unwrap_or_default();
    let a = shm_count();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(a, shm_count(), "counter moved while paused");
    e.ok(&["resume", &id]);
    assert_eq!(e.status(&id), "running");
    wait_for(Duration::from_secs(5), || shm_count() != a).expect("counter did not move after resume");
    // update a live limit
    e.ok(&["update", "--memory", "128m", "--pids-limit", "60", &id]);
    assert_eq!(find(&dirs, "memory.limit_in_bytes"), (128u64 << 20).to_string());
    assert_eq!(find(&dirs, "pids.max"), "60");
    // stats
    let ev: serde_json::Value = serde_json::from_str(e.ok(&["events", "--stats", &id]).trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 1, "{ev}");
    // delete --force removes every cgroup directory
    e.ok(&["delete", "--force", &id]);
    for d in &dirs {
        assert!(!d.exists(), "{d:?} left behind");
    }
}

#[test]
fn fork_bomb_stops_at_pids_limit() {
    let e = Env::new("pids");
    let b = e.bundle("b", &["sleep", "1000"], |v| {
        v["linux"]["resources"]["pids"] = json!({"limit": 10});
    });
    let id = e.id("c");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    // busybox sh gives up at the first refused fork; what it started stays.
    let _ = e.husk(&["exec", &id, "sh", "-c", "for i in $(seq 1 40); do sleep 100 & done"]);
    let count = || {
        serde_json::from_str::<Vec<i64>>(&e.ok(&["ps", "--format", "json", &id]))
            .unwrap()
            .len()
    };
    let dirs = cgroup_dirs(&e, &id);
    wait_for(Duration::from_secs(10), || find(&dirs, "pids.events") != "max 0").expect("no fork was refused");
    let n = count();
    assert!((2..=10).contains(&n), "{n} processes with pids.limit 10");
}

#[test]
fn oom_kill_is_reported() {
    if !v1_host("tests/cgroups_cli.rs oom_kill_is_reported") {
        return;
    }
    use std::io::BufRead;
    // No swap, so that the OOM killer comes: a memory+swap limit equal to
    // the limit where the host accounts swap, else no swap device at all.
    let memsw = memsw_accounting();
    if !memsw && host_has_swap() {
        not_checked(
            "husk events reporting an OOM kill",
            "the host has swap but no swap accounting to forbid it",
        );
        return;
    }
    let e = Env::new("oom");
    let b = e.bundle("b", &["sleep", "100"], |v| {
        v["linux"]["resources"]["memory"] = if memsw {
            json!({"limit": 16 << 20, "swap": 16 << 20})
        } else {
            json!({"limit": 16 << 20})
        };
    });
    let id = e.id("c");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let mut events = e
        .cmd(&["events", "--interval", "50ms", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(events.stdout.take().unwrap()).lines();
    // the first stats line says the stream is running
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["type"], "stats");
    assert_eq!(first["data"]["memory"]["usage"]["limit"].as_u64().unwrap(), 16 << 20);
    // a process that holds 100 MB in memory is killed by the OOM killer
    let o = e.husk(&[
        "exec",
        &id,
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}",
    ]);
    assert!(!o.status.success());
    let mut saw_oom = false;
    for line in lines.by_ref().take(200) {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["type"] == "oom" {
            assert_eq!(v["id"], id.as_str());
            saw_oom = true;
            break;
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    assert!(saw_oom, "events never reported the OOM kill");
}

#[test]
fn a_rejected_limit_fails_create_and_leaves_no_cgroup() {
    if !v1_host("tests/cgroups_cli.rs a_rejected_limit_fails_create_and_leaves_no_cgroup") {
        return;
    }
    let e = Env::new("cgbad");
    let b = e.bundle("b", &["true"], |v| {
        v["linux"]["resources"]["cpu"] = json!({"cpus": "4095"});
        v["linux"]["cgroupsPath"] = json!(format!("/husk-test-bad-{}", std::process::id()));
    });
    let id = e.id("c");
    let msg = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(msg.contains("cpuset.cpus") && msg.contains("4095"), "{msg}");
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/cpuset/husk-test-bad-{}", std::process::id())).exists());
    assert!(!e.root.join(&id).exists());
}

/// `--systemd-cgroup run` on a host without systemd (this one) is a clear
/// error that leaves no state, no cgroup and no process; on a host booted
/// with systemd the same run succeeds and leaves nothing either.
#[test]
fn systemd_cgroup_without_systemd_is_a_clear_error_and_leaves_nothing() {
    let e = Env::new("sd");
    let id = e.id("c");
    let b = e.bundle("b", &["true"], |v| {
        v["linux"]["cgroupsPath"] = json!(format!("system.slice:husktest:{id}"));
        v["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts = husk::cgroups::mountinfo::parse_mountinfo(&text).unwrap();
    let mut places: Vec<PathBuf> = mounts.v1.iter().map(|m| m.mountpoint.clone()).collect();
    places.extend(mounts.v2.iter().map(|m| m.mountpoint.clone()));
    let mut cgroups: Vec<PathBuf> = places
        .iter()
        .map(|m| m.join(format!("system.slice/husktest-{id}.scope")))
        .collect();
    cgroups.extend(default_cgroup_dirs(&id));
    let o = e.husk(&["--systemd-cgroup", "run", "-b", b.to_str().unwrap(), &id]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    if std::path::Path::new("/run/systemd/system").is_dir() {
        assert!(o.status.success(), "{stderr}");
    } else {
        assert!(!o.status.success());
        assert!(
            stderr
                .contains("--systemd-cgroup: systemd is not running on this host (/run/systemd/system does not exist"),
            "{stderr}"
        );
    }
    assert!(!e.root.join(&id).exists());
    for d in &cgroups {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    let bundle = std::fs::canonicalize(&b).unwrap();
    let cwd_in_bundle = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|p| std::fs::read_link(p.path().join("cwd")).ok().as_deref() == Some(bundle.as_path()));
    assert!(!cwd_in_bundle, "a process is left in the bundle directory");
}

#[test]
fn paused_container_can_be_killed_and_force_deleted() {
    let e = Env::new("pausedel");
    let b = e.bundle("b", &["sleep", "1000"], |_| {});
    let (a, c) = (e.id("a"), e.id("c"));
    for id in [&a, &c] {
        e.ok(&["run", "-d", "-b", b.to_str().unwrap(), id]);
        e.ok(&["pause", id]);
        assert_eq!(e.status(id), "paused");
    }
    let dirs = cgroup_dirs(&e, &c);
    // kill --all reaches a paused container
    e.ok(&["kill", "--all", &a, "KILL"]);
    e.wait_status(&a, "stopped");
    e.ok(&["delete", &a]);
    // delete --force of a paused container
    e.ok(&["delete", "--force", &c]);
    assert!(e.err(&["state", &c]).contains("does not exist"));
    for d in &dirs {
        assert!(!d.exists(), "{d:?} left behind");
    }
}

#[test]
fn cgroup_namespace_sees_its_own_cgroup_as_root() {
    if !v1_host("tests/cgroups_cli.rs cgroup_namespace_sees_its_own_cgroup_as_root") {
        return;
    }
    let e = Env::new("cgns");
    let b = e.bundle(
        "b",
        &[
            "sh",
            "-c",
            "grep -c ':/$' /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max; grep -c . /proc/self/cgroup",
        ],
        |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}));
            v["linux"]["resources"]["pids"] = json!({"limit": 77});
        },
    );
    let o = e.run(&b, &e.id("c"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    // every hierarchy's path is "/" inside the namespace
    assert_eq!(lines[0], lines[2], "{out}");
    assert_eq!(lines[1], "77", "{out}");
}

#[test]
fn without_cgroup_namespace_the_mount_shows_the_container_cgroup() {
    if !v1_host("tests/cgroups_cli.rs without_cgroup_namespace_the_mount_shows_the_container_cgroup") {
        return;
    }
    let e = Env::new("nocgns");
    let b = e.bundle("b", &["cat", "/sys/fs/cgroup/pids/pids.max"], |v| {
        v["linux"]["resources"]["pids"] = json!({"limit": 66});
    });
    let o = e.run(&b, &e.id("c"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "66\n");
}

/// `org.systemd.property.*` annotations become unit properties of the
/// scope, as with runc; one that is not a property name or whose value is
/// not GVariant text is refused by name before anything is made (also on a
/// host without systemd, where valid ones get as far as the "systemd is not
/// running" error). The cgroupfs driver ignores them, as runc's does.
#[test]
fn systemd_property_annotations_are_checked_before_anything_is_made() {
    let e = Env::new("sdprop");
    let id = e.id("c");
    let with = |name: &str, annotations: serde_json::Value| {
        let id = id.clone();
        e.bundle(name, &["true"], move |v| {
            v["linux"]["cgroupsPath"] = json!(format!("system.slice:husktest:{id}"));
            v["annotations"] = annotations;
        })
    };
    let bad = with("bad", json!({"org.systemd.property.TimeoutStopSec": "'five'"}));
    let err = e.err(&["--systemd-cgroup", "create", "-b", bad.to_str().unwrap(), &id]);
    assert!(
        err.contains("annotation \"org.systemd.property.TimeoutStopSec\""),
        "{err}"
    );
    assert!(!e.root.join(&id).exists());
    let good = with("good", json!({"org.systemd.property.TimeoutStopSec": "uint64 5"}));
    let o = e.husk(&["--systemd-cgroup", "create", "-b", good.to_str().unwrap(), &id]);
    if std::path::Path::new("/run/systemd/system").is_dir() {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        e.ok(&["delete", "--force", &id]);
    } else {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("systemd is not running"), "{err}");
    }
    assert!(!e.root.join(&id).exists());
    let plain = e.bundle("plain", &["true"], |v| {
        v["annotations"] = json!({"org.systemd.property.TimeoutStopSec": "'five'"});
    });
    let o = e.run(&plain, &e.id("plain"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// This process's own cgroup in the hierarchy of `controller` ("" for the
/// cgroup2 line), from /proc/self/cgroup.
fn own_cgroup(controller: &str) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for l in text.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        if (controller.is_empty() && ctrls.is_empty()) || ctrls.split(',').any(|c| c == controller) {
            return path.to_string();
        }
    }
    panic!("no {controller:?} line in /proc/self/cgroup: {text}");
}

/// A v1 cgroup the test makes (and removes on drop, also on failure).
struct TestCgroup(PathBuf);
impl Drop for TestCgroup {
    fn drop(&mut self) {
        for d in ["sub", ""] {
            let _ = std::fs::remove_dir(self.0.join(d));
        }
    }
}

/// Without linux.cgroupsPath the container's cgroup is `<the caller's own
/// cgroup>/<id>` in every v1 hierarchy, as runc (1.1.5 measured here, and
/// 1.5's source): a caller moved into a cgroup of its own in the pids
/// hierarchy gets `<that cgroup>/<id>` there and `<its own>/<id>` in the
/// others; the hybrid cgroup2 mount gets `/<id>` (runc joins
/// /sys/fs/cgroup/unified/<id> whatever its own cgroup there). state.json
/// records exactly these directories, and delete removes exactly them:
/// the caller's cgroup stays.
#[test]
fn default_placement_is_below_the_callers_cgroup_like_runc() {
    if !v1_host("tests/cgroups_cli.rs default_placement_is_below_the_callers_cgroup_like_runc") {
        return;
    }
    let e = Env::new("defplace");
    let id = e.id("c");
    let b = e.bundle("b", &["sleep", "1000"], |v| {
        v["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    let pids_own = own_cgroup("pids");
    let caller_rel = format!("{}/husk-caller-{}", pids_own.trim_end_matches('/'), e.name);
    let caller = TestCgroup(PathBuf::from(format!("/sys/fs/cgroup/pids{caller_rel}")));
    std::fs::create_dir(&caller.0).unwrap();
    // The caller moves itself into its cgroup, then becomes husk.
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg("echo $$ > \"$1/cgroup.procs\" && shift && exec \"$@\"")
        .arg("sh")
        .arg(&caller.0)
        .arg(common::HUSK)
        .arg("--root")
        .arg(&e.root)
        .args(["create", "-b", b.to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null());
    let o = output_via_files(c, &e.base);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let init = e.state(&id)["pid"].as_i64().unwrap();
    let seen = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let hybrid = std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
    for l in seen.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let want = if ctrls.is_empty() {
            if hybrid {
                format!("/{id}")
            } else {
                continue;
            }
        } else if ctrls.split(',').any(|c| c == "pids") {
            format!("{caller_rel}/{id}")
        } else {
            let own = own_cgroup(ctrls.split(',').next().unwrap());
            format!("{}/{id}", own.trim_end_matches('/'))
        };
        assert_eq!(path, want, "hierarchy {ctrls:?} in {seen}");
    }
    let dirs = cgroup_dirs(&e, &id);
    assert!(dirs.contains(&caller.0.join(&id)), "{dirs:?}");
    for d in &dirs {
        assert!(d.is_dir(), "{d:?} missing");
        assert_eq!(d.file_name().unwrap().to_str(), Some(id.as_str()), "{d:?}");
    }
    e.ok(&["delete", "--force", &id]);
    for d in &dirs {
        assert!(!d.exists(), "{d:?} left behind");
        assert!(d.parent().unwrap().is_dir(), "{d:?}: its parent was removed too");
    }
    assert!(caller.0.is_dir());
}

/// pids.limit 0 is a real limit (runtime-spec 1.3), written as 1 like runc
/// ≥ 1.4: nothing in the container can fork. A pids object without a
/// limit changes nothing (pids.max stays max). `update --pids-limit 0`
/// does the same as the config.
#[test]
fn pids_limit_zero_is_a_limit_and_no_limit_is_none() {
    let e = Env::new("pids0");
    // (a subshell always forks in busybox sh)
    let zero = e.bundle("zero", &["sh", "-c", "(exit 0) && echo forked"], |v| {
        v["linux"]["resources"]["pids"] = json!({"limit": 0});
    });
    let id = e.id("zero");
    e.ok(&["create", "-b", zero.to_str().unwrap(), &id]);
    assert_eq!(find(&cgroup_dirs(&e, &id), "pids.max"), "1");
    e.ok(&["delete", "--force", &id]);
    let o = e.run(&zero, &e.id("zero-run"));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("forked"),
        "a fork succeeded under pids.limit 0"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("can't fork"), "{o:?}");

    let none = e.bundle("none", &["sleep", "1000"], |v| {
        v["linux"]["resources"]["pids"] = json!({});
    });
    let id = e.id("none");
    e.ok(&["run", "-d", "-b", none.to_str().unwrap(), &id]);
    let dirs = cgroup_dirs(&e, &id);
    assert_eq!(find(&dirs, "pids.max"), "max");
    e.ok(&["update", "--pids-limit", "0", &id]);
    assert_eq!(find(&dirs, "pids.max"), "1");
    let r = e.base.join("r.json");
    std::fs::write(&r, r#"{"pids": {}}"#).unwrap();
    e.ok(&["update", "-r", r.to_str().unwrap(), &id]);
    assert_eq!(
        find(&dirs, "pids.max"),
        "1",
        "a pids object without a limit changed pids.max"
    );
    std::fs::write(&r, r#"{"pids": {"limit": -1}}"#).unwrap();
    e.ok(&["update", "-r", r.to_str().unwrap(), &id]);
    assert_eq!(find(&dirs, "pids.max"), "max");
}

/// runc's spelling `update --cpu-share` (husk's older `--cpu-shares` stays
/// an alias).
#[test]
fn update_takes_runcs_cpu_share_flag() {
    let e = Env::new("cpushare");
    let b = e.bundle("b", &["sleep", "1000"], |_| {});
    let id = e.id("c");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let dirs = cgroup_dirs(&e, &id);
    let (file, at_512, at_1024) = if dirs.iter().any(|d| d.join("cpu.shares").exists()) {
        ("cpu.shares", "512", "1024")
    } else {
        // v2: runc's conversion of the shares
        ("cpu.weight", "59", "100")
    };
    e.ok(&["update", "--cpu-share", "512", &id]);
    assert_eq!(find(&dirs, file), at_512);
    e.ok(&["update", "--cpu-shares", "1024", &id]);
    assert_eq!(find(&dirs, file), at_1024);
}

/// A realtime budget (cpu.rt_runtime_us) on cgroup v1 where the kernel has
/// RT group scheduling. runc does not raise the budgets of the cgroups
/// above the container (a new v1 cgroup gets 0; its tests write them by
/// hand first), and neither does husk: with the default placement the
/// parent is the caller's cpu cgroup (the root here, 950000 µs) and the
/// budget is applied; below a new intermediate cgroup create fails with an
/// error naming the field and the parent's budget, and leaves nothing;
/// with the parents given a budget first it is applied. Without RT group
/// scheduling the field is refused by name.
#[test]
fn realtime_budget_with_default_and_nested_placement() {
    if !v1_host("tests/cgroups_cli.rs realtime_budget_with_default_and_nested_placement") {
        return;
    }
    let e = Env::new("rt");
    let rt = |v: &mut serde_json::Value| {
        v["linux"]["resources"]["cpu"] = json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000});
    };
    let cpu_mount = PathBuf::from("/sys/fs/cgroup/cpu");
    let own = cpu_mount.join(own_cgroup("cpu").trim_start_matches('/'));
    if !own.join("cpu.rt_runtime_us").exists() {
        let b = e.bundle("none", &["true"], |v| {
            v["linux"].as_object_mut().unwrap().remove("cgroupsPath");
            rt(v);
        });
        let msg = e.err(&["create", "-b", b.to_str().unwrap(), &e.id("none")]);
        assert!(
            msg.contains("linux.resources.cpu.realtime") && msg.contains("RT group scheduling"),
            "{msg}"
        );
        not_checked(
            "a realtime budget applied on cgroup v1 (tests/cgroups_cli.rs)",
            "the kernel has no RT group scheduling (no cpu.rt_runtime_us): only its refusal was checked",
        );
        return;
    }
    let budget = |d: &std::path::Path| -> i64 {
        std::fs::read_to_string(d.join("cpu.rt_runtime_us"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    // Default placement: below the caller's own cpu cgroup.
    let b = e.bundle("default", &["sleep", "1000"], |v| {
        v["linux"].as_object_mut().unwrap().remove("cgroupsPath");
        rt(v);
    });
    let id = e.id("default");
    let o = e.husk(&["create", "-b", b.to_str().unwrap(), &id]);
    if budget(&own) >= 10000 {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let dirs = cgroup_dirs(&e, &id);
        assert_eq!(find(&dirs, "cpu.rt_runtime_us"), "10000");
        assert_eq!(find(&dirs, "cpu.rt_period_us"), "1000000");
        e.ok(&["delete", "--force", &id]);
    } else {
        assert!(!o.status.success());
        not_checked(
            "a realtime budget with the default placement (tests/cgroups_cli.rs)",
            "the test's own cpu cgroup has no realtime budget of 10000 µs",
        );
    }
    // Nested below a new intermediate cgroup: refused, naming the parent.
    let top = format!("husk-rt-{}", e.name);
    let nested = |name: &str| {
        let id = e.id(name);
        let path = format!("/{top}/mid/{id}");
        (
            id,
            e.bundle(name, &["sleep", "1000"], |v| {
                v["linux"]["cgroupsPath"] = json!(path);
                rt(v);
            }),
        )
    };
    // create makes /top/mid in every hierarchy and delete removes only the
    // container's own cgroup below it (as runc): the test removes them.
    struct Parents(String);
    impl Drop for Parents {
        fn drop(&mut self) {
            for m in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir(m.path().join(&self.0).join("mid"));
                let _ = std::fs::remove_dir(m.path().join(&self.0));
            }
        }
    }
    let _parents = Parents(top.clone());
    let (id, b) = nested("nested");
    let msg = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(
        msg.contains("cpu realtime runtime (linux.resources.cpu.realtimeRuntime)")
            && msg.contains("the parent cgroup has a realtime budget of 0 µs")
            && msg.contains(&format!("{top}/mid/cpu.rt_runtime_us")),
        "{msg}"
    );
    assert!(!cpu_mount.join(&top).exists(), "the failed create left its cgroups");
    // With the parents given a budget first (as runc's tests do): applied.
    std::fs::create_dir_all(cpu_mount.join(&top).join("mid")).unwrap();
    for d in [cpu_mount.join(&top), cpu_mount.join(&top).join("mid")] {
        std::fs::write(d.join("cpu.rt_runtime_us"), "20000").unwrap();
    }
    let (id, b) = nested("nested2");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    assert_eq!(find(&cgroup_dirs(&e, &id), "cpu.rt_runtime_us"), "10000");
    e.ok(&["delete", "--force", &id]);
    assert!(
        cpu_mount.join(&top).join("mid").is_dir(),
        "delete removed a parent it did not make"
    );
}

/// Does this kernel keep a value written to `file` of a fresh v1 memory
/// cgroup? None when the file does not exist.
fn kmem_file_works(e: &Env, file: &str, value: i64) -> Option<bool> {
    let d = TestCgroup(PathBuf::from(format!(
        "/sys/fs/cgroup/memory/husk-kmem-probe-{}",
        e.name
    )));
    std::fs::create_dir(&d.0).unwrap();
    let f = d.0.join(file);
    if !f.exists() {
        return None;
    }
    let _ = std::fs::write(&f, value.to_string());
    let got: i64 = std::fs::read_to_string(&f).unwrap().trim().parse().unwrap();
    Some(got == value)
}

/// linux.resources.memory.kernel and kernelTCP on cgroup v1: applied where
/// the kernel keeps the value (read back), refused naming the field where
/// it ignores the write (memory.kmem.limit_in_bytes since Linux 6.1) or
/// lacks the file; never accepted and dropped.
#[test]
fn kernel_memory_limits_are_applied_or_refused_by_name() {
    if !v1_host("tests/cgroups_cli.rs kernel_memory_limits_are_applied_or_refused_by_name") {
        return;
    }
    let e = Env::new("kmem");
    let value: i64 = 64 << 20;
    for (field, file) in [
        ("kernel", "memory.kmem.limit_in_bytes"),
        ("kernelTCP", "memory.kmem.tcp.limit_in_bytes"),
    ] {
        let b = e.bundle(field, &["sleep", "1000"], |v| {
            v["linux"]["resources"]["memory"] = json!({ field: value });
        });
        let id = e.id(field);
        let o = e.husk(&["create", "-b", b.to_str().unwrap(), &id]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let named = format!("(linux.resources.memory.{field})");
        match kmem_file_works(&e, file, value) {
            Some(true) => {
                assert!(o.status.success(), "{field}: {stderr}");
                assert_eq!(find(&cgroup_dirs(&e, &id), file), value.to_string());
                // and through update
                e.ok(&[
                    "update",
                    if field == "kernel" {
                        "--kernel-memory"
                    } else {
                        "--kernel-memory-tcp"
                    },
                    "32m",
                    &id,
                ]);
                assert_eq!(find(&cgroup_dirs(&e, &id), file), (32 << 20).to_string());
                e.ok(&["delete", "--force", &id]);
            }
            Some(false) => {
                assert!(
                    !o.status.success(),
                    "{field} accepted though this kernel ignores {file}"
                );
                assert!(
                    stderr.contains(&named) && stderr.contains("ignores"),
                    "{field}: {stderr}"
                );
                not_checked(
                    &format!("linux.resources.memory.{field} applied (tests/cgroups_cli.rs)"),
                    &format!("this kernel ignores writes to {file}: only the refusal was checked"),
                );
            }
            None => {
                assert!(!o.status.success(), "{field} accepted though this kernel has no {file}");
                assert!(
                    stderr.contains(&named) && stderr.contains("does not exist"),
                    "{field}: {stderr}"
                );
                not_checked(
                    &format!("linux.resources.memory.{field} applied (tests/cgroups_cli.rs)"),
                    &format!("this kernel has no {file}: only the refusal was checked"),
                );
            }
        }
        assert!(!e.root.join(&id).exists() || o.status.success());
    }
}
