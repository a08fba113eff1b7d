//! Commands that work through the container's cgroup: pause, resume, ps,
//! events, update.

use anyhow::{Context, Result, bail};
use oci_spec::runtime::LinuxResources;
use std::io::Write;

use crate::cgroups::Cgroup;
use crate::state::{Container, Status, Store};

fn cgroup_of(c: &Container) -> Result<Cgroup> {
    c.cgroup()
        .cloned()
        .with_context(|| format!("container {:?} has no cgroup recorded", c.state.id))
}

pub fn pause(store: &Store, id: &str) -> Result<()> {
    let c = store.open(id, true)?;
    match c.status() {
        Status::Running | Status::Created => {}
        Status::Paused => bail!("container {id:?} is already paused"),
        s => bail!("cannot pause a {} container", s.as_str()),
    }
    cgroup_of(&c)?.freeze()
}

pub fn resume(store: &Store, id: &str) -> Result<()> {
    let c = store.open(id, true)?;
    if c.status() != Status::Paused {
        bail!("container {id:?} is not paused");
    }
    cgroup_of(&c)?.thaw()
}

/// `husk ps [--format table|json] ID [ps options]`.
pub fn ps(store: &Store, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let c = store.open(id, false)?;
    let pids = cgroup_of(&c)?.pids()?;
    let mut out = std::io::stdout().lock();
    match format {
        "json" => {
            writeln!(out, "{}", serde_json::to_string(&pids)?)?;
            return Ok(());
        }
        "table" => {}
        other => bail!("invalid format option {other:?}: table or json"),
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let o = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !o.status.success() {
        bail!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim());
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    writeln!(out, "{header}")?;
    for line in lines {
        let pid = line.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// `husk events [--stats] [--interval N] ID`: runc's JSON events.
pub fn events(store: &Store, id: &str, stats_once: bool, interval: &str) -> Result<()> {
    let secs = parse_interval(interval)?;
    let c = store.open(id, false)?;
    let cg = cgroup_of(&c)?;
    let stats_event = |cg: &Cgroup| -> Result<String> {
        Ok(serde_json::json!({"type": "stats", "id": id, "data": cg.stats()?}).to_string())
    };
    let mut out = std::io::stdout().lock();
    if stats_once {
        writeln!(out, "{}", stats_event(&cg)?)?;
        return Ok(());
    }
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    loop {
        let now = cg.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            writeln!(out, "{}", serde_json::json!({"type": "oom", "id": id}))?;
            ooms = now;
        }
        if !c.init_alive() {
            return Ok(());
        }
        writeln!(out, "{}", stats_event(&cg)?)?;
        out.flush()?;
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    }
}

fn parse_interval(s: &str) -> Result<f64> {
    let (num, mul) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else {
        (s, 1.0)
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid --interval {s:?} (e.g. 5s)"))?;
    if n <= 0.0 {
        bail!("--interval must be positive");
    }
    Ok(n * mul)
}

/// Sizes as runc's `update` accepts them: bytes, or with k/m/g/t (binary) suffixes; -1 for unlimited.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b').trim_end_matches('i');
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    Ok((n * mul as f64) as i64)
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// A LinuxResources JSON file, or - for stdin.
    #[arg(long, short = 'r')]
    pub resources: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<i64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
}

fn resources_from_flags(a: &UpdateArgs) -> Result<LinuxResources> {
    use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids};
    let mut r = LinuxResources::default();
    if a.memory.is_some() || a.memory_swap.is_some() || a.memory_reservation.is_some() {
        let mut m = LinuxMemory::default();
        m.set_limit(a.memory.as_deref().map(parse_size).transpose()?);
        m.set_swap(a.memory_swap.as_deref().map(parse_size).transpose()?);
        m.set_reservation(a.memory_reservation.as_deref().map(parse_size).transpose()?);
        r.set_memory(Some(m));
    }
    if a.cpu_shares.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpu_burst.is_some()
        || a.cpu_idle.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpu_rt_runtime.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let mut c = LinuxCpu::default();
        c.set_shares(a.cpu_shares);
        c.set_quota(a.cpu_quota);
        c.set_period(a.cpu_period);
        c.set_burst(a.cpu_burst);
        c.set_idle(a.cpu_idle);
        c.set_realtime_period(a.cpu_rt_period);
        c.set_realtime_runtime(a.cpu_rt_runtime);
        c.set_cpus(a.cpuset_cpus.clone());
        c.set_mems(a.cpuset_mems.clone());
        r.set_cpu(Some(c));
    }
    if let Some(p) = a.pids_limit {
        let mut pl = LinuxPids::default();
        pl.set_limit(p);
        r.set_pids(Some(pl));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

pub fn update(store: &Store, id: &str, a: &UpdateArgs) -> Result<()> {
    if a.kernel_memory.is_some() {
        bail!("not supported: --kernel-memory (kernel memory limits are gone from current kernels)");
    }
    let c = store.open(id, true)?;
    if c.status() == Status::Stopped {
        bail!("cannot update a stopped container {id:?}");
    }
    let res = match a.resources.as_deref() {
        Some(src) => {
            let text = if src == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("read resources from stdin")?;
                s
            } else {
                std::fs::read_to_string(src).with_context(|| format!("read {src}"))?
            };
            serde_json::from_str::<LinuxResources>(&text).map_err(|e| anyhow::anyhow!("parse resources {src}: {e}"))?
        }
        None => resources_from_flags(a)?,
    };
    cgroup_of(&c)?.update(&res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("100m").unwrap(), 100 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), 5.0);
        assert_eq!(parse_interval("100ms").unwrap(), 0.1);
        assert!(parse_interval("0").is_err());
    }
}
