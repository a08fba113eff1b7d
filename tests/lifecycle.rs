//! The container lifecycle through the real binary, as root.
mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn create_start_kill_delete() {
    let e = Env::new("life");
    let b = e.bundle("b", &["sleep", "100"], |_| {});
    let id = e.id("c");
    let pidfile = e.base.join("pid");
    e.ok(&[
        "create",
        "-b",
        b.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let st = e.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.to_str().unwrap());
    assert_eq!(st["rootfs"], rootfs().to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // start of a created container runs it
    e.ok(&["start", &id]);
    assert_eq!(e.status(&id), "running");
    // a second start fails
    assert!(e.err(&["start", &id]).contains("already running"));
    // delete of a running container needs --force
    let msg = e.err(&["delete", &id]);
    assert!(msg.contains("not stopped"), "{msg}");
    e.ok(&["kill", &id, "KILL"]);
    e.wait_status(&id, "stopped");
    assert_eq!(e.state(&id)["pid"], 0);
    assert!(e.err(&["kill", &id]).contains("not running"));
    e.ok(&["delete", &id]);
    assert!(e.err(&["state", &id]).contains("does not exist"));
    assert!(!e.root.join(&id).exists());
}

#[test]
fn delete_force_kills_a_running_container() {
    let e = Env::new("force");
    let b = e.bundle("b", &["sleep", "100"], |_| {});
    let id = e.id("c");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let pid = e.state(&id)["pid"].as_i64().unwrap();
    e.ok(&["delete", "--force", &id]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            // a zombie until its parent reaps it is fine; it must not run
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
        }
    );
    assert!(e.err(&["state", &id]).contains("does not exist"));
}

#[test]
fn delete_force_of_a_created_container() {
    let e = Env::new("forcecr");
    let b = e.bundle("b", &["true"], |_| {});
    let id = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    let pid = e.state(&id)["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap();
    let start = start_time(pid);
    e.ok(&["delete", "-f", &id]);
    assert!(!init_alive(pid, start));
    assert!(!e.root.join(&id).exists());
    assert_eq!(default_cgroup_dirs_left(&id), Vec::<std::path::PathBuf>::new());
}

/// The start time of a live process (field 22 of /proc/<pid>/stat).
fn start_time(pid: i32) -> u64 {
    husk::state::proc_stat(pid).expect("the init is alive").1
}

/// Is `pid` still the process that started at `start`, and not a zombie?
fn init_alive(pid: i32, start: u64) -> bool {
    husk::state::proc_stat(pid).is_some_and(|(st, t)| t == start && st != 'Z' && st != 'X')
}

#[test]
fn delete_of_a_created_container_kills_it_without_force() {
    // runc deletes a created (never started) container without --force,
    // and containerd's shim relies on it; poststop hooks run as for any delete.
    let e = Env::new("delcr");
    let hooklog = e.base.join("poststop.json");
    let b = e.bundle("b", &["sleep", "100"], |v| {
        v["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", hooklog.display())]}]});
    });
    let id = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    let pid = e.state(&id)["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap();
    let start = start_time(pid);
    assert_eq!(default_cgroup_dirs_left(&id), default_cgroup_dirs(&id));
    e.ok(&["delete", &id]);
    // delete returns once the init has exited (a zombie until its parent reaps it)
    assert!(!init_alive(pid, start), "init {pid} still runs");
    assert_eq!(default_cgroup_dirs_left(&id), Vec::<std::path::PathBuf>::new());
    assert!(!e.root.join(&id).exists());
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&hooklog).unwrap()).unwrap();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["id"], id.as_str());
}

#[test]
fn kill_then_delete_at_once_never_races() {
    // `kill ID KILL` then `delete ID` at once, as managers do. The init
    // takes milliseconds to exit after SIGKILL (its mount namespace's
    // teardown waits for an RCU grace period): before kill waited for
    // it, about 1 delete in 40 found it still "running".
    let e = Env::new("killdel");
    let b = e.bundle("b", &["sleep", "100"], |_| {});
    for i in 0..200 {
        let id = e.id(&format!("c{i}"));
        e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
        let pid = e.state(&id)["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap();
        let start = start_time(pid);
        e.ok(&["kill", &id, "KILL"]);
        let o = e.husk(&["delete", &id]);
        assert!(
            o.status.success(),
            "iteration {i}: delete right after kill failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!init_alive(pid, start), "iteration {i}: init {pid} still runs");
        assert!(!e.root.join(&id).exists(), "iteration {i}: state left");
        assert_eq!(
            default_cgroup_dirs_left(&id),
            Vec::<std::path::PathBuf>::new(),
            "iteration {i}"
        );
    }
}

#[test]
fn kill_of_a_paused_container_then_delete() {
    // A task frozen by the v1 freezer dies only once thawed: kill thaws a
    // paused container for SIGKILL (as runc does), so delete finds it stopped.
    let e = Env::new("killpaused");
    let b = e.bundle("b", &["sleep", "100"], |_| {});
    let id = e.id("c");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let pid = e.state(&id)["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap();
    let start = start_time(pid);
    e.ok(&["pause", &id]);
    assert_eq!(e.status(&id), "paused");
    e.ok(&["kill", &id, "KILL"]);
    assert!(!init_alive(pid, start), "init {pid} still runs");
    e.ok(&["delete", &id]);
    assert!(!e.root.join(&id).exists());
    assert_eq!(default_cgroup_dirs_left(&id), Vec::<std::path::PathBuf>::new());
}

#[test]
fn delete_waits_for_an_init_killed_from_outside() {
    // SIGKILL from someone else (here kill(2) from this test, then delete
    // at once): delete finds the init dying and waits for it.
    let e = Env::new("outkill");
    let b = e.bundle("b", &["sleep", "100"], |_| {});
    for i in 0..100 {
        let id = e.id(&format!("c{i}"));
        e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
        let pid = e.state(&id)["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap();
        let start = start_time(pid);
        // SAFETY: kill(2) on the init we just started (it cannot be reaped,
        // so its pid not reused, before it dies).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let o = e.husk(&["delete", &id]);
        assert!(
            o.status.success(),
            "iteration {i}: delete right after SIGKILL failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!init_alive(pid, start), "iteration {i}: init {pid} still runs");
        assert!(!e.root.join(&id).exists(), "iteration {i}: state left");
        assert_eq!(
            default_cgroup_dirs_left(&id),
            Vec::<std::path::PathBuf>::new(),
            "iteration {i}"
        );
    }
}

/// Run a container, then replace its state.json with `corrupt(original)`.
/// Returns (id, init pid, init start time).
fn corrupt_container(e: &Env, name: &str, corrupt: impl FnOnce(&str) -> String) -> (String, i32, u64) {
    let b = e.bundle(name, &["sleep", "100"], |_| {});
    let id = e.id(name);
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let pid = e.state(&id)["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap();
    let start = start_time(pid);
    let path = e.root.join(&id).join("state.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, corrupt(&text)).unwrap();
    (id, pid, start)
}

/// state, list and delete of a corrupt container fail naming the file;
/// delete --force removes the init, the cgroup in every hierarchy, the
/// state. `pid_readable`: the record still gives the init's pid and start
/// time, so delete --force waits for the init itself.
fn check_corrupt(e: &Env, id: &str, pid: i32, start: u64, what: &str, pid_readable: bool) {
    let file = e.root.join(id).join("state.json").display().to_string();
    for args in [vec!["state", id], vec!["list"], vec!["delete", id]] {
        let msg = e.err(&args);
        assert!(msg.contains(&file), "{args:?}: {msg}");
        assert!(msg.contains(what), "{args:?}: {msg}");
        assert!(!msg.contains("panicked"), "{args:?}: {msg}");
    }
    assert!(init_alive(pid, start), "a failed delete killed the init");
    assert_eq!(default_cgroup_dirs_left(id), default_cgroup_dirs(id));
    e.ok(&["delete", "--force", id]);
    assert!(!e.root.join(id).exists());
    assert_eq!(default_cgroup_dirs_left(id), Vec::<std::path::PathBuf>::new());
    if pid_readable {
        assert!(!init_alive(pid, start), "init {pid} survived delete --force");
    } else {
        // Killed through its cgroup: it left the cgroup (rmdir worked) but
        // may still be finishing its exit.
        wait_for(Duration::from_secs(10), || !init_alive(pid, start))
            .unwrap_or_else(|_| panic!("init {pid} survived delete --force"));
    }
}

#[test]
fn unparsable_state_json_is_an_error_and_force_cleans_up() {
    let e = Env::new("corrupt");
    let (id, pid, start) = corrupt_container(&e, "syntax", |_| "{".to_string());
    check_corrupt(&e, &id, pid, start, "EOF while parsing", false);
}

#[test]
fn mistyped_state_field_is_an_error_and_force_cleans_up() {
    let e = Env::new("mistyped");
    let (id, pid, start) = corrupt_container(&e, "cgroup", |text| {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["cgroup"] = json!("/husk/not-an-object");
        v.to_string()
    });
    check_corrupt(&e, &id, pid, start, "field \"cgroup\"", true);
}

#[test]
fn kill_with_names_and_numbers() {
    let e = Env::new("kill");
    // Without a pid namespace the init is an ordinary process: default
    // signal actions apply, so each signal ends it.
    let b = e.bundle("b", &["sleep", "100"], |v| {
        v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]);
    });
    for (i, sig) in ["9", "SIGTERM", "HUP", "sigint", "KILL"].iter().enumerate() {
        let id = e.id(&format!("k{i}"));
        e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
        e.ok(&["kill", &id, sig]);
        e.wait_status(&id, "stopped");
        e.ok(&["delete", &id]);
    }
    let id = e.id("bad");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(e.err(&["kill", &id, "SIGNOPE"]).contains("unknown signal"));
    assert_eq!(e.status(&id), "running");
    e.ok(&["kill", "--all", &id, "9"]);
    e.wait_status(&id, "stopped");
}

#[test]
fn run_exit_status() {
    let e = Env::new("exit");
    let b = e.bundle("b", &["sh", "-c", "exit 3"], |_| {});
    let o = e.run(&b, &e.id("a"));
    assert_eq!(o.status.code(), Some(3));
    // (pid 1 of a pid namespace cannot SIGKILL itself: use no pid namespace)
    let b = e.bundle("k", &["sh", "-c", "kill -9 $$"], |v| {
        v["linux"]["namespaces"] = json!([{"type": "mount"}]);
        v.as_object_mut().unwrap().remove("hostname");
    });
    let o = e.run(&b, &e.id("b"));
    assert_eq!(o.status.code(), Some(137));
    // run deletes the container afterwards
    assert!(e.ok(&["list", "-q"]).trim().is_empty());
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let e = Env::new("keep");
    let b = e.bundle("b", &["true"], |_| {});
    let id = e.id("c");
    let o = e.husk(&["run", "--keep", "-b", b.to_str().unwrap(), &id]);
    assert!(o.status.success());
    assert_eq!(e.status(&id), "stopped");
    e.ok(&["delete", &id]);
}

#[test]
fn run_forwards_signals() {
    let e = Env::new("fwd");
    let b = e.bundle(
        "b",
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        ],
        |_| {},
    );
    let id = e.id("c");
    let mut child = e
        .cmd(&["run", "-b", b.to_str().unwrap(), &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    // SAFETY: kill on the child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(42));
}

#[test]
fn list_formats() {
    let e = Env::new("list");
    let b = e.bundle("b", &["sleep", "100"], |_| {});
    let a = e.id("a");
    let c = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &a]);
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &c]);
    let q = e.ok(&["list", "-q"]);
    assert_eq!(q.lines().collect::<Vec<_>>(), vec![a.as_str(), c.as_str()]);
    let j: serde_json::Value = serde_json::from_str(&e.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(j[0]["status"], "created");
    assert_eq!(j[1]["status"], "running");
    assert_eq!(j[1]["owner"], "root");
    let t = e.ok(&["list"]);
    assert!(t.starts_with("ID "), "{t}");
    assert!(t.contains("running"));
}

#[test]
fn duplicate_id_fails_without_touching_the_first() {
    let e = Env::new("dup");
    let b = e.bundle("b", &["sleep", "100"], |_| {});
    let id = e.id("c");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let before = e.state(&id);
    let msg = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(msg.contains("already exists"), "{msg}");
    assert_eq!(e.state(&id), before);
}

#[test]
fn racing_creates_exactly_one_wins() {
    let e = Env::new("race");
    let b = e.bundle("b", &["sleep", "100"], |_| {});
    let id = e.id("c");
    let kids: Vec<_> = (0..4)
        .map(|i| {
            let mut c = e.cmd(&["create", "-b", b.to_str().unwrap(), &id]);
            let err = e.base.join(format!("race-err-{i}"));
            c.stderr(std::fs::File::create(&err).unwrap())
                .stdout(std::process::Stdio::null());
            (c.spawn().unwrap(), err)
        })
        .collect();
    let results: Vec<_> = kids
        .into_iter()
        .map(|(mut k, err)| std::process::Output {
            status: k.wait().unwrap(),
            stdout: vec![],
            stderr: std::fs::read(err).unwrap(),
        })
        .collect();
    let wins = results.iter().filter(|o| o.status.success()).count();
    assert_eq!(wins, 1);
    for o in results.iter().filter(|o| !o.status.success()) {
        assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    }
    assert_eq!(e.status(&id), "created");
}

#[test]
fn state_of_unknown_and_invalid_ids() {
    let e = Env::new("ids");
    assert!(e.err(&["state", "nope"]).contains("does not exist"));
    assert!(e.err(&["state", "../etc"]).contains("invalid container id"));
    let b = e.bundle("b", &["true"], |_| {});
    let msg = e.err(&["create", "-b", b.to_str().unwrap(), "a/b"]);
    assert!(msg.contains("invalid container id"), "{msg}");
    assert!(!e.root.join("a").exists());
}

#[test]
fn start_without_process_fails_at_start() {
    let e = Env::new("noproc");
    let b = e.bundle("b", &["true"], |v| {
        v.as_object_mut().unwrap().remove("process");
    });
    let id = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    let msg = e.err(&["start", &id]);
    assert!(msg.contains("no process"), "{msg}");
    e.wait_status(&id, "stopped");
}

#[test]
fn json_log_gets_the_error_line() {
    let e = Env::new("log");
    let b = e.bundle("b", &["nosuchbinary"], |_| {});
    let log = e.base.join("log.json");
    let o = e.husk(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "-b",
        b.to_str().unwrap(),
        &e.id("c"),
    ]);
    assert!(!o.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"]
            .as_str()
            .unwrap()
            .contains(r#"exec: "nosuchbinary": executable file not found in $PATH"#)
    );
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
    // the failed create leaves nothing behind
    assert!(!e.root.join(e.id("c")).exists());
}

#[test]
fn conmon_style_equals_flags() {
    let e = Env::new("eq");
    let b = e.bundle("b", &["true"], |_| {});
    let mut c = std::process::Command::new(HUSK);
    c.arg(format!("--root={}", e.root.display()))
        .arg("--log-format=json")
        .args(["run", &format!("--bundle={}", b.display()), &e.id("c")]);
    let o = output_via_files(c, &e.base);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn version_and_features() {
    let e = Env::new("ver");
    let v = e.ok(&["--version"]);
    assert!(v.contains("husk version") && v.contains("spec: 1."), "{v}");
    let f: serde_json::Value = serde_json::from_str(&e.ok(&["features"])).unwrap();
    assert!(f["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n == "user"));
    assert_eq!(f["linux"]["cgroup"]["systemd"], true);
    assert_eq!(f["linux"]["cgroup"]["systemdUser"], true);
}

#[test]
fn spec_writes_a_config_once() {
    let e = Env::new("spec");
    let d = e.base.join("s");
    std::fs::create_dir_all(&d).unwrap();
    e.ok(&["spec", "-b", d.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["process"]["args"], json!(["sh"]));
    assert!(e.err(&["spec", "-b", d.to_str().unwrap()]).contains("exists"));
}

#[test]
fn stopped_state_survives_pid_reuse_check() {
    // A recorded pid whose start time differs is not "our" process.
    let e = Env::new("reuse");
    let b = e.bundle("b", &["true"], |_| {});
    let id = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    let path = e.root.join(&id).join("state.json");
    let mut st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let real = st["pid"].as_i64().and_then(|p| i32::try_from(p).ok()).unwrap();
    // Point the record at this test process with a wrong start time.
    st["pid"] = json!(std::process::id());
    st["startTime"] = json!(1);
    std::fs::write(&path, st.to_string()).unwrap();
    assert_eq!(e.status(&id), "stopped");
    assert!(e.err(&["kill", &id, "9"]).contains("not running"));
    // SAFETY: kill the real init we orphaned from the record.
    unsafe { libc::kill(real, libc::SIGKILL) };
    let _ = wait_for(Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{real}")).exists()
    });
}

#[test]
fn state_json_keeps_runc_field_order() {
    let e = Env::new("order");
    let b = e.bundle("b", &["true"], |v| {
        v["annotations"] = json!({"org.example.z": "1", "org.example.a": "2"});
    });
    let id = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    let text = e.ok(&["state", &id]);
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  \"").and_then(|r| r.split('"').next()))
        .collect();
    assert_eq!(
        keys,
        [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
            "owner",
            "annotations"
        ]
    );
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    // `husk ... | head -0`: the reader is gone before husk writes.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{HUSK} features | head -c 0; {HUSK} --version | head -c 0; echo ${{PIPESTATUS:-done}}"
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn completions_and_man_page_come_from_the_cli() {
    let e = Env::new("docs");
    for sh in ["bash", "zsh", "fish"] {
        let c = e.ok(&["completion", sh]);
        assert!(
            c.contains("husk") && c.contains("create") && c.contains("console-socket"),
            "{sh}"
        );
    }
    assert!(e.err(&["completion", "tcsh"]).contains("bash, zsh or fish"));
    let man = e.ok(&["man"]);
    assert!(
        man.contains(".TH husk 8") && man.contains("checkpoint") && man.contains("restore") && man.contains("exec")
    );
}

/// The pid a pidfd refers to, from /proc/self/fdinfo.
fn pidfd_pid(fd: &std::os::fd::OwnedFd) -> i64 {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// runc's `--pidfd-socket` (create, run, exec): a pidfd of the init (or of
/// the exec'd process) arrives on the socket with SCM_RIGHTS, with the
/// words runc sends ("standard", "setns").
#[test]
fn pidfd_socket_receives_the_processes_pidfd() {
    let e = Env::new("pidfdsock");
    let b = e.bundle("b", &["sleep", "1000"], |_| {});
    let id = e.id("c");
    let path = e.base.join("pidfd.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    e.ok(&[
        "create",
        "--pidfd-socket",
        path.to_str().unwrap(),
        "-b",
        b.to_str().unwrap(),
        &id,
    ]);
    let (conn, _) = l.accept().unwrap();
    let (words, fd) = husk::tty::recv_fd(&conn.into()).unwrap();
    assert_eq!(words, b"standard");
    let init = e.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(pidfd_pid(&fd), init);
    e.ok(&["start", &id]);
    let o = e.husk(&[
        "exec",
        "-d",
        "--pid-file",
        e.base.join("exec.pid").to_str().unwrap(),
        "--pidfd-socket",
        path.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (conn, _) = l.accept().unwrap();
    let (words, fd) = husk::tty::recv_fd(&conn.into()).unwrap();
    assert_eq!(words, b"setns");
    let exec_pid: i64 = std::fs::read_to_string(e.base.join("exec.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pidfd_pid(&fd), exec_pid);
    // a socket nobody listens on: create fails and leaves nothing
    let id2 = e.id("nobody");
    let msg = e.err(&[
        "create",
        "--pidfd-socket",
        "/nonexistent/sock",
        "-b",
        b.to_str().unwrap(),
        &id2,
    ]);
    assert!(msg.contains("connect to the --pidfd-socket /nonexistent/sock"), "{msg}");
    assert!(!e.root.join(&id2).exists());
}

/// runc's `run --no-subreaper` is accepted: husk run never makes itself a
/// subreaper (PR_SET_CHILD_SUBREAPER), which is what the flag asks of runc.
#[test]
fn run_accepts_no_subreaper() {
    let e = Env::new("nosubreaper");
    let b = e.bundle("b", &["sh", "-c", "exit 5"], |_| {});
    let o = e.husk(&["run", "--no-subreaper", "-b", b.to_str().unwrap(), &e.id("c")]);
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
}
