//! seccomp profiles as runc applies them: ENOSYS for system calls newer
//! than the profile, listenerPath without a notify rule, and the notify fd
//! handed to the agent during create.
mod common;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// x86_64 system call numbers used below.
const MKDIR: i64 = 83;
const GETPPID: i64 = 110;
const SYNC: i64 = 162;
const CLONE3: i64 = 435;
const OPENAT2: i64 = 437;
const EPOLL_PWAIT2: i64 = 441;
/// No kernel has it (yet): ENOSYS without any filter.
const FUTURE: i64 = 1000;

const HELPER: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* Each argument is a system call number: call it with all-zero
   arguments and print "nr result errno". */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long nr = strtol(argv[i], 0, 10);
        errno = 0;
        long r = syscall(nr, 0, 0, 0, 0, 0, 0);
        printf("%ld %ld %d\n", nr, r, r < 0 ? errno : 0);
    }
    fflush(stdout);
    return 0;
}
"#;

/// A static helper that makes raw system calls, compiled with the host's
/// gcc into a directory of its own (bound into the container at /data).
/// None, recorded as not checked, without gcc and a static libc.
fn syscall_helper(e: &Env, what: &str) -> Option<PathBuf> {
    let dir = e.base.join("helper");
    std::fs::create_dir_all(&dir).unwrap();
    let src = e.base.join("sc.c");
    std::fs::write(&src, HELPER).unwrap();
    let out = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(dir.join("sc"))
        .arg(&src)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(dir),
        Ok(o) => {
            not_checked(
                what,
                &format!("gcc -static failed: {}", String::from_utf8_lossy(&o.stderr)),
            );
            None
        }
        Err(err) => {
            not_checked(what, &format!("no gcc to build the raw-syscall helper: {err}"));
            None
        }
    }
}

/// What a static glibc program needs to start, print and exit (and
/// capset, which husk calls after the load without no_new_privs): all
/// of them older than clone3.
const STARTUP: &[&str] = &[
    "execve",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "mprotect",
    "mmap",
    "munmap",
    "readlink",
    "readlinkat",
    "uname",
    "newfstatat",
    "fstat",
    "getrandom",
    "write",
    "exit",
    "exit_group",
    "capset",
    "capget",
];

/// Run the helper on the numbers under `profile`; "nr result errno" lines.
fn run_helper(e: &Env, dir: &Path, name: &str, nrs: &[i64], profile: Value) -> Vec<(i64, i64, i32)> {
    let mut args = vec!["/data/sc".to_string()];
    args.extend(nrs.iter().map(|n| n.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let b = e.bundle(name, &args, |v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/data", "type": "bind", "source": dir, "options": ["rbind", "ro"]}));
        v["linux"]["seccomp"] = profile;
    });
    let o = e.run(&b, &e.id(name));
    assert!(
        o.status.success(),
        "{name}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<i64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (f[0], f[1], i32::try_from(f[2]).unwrap())
        })
        .collect()
}

fn errno_of(results: &[(i64, i64, i32)], nr: i64) -> i32 {
    results
        .iter()
        .find(|r| r.0 == nr)
        .unwrap_or_else(|| panic!("no result for {nr}: {results:?}"))
        .2
}

/// A profile older than clone3 with defaultAction SCMP_ACT_ERRNO (EPERM):
/// system calls above the newest one it names get ENOSYS, so that libc
/// falls back to the older call, as runc's patched filter answers; those
/// at or below it keep the default action, named ones their own action.
#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let e = Env::new("enosys");
    if std::env::consts::ARCH != "x86_64" {
        not_checked(
            "ENOSYS for system calls newer than the seccomp profile",
            "the test uses x86_64 system call numbers",
        );
        return;
    }
    let Some(dir) = syscall_helper(&e, "ENOSYS for system calls newer than the seccomp profile") else {
        return;
    };
    let nrs = [CLONE3, OPENAT2, EPOLL_PWAIT2, FUTURE, MKDIR, GETPPID, SYNC];
    // Without a filter: clone3 and openat2 with null arguments are EFAULT
    // or EINVAL (they exist), the future one ENOSYS.
    let plain = run_helper(&e, &dir, "plain", &nrs, Value::Null);
    assert_ne!(errno_of(&plain, CLONE3), libc::ENOSYS, "{plain:?}");
    assert_eq!(errno_of(&plain, FUTURE), libc::ENOSYS, "{plain:?}");

    let profile = |extra: Value| {
        let mut rules = vec![
            json!({"names": STARTUP, "action": "SCMP_ACT_ALLOW"}),
            json!({"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}),
            json!({"names": ["sync"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EIO}),
        ];
        if !extra.is_null() {
            rules.push(extra);
        }
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": rules,
        })
    };
    let old = run_helper(&e, &dir, "old", &nrs, profile(Value::Null));
    for nr in [CLONE3, OPENAT2, EPOLL_PWAIT2, FUTURE] {
        assert_eq!(errno_of(&old, nr), libc::ENOSYS, "syscall {nr}: {old:?}");
    }
    // not named, older than the newest named: the default action
    assert_eq!(errno_of(&old, MKDIR), libc::EPERM, "{old:?}");
    // named: their own actions
    assert_eq!(errno_of(&old, GETPPID), 0, "{old:?}");
    assert_eq!(errno_of(&old, SYNC), libc::EIO, "{old:?}");

    // clone3 named explicitly (with the default action): it keeps that
    // action, and only what is newer than clone3 gets ENOSYS.
    let listed = run_helper(
        &e,
        &dir,
        "listed",
        &nrs,
        profile(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO"})),
    );
    assert_eq!(errno_of(&listed, CLONE3), libc::EPERM, "{listed:?}");
    for nr in [OPENAT2, EPOLL_PWAIT2, FUTURE] {
        assert_eq!(errno_of(&listed, nr), libc::ENOSYS, "syscall {nr}: {listed:?}");
    }
    assert_eq!(errno_of(&listed, MKDIR), libc::EPERM, "{listed:?}");

    // A default of ENOSYS itself, or one that allows: no stub, as runc.
    let mut allow = profile(json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES}));
    allow["defaultAction"] = json!("SCMP_ACT_ALLOW");
    let allowed = run_helper(&e, &dir, "allow", &nrs, allow);
    assert_eq!(errno_of(&allowed, MKDIR), libc::EACCES, "{allowed:?}");
    assert_ne!(errno_of(&allowed, CLONE3), libc::ENOSYS, "{allowed:?}");
}

/// `listenerPath` in a profile without SCMP_ACT_NOTIFY is a valid config
/// (runc and crun start the container and send no fd): nothing listens
/// there, and the container runs.
#[test]
fn listener_path_without_a_notify_rule_is_not_used() {
    let e = Env::new("nolistener");
    let sock = e.base.join("nobody-listens.sock");
    let b = e.bundle("b", &["sh", "-c", "mkdir /x 2>/dev/null || echo refused"], |v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "unused",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    let id = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    e.ok(&["start", &id]);
    e.wait_status(&id, "stopped");
    let o = e.run(&b, &e.id("r"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "refused\n");
}

/// A seccomp agent that waits for the notify fd before its caller runs
/// `start` (as runc's protocol allows: runc sends the fd during create):
/// when `create` returns, the agent has the fd and the container state.
/// The agent then answers the container's mkdir with a fake success.
/// With and without no_new_privs (the filter is then loaded with the
/// capabilities raised for it).
#[test]
fn notify_fd_reaches_the_agent_during_create() {
    let e = Env::new("notify-create");
    for nnp in [true, false] {
        agent_gets_the_fd_during_create(&e, nnp);
    }
}

fn agent_gets_the_fd_during_create(e: &Env, nnp: bool) {
    use std::os::fd::AsRawFd;
    let sock = e.base.join(format!("agent-{nnp}.sock"));
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (data, fd) = husk::tty::recv_fd(&conn.into()).unwrap();
        let state: Value = serde_json::from_slice(&data).unwrap();
        tx.send(state).unwrap();
        let req = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
        libseccomp::ScmpNotifResp::new_val(req.id, 0, libseccomp::ScmpNotifRespFlags::empty())
            .respond(fd.as_raw_fd())
            .unwrap();
    });
    let b = e.bundle(
        "b",
        &["sh", "-c", "mkdir /x && echo faked; test -d /x || echo absent"],
        |v| {
            v["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock,
                "listenerMetadata": "agent-before-start",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            });
        },
    );
    let id = e.id(&format!("c-{nnp}"));
    let out = e.base.join(format!("container-out-{nnp}"));
    let mut create = e.cmd(&["create", "-b", b.to_str().unwrap(), &id]);
    let err = e.base.join(format!("create-err-{nnp}"));
    create.stdout(std::fs::File::create(&out).unwrap());
    create.stderr(std::fs::File::create(&err).unwrap());
    let st = create.status().unwrap();
    assert!(st.success(), "{}", std::fs::read_to_string(&err).unwrap());
    // create has returned: the fd must be there already (no start yet).
    let state = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the agent did not get the notify fd during create");
    assert_eq!(e.status(&id), "created");
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "agent-before-start");
    assert_eq!(state["state"]["id"], json!(id));
    assert_eq!(state["pid"], e.state(&id)["pid"]);
    e.ok(&["start", &id]);
    e.wait_status(&id, "stopped");
    agent.join().unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "faked\nabsent\n", "nnp={nnp}");
}
