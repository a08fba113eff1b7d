//! What a container sees from inside, and bad inputs that must leave
//! nothing behind.
mod common;
use common::*;
use serde_json::json;

fn run_sh(e: &Env, name: &str, script: &str, edit: impl FnOnce(&mut serde_json::Value)) -> (i32, String, String) {
    let b = e.bundle(name, &["sh", "-c", script], edit);
    let o = e.run(&b, &e.id(name));
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn namespaces_seen_from_inside() {
    let e = Env::new("ns");
    let (code, out, err) = run_sh(
        &e,
        "a",
        "hostname; echo pid=$$; ls /sys/class/net; test -e /proc/self/status && echo proc; cat /proc/sys/kernel/domainname",
        |v| {
            v["hostname"] = json!("inside");
            v["domainname"] = json!("example.org");
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "inside\npid=1\nlo\nproc\nexample.org\n");
}

#[test]
fn masked_and_readonly_paths() {
    let e = Env::new("mask");
    let script = "test -z \"$(cat /proc/kcore 2>/dev/null | head -c1)\" && echo kcore-empty; \
                  ls /proc/acpi | wc -l; \
                  echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo sys-ro; \
                  touch /newfile 2>/dev/null || echo root-ro; \
                  touch /tmp/x 2>/dev/null || echo tmp-ro";
    let (code, out, err) = run_sh(&e, "a", script, |v| {
        v["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/acpi", "/does/not/exist"]);
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "kcore-empty\n0\nsys-ro\nroot-ro\ntmp-ro\n");
}

#[test]
fn writable_root_when_not_readonly() {
    let e = Env::new("rw");
    // A private copy of the rootfs: this test writes into it.
    let rootfs = e.private_rootfs();
    let (code, out, err) = run_sh(&e, "a", "touch /tmp/ok && echo wrote", |v| {
        v["root"] = json!({"path": rootfs, "readonly": false});
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "wrote\n");
    assert!(rootfs.join("tmp/ok").exists());
}

#[test]
fn user_groups_caps_rlimits_env_cwd_umask() {
    let e = Env::new("proc");
    let script = "id -u; id -g; id -G; grep -E '^Cap(Eff|Prm|Bnd|Inh|Amb)' /proc/self/status | tr -s '\\t' ' '; \
                  ulimit -n; ulimit -Hn; echo $FOO; echo $HOME; pwd; umask; grep NoNewPrivs /proc/self/status | tr -s '\\t' ' '";
    let (code, out, err) = run_sh(&e, "a", script, |v| {
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 44], "umask": 0o077});
        v["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
        v["process"]["cwd"] = json!("/home/user");
        v["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        });
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]);
    });
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    assert_eq!(lines[2], "1000 5 44");
    // CapInh, CapPrm, CapEff, CapBnd, CapAmb in /proc order. Ambient caps are
    // added to permitted and effective on exec.
    assert_eq!(lines[3], "CapInh: 0000000000000020");
    assert_eq!(lines[4], "CapPrm: 0000000000000020");
    assert_eq!(lines[5], "CapEff: 0000000000000020");
    assert_eq!(lines[6], "CapBnd: 0000000000000421");
    assert_eq!(lines[7], "CapAmb: 0000000000000020");
    assert_eq!(lines[8], "100");
    assert_eq!(lines[9], "200");
    assert_eq!(lines[10], "bar");
    assert_eq!(lines[11], "/home/user");
    assert_eq!(lines[12], "/home/user");
    assert_eq!(lines[13], "0077");
    assert_eq!(lines[14], "NoNewPrivs: 1");
}

#[test]
fn root_capabilities_as_configured() {
    let e = Env::new("caps");
    let (code, out, err) = run_sh(&e, "a", "grep CapEff /proc/self/status | tr -s '\\t' ' '", |_| {});
    assert_eq!(code, 0, "{err}");
    // runc's default set: AUDIT_WRITE, KILL, NET_BIND_SERVICE
    assert_eq!(out, "CapEff: 0000000020000420\n");
}

#[test]
fn user_namespace_maps_ids() {
    let e = Env::new("userns");
    let (code, out, err) = run_sh(
        &e,
        "a",
        "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; id -u; stat -c %u /bin/busybox",
        |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, " 0 100000 65536\n 0 100000 65536\n0\n65534\n");
}

#[test]
fn caller_fds_do_not_leak_and_preserve_fds_pass() {
    let e = Env::new("fds");
    let b = e.bundle("a", &["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"], |_| {});
    let id = e.id("a");
    // fd 7 open in husk's caller: it must not reach the container.
    let c = with_leaked_fd(e.cmd(&["run", "-b", b.to_str().unwrap(), &id]), 7);
    let o = output_via_files(c, &e.base);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // 0 1 2 and the fd ls uses to read the directory
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0 1 2 3 ");
    // With --preserve-fds 1, fd 3 is passed on.
    let b = e.bundle("b", &["sh", "-c", "cat <&3"], |_| {});
    let data = e.base.join("data");
    std::fs::write(&data, "through fd 3\n").unwrap();
    let mut c = e.cmd(&["run", "--preserve-fds", "1", "-b", b.to_str().unwrap(), &e.id("b")]);
    let f = std::fs::File::open(&data).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&f);
    // SAFETY: dup2 in the forked child before exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, move || {
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = output_via_files(c, &e.base);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "through fd 3\n");
}

#[test]
fn mounts_tmpfs_bind_and_options() {
    let e = Env::new("mounts");
    let src = e.base.join("shared");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello"), "hi\n").unwrap();
    let script = "cat /data/hello; touch /data/x 2>/dev/null || echo data-ro; \
                  touch /scratch/y && echo scratch-rw; grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4";
    let (code, out, err) = run_sh(&e, "a", script, |v| {
        let m = v["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro"]}));
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m"]}));
    });
    assert_eq!(code, 0, "{err}");
    // /scratch is made in the shared rootfs by the first run (0755); from
    // then on the tmpfs takes that mode, as runc's does (tests/mounts.rs).
    assert_eq!(
        out.replace(",mode=755", ""),
        "hi\ndata-ro\nscratch-rw\ntmpfs rw,nosuid,nodev,relatime,size=1024k\n"
    );
}

#[test]
fn symlinked_mount_destination_stays_in_rootfs() {
    let e = Env::new("symlink");
    // A rootfs whose /evil is a symlink to a host directory.
    let rootfs = e.private_rootfs();
    let host_dir = e.base.join("host-target");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::os::unix::fs::symlink(&host_dir, rootfs.join("evil")).unwrap();
    let (code, _out, err) = run_sh(&e, "a", "grep -c ' /evil\\| /tmp/' /proc/mounts || true", |v| {
        v["root"] = json!({"path": rootfs, "readonly": false});
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/evil/m", "type": "tmpfs", "source": "tmpfs"}));
    });
    assert_eq!(code, 0, "{err}");
    // The mount landed inside the rootfs (at <rootfs>/<host_dir>/m), never on the host dir.
    assert!(!host_dir.join("m").exists(), "mount target escaped to the host");
    let inside = rootfs.join(host_dir.strip_prefix("/").unwrap()).join("m");
    assert!(inside.is_dir(), "expected {inside:?}");
}

#[test]
fn bad_inputs_fail_clearly_and_leave_nothing() {
    let e = Env::new("bad");
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "args",
            Box::new(|v| v["process"]["args"] = json!([])),
            "process.args must not be empty",
        ),
        (
            "dest",
            Box::new(|v| v["mounts"][2]["destination"] = json!("/dev/../pts")),
            "mounts[2].destination",
        ),
        (
            "root",
            Box::new(|v| v["root"]["path"] = json!("/nonexistent/rootfs")),
            "root.path /nonexistent/rootfs does not exist",
        ),
        (
            "dupns",
            Box::new(|v| v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "pid"}])),
            "duplicate namespace type pid",
        ),
        (
            "nsty",
            Box::new(|v| v["linux"]["namespaces"] = json!([{"type": "bogus"}])),
            "bogus",
        ),
        (
            "exe",
            Box::new(|v| v["process"]["args"] = json!(["/bin/nope"])),
            "exec: \"/bin/nope\": no such file or directory",
        ),
        (
            "path",
            Box::new(|v| v["process"]["args"] = json!(["nope"])),
            "executable file not found in $PATH",
        ),
        (
            "cwd",
            Box::new(|v| v["process"]["cwd"] = json!("/bin/busybox")),
            "chdir to cwd (\"/bin/busybox\") set in config.json failed: not a directory",
        ),
        (
            "cap",
            Box::new(|v| v["process"]["capabilities"]["bounding"] = json!([5])),
            "invalid type: integer `5`",
        ),
        (
            "userns",
            Box::new(|v| v["linux"]["namespaces"] = json!([{"type": "user"}])),
            "uidMappings is required",
        ),
        (
            "nspath",
            Box::new(|v| {
                v["linux"]["namespaces"] = json!([{"type": "uts"}, {"type": "network", "path": "/proc/1/ns/nope"}])
            }),
            "open network namespace path /proc/1/ns/nope",
        ),
    ];
    for (name, edit, want) in cases {
        let b = e.bundle(name, &["true"], |v| edit(v));
        let id = e.id(name);
        let msg = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
        assert!(msg.contains(want), "{name}: {msg:?} does not contain {want:?}");
        assert!(!e.root.join(&id).exists(), "{name}: state dir left behind");
    }
    // JSON syntax errors name the line and column.
    let b = e.base.join("syntax");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("config.json"), "{\n \"ociVersion\": \"1.0.2\",\n oops\n}\n").unwrap();
    let msg = e.err(&["create", "-b", b.to_str().unwrap(), &e.id("syntax")]);
    assert!(msg.contains("config.json") && msg.contains("line 3, column 2"), "{msg}");
    // No container processes or state left anywhere in this root.
    assert!(e.ok(&["list", "-q"]).trim().is_empty());
}

#[test]
fn joins_an_existing_namespace_by_path() {
    let e = Env::new("join");
    let b = e.bundle("a", &["sleep", "100"], |_| {});
    let a = e.id("a");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &a]);
    let pid = e.state(&a)["pid"].as_i64().unwrap();
    let (code, out, err) = run_sh(&e, "b", "hostname; ls /sys/class/net", |v| {
        v["hostname"] = serde_json::Value::Null;
        v["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
            {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
            {"type": "network", "path": format!("/proc/{pid}/ns/net")}
        ]);
        v.as_object_mut().unwrap().remove("hostname");
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "husk\nlo\n");
}

#[test]
fn time_namespace_offsets() {
    let e = Env::new("time");
    let (code, out, err) = run_sh(&e, "a", "cut -d' ' -f1 /proc/uptime", |v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        v["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    });
    assert_eq!(code, 0, "{err}");
    let up: f64 = out.trim().parse().unwrap();
    assert!(up > 86_400_000.0, "uptime {up}");
}

#[test]
fn sysctl_is_written_in_the_container() {
    let e = Env::new("sysctl");
    let (code, out, err) = run_sh(&e, "a", "cat /proc/sys/net/ipv4/ip_forward", |v| {
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim()
            .len(),
        1
    );
}

#[test]
fn no_pivot_uses_chroot() {
    let e = Env::new("nopivot");
    let b = e.bundle(
        "a",
        &["sh", "-c", "cat /proc/self/status | grep -c PPid; ls / | grep -cx bin"],
        |_| {},
    );
    let o = e.husk(&["run", "--no-pivot", "-b", b.to_str().unwrap(), &e.id("a")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n1\n");
}

#[test]
fn seccomp_filter_applies() {
    let e = Env::new("seccomp");
    let script = "mkdir /tmp/x 2>&1 | grep -c 'Operation not permitted'; echo still-running";
    for nnp in [true, false] {
        let (code, out, err) = run_sh(&e, &format!("a{nnp}"), script, |v| {
            v["root"]["readonly"] = json!(false);
            v["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
            v["process"]["noNewPrivileges"] = json!(nnp);
            v["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat", "unknown_syscall_for_husk"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
                ]
            });
        });
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "1\nstill-running\n", "nnp={nnp}");
    }
}

#[test]
fn socket_activation_sees_its_own_pid() {
    let e = Env::new("listen");
    let (code, out, err) = run_sh(&e, "a", "echo $LISTEN_PID $LISTEN_FDS $$", |v| {
        v["process"]["env"] = json!(["PATH=/bin", "LISTEN_FDS=1", "LISTEN_PID=4242"]);
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1 1 1\n");
}

#[test]
fn scheduler_ioprio_personality_affinity() {
    let e = Env::new("attrs");
    let script = "uname -m; grep Cpus_allowed_list /proc/self/status | tr -d '\\t'; cut -d' ' -f19,41 /proc/self/stat";
    let (code, out, err) = run_sh(&e, "a", script, |v| {
        v["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
        v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        v["process"]["execCPUAffinity"] = json!({"final": "0"});
        v["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    assert_eq!(code, 0, "{err}");
    // field 19 is nice, field 41 the policy (3 = SCHED_BATCH)
    assert_eq!(out, "i686\nCpus_allowed_list:0\n5 3\n");
}

/// The signal mask and dispositions are reset before the seccomp filter
/// is loaded: a profile that denies rt_sigaction and rt_sigprocmask must
/// not leave the entrypoint with signals blocked (`run` blocks them all)
/// or SIGPIPE ignored (husk's own runtime ignores it). With and without
/// no_new_privs (the filter is loaded at different points).
#[test]
fn signals_are_reset_under_a_profile_that_denies_signal_syscalls() {
    let e = Env::new("sigreset");
    for nnp in [true, false] {
        let name = if nnp { "nnp" } else { "privileged" };
        let b = e.bundle(name, &["cat", "/proc/self/status"], |v| {
            v["process"]["noNewPrivileges"] = json!(nnp);
            v["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["rt_sigaction", "rt_sigprocmask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
                ]
            });
        });
        let o = e.run(&b, &e.id(name));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        for field in ["SigBlk:", "SigIgn:"] {
            let line = out.lines().find(|l| l.starts_with(field)).unwrap_or_default();
            assert_eq!(
                line.split_whitespace().nth(1),
                Some("0000000000000000"),
                "{name}: {line}\n{out}"
            );
        }
    }
}

#[test]
fn seccomp_notify_hands_the_fd_to_an_agent() {
    use std::os::fd::AsRawFd;
    let e = Env::new("notify-agent");
    let sock = e.base.join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // A tiny seccomp agent: answers the first mkdir with a fake success.
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (data, fd) = husk::tty::recv_fd(&conn.into()).unwrap();
        let state: serde_json::Value = serde_json::from_slice(&data).unwrap();
        let req = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
        libseccomp::ScmpNotifResp::new_val(req.id, 0, libseccomp::ScmpNotifRespFlags::empty())
            .respond(fd.as_raw_fd())
            .unwrap();
        state
    });
    let (code, out, err) = run_sh(&e, "a", "mkdir /x && echo faked; test -d /x || echo absent", |v| {
        v["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "hello-agent",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "faked\nabsent\n");
    let state = agent.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "hello-agent");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
}

/// Is AppArmor enabled on this host? (Found out here, not by husk's code.)
fn host_apparmor() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

/// A complain-mode AppArmor profile loaded with apparmor_parser for one
/// test, unloaded on drop.
struct Profile {
    parser: std::path::PathBuf,
    file: std::path::PathBuf,
}

impl Profile {
    fn load(e: &Env, parser: &std::path::Path, name: &str) -> Profile {
        let file = e.base.join("profile");
        std::fs::write(&file, format!("profile {name} flags=(complain) {{\n}}\n")).unwrap();
        let mut c = std::process::Command::new(parser);
        c.arg("-r").arg(&file);
        let o = output_via_files(c, &e.base);
        assert!(
            o.status.success(),
            "apparmor_parser -r: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Profile {
            parser: parser.to_path_buf(),
            file,
        }
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.parser)
            .arg("-R")
            .arg(&self.file)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// process.apparmorProfile and exec --apparmor: applied at exec where
/// AppArmor is enabled (an unknown profile refused), an error where it is
/// not: husk never ignores a profile.
#[test]
fn apparmor_profile_applied_or_refused() {
    let e = Env::new("apparmor");
    // exec --help once said both options were "not supported on this build"
    let help = e.ok(&["exec", "--help"]);
    assert!(!help.contains("not supported"), "{help}");
    assert!(help.contains("AppArmor profile to exec the process under"), "{help}");
    let sleeper = e.bundle("s", &["sleep", "100"], |_| {});
    let sid = e.id("s");
    e.ok(&["run", "-d", "-b", sleeper.to_str().unwrap(), &sid]);
    if !host_apparmor() {
        let b = e.bundle("a", &["true"], |v| v["process"]["apparmorProfile"] = json!("husk-test"));
        let msg = e.err(&["create", "-b", b.to_str().unwrap(), &e.id("a")]);
        assert!(
            msg.contains("process.apparmorProfile \"husk-test\" is set but AppArmor is not enabled on this host"),
            "{msg}"
        );
        assert!(!e.root.join(e.id("a")).exists(), "state left behind");
        let msg = e.err(&["exec", "--apparmor", "husk-test", &sid, "true"]);
        assert!(msg.contains("AppArmor is not enabled on this host"), "{msg}");
        not_checked(
            "AppArmor profiles of process.apparmorProfile and exec --apparmor applied",
            "AppArmor is not enabled: /sys/module/apparmor/parameters/enabled is not Y",
        );
        return;
    }
    // An unknown profile: the exec into it fails, naming it.
    let nosuch = format!("husk-nosuch-{}", std::process::id());
    let b = e.bundle("n", &["true"], |v| v["process"]["apparmorProfile"] = json!(nosuch));
    let o = e.run(&b, &e.id("n"));
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && msg.contains(&nosuch), "{msg}");
    let msg = e.err(&["exec", "--apparmor", &nosuch, &sid, "true"]);
    assert!(msg.contains(&nosuch), "{msg}");
    // A loaded profile is what the container's process runs under.
    let Some(parser) = ["/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"]
        .iter()
        .map(std::path::Path::new)
        .find(|p| p.exists())
    else {
        not_checked(
            "AppArmor profiles of process.apparmorProfile and exec --apparmor applied",
            "apparmor_parser is not installed (Debian package apparmor) to load a test profile",
        );
        return;
    };
    let name = format!("husk-test-{}", std::process::id());
    let _profile = Profile::load(&e, parser, &name);
    let (code, out, err) = run_sh(&e, "p", "cat /proc/self/attr/current", |v| {
        v["process"]["apparmorProfile"] = json!(name)
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end_matches(['\0', '\n']), format!("{name} (complain)"));
    let out = e.ok(&["exec", "--apparmor", &name, &sid, "cat", "/proc/self/attr/current"]);
    assert_eq!(out.trim_end_matches(['\0', '\n']), format!("{name} (complain)"));
}

/// process.selinuxLabel, exec --process-label and linux.mountLabel: applied
/// where SELinux is enabled; refused naming the field where it is not (runc and crun ignore them there).
#[test]
fn selinux_labels_applied_or_refused() {
    let e = Env::new("selinux");
    let enabled = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    // Labels the loaded policy surely knows: this process's own context and
    // the rootfs's file context.
    let (process_label, mount_label) = if enabled {
        let own = std::fs::read_to_string("/proc/self/attr/current").unwrap();
        let file = std::process::Command::new("stat")
            .args(["-c", "%C"])
            .arg(rootfs())
            .output()
            .unwrap();
        (
            own.trim_end_matches(['\0', '\n']).to_string(),
            String::from_utf8_lossy(&file.stdout).trim().to_string(),
        )
    } else {
        (
            "system_u:system_r:container_t:s0:c1,c2".to_string(),
            "system_u:object_r:container_file_t:s0:c1,c2".to_string(),
        )
    };
    if !enabled {
        // Refused naming the field, never ignored: a label husk cannot apply.
        for (name, field, label) in [
            ("p", "process.selinuxLabel", &process_label),
            ("m", "linux.mountLabel", &mount_label),
        ] {
            let b = e.bundle(name, &["true"], |v| {
                if field == "linux.mountLabel" {
                    v["linux"]["mountLabel"] = json!(label);
                } else {
                    v["process"]["selinuxLabel"] = json!(label);
                }
            });
            let err = e.err(&["run", "-b", b.to_str().unwrap(), &e.id(name)]);
            assert!(err.contains(field) && err.contains("SELinux is not enabled"), "{err}");
        }
        let b = e.bundle("x", &["sleep", "100"], |_| {});
        let id = e.id("x");
        e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
        let err = e.err(&["exec", "--process-label", &process_label, &id, "true"]);
        assert!(err.contains("process.selinuxLabel"), "{err}");
        not_checked(
            "SELinux labels of process.selinuxLabel, exec --process-label and linux.mountLabel applied",
            "SELinux is not enabled: no /sys/fs/selinux/enforce",
        );
        return;
    }
    let script = "cat /proc/self/attr/current 2>/dev/null; echo; grep ' /dev ' /proc/self/mounts";
    let b = e.bundle("a", &["sleep", "100"], |v| {
        v["process"]["selinuxLabel"] = json!(process_label);
        v["linux"]["mountLabel"] = json!(mount_label);
    });
    let id = e.id("a");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let inside = e.ok(&["exec", &id, "sh", "-c", script]);
    let exec_label = e.ok(&[
        "exec",
        "--process-label",
        &process_label,
        &id,
        "cat",
        "/proc/self/attr/current",
    ]);
    let mut lines = inside.lines();
    assert_eq!(
        lines.next().map(|l| l.trim_end_matches('\0')),
        Some(process_label.as_str())
    );
    let dev = lines.find(|l| !l.is_empty()).unwrap_or_default();
    // (/proc/mounts quotes a context that has a comma)
    assert!(dev.contains("context=") && dev.contains(&mount_label), "{inside}");
    assert_eq!(exec_label.trim_end_matches(['\0', '\n']), process_label);
}

#[test]
fn tmpcopyup_fills_the_tmpfs_with_the_rootfs_content() {
    let e = Env::new("copyup");
    // podman --read-only adds such tmpfs mounts with runc's tmpcopyup option
    let (code, out, err) = run_sh(
        &e,
        "a",
        "grep -c root /etc/passwd; echo x >> /etc/passwd && echo writable; stat -c %a /etc",
        |v| {
            v["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]
            }));
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\nwritable\n755\n");
    // the shared rootfs is untouched
    assert!(
        !std::fs::read_to_string(rootfs().join("etc/passwd"))
            .unwrap()
            .contains("\nx\n")
    );
}

/// CPUs a process may run on, from its /proc status.
fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A caller pinned to CPU 0 (`taskset -c 0 husk run`) does not pin the
/// container: once in its cgroup the init (and an exec'd process) may run
/// on every CPU of its cpuset, as runc ≥ 1.2.7 resets it. execCPUAffinity
/// still decides where it says something: `final` before exec, `initial`
/// alone kept (no reset).
#[test]
fn callers_cpu_affinity_is_not_inherited() {
    let e = Env::new("affinity");
    let all = cpus_allowed(&std::fs::read_to_string("/proc/self/status").unwrap());
    if all == "0" || all.is_empty() || !all.split([',', '-']).any(|c| c == "1") {
        not_checked(
            "the caller's CPU affinity not inherited by the container (tests/isolation.rs)",
            &format!("it needs CPUs 0 and 1; this test may use only {all:?}"),
        );
        return;
    }
    let pinned = |args: &[&str]| {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "0", common::HUSK, "--root"]).arg(&e.root).args(args);
        c.stdin(std::process::Stdio::null());
        output_via_files(c, &e.base)
    };
    let run = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let b = e.bundle(name, &["cat", "/proc/self/status"], edit);
        let o = pinned(&["run", "-b", b.to_str().unwrap(), &e.id(name)]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        cpus_allowed(&String::from_utf8_lossy(&o.stdout))
    };
    assert_eq!(run("plain", &|_| {}), all, "the init kept the caller's CPU 0");
    assert_eq!(
        run("final", &|v| v["process"]["execCPUAffinity"] = json!({"final": "1"})),
        "1"
    );
    assert_eq!(
        run("initial", &|v| v["process"]["execCPUAffinity"] =
            json!({"initial": "1"})),
        "1"
    );
    // exec, from a caller pinned to CPU 0
    let b = e.bundle("long", &["sleep", "1000"], |_| {});
    let id = e.id("long");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let o = pinned(&["exec", &id, "cat", "/proc/self/status"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        cpus_allowed(&String::from_utf8_lossy(&o.stdout)),
        all,
        "exec kept the caller's CPU 0"
    );
    let p = e.base.join("p.json");
    std::fs::write(
        &p,
        json!({"args": ["cat", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0},
               "execCPUAffinity": {"initial": "0", "final": "1"}})
        .to_string(),
    )
    .unwrap();
    let o = pinned(&["exec", "-p", p.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(cpus_allowed(&String::from_utf8_lossy(&o.stdout)), "1");
}
