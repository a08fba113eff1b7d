//! The most common bundle mistakes and the exact words husk answers with
//! (the README's table of mistakes is this list).
mod common;
use common::*;
use serde_json::{Value, json};

type Edit = Box<dyn Fn(&mut Value, &std::path::Path)>;

#[test]
fn common_mistakes_get_clear_messages() {
    let e = Env::new("mistakes");
    // A rootfs copy we can break in various ways.
    let rootfs = e.private_rootfs();
    std::fs::write(rootfs.join("not-exec"), "data").unwrap();
    std::fs::write(rootfs.join("script"), "#!/bin/bash\necho hi\n").unwrap();
    let mut perm = std::fs::metadata(rootfs.join("script")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(rootfs.join("script"), perm.clone()).unwrap();
    std::fs::copy("/bin/ls", rootfs.join("dynamic-ls")).unwrap();
    std::fs::set_permissions(rootfs.join("dynamic-ls"), perm).unwrap();
    let r = rootfs.clone();
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "no rootfs",
            Box::new(|v, _| v["root"]["path"] = json!("/nonexistent/rootfs")),
            "root.path /nonexistent/rootfs does not exist",
        ),
        (
            "empty args",
            Box::new(|v, _| v["process"]["args"] = json!([])),
            "process.args must not be empty",
        ),
        (
            "not in PATH",
            Box::new(|v, _| v["process"]["args"] = json!(["nosuch"])),
            "exec: \"nosuch\": executable file not found in $PATH",
        ),
        (
            "missing path",
            Box::new(|v, _| v["process"]["args"] = json!(["/bin/nosuch"])),
            "exec: \"/bin/nosuch\": no such file or directory",
        ),
        (
            "not executable",
            Box::new(|v, _| v["process"]["args"] = json!(["/not-exec"])),
            "exec: \"/not-exec\": permission denied",
        ),
        (
            "script interpreter missing",
            Box::new(|v, _| v["process"]["args"] = json!(["/script"])),
            "exec: \"/script\": no such file or directory (hint: /script exists, but the program it needs to start, /bin/bash, is missing",
        ),
        (
            "dynamic loader missing",
            Box::new(|v, _| v["process"]["args"] = json!(["/dynamic-ls"])),
            "exec: \"/dynamic-ls\": no such file or directory (hint: /dynamic-ls exists, but the program it needs to start, /lib64/ld-linux-x86-64.so.2, is missing",
        ),
        (
            "cwd not a directory",
            Box::new(|v, _| v["process"]["cwd"] = json!("/not-exec")),
            "chdir to cwd (\"/not-exec\") set in config.json failed: not a directory",
        ),
        (
            "relative cwd",
            Box::new(|v, _| v["process"]["cwd"] = json!("tmp")),
            "process.cwd \"tmp\" must be an absolute path",
        ),
        (
            "\"..\" in a mount destination",
            Box::new(|v, _| v["mounts"][1]["destination"] = json!("/a/../dev")),
            "mounts[1].destination \"/a/../dev\" must not contain \"..\"",
        ),
        (
            "bind source missing",
            Box::new(|v, _| {
                v["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/data", "type": "bind", "source": "/no/such/dir", "options": ["rbind"]}),
                )
            }),
            "mounts[7]: mount /no/such/dir on /data (type bind): open bind source /no/such/dir: ENOENT: No such file or directory",
        ),
        (
            "an option the filesystem rejects",
            Box::new(|v, _| {
                v["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs", "options": ["bogusopt42"]}),
                )
            }),
            "mounts[7]: mount tmpfs on /mnt/t (type tmpfs) with options \"bogusopt42\": EINVAL: Invalid argument",
        ),
        (
            "id-mapped mount without a user namespace",
            Box::new(|v, _| {
                v["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}),
                )
            }),
            "mounts[7].options \"idmap\": an id-mapped mount without mounts[7].uidMappings and gidMappings takes the container's user namespace mapping, but linux.namespaces has no user namespace",
        ),
        (
            "unknown namespace",
            Box::new(|v, _| v["linux"]["namespaces"] = json!([{"type": "bogus"}])),
            "unknown variant `bogus`",
        ),
        (
            "duplicate namespace",
            Box::new(|v, _| v["linux"]["namespaces"] = json!([{"type": "uts"}, {"type": "uts"}])),
            "linux.namespaces[1]: duplicate namespace type uts",
        ),
        (
            "user namespace without maps",
            Box::new(|v, _| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}))
            }),
            "linux.uidMappings is required with a new user namespace",
        ),
        (
            "hostname without uts",
            Box::new(|v, _| v["linux"]["namespaces"] = json!([{"type": "mount"}])),
            "hostname is set but the config has no uts namespace",
        ),
        (
            "host sysctl",
            Box::new(|v, _| v["linux"]["sysctl"] = json!({"vm.swappiness": "10"})),
            "linux.sysctl \"vm.swappiness\" is not namespaced: a container may not set it",
        ),
        (
            "net sysctl without netns",
            Box::new(|v, _| {
                v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
                v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            }),
            "linux.sysctl \"net.ipv4.ip_forward\" needs a network namespace",
        ),
        (
            "terminal without console socket",
            Box::new(|v, _| v["process"]["terminal"] = json!(true)),
            "process.terminal is true but no --console-socket was given",
        ),
        (
            "kernel rejects a limit",
            Box::new(|v, _| v["linux"]["resources"]["cpu"] = json!({"cpus": "4095"})),
            "cannot set cpuset cpus (linux.resources.cpu.cpus): write 4095 to /sys/fs/cgroup/cpuset/",
        ),
    ];
    for (i, (name, edit, want)) in cases.iter().enumerate() {
        let b = e.bundle(&format!("m{i}"), &["true"], |v| {
            v["root"] = json!({"path": r, "readonly": true});
            edit(v, &r);
        });
        let id = e.id(&format!("m{i}"));
        let msg = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
        assert!(msg.contains(want), "{name}: {msg:?}\n  does not contain {want:?}");
        assert!(!e.root.join(&id).exists(), "{name}: state left behind");
    }
    // Mistakes on the command line.
    let b = e.bundle("ok", &["sleep", "100"], |v| v["root"]["path"] = json!(r));
    let id = e.id("ok");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(
        e.err(&["create", "-b", b.to_str().unwrap(), &id])
            .contains(&format!("container with id {id:?} already exists"))
    );
    assert!(e.err(&["delete", &id]).contains(&format!(
        "cannot delete container {id:?} that is not stopped: running (use --force)"
    )));
    assert!(
        e.err(&["start", &id])
            .contains("cannot start an already running container")
    );
    assert!(
        e.err(&["state", "nosuch"])
            .contains("container \"nosuch\" does not exist")
    );
    assert!(e.err(&["kill", &id, "SIGFOO"]).contains("unknown signal \"SIGFOO\""));
    let nocfg = e.base.join("empty");
    std::fs::create_dir_all(&nocfg).unwrap();
    assert!(
        e.err(&["create", "-b", nocfg.to_str().unwrap(), &e.id("x")])
            .contains("config.json: ENOENT: No such file or directory")
    );
}

/// The error is printed bare on one line, as runc prints it: managers put
/// the runtime's name in front themselves (podman said "husk: husk: ...").
#[test]
fn error_line_is_bare_like_runc() {
    let e = Env::new("bare-error");
    let err = e.err(&["delete", "nosuch"]);
    assert_eq!(err, "container \"nosuch\" does not exist\n", "stderr was {err:?}");
}

/// A number in config.json that does not fit where it goes is refused at
/// create, naming the field and the range: never truncated, never a panic.
#[test]
fn config_numbers_that_do_not_fit_name_the_field_and_range() {
    let e = Env::new("ranges");
    let seccomp = |rule: Value| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]});
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "console height",
            Box::new(|v, _| {
                v["process"]["terminal"] = json!(true);
                v["process"]["consoleSize"] = json!({"height": 70000, "width": 80});
            }),
            "process.consoleSize.height 70000 is out of range (0 to 65535)",
        ),
        (
            "console width",
            Box::new(|v, _| v["process"]["consoleSize"] = json!({"height": 24, "width": 4294967296u64})),
            "process.consoleSize.width 4294967296 is out of range (0 to 65535)",
        ),
        (
            "seccomp errnoRet",
            Box::new(move |v, _| {
                v["linux"]["seccomp"] =
                    seccomp(json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}))
            }),
            "linux.seccomp.syscalls[0].errnoRet 70000 is out of range (0 to 65535)",
        ),
        (
            "seccomp defaultErrnoRet",
            Box::new(|v, _| {
                v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536})
            }),
            "linux.seccomp.defaultErrnoRet 65536 is out of range (0 to 65535)",
        ),
        (
            "seccomp argument index",
            Box::new(move |v, _| {
                v["linux"]["seccomp"] = seccomp(json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 4294967297u64, "value": 0, "op": "SCMP_CMP_EQ"}]}))
            }),
            "linux.seccomp.syscalls[0].args[0].index 4294967297 is out of range (0 to 5)",
        ),
        (
            "oom_score_adj",
            Box::new(|v, _| v["process"]["oomScoreAdj"] = json!(5000)),
            "process.oomScoreAdj 5000 is out of range (-1000 to 1000)",
        ),
        (
            "umask",
            Box::new(|v, _| v["process"]["user"]["umask"] = json!(4095)),
            "process.user.umask 4095 is out of range (0 to 511, which is octal 0777)",
        ),
        (
            "scheduler priority",
            Box::new(|v, _| v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "priority": -1})),
            "process.scheduler.priority -1 is out of range (0 to 99)",
        ),
        (
            "device major",
            Box::new(|v, _| {
                v["linux"]["devices"] = json!([{"path": "/dev/big", "type": "c", "major": 4294967297u64, "minor": 3}])
            }),
            "linux.devices[0].major 4294967297 is out of range (0 to 4095)",
        ),
        (
            "device minor",
            Box::new(|v, _| {
                v["linux"]["devices"] = json!([{"path": "/dev/big", "type": "c", "major": 1, "minor": 1048576}])
            }),
            "linux.devices[0].minor 1048576 is out of range (0 to 1048575)",
        ),
        (
            "device rule major",
            Box::new(|v, _| {
                v["linux"]["resources"]["devices"] =
                    json!([{"allow": true, "type": "c", "major": 4294967296u64, "access": "rwm"}])
            }),
            "linux.resources.devices[0].major 4294967296 is out of range (-1 for any, or 0 to 4294967295)",
        ),
        (
            "uid map past the last id",
            Box::new(|v, _| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}));
                v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 4294967290u64, "size": 10}]);
                v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
            }),
            "linux.uidMappings[0].size 10 is out of range (1 to 5): the ids mapped from containerID 0 and from hostID 4294967290 must end below 4294967295",
        ),
        (
            "time offset nanoseconds",
            Box::new(|v, _| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "time"}));
                v["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 1, "nanosecs": 1000000000}});
            }),
            "linux.timeOffsets.monotonic.nanosecs 1000000000 is out of range (0 to 999999999)",
        ),
    ];
    for (i, (name, edit, want)) in cases.iter().enumerate() {
        let b = e.bundle(&format!("r{i}"), &["true"], |v| edit(v, std::path::Path::new("")));
        let id = e.id(&format!("r{i}"));
        let o = e.husk(&["create", "-b", b.to_str().unwrap(), &id]);
        let msg = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {msg}");
        assert!(msg.contains(want), "{name}: {msg:?}\n  does not contain {want:?}");
        assert!(!e.root.join(&id).exists(), "{name}: state left behind");
    }
}

/// Command-line values that do not fit: exit 1 with the flag and the
/// accepted range named (a panic exits 101, or 134 in a release build).
#[test]
fn flag_values_that_do_not_fit_name_the_flag_and_range() {
    let e = Env::new("flag-ranges");
    let b = e.bundle("ok", &["sleep", "100"], |_| {});
    let id = e.id("ok");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let fails = |args: &[&str], want: &str| {
        let o = e.husk(args);
        let msg = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "husk {args:?}: {msg}");
        assert!(
            msg.contains(want),
            "husk {args:?}: {msg:?}\n  does not contain {want:?}"
        );
    };
    let range = "is out of range (1ns to 2562047h47m16.854775807s)";
    for bad in ["inf", "nan", "1e30", "-1", ""] {
        fails(
            &["events", &format!("--interval={bad}"), &id],
            &format!("invalid --interval {bad:?}: "),
        );
    }
    fails(
        &["events", "--interval", "inf", &id],
        "invalid --interval \"inf\": not a number; expected a duration such as 5s, 100ms or 1m30s (units ns, us, ms, s, m, h)",
    );
    for bad in ["0", "-5s", "3000000h"] {
        fails(
            &["events", &format!("--interval={bad}"), &id],
            &format!("--interval {bad:?} {range}"),
        );
    }
    // runc's forms work (--stats prints once and exits).
    for good in ["5s", "100ms", "1m30s"] {
        e.ok(&["events", "--stats", "--interval", good, &id]);
    }
    fails(
        &["update", "--memory", "inf", &id],
        "invalid --memory \"inf\": expected bytes",
    );
    fails(
        &["update", "--memory-swap", "8192p", &id],
        "--memory-swap \"8192p\" is out of range (0 to 9223372036854775807 bytes, or -1)",
    );
    fails(
        &["kill", &id, "SIGRTMIN+2147483647"],
        "invalid signal \"SIGRTMIN+2147483647\": SIGRTMIN+N takes N from 0 to",
    );
    fails(
        &[
            "run",
            "--preserve-fds",
            "4294967295",
            "-b",
            b.to_str().unwrap(),
            &e.id("fds"),
        ],
        "invalid value '4294967295' for '--preserve-fds <PRESERVE_FDS>': 4294967295 is not in 0..=2147483644",
    );
    let p = e.base.join("process.json");
    let mut proc = husk::commands::spec::default_spec()["process"].clone();
    proc["terminal"] = json!(false);
    proc["args"] = json!(["true"]);
    proc["consoleSize"] = json!({"height": 70000, "width": 80});
    std::fs::write(&p, proc.to_string()).unwrap();
    fails(
        &["exec", "--process", p.to_str().unwrap(), &id],
        &format!(
            "--process {}: process.consoleSize.height 70000 is out of range (0 to 65535)",
            p.display()
        ),
    );
    assert_eq!(e.status(&id), "running");
}
