//! Integration tests of the cgroups library against the kernel, as root.
//! The v1 back end needs a v1 or hybrid host (this machine: v1 controllers
//! plus a cgroup2 mount at /sys/fs/cgroup/unified), the v2 back end a
//! cgroup2 mount. Resources whose cgroup files depend on the host (blkio
//! weight, swap accounting, hugetlb, net_cls, net_prio, rdma) are checked
//! either way: the value where the host has the file, husk's refusal naming
//! the config field where it has not. What could not be checked here is
//! recorded with common::not_checked (`make test` prints it at the end).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use husk::cgroups::{Cgroup, Layout, default_device_rules, detect_layout};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Root, or recorded as not checked.
fn root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    common::not_checked(
        &format!("tests/cgroups.rs {test}"),
        "not run as root: it creates cgroups",
    );
    false
}

/// Root and a v1 or hybrid host, or recorded as not checked.
fn v1_ready(test: &str) -> bool {
    root(test) && common::v1_host(&format!("tests/cgroups.rs {test}"))
}

/// Root and a cgroup2 mount (its mountpoint), or recorded as not checked.
fn v2_ready(test: &str) -> Option<PathBuf> {
    if !root(test) {
        return None;
    }
    let m = cgroup2_mount();
    if m.is_none() {
        common::not_checked(&format!("tests/cgroups.rs {test}"), "no cgroup2 mount on this host");
    }
    m
}

/// Kills what is left in the cgroup and removes it, also when a test fails.
struct Guard {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.kill_all(libc::SIGKILL);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cg.destroy();
    }
}

fn name(test: &str) -> PathBuf {
    PathBuf::from(format!("/husk-itest-{test}-{}", std::process::id()))
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("test resources JSON")
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

fn v1_dir(cg: &Cgroup, ctrl: &str) -> PathBuf {
    cg.v1
        .iter()
        .find(|d| d.controllers.iter().any(|c| c == ctrl))
        .map(|d| d.path.clone())
        .unwrap_or_else(|| panic!("no {ctrl} hierarchy"))
}

fn all_dirs(cg: &Cgroup) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = cg.v1.iter().map(|d| d.path.clone()).collect();
    v.extend(cg.unified.clone());
    v
}

/// Start `sh -c 'read x; exec CMD'`, move it into the cgroup, then let it
/// run: CMD starts inside the cgroup.
fn spawn_in(g: &mut Guard, cmd: &str) -> u32 {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read x; exec {cmd}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let pid = child.id();
    g.cg.add_process(pid as i32).expect("add_process");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("release child");
    g.children.push(child);
    pid
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

#[test]
fn layout_is_detected() {
    let l = detect_layout().expect("detect");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let has_v1 = mi
        .lines()
        .any(|l| l.contains(" - cgroup cgroup ") && l.contains("memory"));
    let has_v2 = mi.contains(" - cgroup2 ");
    match (has_v1, has_v2) {
        (true, true) => assert_eq!(l, Layout::Hybrid),
        (true, false) => assert_eq!(l, Layout::V1),
        _ => assert_eq!(l, Layout::V2),
    }
}

/// The resources every v1 host has the files of (the host-dependent ones
/// are in v1_host_dependent_resources).
#[test]
fn v1_limits_are_written() {
    if !v1_ready("v1_limits_are_written") {
        return;
    }
    let cg = Cgroup::new(Some(&name("limits")), "x").expect("new");
    let mut devs: Vec<LinuxDeviceCgroup> =
        serde_json::from_str(r#"[{"allow": false, "access": "rwm"}]"#).expect("rules");
    devs.extend(default_device_rules());
    let mut r = res(r#"{
        "memory": {"limit": 67108864, "reservation": 33554432, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 20}
    }"#);
    r.set_devices(Some(devs));
    let g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    cg.create(Some(&r)).expect("create");
    let mem = v1_dir(&cg, "memory");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(read(&mem, "memory.swappiness"), "10");
    let cpu = v1_dir(&cg, "cpu");
    assert_eq!(read(&cpu, "cpu.shares"), "512");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&v1_dir(&cg, "cpuset"), "cpuset.cpus"), "0");
    assert_eq!(read(&v1_dir(&cg, "pids"), "pids.max"), "20");
    let list = read(&v1_dir(&cg, "devices"), "devices.list");
    assert!(list.contains("c 1:3 rwm"), "{list}");
    assert!(list.contains("c 136:* rwm"), "{list}");
    assert!(!list.contains("a *:*"), "{list}");
    for d in all_dirs(&cg) {
        assert!(d.is_dir(), "{} missing", d.display());
    }
    drop(g);
    for d in all_dirs(&cg) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// What the host offers for one resource, found out by the test itself
/// (mountinfo, /sys, the files of a cgroup made without resources), not
/// by husk's code.
enum Host {
    /// The value must read back from this file of the container's cgroup.
    Has { file: PathBuf, want: String },
    /// husk must refuse the config with an error containing every one of
    /// these; `why` says what the host lacks (recorded as not checked).
    Lacks { error: Vec<String>, why: String },
}

/// Create a cgroup with `json` as its only resources and check the outcome
/// the host calls for; nothing may be left either way.
fn check_host_dependent(test: &str, what: &str, json: &str, host: impl FnOnce(&Cgroup) -> Host) {
    let cg = Cgroup::new(Some(&name(test)), "x").expect("new");
    let _g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    // Probe with a cgroup made without resources, then start again.
    cg.create(None).expect("create without resources");
    let host = host(&cg);
    cg.destroy().expect("destroy the probe");
    match host {
        Host::Has { file, want } => {
            cg.create(Some(&res(json))).unwrap_or_else(|e| panic!("{what}: {e:#}"));
            let got = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{what}: read {}: {e}", file.display()));
            assert!(
                got.contains(&want),
                "{what}: {} is {got:?}, want {want:?}",
                file.display()
            );
            cg.destroy().expect("destroy");
        }
        Host::Lacks { error, why } => {
            let e = format!("{:#}", cg.create(Some(&res(json))).expect_err(what));
            for part in &error {
                assert!(e.contains(part.as_str()), "{what}: error {e:?} lacks {part:?}");
            }
            common::not_checked(&format!("{what} applied"), &why);
        }
    }
    for d in all_dirs(&cg) {
        assert!(!d.exists(), "{what}: {} left behind", d.display());
    }
}

/// The controllers of the cgroup2 mount (empty without one).
fn unified_controllers() -> Vec<String> {
    cgroup2_mount()
        .and_then(|m| std::fs::read_to_string(m.join("cgroup.controllers")).ok())
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The directory of `ctrl` for this cgroup: its v1 hierarchy, else the
/// cgroup2 directory where the cgroup2 mount has the controller.
fn dir_with(cg: &Cgroup, ctrl: &str) -> Option<PathBuf> {
    cg.v1
        .iter()
        .find(|d| d.controllers.iter().any(|c| c == ctrl))
        .map(|d| d.path.clone())
        .or_else(|| {
            cg.unified
                .clone()
                .filter(|_| unified_controllers().iter().any(|c| c == ctrl))
        })
}

/// Huge page sizes of the host in cgroup file notation, with their size in
/// bytes ("2MB", 2097152), from /sys/kernel/mm/hugepages.
fn host_hugepage_sizes() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(kb) = n
            .strip_prefix("hugepages-")
            .and_then(|s| s.strip_suffix("kB"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            let name = match kb {
                kb if kb % (1024 * 1024) == 0 => format!("{}GB", kb / (1024 * 1024)),
                kb if kb % 1024 == 0 => format!("{}MB", kb / 1024),
                kb => format!("{kb}KB"),
            };
            out.push((name, kb * 1024));
        }
    }
    out.sort_by_key(|(_, b)| *b);
    out
}

/// The resources whose cgroup files depend on the host's kernel and
/// configuration: each is checked either way.
#[test]
fn v1_host_dependent_resources() {
    if !v1_ready("v1_host_dependent_resources") {
        return;
    }
    // blkio weight: blkio.weight (CFQ, gone since Linux 5.0) or
    // blkio.bfq.weight (BFQ) in a non-root blkio cgroup.
    if common::v1_mounted("blkio") {
        check_host_dependent("blkio", "blkio weight", r#"{"blockIO": {"weight": 300}}"#, |cg| {
            let d = v1_dir(cg, "blkio");
            match ["blkio.weight", "blkio.bfq.weight"].iter().find(|f| d.join(f).exists()) {
                Some(f) => Host::Has {
                    file: d.join(f),
                    want: "300".into(),
                },
                None => Host::Lacks {
                    error: vec![
                        "cannot set blkio weight (linux.resources.blockIO.weight): neither".into(),
                        d.join("blkio.weight").display().to_string(),
                        d.join("blkio.bfq.weight").display().to_string(),
                    ],
                    why: "no blkio.weight or blkio.bfq.weight: the kernel has neither CFQ nor BFQ".into(),
                },
            }
        });
    } else {
        common::not_checked("blkio weight in a v1 blkio hierarchy", "no v1 blkio hierarchy");
    }

    // memory+swap limit: memory.memsw.* exist only with swap accounting.
    check_host_dependent(
        "memsw",
        "memory+swap limit",
        r#"{"memory": {"limit": 67108864, "swap": 134217728}}"#,
        |cg| {
            let d = v1_dir(cg, "memory");
            let file = d.join("memory.memsw.limit_in_bytes");
            if file.exists() {
                Host::Has {
                    file,
                    want: "134217728".into(),
                }
            } else {
                Host::Lacks {
                    error: vec![
                        "cannot set memory+swap limit (linux.resources.memory.swap)".into(),
                        file.display().to_string(),
                    ],
                    why: "no swap accounting: no memory.memsw.limit_in_bytes, cgroup.memory=noswap or swapaccount=0"
                        .into(),
                }
            }
        },
    );

    // hugetlb: a v1 hierarchy, else (hybrid) the cgroup2 controller, for
    // a page size the host has.
    let sizes = host_hugepage_sizes();
    let (size, bytes) = sizes.first().cloned().unwrap_or(("2MB".into(), 2 << 20));
    let limit = 2 * bytes;
    let json = format!(r#"{{"hugepageLimits": [{{"pageSize": "{size}", "limit": {limit}}}]}}"#);
    check_host_dependent("hugetlb", &format!("hugetlb {size} limit"), &json, |cg| {
        if sizes.is_empty() {
            let mut error = vec!["cannot set hugepage limit (linux.resources.hugepageLimits)".to_string()];
            if !common::v1_mounted("hugetlb") && !unified_controllers().iter().any(|c| c == "hugetlb") {
                error = vec!["cannot apply linux.resources.hugepageLimits".into()];
            }
            return Host::Lacks {
                error,
                why: "no huge page sizes in /sys/kernel/mm/hugepages".into(),
            };
        }
        if common::v1_mounted("hugetlb") {
            return Host::Has {
                file: v1_dir(cg, "hugetlb").join(format!("hugetlb.{size}.limit_in_bytes")),
                want: limit.to_string(),
            };
        }
        match dir_with(cg, "hugetlb") {
            Some(d) => {
                common::not_checked(
                    "hugepage limit in a v1 hugetlb hierarchy",
                    "hugetlb is bound to the cgroup2 mount here: checked there",
                );
                Host::Has {
                    file: d.join(format!("hugetlb.{size}.max")),
                    want: limit.to_string(),
                }
            }
            None => Host::Lacks {
                error: vec![
                    "cannot apply linux.resources.hugepageLimits".into(),
                    "the hugetlb cgroup controller is not mounted".into(),
                ],
                why: "no hugetlb cgroup controller, v1 or v2".into(),
            },
        }
    });

    // net_cls and net_prio: v1 only (cgroup2 has no such files).
    check_host_dependent(
        "netcls",
        "network class id",
        r#"{"network": {"classID": 1048577}}"#,
        |cg| match dir_with(cg, "net_cls") {
            Some(d) if common::v1_mounted("net_cls") => Host::Has {
                file: d.join("net_cls.classid"),
                want: "1048577".into(),
            },
            _ => Host::Lacks {
                error: vec![
                    "cannot apply linux.resources.network.classID".into(),
                    "the net_cls cgroup controller is not mounted".into(),
                ],
                why: "no v1 net_cls hierarchy: the controller is bound to cgroup2, which has no net_cls files".into(),
            },
        },
    );
    check_host_dependent(
        "netprio",
        "network interface priority",
        r#"{"network": {"priorities": [{"name": "lo", "priority": 5}]}}"#,
        |cg| match dir_with(cg, "net_prio") {
            Some(d) if common::v1_mounted("net_prio") => Host::Has {
                file: d.join("net_prio.ifpriomap"),
                want: "lo 5".into(),
            },
            _ => Host::Lacks {
                error: vec![
                    "cannot apply linux.resources.network.priorities".into(),
                    "the net_prio cgroup controller is not mounted".into(),
                ],
                why: "no v1 net_prio hierarchy: the controller is bound to cgroup2, which has no net_prio files".into(),
            },
        },
    );

    // rdma: a controller (v1 or cgroup2) and an RDMA device to limit.
    let dev = std::fs::read_dir("/sys/class/infiniband")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next();
    let dev_name = dev.clone().unwrap_or_else(|| "husk_nodev0".into());
    let json = format!(r#"{{"rdma": {{"{dev_name}": {{"hcaHandles": 3}}}}}}"#);
    check_host_dependent("rdma", "rdma limit", &json, |cg| match (dir_with(cg, "rdma"), &dev) {
        (Some(d), Some(dev)) => Host::Has {
            file: d.join("rdma.max"),
            want: format!("{dev} hca_handle=3"),
        },
        (Some(d), None) => Host::Lacks {
            error: vec!["cannot set rdma limit".into(), d.join("rdma.max").display().to_string()],
            why: "no RDMA device in /sys/class/infiniband".into(),
        },
        (None, _) => Host::Lacks {
            error: vec![
                "cannot apply linux.resources.rdma".into(),
                "the rdma cgroup controller is not mounted".into(),
            ],
            why: "no rdma cgroup controller: kernel without CONFIG_CGROUP_RDMA".into(),
        },
    });
}

#[test]
fn rejected_value_names_file_and_leaves_nothing() {
    if !v1_ready("rejected_value_names_file_and_leaves_nothing") {
        return;
    }
    let cg = Cgroup::new(Some(&name("reject")), "x").expect("new");
    let _g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    let e = cg
        .create(Some(&res(r#"{"pids": {"limit": 5}, "cpu": {"cpus": "4095"}}"#)))
        .expect_err("cpus 4095 must be rejected");
    let msg = format!("{e:#}");
    let file = v1_dir(&cg, "cpuset").join("cpuset.cpus");
    let prefix = format!(
        "cannot set cpuset cpus (linux.resources.cpu.cpus): write 4095 to {}: ",
        file.display()
    );
    assert!(msg.starts_with(&prefix), "{msg}");
    // the errno by its name and text (`ERANGE: Numerical result out of range`)
    let errno = &msg[prefix.len()..];
    let (name, text) = errno.split_once(": ").unwrap_or(("", ""));
    assert!(
        name.len() > 1
            && name.starts_with('E')
            && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && !text.is_empty(),
        "{msg}"
    );
    for d in all_dirs(&cg) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // unified is refused on v1/hybrid.
    let e = cg
        .create(Some(&res(r#"{"unified": {"memory.high": "1"}}"#)))
        .expect_err("unified on v1");
    assert!(e.to_string().contains("only supported on cgroup v2"), "{e}");
}

#[test]
fn v1_processes_freeze_thaw_kill() {
    if !v1_ready("v1_processes_freeze_thaw_kill") {
        return;
    }
    let cg = Cgroup::new(Some(&name("procs")), "x").expect("new");
    let mut g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    cg.create(None).expect("create");
    let busy = spawn_in(&mut g, "sh -c 'while :; do :; done'");
    let sleeper = spawn_in(&mut g, "sleep 100");
    let pids = cg.pids().expect("pids");
    assert!(pids.contains(&(busy as i32)), "{pids:?}");
    assert!(pids.contains(&(sleeper as i32)), "{pids:?}");
    for d in &cg.v1 {
        let procs = read(&d.path, "cgroup.procs");
        assert!(procs.contains(&busy.to_string()), "{}", d.path.display());
    }

    assert!(!cg.is_frozen().expect("state"));
    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().expect("state"));
    let t0 = cpu_ticks(busy);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(busy), t0, "a frozen process used cpu");
    cg.thaw().expect("thaw");
    assert!(!cg.is_frozen().expect("state"));
    assert!(wait_until(Duration::from_secs(5), || cpu_ticks(busy) > t0));

    // Kill while paused.
    cg.freeze().expect("freeze again");
    cg.kill_all(libc::SIGKILL).expect("kill_all");
    for c in &mut g.children {
        let st = c.wait().expect("wait");
        assert!(!st.success());
    }
    g.children.clear();
    assert!(wait_until(Duration::from_secs(5), || cg
        .pids()
        .is_ok_and(|p| p.is_empty())));
    assert!(!cg.is_frozen().expect("state"), "kill_all with SIGKILL thaws");
    cg.destroy().expect("destroy");
    for d in all_dirs(&cg) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // Destroying twice is fine.
    cg.destroy().expect("destroy again");
}

#[test]
fn v1_kill_all_other_signal_and_sub_cgroups() {
    if !v1_ready("v1_kill_all_other_signal_and_sub_cgroups") {
        return;
    }
    let cg = Cgroup::new(Some(&name("sigterm")), "x").expect("new");
    let mut g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    cg.create(None).expect("create");
    spawn_in(&mut g, "sleep 100");
    spawn_in(&mut g, "sleep 100");
    // A sub-cgroup with a process of its own in the freezer hierarchy.
    let sub = v1_dir(&cg, "freezer").join("sub");
    std::fs::create_dir(&sub).expect("sub");
    let mut c = Command::new("sleep").arg("100").spawn().expect("spawn");
    std::fs::write(sub.join("cgroup.procs"), c.id().to_string()).expect("move");
    let subpid = c.id() as i32;
    assert!(cg.pids().expect("pids").contains(&subpid));
    cg.kill_all(libc::SIGTERM).expect("kill_all");
    let _ = c.wait();
    for c in &mut g.children {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(c.wait().expect("wait").signal(), Some(libc::SIGTERM));
    }
    g.children.clear();
    assert!(!cg.is_frozen().expect("state"));
    cg.destroy().expect("destroy with sub-cgroup");
    assert!(!sub.exists());
}

#[test]
fn v1_update_oom_and_pids_limit() {
    if !v1_ready("v1_update_oom_and_pids_limit") {
        return;
    }
    // Memory limits with an equal memory+swap limit (no swap) where the host
    // accounts swap; v1_host_dependent_resources checks husk's refusal of a
    // swap limit where it does not.
    let memsw = common::memsw_accounting();
    let memory = |limit: u64| {
        if memsw {
            format!(r#""memory": {{"limit": {limit}, "swap": {limit}}}"#)
        } else {
            format!(r#""memory": {{"limit": {limit}}}"#)
        }
    };
    let cg = Cgroup::new(Some(&name("update")), "x").expect("new");
    let mut g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    cg.create(Some(&res(&format!(
        r#"{{{}, "pids": {{"limit": 4}}}}"#,
        memory(33554432)
    ))))
    .expect("create");
    // The pids limit stops a fork loop.
    spawn_in(&mut g, "sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 100 & done; wait'");
    let pids_dir = v1_dir(&cg, "pids");
    assert!(wait_until(Duration::from_secs(5), || read(&pids_dir, "pids.events") != "max 0"));
    assert!(cg.pids().expect("pids").len() <= 4);
    let stats = cg.stats().expect("stats");
    assert_eq!(stats["pids"]["limit"], 4);
    assert!(stats["pids"]["current"].as_u64().is_some_and(|c| c <= 4));

    // update changes live limits.
    cg.update(&res(&format!(
        r#"{{"pids": {{"limit": 50}}, {}, "cpu": {{"shares": 256}}}}"#,
        memory(67108864)
    )))
    .expect("update");
    assert_eq!(read(&v1_dir(&cg, "pids"), "pids.max"), "50");
    let mem = v1_dir(&cg, "memory");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
    if memsw {
        assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "67108864");
    }
    assert_eq!(read(&v1_dir(&cg, "cpu"), "cpu.shares"), "256");
    // Lowering both below the current memsw needs the other write order.
    cg.update(&res(&format!("{{{}}}", memory(16777216)))).expect("lower");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "16777216");
    if memsw {
        assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "16777216");
    } else {
        common::not_checked(
            "lowering memory and memory+swap limits together (the write order)",
            "no swap accounting: no memory.memsw.limit_in_bytes",
        );
    }
    // checkBeforeUpdate refuses a limit below the usage.
    let e = cg
        .update(&res(r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#))
        .expect_err("below usage");
    assert!(e.to_string().contains("below the current usage"), "{e}");
    cg.kill_all(libc::SIGKILL).expect("kill");
    for c in &mut g.children {
        let _ = c.wait();
    }
    g.children.clear();

    // OOM: allocate 100MB under a 16MB limit without swap (a memory+swap
    // limit, or no swap device at all).
    if !memsw && common::host_has_swap() {
        common::not_checked(
            "OOM kill under a v1 memory limit",
            "the host has swap but no swap accounting to forbid it",
        );
        return;
    }
    assert_eq!(cg.oom_kill_count().expect("oom count"), 0);
    spawn_in(&mut g, "dd if=/dev/zero of=/dev/null bs=100M count=1");
    let st = g.children[0].wait().expect("wait");
    assert!(!st.success());
    assert!(cg.oom_kill_count().expect("oom count") >= 1);
    let stats = cg.stats().expect("stats");
    assert!(stats["memory"]["usage"]["failcnt"].is_u64(), "{stats}");
    assert_eq!(stats["memory"]["usage"]["max"], 16777216, "{stats}");
    assert_eq!(stats["memory"]["usage"]["limit"], 16777216);
    assert!(stats["cpu"]["usage"]["total"].as_u64().is_some());
}

#[test]
fn v2_backend_on_the_cgroup2_mount() {
    let Some(mount) = v2_ready("v2_backend_on_the_cgroup2_mount") else {
        return;
    };
    let cg = Cgroup::new_v2_in(&mount, &name("v2"));
    let mut g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    let dir = cg.unified.clone().expect("dir");
    let controllers = std::fs::read_to_string(mount.join("cgroup.controllers")).expect("ctrls");
    let mut r = res(r#"{"devices": [{"allow": false},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "r"}]}"#);
    let hugetlb = controllers.split_whitespace().any(|c| c == "hugetlb")
        && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    let limits: Vec<oci_spec::runtime::LinuxHugepageLimit> =
        serde_json::from_str(r#"[{"pageSize": "2MB", "limit": 2097152}]"#).expect("h");
    if hugetlb {
        r.set_hugepage_limits(Some(limits));
    } else {
        // Without the controller (or 2MB pages) the limit is refused.
        let mut with = r.clone();
        with.set_hugepage_limits(Some(limits));
        let e = format!(
            "{:#}",
            cg.create(Some(&with)).expect_err("hugetlb without the controller")
        );
        assert!(
            e.contains("cannot set hugepage limit (linux.resources.hugepageLimits)"),
            "{e}"
        );
        assert!(!dir.exists(), "{} left behind", dir.display());
        common::not_checked(
            "hugetlb on the cgroup2 mount (limit, subtree_control, stats)",
            "its cgroup.controllers has no hugetlb, or the host has no 2MB huge pages",
        );
    }
    cg.create(Some(&r)).expect("create v2");
    assert!(dir.is_dir());
    if hugetlb {
        assert_eq!(read(&dir, "hugetlb.2MB.max"), "2097152");
        let parent = dir.parent().expect("parent");
        assert!(read(parent, "cgroup.subtree_control").contains("hugetlb"));
    }
    assert_eq!(husk::cgroups::bpf::attached_device_programs(&dir).expect("query"), 1);
    assert!(cg.open_unified_dir(None).expect("open").is_some());

    // The device program: /dev/zero allowed, /dev/null denied, /dev/urandom read-only.
    let run = |g: &mut Guard, cmd: &str| -> (bool, String) {
        spawn_in(g, cmd);
        let c = g.children.pop().expect("child");
        let out = c.wait_with_output().expect("wait");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = run(&mut g, "head -c 1 /dev/zero");
    assert!(ok, "{err}");
    let (ok, err) = run(&mut g, "head -c 1 /dev/null");
    assert!(!ok);
    assert!(err.contains("Operation not permitted"), "{err}");
    let (ok, err) = run(&mut g, "head -c 1 /dev/urandom");
    assert!(ok, "{err}");
    let (ok, _) = run(&mut g, "sh -c 'echo x > /dev/urandom'");
    assert!(!ok);

    // Replacing the program (a second create on the same cgroup) keeps one.
    cg.create(Some(&res(r#"{"devices": [{"allow": true, "type": "a"}]}"#)))
        .expect("re-create");
    assert_eq!(husk::cgroups::bpf::attached_device_programs(&dir).expect("query"), 1);
    let (ok, err) = run(&mut g, "head -c 1 /dev/null");
    assert!(ok, "{err}");

    // Processes, freeze, kill.
    let busy = spawn_in(&mut g, "sh -c 'while :; do :; done'");
    assert_eq!(cg.pids().expect("pids"), vec![busy as i32]);
    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().expect("frozen"));
    assert_eq!(read(&dir, "cgroup.freeze"), "1");
    let t0 = cpu_ticks(busy);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(busy), t0);
    cg.thaw().expect("thaw");
    assert!(!cg.is_frozen().expect("frozen"));
    cg.freeze().expect("freeze");
    cg.kill_all(libc::SIGKILL).expect("cgroup.kill");
    let st = g.children[0].wait().expect("wait");
    assert!(!st.success());
    g.children.clear();
    assert!(wait_until(Duration::from_secs(5), || cg
        .pids()
        .is_ok_and(|p| p.is_empty())));
    let stats = cg.stats().expect("stats");
    assert!(stats["cpu"]["usage"]["total"].as_u64().is_some(), "{stats}");
    if hugetlb {
        assert!(stats["hugetlb"]["2MB"].is_object(), "{stats}");
    }
    cg.destroy().expect("destroy");
    assert!(!dir.exists());
}

#[test]
fn v2_rejected_value_leaves_nothing() {
    let Some(mount) = v2_ready("v2_rejected_value_leaves_nothing") else {
        return;
    };
    let cg = Cgroup::new_v2_in(&mount, &name("v2rej").join("nested"));
    let _g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    let e = cg
        .create(Some(&res(r#"{"unified": {"cgroup.max.depth": "bogus"}}"#)))
        .expect_err("bogus value");
    let dir = cg.unified.clone().expect("dir");
    assert_eq!(
        format!("{e:#}"),
        format!(
            "cannot set unified resource (linux.resources.unified): write bogus to {}: EINVAL: Invalid argument",
            dir.join("cgroup.max.depth").display()
        )
    );
    assert!(!dir.exists());
    assert!(!dir.parent().expect("parent").exists(), "created parent left behind");
}

/// Clone a child that only waits to be killed (the test process has
/// threads: the child must do nothing but async-signal-safe calls).
fn clone_waiting_child(dir: Option<&husk::cgroups::UnifiedDir>) -> (i32, bool) {
    // SAFETY: no flags (a plain fork); the test process has threads, so
    // the child makes only async-signal-safe calls (pause) until killed.
    let (pid, in_cgroup) = unsafe { husk::process::clone_child(0, dir, "a test child") }.expect("clone");
    if pid == 0 {
        loop {
            // SAFETY: pause has no preconditions; the parent kills us.
            unsafe { libc::pause() };
        }
    }
    (pid, in_cgroup)
}

fn kill_reap(pid: i32) {
    // SAFETY: signalling and reaping our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Where this host mounts cgroup2 (on a hybrid host: the unified mount).
fn cgroup2_mount() -> Option<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mi.lines()
        .find(|l| l.contains(" - cgroup2 "))
        .map(|l| PathBuf::from(l.split(' ').nth(4).expect("mountpoint")))
}

fn v2_line(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .expect("read /proc/PID/cgroup")
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .expect("a 0:: line")
}

#[test]
fn v2_clone_into_cgroup_and_fallback() {
    let Some(mount) = v2_ready("v2_clone_into_cgroup_and_fallback") else {
        return;
    };
    let path = name("clone3");
    let cg = Cgroup::new_v2_in(&mount, &path);
    let _g = Guard {
        cg: cg.clone(),
        children: vec![],
    };
    cg.create(None).expect("create");
    let own = v2_line(std::process::id() as i32);

    // The child starts in the cgroup: nobody wrote cgroup.procs.
    let dir = cg.open_unified_dir(None).expect("open").expect("a v2 cgroup");
    let (pid, in_cgroup) = clone_waiting_child(Some(&dir));
    let seen = v2_line(pid);
    let procs = read(&dir.path, "cgroup.procs");
    kill_reap(pid);
    assert!(in_cgroup);
    assert_eq!(seen, path.display().to_string());
    assert_eq!(procs, pid.to_string());

    // The sub-cgroup of `exec --cgroup`, and its error when missing.
    std::fs::create_dir(dir.path.join("sub")).expect("mkdir sub");
    let sub = cg.open_unified_dir(Some("sub")).expect("open sub").expect("v2");
    assert_eq!(sub.path, dir.path.join("sub"));
    let (pid, in_cgroup) = clone_waiting_child(Some(&sub));
    let seen = v2_line(pid);
    kill_reap(pid);
    assert!(in_cgroup);
    assert_eq!(seen, path.join("sub").display().to_string());
    let e = cg.open_unified_dir(Some("nosuch")).expect_err("missing sub");
    assert!(e.to_string().contains("does not exist"), "{e}");

    // A domain-invalid cgroup (a domain sibling of a threaded cgroup) takes
    // no process (EOPNOTSUPP): the child is cloned the old way, in our own
    // cgroup, for the caller to move.
    drop(sub);
    for d in ["tdom", "tdom/threaded", "tdom/invalid"] {
        std::fs::create_dir(dir.path.join(d)).expect("mkdir");
    }
    std::fs::write(dir.path.join("tdom/threaded/cgroup.type"), "threaded").expect("make it threaded");
    assert_eq!(read(&dir.path, "tdom/invalid/cgroup.type"), "domain invalid");
    let invalid = cg.open_unified_dir(Some("tdom/invalid")).expect("open").expect("v2");
    let (pid, in_cgroup) = clone_waiting_child(Some(&invalid));
    let seen = v2_line(pid);
    kill_reap(pid);
    assert!(!in_cgroup);
    assert_eq!(seen, own);

    // Without a directory (v1, hybrid): a plain fork.
    let (pid, in_cgroup) = clone_waiting_child(None);
    kill_reap(pid);
    assert!(!in_cgroup);
}
