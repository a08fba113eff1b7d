//! Container escapes runc, crun and youki fixed over the years, each
//! checked from outside: the host must be untouched.
mod common;
use common::*;
use serde_json::json;
use std::process::Command;

/// CVE-2024-21626: a leaked fd to a host directory used as the cwd. husk
/// marks every inherited fd close-on-exec and checks that the cwd lies
/// inside the container's root.
#[test]
fn leaked_fd_cannot_be_the_cwd() {
    let e = Env::new("cwdleak");
    let b = e.bundle("b", &["sh", "-c", "pwd; ls .. | head -3"], |v| {
        v["process"]["cwd"] = json!("/proc/self/fd/7");
    });
    let c = with_leaked_fd(e.cmd(&["run", "-b", b.to_str().unwrap(), &e.id("c")]), 7);
    let o = output_via_files(c, &e.base);
    assert!(
        !o.status.success(),
        "ran with a leaked cwd: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(msg.contains("cwd"), "{msg}");
}

/// CVE-2019-5736 (and its /proc/<pid> cousins): until it execs the
/// entrypoint, the init — a copy of husk — must not be readable through
/// /proc, even by a process of the same (rootless) user. husk sets it
/// non-dumpable; note that the kernel also clears dumpable when the init
/// changes its ids in the user namespace, so this test guards the outcome
/// rather than that one prctl.
#[test]
fn the_waiting_init_is_not_dumpable() {
    const UID: u32 = 54_322;
    let e = Env::new("dumpable");
    let xdg = e.base.join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    std::os::unix::fs::chown(&xdg, Some(UID), Some(UID)).unwrap();
    let rootfs = e.rootfs_for_any_user();
    let b = e.bundle("b", &["true"], |v| {
        v["root"]["path"] = json!(rootfs);
        husk::commands::spec::make_rootless(v, UID, UID)
    });
    let user = |args: &[&str]| as_user(&e, UID, &xdg, args);
    let husk = e.husk_for_any_user();
    let husk = husk.to_str().unwrap();
    let o = user(&[husk, "create", "-b", b.to_str().unwrap(), "d1"]);
    if !rootless_possible(&o, "the rootless init not dumpable (CVE-2019-5736)") {
        return;
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st: serde_json::Value = serde_json::from_slice(&user(&[husk, "state", "d1"]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    // the same user cannot read the init's memory map or open its exe
    let o = user(&["cat", &format!("/proc/{pid}/maps")]);
    let o2 = user(&["cat", &format!("/proc/{pid}/exe")]);
    let _ = Command::new(HUSK)
        .arg("--root")
        .arg(xdg.join("husk"))
        .args(["delete", "-f", "d1"])
        .status();
    assert!(
        !o.status.success(),
        "the init's /proc/{pid}/maps was readable by its user"
    );
    assert!(
        !o2.status.success(),
        "the init's /proc/{pid}/exe was openable by its user"
    );
}

/// CVE-2025-31133: masking must bind the real /dev/null. A rootfs whose
/// /dev/null is a symlink to a host-sensitive file must not turn a masked
/// path into that file.
#[test]
fn masking_uses_the_real_dev_null() {
    let e = Env::new("devnull");
    let rootfs = e.private_rootfs();
    std::fs::create_dir_all(rootfs.join("dev")).unwrap();
    let _ = std::fs::remove_file(rootfs.join("dev/null"));
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", rootfs.join("dev/null")).unwrap();
    let b = e.bundle(
        "b",
        &[
            "sh",
            "-c",
            "echo pwned > /proc/kcore; cat /proc/kcore | head -c 10; echo end",
        ],
        |v| {
            v["root"] = json!({"path": rootfs, "readonly": false});
            // no /dev tmpfs: the rootfs's own /dev is used
            v["mounts"].as_array_mut().unwrap().retain(|m| {
                m["destination"] != "/dev"
                    && m["destination"] != "/dev/pts"
                    && m["destination"] != "/dev/shm"
                    && m["destination"] != "/dev/mqueue"
            });
            v["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
        },
    );
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let o = e.run(&b, &e.id("c"));
    let after = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert_eq!(before, after, "the host's core_pattern changed");
    assert!(
        String::from_utf8_lossy(&o.stdout).ends_with("end\n"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// CVE-2021-30465-style: a bind mount destination through a symlink that
/// points at the host must land inside the rootfs (see also
/// isolation::symlinked_mount_destination_stays_in_rootfs), and a `..`
/// destination is refused outright.
#[test]
fn dotdot_destination_is_refused() {
    let e = Env::new("dotdot");
    let b = e.bundle("b", &["true"], |v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/tmp/../../../../etc", "type": "tmpfs", "source": "tmpfs"}));
    });
    let msg = e.err(&["run", "-b", b.to_str().unwrap(), &e.id("c")]);
    assert!(msg.contains("must not contain"), "{msg}");
}

/// husk started with exactly `fds` open above stdio (each on its own file
/// `passed-<fd>`, not close-on-exec): bash applies the redirections and
/// closes whatever else the test process inherited, then execs husk.
fn with_fds(e: &Env, args: &[&str], fds: &[i32]) -> Command {
    with_fds_after(e, "", args, fds)
}

/// [`with_fds`], with the shell command `before` run first in the process
/// that becomes husk.
fn with_fds_after(e: &Env, before: &str, args: &[&str], fds: &[i32]) -> Command {
    let mut script = format!("{before} exec \"$0\" \"$@\"");
    for fd in 3..64 {
        if !fds.contains(&fd) {
            script.push_str(&format!(" {fd}<&-"));
            continue;
        }
        let f = e.base.join(format!("passed-{fd}"));
        std::fs::write(&f, fd.to_string()).unwrap();
        script.push_str(&format!(" {fd}<{}", f.display()));
    }
    let mut c = Command::new("bash");
    c.arg("-c").arg(script).arg(HUSK).arg("--root").arg(&e.root).args(args);
    c.stdin(std::process::Stdio::null());
    c
}

/// The container's process lists its own fds (`ls -l /proc/$$/fd` from a
/// child, so ls's directory fd is not among them): fd → link target.
const LIST_FDS: &str = "ls -l /proc/$$/fd; exit 0";

fn parse_fds(out: &str) -> std::collections::BTreeMap<i32, String> {
    out.lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            Some((fd, target.to_string()))
        })
        .collect()
}

/// Only 0, 1, 2 and the fds the caller passed, each pointing at the file
/// the caller opened on it.
fn assert_only_passed(out: &str, passed: &[i32], what: &str) {
    let seen = parse_fds(out);
    let mut want: Vec<i32> = vec![0, 1, 2];
    want.extend(passed);
    let got: Vec<i32> = seen.keys().copied().collect();
    assert_eq!(got, want, "{what}: fds in the container:\n{out}");
    for fd in passed {
        assert!(
            seen[fd].ends_with(&format!("/passed-{fd}")),
            "{what}: fd {fd} points at {:?}, not the file passed on it:\n{out}",
            seen[fd]
        );
    }
}

/// --preserve-fds N passes the caller's fds 3 .. 3+N-1 and nothing of
/// husk's own: not the state directory (whose `..` leads to the host's
/// `/`), not its sockets, also where the caller leaves holes in the range
/// (husk's own fds would land there). create + start, run and exec alike.
#[test]
fn preserve_fds_pass_only_the_callers_fds() {
    let e = Env::new("preserve");
    let b = e.bundle("b", &["sh", "-c", LIST_FDS], |_| {});
    let bs = b.to_str().unwrap();
    // (--preserve-fds, fds the caller holds; 30 lies above every range)
    let cases: [(u32, Vec<i32>); 4] = [
        (1, vec![3, 30]),
        (5, vec![3, 5, 7, 30]),
        (10, vec![3]),
        (20, (3..23).chain([30]).collect()),
    ];
    for (n, held) in &cases {
        let passed: Vec<i32> = held.iter().copied().filter(|fd| *fd < 3 + *n as i32).collect();
        let what = format!("run --preserve-fds {n} holding {held:?}");
        let id = e.id(&format!("run{n}"));
        let o = output_via_files(
            with_fds(&e, &["run", "--preserve-fds", &n.to_string(), "-b", bs, &id], held),
            &e.base,
        );
        assert!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
        assert_only_passed(&String::from_utf8_lossy(&o.stdout), &passed, &what);
    }

    // create + start: the init holds the fds from create until it execs.
    let id = e.id("created");
    let out = e.base.join("created.out");
    let mut c = with_fds(&e, &["create", "--preserve-fds", "10", "-b", bs, &id], &[3, 5]);
    c.stdout(std::fs::File::create(&out).unwrap());
    let st = c.status().unwrap();
    assert!(st.success(), "create --preserve-fds 10");
    e.ok(&["start", &id]);
    e.wait_status(&id, "stopped");
    assert_only_passed(
        &std::fs::read_to_string(&out).unwrap(),
        &[3, 5],
        "create --preserve-fds 10",
    );
    e.ok(&["delete", &id]);

    // exec into a running container.
    let id = e.id("sleeper");
    let sb = e.bundle("sleep", &["sleep", "100"], |_| {});
    e.ok(&["run", "-d", "-b", sb.to_str().unwrap(), &id]);
    let o = output_via_files(
        with_fds(
            &e,
            &["exec", "--preserve-fds", "5", &id, "sh", "-c", LIST_FDS],
            &[3, 6, 30],
        ),
        &e.base,
    );
    assert!(o.status.success(), "exec: {}", String::from_utf8_lossy(&o.stderr));
    assert_only_passed(&String::from_utf8_lossy(&o.stdout), &[3, 6], "exec --preserve-fds 5");
    e.ok(&["delete", "--force", &id]);
}

/// A range that cannot fit in the open file limit is refused, naming the flag.
#[test]
fn preserve_fds_beyond_the_fd_limit_is_refused() {
    let e = Env::new("preservebig");
    let b = e.bundle("b", &["true"], |_| {});
    let err = e.err(&[
        "run",
        "--preserve-fds",
        "2000000000",
        "-b",
        b.to_str().unwrap(),
        &e.id("a"),
    ]);
    assert!(err.contains("--preserve-fds 2000000000"), "{err}");
}

/// Socket activation (systemd starting husk with LISTEN_FDS and its own
/// pid in LISTEN_PID): those fds come first, then --preserve-fds, as with
/// runc; the container's process is told LISTEN_FDS and its own pid.
#[test]
fn socket_activation_fds_come_before_preserved_ones() {
    let e = Env::new("listenfds");
    let b = e.bundle(
        "b",
        &["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; ls -l /proc/$$/fd; exit 0"],
        |_| {},
    );
    // bash execs husk: its pid is husk's.
    let c = with_fds_after(
        &e,
        "export LISTEN_FDS=2 LISTEN_PID=$$;",
        &["run", "--preserve-fds", "1", "-b", b.to_str().unwrap(), &e.id("a")],
        &[3, 4, 5, 6],
    );
    let o = output_via_files(c, &e.base);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("2 1\n"), "{out}");
    assert_only_passed(&out, &[3, 4, 5], "LISTEN_FDS=2 and --preserve-fds 1");
}

/// Socket activation alone, as systemd starts a unit: LISTEN_FDS=1 and
/// LISTEN_PID naming husk, fd 3 open. The container gets fd 3 (the same
/// file) and LISTEN_FDS=1, LISTEN_PID=1 (its own pid), as with runc.
#[test]
fn socket_activation_passes_fd_3() {
    let e = Env::new("listenfd1");
    let b = e.bundle(
        "b",
        &[
            "sh",
            "-c",
            "echo $LISTEN_FDS $LISTEN_PID; cat <&3; echo; ls -l /proc/$$/fd; exit 0",
        ],
        |_| {},
    );
    let c = with_fds_after(
        &e,
        "export LISTEN_FDS=1 LISTEN_PID=$$;",
        &["run", "-b", b.to_str().unwrap(), &e.id("a")],
        &[3],
    );
    let o = output_via_files(c, &e.base);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("1 1\n3\n"), "{out}");
    assert_only_passed(&out, &[3], "LISTEN_FDS=1");
}
