//! Bundles that work with runc (1.1.5) and crun must work with husk
//! (issue 18): each test is one such difference, checked on a real
//! container, with what runc does written next to it.
mod common;
use common::*;
use serde_json::json;
use std::process::{Command, Stdio};

fn hook(script: String) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn run_ok(e: &Env, b: &std::path::Path, id: &str) -> String {
    let o = e.run(b, id);
    assert!(
        o.status.success(),
        "run {id} failed: {}{}",
        String::from_utf8_lossy(&o.stderr),
        stdout(&o)
    );
    stdout(&o)
}

fn run_err(e: &Env, b: &std::path::Path, id: &str) -> String {
    let o = e.run(b, id);
    assert!(!o.status.success(), "run {id} succeeded: {}", stdout(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// runc and crun make a missing process.cwd (as the container's root,
/// mode 0755) before the process starts; husk failed with "chdir to cwd".
/// A symlink on the way is followed inside the rootfs, never out of it.
#[test]
fn missing_cwd_is_created_inside_the_rootfs() {
    let e = Env::new("cwdmk");
    let rootfs = e.private_rootfs();
    // /evil points at a host directory by its absolute host path: inside
    // the container that path is under the rootfs, and must stay there.
    let outside = e.base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, rootfs.join("evil")).unwrap();
    let ids = ["/doesnotexist", "/a/b/c", "/evil/x"];
    for (n, cwd) in ids.iter().enumerate() {
        let b = e.bundle(&format!("b{n}"), &["sh", "-c", "pwd -P; stat -c '%u %g %a' . "], |v| {
            v["root"]["path"] = json!(rootfs);
            v["process"]["cwd"] = json!(cwd);
            v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        });
        let out = run_ok(&e, &b, &e.id(&format!("c{n}")));
        let physical = if *cwd == "/evil/x" {
            format!("{}/x", outside.display())
        } else {
            cwd.to_string()
        };
        // made by the container's root, 0755, as runc makes it
        assert_eq!(out, format!("{physical}\n0 0 755\n"), "cwd {cwd}");
    }
    for d in ["doesnotexist", "a/b/c"] {
        assert!(rootfs.join(d).is_dir(), "{d} not made in the rootfs");
    }
    assert!(!outside.join("x").exists(), "the cwd was made outside the rootfs");
    let inside = rootfs.join(outside.strip_prefix("/").unwrap()).join("x");
    assert!(inside.is_dir(), "{} not made", inside.display());

    // An existing file is not a directory: chdir's error, as before.
    let b = e.bundle("file", &["true"], |v| {
        v["root"]["path"] = json!(rootfs);
        v["process"]["cwd"] = json!("/bin/busybox");
    });
    let err = run_err(&e, &b, &e.id("file"));
    assert!(
        err.contains("chdir to cwd (\"/bin/busybox\") set in config.json failed: not a directory"),
        "{err}"
    );
}

/// A hook without `env`: runc runs prestart, createRuntime, poststart and
/// poststop hooks with its own environment, createContainer and
/// startContainer hooks (run by its init) with the container process's.
/// husk cleared it: `sh -c` in a hook found no PATH. A hook with `env`
/// gets exactly that.
#[test]
fn hooks_without_env_get_runc_s_environment() {
    let e = Env::new("hookenv");
    let log = e.base.join("env.log");
    let l = log.display().to_string();
    let rec = |name: &str| hook(format!("echo \"{name} PATH=$PATH FROM=$FROM C=$C\" >> {l}"));
    let hookdir = e.base.join("hookdir");
    std::fs::create_dir_all(&hookdir).unwrap();
    let b = e.bundle("b", &["true"], |v| {
        v["process"]["env"] = json!(["PATH=/bin:/sbin", "C=container", "C=last"]);
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/hooklog", "type": "bind", "source": hookdir, "options": ["rbind"]}));
        // (dash makes up a PATH when it has none: not recorded here)
        let mut with_env = hook(format!("echo \"with-env FROM=$FROM C=$C\" >> {l}"));
        with_env["env"] = json!(["FROM=given"]);
        v["hooks"] = json!({
            "prestart": [rec("prestart")],
            "createRuntime": [rec("createRuntime")],
            "createContainer": [rec("createContainer")],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo \"startContainer PATH=$PATH FROM=$FROM C=$C HOME=$HOME\" > /hooklog/start"]}],
            "poststart": [rec("poststart")],
            "poststop": [rec("poststop"), with_env],
        });
    });
    let id = e.id("c");
    let mut c = e.cmd(&["run", "-b", b.to_str().unwrap(), &id]);
    c.env("FROM", "runtime").env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let o = output_via_files(c, &e.base);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let host = "PATH=/usr/sbin:/usr/bin:/sbin:/bin FROM=runtime C=";
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!(
            "prestart {host}\ncreateRuntime {host}\ncreateContainer PATH=/bin:/sbin FROM= C=last\npoststart {host}\npoststop {host}\nwith-env FROM=given C=\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(hookdir.join("start")).unwrap(),
        "startContainer PATH=/bin:/sbin FROM= C=last HOME=/root\n"
    );
}

fn running(e: &Env, name: &str) -> String {
    let b = e.bundle(name, &["sleep", "1000"], |v| {
        v["process"]["env"] = json!(["PATH=/usr/bin:/bin", "TERM=xterm"]);
    });
    let id = e.id(name);
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    id
}

/// `exec --env K=v` for a K the config sets replaces its value (runc's
/// init sets the variables one by one); husk added a second entry and
/// the process saw the config's. `--process` files: the same rule.
#[test]
fn exec_env_replaces_the_config_s_value() {
    let e = Env::new("execenv");
    let id = running(&e, "a");
    // `env` prints its environment as it got it (a shell would rebuild it)
    let out = e.ok(&[
        "exec",
        "-e",
        "PATH=/nowhere:/bin",
        "-e",
        "NEW=1",
        "-e",
        "NEW=2",
        &id,
        "env",
    ]);
    assert_eq!(out, "PATH=/nowhere:/bin\nTERM=xterm\nNEW=2\nHOME=/root\n");
    let pf = e.base.join("process.json");
    std::fs::write(
        &pf,
        json!({"args": ["env"], "env": ["PATH=/bin", "X=1", "X=2"], "cwd": "/", "user": {"uid": 0, "gid": 0}})
            .to_string(),
    )
    .unwrap();
    assert_eq!(
        e.ok(&["exec", "--process", pf.to_str().unwrap(), &id]),
        "PATH=/bin\nX=2\nHOME=/root\n"
    );
}

/// runc's init and exec'd processes call setsid(): their process group
/// and session are their own, inside the container. husk's were husk's
/// (getpgrp() 0 inside the container's pid namespace).
#[test]
fn processes_have_their_own_session_inside_the_container() {
    let e = Env::new("pgrp");
    let b = e.bundle(
        "init",
        &["sh", "-c", "echo $$ $(cut -d' ' -f5,6 /proc/$$/stat)"],
        |_| {},
    );
    assert_eq!(run_ok(&e, &b, &e.id("init")), "1 1 1\n");
    let id = running(&e, "a");
    for detach in [false, true] {
        // (the shared rootfs is read-only; /dev/shm is a tmpfs)
        let file = format!("/dev/shm/pgrp-{detach}");
        let script = format!("echo $$ $(cut -d' ' -f5,6 /proc/$$/stat) > {file}.tmp; mv {file}.tmp {file}");
        let mut args = vec!["exec"];
        if detach {
            args.push("-d");
        }
        args.extend([id.as_str(), "sh", "-c", &script]);
        e.ok(&args);
        let mut got = String::new();
        wait_for(std::time::Duration::from_secs(10), || {
            got = e.ok(&["exec", &id, "sh", "-c", &format!("cat {file} 2>/dev/null || true")]);
            !got.is_empty()
        })
        .unwrap_or_else(|_| panic!("the exec'd process never wrote {file}"));
        let f: Vec<&str> = got.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{got}");
        assert!(f[0] != "0" && f[0] == f[1] && f[1] == f[2], "pid pgrp sid: {got}");
    }
}

/// ociVersion must be SemVer 2.0.0 (the spec; runc does not check it,
/// crun wants "1.0" in it): refused naming the field, in `husk check` too.
#[test]
fn oci_version_must_be_semver() {
    let e = Env::new("ociver");
    let b = e.bundle("bad", &["true"], |v| v["ociVersion"] = json!("invalid"));
    let err = run_err(&e, &b, &e.id("bad"));
    assert!(
        err.contains("ociVersion \"invalid\" is not a SemVer 2.0.0 version"),
        "{err}"
    );
    let o = e.husk(&["check", "--json", "-b", b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let f: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(f.iter().any(|x| x["path"] == "ociVersion"), "{f:?}");
    for good in ["1.0.2-dev", "1.0.0", "1.2.0"] {
        let b = e.bundle(good, &["true"], |v| v["ociVersion"] = json!(good));
        run_ok(&e, &b, &e.id(good));
    }
}

/// Linux's struct sched_attr (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default, Debug)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn sched_getattr(pid: i32) -> SchedAttr {
    let mut a = SchedAttr::default();
    // SAFETY: sched_getattr fills a struct of the size given.
    let r = unsafe { libc::syscall(libc::SYS_sched_getattr, pid, &mut a as *mut SchedAttr, 56u32, 0u32) };
    assert_eq!(r, 0, "sched_getattr {pid}: {}", std::io::Error::last_os_error());
    a
}

/// process.scheduler.flags by the spec's names (the oci-spec crate spells
/// two differently and husk refused them as unknown variants); applied
/// with sched_setattr. A name the spec does not have is refused.
#[test]
fn scheduler_flags_by_the_spec_s_names() {
    let e = Env::new("schedflags");
    let b = e.bundle("a", &["sleep", "1000"], |v| {
        v["process"]["scheduler"] =
            json!({"policy": "SCHED_OTHER", "nice": 3, "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_KEEP_PARAMS"]});
    });
    let id = e.id("a");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let pid = e.state(&id)["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap();
    // SAFETY: sched_getscheduler with a pid.
    let policy = unsafe { libc::sched_getscheduler(pid) };
    assert_eq!(policy, libc::SCHED_OTHER | 0x4000_0000, "SCHED_RESET_ON_FORK not set");
    // SCHED_FLAG_KEEP_PARAMS: the nice value stays husk's (ours), not 3
    // SAFETY: getpriority of this process.
    let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    assert_eq!(sched_getattr(pid).nice, ours);

    // the crate's spellings are not the spec's
    let b = e.bundle("bad", &["true"], |v| {
        v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "flags": ["SCHED_RESET_ON_FORK"]});
    });
    let err = run_err(&e, &b, &e.id("bad"));
    assert!(
        err.contains("process.scheduler.flags[0] \"SCHED_RESET_ON_FORK\" is not a scheduler flag of the runtime spec"),
        "{err}"
    );

    // Utilization clamping needs CONFIG_UCLAMP_TASK.
    let b = e.bundle("clamp", &["sleep", "1000"], |v| {
        v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_UTIL_CLAMP_MAX"]});
    });
    let id = e.id("clamp");
    let o = e.husk(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    if o.status.success() {
        let pid = e.state(&id)["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap();
        // no clamp values in the spec: 0, as runc passes them
        assert_eq!(sched_getattr(pid).util_max, 0);
    } else {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("CONFIG_UCLAMP_TASK"), "{err}");
        not_checked(
            "process.scheduler.flags SCHED_FLAG_UTIL_CLAMP_MAX applied",
            "the kernel has no utilization clamping (CONFIG_UCLAMP_TASK); checked that it is refused",
        );
    }
}

/// Kills and reaps a helper process when dropped.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A new network namespace gets `lo` up, as runc and crun bring it up;
/// one joined by path is left as it is (runc too).
#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    let e = Env::new("lo");
    // husk spec's default config has a new network namespace
    let b = e.bundle("new", &["ip", "-o", "link", "show", "lo"], |v| {
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().any(|n| n["type"] == "network" && n.get("path").is_none()));
    });
    let out = run_ok(&e, &b, &e.id("new"));
    assert!(out.contains("<LOOPBACK,UP,LOWER_UP>"), "{out}");
    // a network namespace of the host's with lo down, joined by path
    let holder = Holder(
        Command::new("unshare")
            .args(["--net", "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ns = format!("/proc/{}/ns/net", holder.0.id());
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    wait_for(std::time::Duration::from_secs(10), || {
        std::fs::read_link(&ns).is_ok_and(|l| l != own)
    })
    .expect("unshare --net never made its namespace");
    let b = e.bundle("joined", &["ip", "-o", "link", "show", "lo"], |v| {
        for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(ns);
            }
        }
    });
    let out = run_ok(&e, &b, &e.id("joined"));
    assert!(out.contains("<LOOPBACK>"), "{out}");
    drop(holder);
}

/// linux.sysctl kernel.hostname has a field of its own: runc and crun
/// refuse it always; crun refuses a kernel.domainname that differs from
/// domainname. husk set both.
#[test]
fn uts_sysctls_that_conflict_with_their_fields_are_refused() {
    let e = Env::new("utssysctl");
    let b = e.bundle("host", &["true"], |v| {
        v["linux"]["sysctl"] = json!({"kernel.hostname": "other"});
    });
    let err = run_err(&e, &b, &e.id("host"));
    assert!(
        err.contains("linux.sysctl \"kernel.hostname\" conflicts with the hostname field: set hostname instead"),
        "{err}"
    );
    let b = e.bundle("dom", &["true"], |v| {
        v["domainname"] = json!("one");
        v["linux"]["sysctl"] = json!({"kernel.domainname": "two"});
    });
    let err = run_err(&e, &b, &e.id("dom"));
    assert!(
        err.contains("linux.sysctl \"kernel.domainname\" \"two\" conflicts with the domainname field \"one\""),
        "{err}"
    );
    // the same value twice is no conflict (crun); the sysctl alone is fine
    for (name, domainname) in [("same", Some("one")), ("alone", None)] {
        let b = e.bundle(name, &["cat", "/proc/sys/kernel/domainname"], |v| {
            if let Some(d) = domainname {
                v["domainname"] = json!(d);
            }
            v["linux"]["sysctl"] = json!({"kernel.domainname": "one"});
        });
        assert_eq!(run_ok(&e, &b, &e.id(name)), "one\n");
    }
}

/// runc takes sysctl names in the path form too (`net/ipv4/ip_forward`:
/// the first separator a slash); husk refused them as not namespaced.
#[test]
fn sysctl_names_in_the_path_form() {
    let e = Env::new("sysctlpath");
    let b = e.bundle(
        "a",
        &[
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/net/ipv4/tcp_syncookies",
        ],
        |v| {
            v["linux"]["sysctl"] = json!({"net/ipv4/ip_forward": "1", "net.ipv4.tcp_syncookies": "0"});
        },
    );
    assert_eq!(run_ok(&e, &b, &e.id("a")), "1\n0\n");
    let b = e.bundle("host", &["true"], |v| {
        v["linux"]["sysctl"] = json!({"vm/swappiness": "1"})
    });
    let err = run_err(&e, &b, &e.id("host"));
    assert!(
        err.contains("linux.sysctl \"vm/swappiness\" is not namespaced"),
        "{err}"
    );
}

/// A relative mount destination is relative to "/" (the spec allows it,
/// deprecated; runc warns, crun is silent); husk refused it.
#[test]
fn relative_mount_destination_is_relative_to_root() {
    let e = Env::new("reldest");
    let b = e.bundle("a", &["sh", "-c", "grep -c ' /tmp tmpfs ' /proc/self/mounts"], |v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    });
    let o = e.run(&b, &e.id("a"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), "1\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("level=warning") && err.contains("mounts[7].destination \\\"tmp\\\" is relative"),
        "{err}"
    );
}

/// An unknown capability name is logged as a warning and ignored (the
/// spec: MUST warn, SHOULD NOT fail; runc and crun ignore it); husk
/// refused the config. The known names next to it still apply.
#[test]
fn unknown_capabilities_are_ignored_with_a_warning() {
    let e = Env::new("unkcap");
    let b = e.bundle("a", &["sleep", "1000"], |v| {
        v["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_NOPE"],
            "effective": ["CAP_NOPE", "CAP_KILL"],
            "permitted": ["CAP_KILL"],
        });
    });
    let id = e.id("a");
    let o = e.husk(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    for field in ["process.capabilities.bounding[1]", "process.capabilities.effective[0]"] {
        assert!(
            err.contains(&format!("{field} \\\"CAP_NOPE\\\": unknown capability, ignored")),
            "{field}: {err}"
        );
    }
    let pid = e.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let cap = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    // CAP_KILL is capability 5
    assert_eq!(cap("CapBnd:"), "0000000000000020");
    assert_eq!(cap("CapEff:"), "0000000000000020");
    // exec --cap with an unknown name: a warning too (runc)
    let o = e.husk(&["exec", "--cap", "CAP_NOPE", &id, "true"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown capability, ignored"));
}
