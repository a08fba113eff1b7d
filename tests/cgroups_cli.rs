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
    let cgroups: Vec<PathBuf> = places
        .iter()
        .flat_map(|m| {
            [
                m.join(format!("system.slice/husktest-{id}.scope")),
                m.join("husk").join(&id),
            ]
        })
        .collect();
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
