//! `husk exec` into running containers.
mod common;
use common::*;
use serde_json::json;

fn running(e: &Env, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let b = e.bundle(name, &["sleep", "1000"], edit);
    let id = e.id(name);
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    id
}

#[test]
fn one_shot_output_and_exit_code() {
    let e = Env::new("exec1");
    let id = running(&e, "a", |_| {});
    let out = e.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$; hostname; tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    // pid 2 in the container's pid namespace, beside its init
    assert_eq!(out, "2\nhusk\nsleep 1000 ");
    let o = e.husk(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
}

#[test]
fn user_env_cwd_groups() {
    let e = Env::new("exec2");
    let id = running(&e, "a", |_| {});
    let out = e.ok(&[
        "exec",
        "-u",
        "1000:1000",
        "-g",
        "5",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "id -u; id -G; echo $FOO; pwd",
    ]);
    assert_eq!(out, "1000\n1000 5\nbar\n/tmp\n");
}

#[test]
fn process_file_like_the_shims() {
    let e = Env::new("exec3");
    let id = running(&e, "a", |_| {});
    let pf = e.base.join("process.json");
    std::fs::write(
        &pf,
        json!({"args": ["sh", "-c", "echo from-file $X"], "env": ["PATH=/bin", "X=1"], "cwd": "/", "user": {"uid": 0, "gid": 0}}).to_string(),
    )
    .unwrap();
    let out = e.ok(&["exec", "--process", pf.to_str().unwrap(), &id]);
    assert_eq!(out, "from-file 1\n");
}

#[test]
fn detached_exec_then_killed() {
    let e = Env::new("exec4");
    let id = running(&e, "a", |_| {});
    let pidf = e.base.join("pid");
    e.ok(&["exec", "-d", "--pid-file", pidf.to_str().unwrap(), &id, "sleep", "1000"]);
    let pid: i32 = std::fs::read_to_string(&pidf).unwrap().parse().unwrap();
    let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    let init = e.state(&id)["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap();
    assert_eq!(ns(pid), ns(init));
    // killing the container's init takes the exec'd process with it (pid namespace)
    e.ok(&["kill", &id, "KILL"]);
    wait_for(std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z"))
            .unwrap_or(true)
    })
    .expect("exec'd process survived its container");
}

#[test]
fn exec_in_user_namespace() {
    let e = Env::new("exec5");
    let id = running(&e, "a", |v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    });
    let out = e.ok(&["exec", &id, "sh", "-c", "id -u; cat /proc/self/uid_map | tr -s ' '"]);
    assert_eq!(out, "0\n 0 200000 65536\n");
}

#[test]
fn exec_errors() {
    let e = Env::new("exec6");
    let id = running(&e, "a", |_| {});
    let msg = e.err(&["exec", &id, "nosuch"]);
    assert!(
        msg.contains(r#"exec: "nosuch": executable file not found in $PATH"#),
        "{msg}"
    );
    e.ok(&["kill", &id, "KILL"]);
    e.wait_status(&id, "stopped");
    assert!(e.err(&["exec", &id, "true"]).contains("stopped"));
    // (exec into a created container runs: exec_into_a_created_container)
    // A terminal nobody would relay: detached, without --console-socket.
    let b = e.bundle("c", &["sleep", "1000"], |_| {});
    let c = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &c]);
    let msg = e.err(&["exec", "-t", "-d", &c, "true"]);
    assert!(
        msg.contains("--tty (process.terminal) with --detach needs --console-socket"),
        "{msg}"
    );
}

#[test]
fn exec_into_a_sub_cgroup() {
    let e = Env::new("exec7");
    let id = running(&e, "a", |_| {});
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.root.join(&id).join("state.json")).unwrap()).unwrap();
    let pids_dir = st["cgroup"]["v1"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["controllers"][0] == "pids")
        .map(|d| std::path::PathBuf::from(d["path"].as_str().unwrap()))
        .unwrap();
    std::fs::create_dir(pids_dir.join("sub")).unwrap();
    let out = e.ok(&["exec", "--cgroup", "pids:/sub", &id, "cat", "/proc/self/cgroup"]);
    assert!(
        out.lines()
            .any(|l| l.ends_with(":pids:/sub") || l.contains("pids:") && l.ends_with("/sub")),
        "{out}"
    );
    assert!(
        e.err(&["exec", "--cgroup", "../../x", &id, "true"])
            .contains("without ..")
    );
    assert!(
        e.err(&["exec", "--cgroup", "nosuch", &id, "true"])
            .contains("does not exist")
    );
}

/// exec into a created, not yet started container works (runc and crun
/// allow it). The init waiting for start is a copy of husk and must stay
/// out of reach: non-dumpable, so the exec'd process cannot open
/// /proc/1/exe, /proc/1/environ, /proc/1/mem or the init's fds. Then the
/// container starts as usual.
#[test]
fn exec_into_a_created_container() {
    let e = Env::new("execcreated");
    let b = e.bundle("b", &["sleep", "1000"], |_| {});
    let id = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    let probe = "echo pid-$$; \
        for f in exe environ mem; do head -c 1 /proc/1/$f > /dev/null 2>&1 && echo $f-readable || echo $f-denied; done; \
        readlink /proc/1/exe > /dev/null 2>&1 && echo exe-link-readable || echo exe-link-denied; \
        for fd in $(ls /proc/1/fd); do head -c 0 /proc/1/fd/$fd 2>/dev/null && echo fd-$fd-open; readlink /proc/1/fd/$fd 2>/dev/null; done; \
        echo end";
    let out = e.ok(&["exec", &id, "sh", "-c", probe]);
    assert_eq!(
        out, "pid-2\nexe-denied\nenviron-denied\nmem-denied\nexe-link-denied\nend\n",
        "{out}"
    );
    assert_eq!(e.status(&id), "created");
    // Given CAP_SYS_PTRACE (no user namespace: in the host's), a process
    // can open the init's fds: none of them may lead to the host's state
    // directory (whose `..` climbs out of the container).
    let links = e.ok(&[
        "exec",
        "--cap",
        "CAP_SYS_PTRACE",
        &id,
        "sh",
        "-c",
        "for fd in $(ls /proc/1/fd); do readlink /proc/1/fd/$fd; done; readlink /proc/1/exe > /dev/null && echo exe-readable",
    ]);
    assert!(
        links.contains("exe-readable"),
        "CAP_SYS_PTRACE did not take effect: {links}"
    );
    let root = e.root.display().to_string();
    assert!(
        !links.contains(&root),
        "the waiting init holds the state directory: {links}"
    );
    assert_eq!(e.status(&id), "created");
    e.ok(&["start", &id]);
    assert_eq!(e.status(&id), "running");
    let cmdline = e.ok(&["exec", &id, "cat", "/proc/1/cmdline"]);
    assert_eq!(cmdline, "sleep\x001000\0");
}
