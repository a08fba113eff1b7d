//! cri-client: drives containerd's CRI plugin the way the kubelet does, to
//! test an OCI runtime as a RuntimeClass handler.
//!
//! cri-client --socket SOCK --handler NAME [--systemd] [--cgroup-root NAME]
//!            [--log-dir DIR] [--image REF] [--compare HANDLER] [--probes N]
//!            [--host-network] SCENARIO
//!
//! --host-network: pods in the node's network namespace (hostNetwork: true),
//! where no CNI network can be set up (the systemd guest has no bridge).
//!
//! Scenarios (each makes its own pod and removes it, even when a step fails):
//!   pod        a pod sandbox and a container in it: logs, exit code, removal
//!   hardened   a container with the security context of a hardened pod
//!   probes     ExecSync probes: output, exit codes, timeout; timed (and
//!              timed with --compare HANDLER in the same run)
//!   resources  cgroup limits at create, UpdateContainerResources, stats
//!   stop       StopContainer with a grace period: TERM honoured, KILL after
//!
//! Every check prints "ok WHAT" or "FAIL WHAT: why"; the exit status is 1
//! when a check failed. What is left behind is checked here (the pod's and
//! the containers' cgroups) and by the caller (state dirs, units, mounts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

type Rt = RuntimeServiceClient<Channel>;

struct Opts {
    socket: PathBuf,
    handler: String,
    systemd: bool,
    cgroup_root: String,
    log_dir: PathBuf,
    image: String,
    compare: Option<String>,
    probes: usize,
    host_network: bool,
    scenario: String,
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        socket: PathBuf::new(),
        handler: String::new(),
        systemd: false,
        cgroup_root: "kubepods".into(),
        log_dir: std::env::temp_dir().join("cri-client-logs"),
        image: "docker.io/library/husktest:latest".into(),
        compare: None,
        probes: 20,
        host_network: false,
        scenario: String::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| anyhow!("{name} needs a value"));
        match a.as_str() {
            "--socket" => o.socket = val("--socket")?.into(),
            "--handler" => o.handler = val("--handler")?,
            "--systemd" => o.systemd = true,
            "--host-network" => o.host_network = true,
            "--cgroup-root" => o.cgroup_root = val("--cgroup-root")?,
            "--log-dir" => o.log_dir = val("--log-dir")?.into(),
            "--image" => o.image = val("--image")?,
            "--compare" => o.compare = Some(val("--compare")?),
            "--probes" => {
                let v = val("--probes")?;
                o.probes = v.parse().with_context(|| format!("--probes {v}"))?
            }
            s if s.starts_with('-') => bail!("unknown flag {s}"),
            s => o.scenario = s.to_string(),
        }
    }
    if o.socket.as_os_str().is_empty() || o.handler.is_empty() || o.scenario.is_empty() {
        bail!("usage: cri-client --socket SOCK --handler NAME [--systemd] [--cgroup-root NAME] [--log-dir DIR] [--image REF] [--compare HANDLER] [--probes N] [--host-network] SCENARIO");
    }
    Ok(o)
}

/// Counts failed checks; prints every check.
#[derive(Default)]
struct Checks {
    failed: usize,
}

impl Checks {
    fn ok(&mut self, what: &str, good: bool, detail: impl std::fmt::Display) {
        if good {
            println!("ok {what}: {detail}");
        } else {
            println!("FAIL {what}: {detail}");
            self.failed += 1;
        }
    }
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, want: T, got: T) {
        let good = want == got;
        self.ok(what, good, format!("expected {want:?}, got {got:?}"));
    }
}

async fn connect(socket: &Path) -> Result<Rt> {
    let path = socket.to_path_buf();
    let channel = Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .with_context(|| format!("connect to {}", socket.display()))?;
    Ok(RuntimeServiceClient::new(channel))
}

/// A pod the way the kubelet describes one: its own network (CNI), pid and
/// ipc namespaces, a cgroup parent under the QoS class, a log directory.
struct Pod {
    id: String,
    config: PodSandboxConfig,
    containers: Vec<String>,
    /// cgroup directories seen while running (checked gone at the end)
    cgroups: Vec<PathBuf>,
}

/// A UUID-shaped pod uid, as the API server makes them.
fn pod_uid() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        ^ ((std::process::id() as u128) << 64);
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn cgroup_parent(o: &Opts, uid: &str) -> String {
    if o.systemd {
        // the kubelet's systemd names: kubepods-burstable-pod<uid>.slice,
        // the uid's dashes escaped
        format!("{}-burstable-pod{}.slice", o.cgroup_root, uid.replace('-', "_"))
    } else {
        format!("/{}/burstable/pod{uid}", o.cgroup_root)
    }
}

fn network_mode(o: &Opts) -> i32 {
    if o.host_network {
        NamespaceMode::Node as i32
    } else {
        NamespaceMode::Pod as i32
    }
}

fn hardened_pod_security(o: &Opts) -> LinuxSandboxSecurityContext {
    LinuxSandboxSecurityContext {
        namespace_options: Some(NamespaceOption {
            network: network_mode(o),
            pid: NamespaceMode::Container as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        }),
        seccomp: Some(SecurityProfile {
            profile_type: security_profile::ProfileType::RuntimeDefault as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run_pod(rt: &mut Rt, o: &Opts, name: &str, handler: &str) -> Result<Pod> {
    let uid = pod_uid();
    let log_dir = o.log_dir.join(&uid);
    std::fs::create_dir_all(&log_dir).with_context(|| format!("mkdir {}", log_dir.display()))?;
    let config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.clone(),
            namespace: "husk-test".into(),
            attempt: 0,
        }),
        // a pod on the node's network shares its UTS namespace: no hostname
        // (a runtime refuses one without a private UTS namespace)
        hostname: if o.host_network { String::new() } else { name.into() },
        log_directory: log_dir.to_string_lossy().into_owned(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent(o, &uid),
            security_context: Some(hardened_pod_security(o)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let t = Instant::now();
    let id = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .with_context(|| format!("RunPodSandbox {name} (handler {handler})"))?
        .into_inner()
        .pod_sandbox_id;
    println!(
        "ok RunPodSandbox {name} with handler {handler}: {} ms",
        t.elapsed().as_millis()
    );
    Ok(Pod {
        id,
        config,
        containers: Vec::new(),
        cgroups: Vec::new(),
    })
}

fn container_config(o: &Opts, name: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: o.image.clone(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources::default()),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: network_mode(o),
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// The security context the kubelet sends for a pod hardened the way the
/// "restricted" Pod Security Standard asks.
fn harden(c: &mut ContainerConfig) {
    let masked = [
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
    ];
    let readonly = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.capabilities = Some(Capability {
            drop_capabilities: vec!["ALL".into()],
            ..Default::default()
        });
        sc.run_as_user = Some(Int64Value { value: 1000 });
        sc.run_as_group = Some(Int64Value { value: 1000 });
        sc.readonly_rootfs = true;
        sc.no_new_privs = true;
        sc.seccomp = Some(SecurityProfile {
            profile_type: security_profile::ProfileType::RuntimeDefault as i32,
            ..Default::default()
        });
        sc.masked_paths = masked.iter().map(|s| s.to_string()).collect();
        sc.readonly_paths = readonly.iter().map(|s| s.to_string()).collect();
    }
}

async fn start_container(rt: &mut Rt, pod: &mut Pod, config: ContainerConfig) -> Result<String> {
    let name = config.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
    let t = Instant::now();
    let id = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        })
        .await
        .with_context(|| format!("CreateContainer {name}"))?
        .into_inner()
        .container_id;
    pod.containers.push(id.clone());
    rt.start_container(StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .with_context(|| format!("StartContainer {name}"))?;
    println!(
        "ok CreateContainer+StartContainer {name}: {} ms",
        t.elapsed().as_millis()
    );
    Ok(id)
}

async fn status(rt: &mut Rt, id: &str) -> Result<(ContainerStatus, HashMap<String, String>)> {
    let r = rt
        .container_status(ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
        .with_context(|| format!("ContainerStatus {id}"))?
        .into_inner();
    let s = r.status.ok_or_else(|| anyhow!("ContainerStatus {id}: no status"))?;
    Ok((s, r.info))
}

/// The container's init pid on the host, from containerd's verbose status.
async fn container_pid(rt: &mut Rt, id: &str) -> Result<u32> {
    let (_, info) = status(rt, id).await?;
    let raw = info
        .get("info")
        .ok_or_else(|| anyhow!("ContainerStatus {id}: no verbose info"))?;
    let v: serde_json::Value = serde_json::from_str(raw).context("parse the verbose info")?;
    v.get("pid")
        .and_then(|p| p.as_u64())
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| anyhow!("ContainerStatus {id}: no pid in the verbose info"))
}

async fn wait_exited(rt: &mut Rt, id: &str, within: Duration) -> Result<ContainerStatus> {
    let end = Instant::now() + within;
    loop {
        let (s, _) = status(rt, id).await?;
        if s.state == ContainerState::ContainerExited as i32 {
            return Ok(s);
        }
        if Instant::now() > end {
            bail!("container {id} still in state {} after {within:?}", s.state);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exec_sync(rt: &mut Rt, id: &str, cmd: &[&str], timeout: i64) -> Result<ExecSyncResponse> {
    Ok(rt
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout,
        })
        .await
        .with_context(|| format!("ExecSync {cmd:?}"))?
        .into_inner())
}

async fn exec_out(rt: &mut Rt, id: &str, script: &str) -> Result<String> {
    let r = exec_sync(rt, id, &["sh", "-c", script], 30).await?;
    if r.exit_code != 0 {
        bail!(
            "ExecSync {script:?} exited {}: {}",
            r.exit_code,
            String::from_utf8_lossy(&r.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&r.stdout).trim().to_string())
}

/// The directory of a process's cgroup for a v1 controller (or the v2 one).
fn cgroup_dir(pid: u32, v1_controller: &str) -> Result<PathBuf> {
    let f = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&f).with_context(|| format!("read {f}"))?;
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hid), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.split(',').any(|c| c == v1_controller) {
            return Ok(PathBuf::from(format!("/sys/fs/cgroup/{v1_controller}{path}")));
        }
        if hid == "0" && ctrls.is_empty() {
            v2 = Some(PathBuf::from(format!("/sys/fs/cgroup{path}")));
        }
    }
    // a hybrid host's cgroup2 mount holds no controller we read
    if Path::new("/sys/fs/cgroup/unified").is_dir() {
        bail!("{f}: no v1 {v1_controller} hierarchy");
    }
    v2.ok_or_else(|| anyhow!("{f}: no line for {v1_controller} and no v2 line"))
}

fn is_v2(dir: &Path) -> bool {
    dir.join("cgroup.controllers").exists()
}

fn read_file(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    Ok(std::fs::read_to_string(&p)
        .with_context(|| format!("read {}", p.display()))?
        .trim()
        .to_string())
}

/// Removes the pod's containers and the pod, whatever happened before; then
/// checks that the cgroups seen while it ran are gone.
async fn teardown(rt: &mut Rt, pod: Pod, c: &mut Checks) {
    for id in &pod.containers {
        let _ = rt
            .stop_container(StopContainerRequest {
                container_id: id.clone(),
                timeout: 0,
            })
            .await;
        if let Err(e) = rt
            .remove_container(RemoveContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            c.ok("RemoveContainer", false, format!("{id}: {e}"));
        }
    }
    let stop = rt
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await;
    c.ok("StopPodSandbox", stop.is_ok(), format!("{:?}", stop.err()));
    let rm = rt
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await;
    c.ok("RemovePodSandbox", rm.is_ok(), format!("{:?}", rm.err()));
    for dir in &pod.cgroups {
        c.ok("cgroup removed", !dir.exists(), dir.display());
    }
    let left = rt
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: pod.id.clone(),
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.into_inner().containers.len());
    c.ok(
        "no container left in the pod",
        matches!(left, Ok(0)),
        format!("{left:?}"),
    );
}

async fn scenario_pod(rt: &mut Rt, o: &Opts, pod: &mut Pod, c: &mut Checks) -> Result<()> {
    let (ps, _) = {
        let r = rt
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: pod.id.clone(),
                verbose: true,
            })
            .await
            .context("PodSandboxStatus")?
            .into_inner();
        (r.status.ok_or_else(|| anyhow!("PodSandboxStatus: no status"))?, r.info)
    };
    c.eq("pod ready", PodSandboxState::SandboxReady as i32, ps.state);
    // a workingDir the image does not have: made, as runc makes it
    let script = "echo hello from $(hostname) in $(pwd); ls /sys/class/net; exit 3";
    let mut cfg = container_config(o, "hello", &["sh", "-c", script]);
    cfg.working_dir = "/srv/app/work".into();
    let id = start_container(rt, pod, cfg).await?;
    let s = wait_exited(rt, &id, Duration::from_secs(30)).await?;
    c.eq("exit code", 3, s.exit_code);
    let log = pod.config.log_directory.clone() + "/hello.log";
    let text = std::fs::read_to_string(&log).with_context(|| format!("read {log}"))?;
    c.ok("log has the output", text.contains("hello from"), text.trim());
    c.ok("workingDir made", text.contains(" in /srv/app/work"), text.trim());
    if o.host_network {
        c.ok("the node's network namespace", text.contains(" lo"), text.trim());
    } else {
        c.ok(
            "the pod's network namespace (eth0 from CNI, lo)",
            text.contains(" eth0") && text.contains(" lo"),
            text.trim(),
        );
    }
    Ok(())
}

async fn scenario_hardened(rt: &mut Rt, o: &Opts, pod: &mut Pod, c: &mut Checks) -> Result<()> {
    let mut cfg = container_config(o, "hardened", &["sleep", "1000"]);
    harden(&mut cfg);
    let id = start_container(rt, pod, cfg).await?;
    let out = exec_out(
        rt,
        &id,
        "id -u; id -g; grep -E '^(NoNewPrivs|Seccomp|CapEff|CapPrm|CapBnd):' /proc/self/status | tr -s '\\t' ' '; \
         touch /rootfile 2>/dev/null && echo root-rw || echo root-ro; \
         touch /proc/sys/kernel/x 2>/dev/null || echo procsys-ro; \
         for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do \
           [ -e $p ] && echo \"masked $p $(wc -c <$p)\"; done; true",
    )
    .await?;
    println!("  inside: {}", out.replace('\n', " | "));
    let lines: Vec<&str> = out.lines().collect();
    c.eq("runAsUser", Some("1000"), lines.first().copied());
    c.eq("runAsGroup", Some("1000"), lines.get(1).copied());
    for want in [
        "NoNewPrivs: 1",
        "Seccomp: 2",
        "CapEff: 0000000000000000",
        "CapPrm: 0000000000000000",
        "CapBnd: 0000000000000000",
        "root-ro",
        "procsys-ro",
    ] {
        c.ok(want, lines.contains(&want), "");
    }
    // (which of them a kernel has depends on its configuration)
    let masked: Vec<&str> = lines.iter().filter(|l| l.starts_with("masked ")).copied().collect();
    c.ok(
        "masked paths read empty",
        !masked.is_empty() && masked.iter().all(|l| l.ends_with(" 0")),
        masked.join(", "),
    );
    // RuntimeDefault blocks what the default profile blocks, e.g. unshare
    let r = exec_sync(rt, &id, &["unshare", "-r", "true"], 30).await?;
    c.ok(
        "seccomp RuntimeDefault refuses unshare",
        r.exit_code != 0,
        format!("exit {}", r.exit_code),
    );
    Ok(())
}

fn stats_line(name: &str, v: &mut [f64]) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let median = v.get(v.len() / 2).copied().unwrap_or(0.0);
    format!("{name}: {} probes, mean {mean:.1} ms, median {median:.1} ms", v.len())
}

async fn probe_times(rt: &mut Rt, id: &str, n: usize) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = exec_sync(rt, id, &["cat", "/tmp/healthy"], 10).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if r.exit_code != 0 {
            bail!("probe exited {}", r.exit_code);
        }
    }
    Ok(times)
}

async fn scenario_probes(rt: &mut Rt, o: &Opts, pod: &mut Pod, c: &mut Checks) -> Result<()> {
    let id = start_container(
        rt,
        pod,
        container_config(o, "probed", &["sh", "-c", "echo ok > /tmp/healthy; exec sleep 1000"]),
    )
    .await?;
    let end = Instant::now() + Duration::from_secs(10);
    while exec_sync(rt, &id, &["cat", "/tmp/healthy"], 10).await?.exit_code != 0 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = exec_sync(rt, &id, &["sh", "-c", "echo out; echo err >&2; exit 3"], 10).await?;
    c.eq("probe exit code", 3, r.exit_code);
    c.eq(
        "probe stdout",
        "out\n".to_string(),
        String::from_utf8_lossy(&r.stdout).into_owned(),
    );
    c.eq(
        "probe stderr",
        "err\n".to_string(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    );
    let t = Instant::now();
    let r = exec_sync(rt, &id, &["sleep", "30"], 2).await;
    let secs = t.elapsed().as_secs_f64();
    c.ok(
        "probe timeout honoured",
        r.is_err() && secs < 20.0,
        format!("{:.1}s, {:?}", secs, r.err().map(|e| e.to_string())),
    );
    let mut mine = probe_times(rt, &id, o.probes).await?;
    let line = stats_line(&o.handler, &mut mine);
    c.ok("probes", true, &line);
    if let Some(other) = &o.compare {
        let mut pod2 = run_pod(rt, o, "probed-compare", other).await?;
        let res = async {
            let id2 = start_container(
                rt,
                &mut pod2,
                container_config(o, "probed", &["sh", "-c", "echo ok > /tmp/healthy; exec sleep 1000"]),
            )
            .await?;
            let end = Instant::now() + Duration::from_secs(10);
            while exec_sync(rt, &id2, &["cat", "/tmp/healthy"], 10).await?.exit_code != 0 && Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            probe_times(rt, &id2, o.probes).await
        }
        .await;
        teardown(rt, pod2, c).await;
        let mut theirs = res?;
        let line2 = stats_line(other, &mut theirs);
        let ratio = mine.iter().sum::<f64>() / theirs.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        c.ok(
            "probes compared",
            true,
            format!("{line2}; {} / {other} = {ratio:.2}", o.handler),
        );
    }
    Ok(())
}

/// (v1 controller, v1 file, v2 file) of each limit checked.
fn limit_files(dir_v2: bool, what: &str) -> (&'static str, &'static str) {
    match (what, dir_v2) {
        ("memory", false) => ("memory", "memory.limit_in_bytes"),
        ("memory", true) => ("memory", "memory.max"),
        ("shares", false) => ("cpu", "cpu.shares"),
        ("shares", true) => ("cpu", "cpu.weight"),
        ("quota", false) => ("cpu", "cpu.cfs_quota_us"),
        (_, _) => ("cpu", "cpu.max"),
    }
}

async fn scenario_resources(rt: &mut Rt, o: &Opts, pod: &mut Pod, c: &mut Checks) -> Result<()> {
    let mut cfg = container_config(
        o,
        "limited",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 1000",
        ],
    );
    if let Some(r) = cfg.linux.as_mut().and_then(|l| l.resources.as_mut()) {
        r.cpu_shares = 512;
        r.cpu_period = 100_000;
        r.cpu_quota = 50_000;
        r.memory_limit_in_bytes = 64 << 20;
    }
    let id = start_container(rt, pod, cfg).await?;
    let pid = container_pid(rt, &id).await?;
    let mem = cgroup_dir(pid, "memory")?;
    let cpu = cgroup_dir(pid, "cpu")?;
    pod.cgroups.push(mem.clone());
    pod.cgroups.push(cpu.clone());
    let v2 = is_v2(&mem);
    println!("  cgroups: {} {}", mem.display(), cpu.display());
    if o.systemd {
        let name = mem
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        c.ok(
            "a systemd scope",
            name.starts_with("cri-containerd-") && name.ends_with(".scope"),
            &name,
        );
    }
    let check = |c: &mut Checks, what: &str, want: &str| -> Result<()> {
        let (_, file) = limit_files(v2, what);
        let dir = if what == "memory" { &mem } else { &cpu };
        c.eq(file, want.to_string(), read_file(dir, file)?);
        Ok(())
    };
    check(c, "memory", "67108864")?;
    if v2 {
        // 512 shares as a weight: 59 by the map runc >= 1.4 and crun >= 1.23
        // use (1024 shares = weight 100), 20 by the linear one before
        let got = read_file(&cpu, "cpu.weight")?;
        c.ok(
            "cpu.weight",
            got == "59" || got == "20",
            format!("{got} (59: runc 1.4+'s map, 20: older runc)"),
        );
    } else {
        check(c, "shares", "512")?;
    }
    check(c, "quota", if v2 { "50000 100000" } else { "50000" })?;
    let t = Instant::now();
    rt.update_container_resources(UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(LinuxContainerResources {
            cpu_shares: 512,
            cpu_period: 100_000,
            cpu_quota: 20_000,
            memory_limit_in_bytes: 128 << 20,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .context("UpdateContainerResources")?;
    println!("ok UpdateContainerResources: {} ms", t.elapsed().as_millis());
    check(c, "memory", "134217728")?;
    check(c, "quota", if v2 { "20000 100000" } else { "20000" })?;
    // stats: containerd reads them from the cgroup husk made
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let s = rt
            .container_stats(ContainerStatsRequest {
                container_id: id.clone(),
            })
            .await
            .context("ContainerStats")?
            .into_inner()
            .stats
            .ok_or_else(|| anyhow!("ContainerStats: none"))?;
        let cpu_ns = s
            .cpu
            .as_ref()
            .and_then(|c| c.usage_core_nano_seconds.as_ref())
            .map(|v| v.value)
            .unwrap_or(0);
        let mem_ws = s
            .memory
            .as_ref()
            .and_then(|m| m.working_set_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0);
        if (cpu_ns > 0 && mem_ws > 0) || Instant::now() > end {
            c.ok("stats: cpu used", cpu_ns > 0, format!("{cpu_ns} ns"));
            c.ok("stats: memory working set", mem_ws > 0, format!("{mem_ws} bytes"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

async fn scenario_stop(rt: &mut Rt, o: &Opts, pod: &mut Pod, c: &mut Checks) -> Result<()> {
    let polite = start_container(
        rt,
        pod,
        container_config(
            o,
            "polite",
            &[
                "sh",
                "-c",
                "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done",
            ],
        ),
    )
    .await?;
    let deaf = start_container(rt, pod, container_config(o, "deaf", &["sleep", "1000"])).await?;
    let log = pod.config.log_directory.clone() + "/polite.log";
    let end = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("ready") && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t = Instant::now();
    rt.stop_container(StopContainerRequest {
        container_id: polite.clone(),
        timeout: 30,
    })
    .await
    .context("StopContainer polite")?;
    let secs = t.elapsed().as_secs_f64();
    let (s, _) = status(rt, &polite).await?;
    c.eq("TERM handled: exit code", 0, s.exit_code);
    c.ok(
        "TERM handled: stopped before the grace period",
        secs < 25.0,
        format!("{secs:.1}s"),
    );
    c.ok(
        "TERM handled: log",
        std::fs::read_to_string(&log).unwrap_or_default().contains("got-term"),
        "got-term",
    );
    let t = Instant::now();
    rt.stop_container(StopContainerRequest {
        container_id: deaf.clone(),
        timeout: 2,
    })
    .await
    .context("StopContainer deaf")?;
    let secs = t.elapsed().as_secs_f64();
    let (s, _) = status(rt, &deaf).await?;
    c.eq("TERM ignored: killed, exit code", 137, s.exit_code);
    c.ok(
        "TERM ignored: killed after the 2 s grace period",
        secs >= 1.9,
        format!("{secs:.1}s"),
    );
    Ok(())
}

async fn run(o: &Opts) -> Result<usize> {
    let mut rt = connect(&o.socket).await?;
    let v = rt
        .version(VersionRequest { version: "v1".into() })
        .await
        .context("Version")?
        .into_inner();
    println!(
        "ok runtime {} {} (CRI {})",
        v.runtime_name, v.runtime_version, v.runtime_api_version
    );
    let mut c = Checks::default();
    let mut pod = run_pod(&mut rt, o, &format!("{}-pod", o.scenario), &o.handler).await?;
    let res = match o.scenario.as_str() {
        "pod" => scenario_pod(&mut rt, o, &mut pod, &mut c).await,
        "hardened" => scenario_hardened(&mut rt, o, &mut pod, &mut c).await,
        "probes" => scenario_probes(&mut rt, o, &mut pod, &mut c).await,
        "resources" => scenario_resources(&mut rt, o, &mut pod, &mut c).await,
        "stop" => scenario_stop(&mut rt, o, &mut pod, &mut c).await,
        s => Err(anyhow!("unknown scenario {s}")),
    };
    if let Err(e) = &res {
        c.ok(&o.scenario, false, format!("{e:#}"));
    }
    teardown(&mut rt, pod, &mut c).await;
    Ok(c.failed)
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cri-client: {e:#}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cri-client: tokio: {e}");
            std::process::exit(2);
        }
    };
    match rt.block_on(run(&o)) {
        Ok(0) => println!("PASS {}", o.scenario),
        Ok(n) => {
            println!("FAIL {}: {n} check(s) failed", o.scenario);
            std::process::exit(1);
        }
        Err(e) => {
            println!("FAIL {}: {e:#}", o.scenario);
            std::process::exit(1);
        }
    }
}
