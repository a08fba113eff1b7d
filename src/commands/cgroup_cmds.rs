//! Commands that work through the container's cgroup: pause, resume, ps,
//! events, update.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::LinuxResources;
use std::io::Write;

use crate::cgroups::Cgroup;
use crate::cli::{Format, UpdateArgs};
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
pub fn ps(store: &Store, id: &str, format: Format, ps_args: &[String]) -> Result<()> {
    let c = store.open(id, false)?;
    let pids = cgroup_of(&c)?.pids()?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            writeln!(out, "{}", serde_json::to_string(&pids)?)?;
            return Ok(());
        }
        Format::Table => {}
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let o = std::process::Command::new("ps")
        .args(&args)
        .output()
        .errno()
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
    let every = parse_interval(interval)?;
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
        std::thread::sleep(every);
    }
}

/// The longest `--interval`: Go's time.Duration (runc's flag type) holds at
/// most i64::MAX nanoseconds.
const MAX_INTERVAL: &str = "2562047h47m16.854775807s";

/// `--interval` as runc reads it: a Go duration (`5s`, `100ms`, `1m30s`,
/// `1.5h`; units ns, us, µs, ms, s, m, h), greater than zero and at most
/// Go's longest duration.
fn parse_interval(orig: &str) -> Result<std::time::Duration> {
    let bad = |why: &str| {
        anyhow!(
            "invalid --interval {orig:?}: {why}; expected a duration such as 5s, 100ms or 1m30s (units ns, us, ms, s, m, h)"
        )
    };
    let range = || anyhow!("--interval {orig:?} is out of range (1ns to {MAX_INTERVAL})");
    let (neg, mut s) = match orig.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, orig.strip_prefix('+').unwrap_or(orig)),
    };
    if s == "0" {
        return Err(range());
    }
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let max = u128::from(i64::MAX.unsigned_abs());
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (int, rest) = s.split_at(int_len);
        let (frac, rest) = match rest.strip_prefix('.') {
            Some(r) => r.split_at(r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len())),
            None => ("", rest),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad("not a number"));
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        let per: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("a number needs a unit")),
            other => return Err(bad(&format!("unknown unit {other:?}"))),
        };
        // Digits past what any duration can hold only say "too long".
        let whole: u128 = if int.len() > 30 {
            return Err(range());
        } else {
            int.parse().unwrap_or(0)
        };
        // The fraction, truncated to nanoseconds like Go: 18 digits are plenty.
        let frac = &frac[..frac.len().min(18)];
        let part: u128 = frac.parse().unwrap_or(0);
        let scale = 10u128.pow(u32::try_from(frac.len()).unwrap_or(18));
        total = whole
            .checked_mul(per)
            .and_then(|w| w.checked_add(part * per / scale))
            .and_then(|v| total.checked_add(v))
            .filter(|t| *t <= max)
            .ok_or_else(range)?;
        s = rest;
    }
    if neg || total == 0 {
        return Err(range());
    }
    let nanos = u64::try_from(total).map_err(|_| range())?;
    Ok(std::time::Duration::from_nanos(nanos))
}

/// Sizes as runc's `update` reads them (go-units' RAMInBytes): bytes, or a
/// number (a fraction is allowed) with a k, m, g, t or p suffix (binary
/// units; an i and a b may follow, any case: `512m`, `1.5GiB`), or -1 for
/// unlimited. `flag` names the option in errors. The result must fit in
/// an i64 (at most 8191p and a bit).
pub fn parse_size(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let bad = || {
        anyhow!(
            "invalid {flag} {s:?}: expected bytes, or a size like 512k, 100m or 1.5g (k, m, g, t, p), or -1 for unlimited"
        )
    };
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, c @ ('k' | 'm' | 'g' | 't' | 'p'))) => {
            let shift = match c {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => 50,
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !(frac.is_empty() || digits(frac)) || num.ends_with('.') {
        return Err(bad());
    }
    let range = || anyhow!("{flag} {s:?} is out of range (0 to {} bytes, or -1)", i64::MAX);
    let mul = 1u128 << shift;
    let whole: u128 = if int.len() > 30 {
        return Err(range());
    } else {
        int.parse().map_err(|_| bad())?
    };
    // A fraction counts down to the byte, truncated like go-units does.
    let frac = &frac[..frac.len().min(18)];
    let part: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    let scale = 10u128.pow(u32::try_from(frac.len()).map_err(|_| bad())?);
    let bytes = whole
        .checked_mul(mul)
        .and_then(|w| w.checked_add(part * mul / scale))
        .ok_or_else(range)?;
    i64::try_from(bytes).map_err(|_| range())
}

fn resources_from_flags(a: &UpdateArgs) -> Result<LinuxResources> {
    use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids};
    let mut r = LinuxResources::default();
    if a.memory.is_some()
        || a.memory_swap.is_some()
        || a.memory_reservation.is_some()
        || a.kernel_memory.is_some()
        || a.kernel_memory_tcp.is_some()
    {
        let mut m = LinuxMemory::default();
        let size = |flag: &str, v: &Option<String>| v.as_deref().map(|s| parse_size(flag, s)).transpose();
        m.set_limit(size("--memory", &a.memory)?);
        m.set_swap(size("--memory-swap", &a.memory_swap)?);
        m.set_reservation(size("--memory-reservation", &a.memory_reservation)?);
        // Applied where the kernel still has kernel memory limits, refused
        // naming the field elsewhere (runc 1.5 only warns and drops them).
        #[allow(deprecated)]
        m.set_kernel(size("--kernel-memory", &a.kernel_memory)?);
        m.set_kernel_tcp(size("--kernel-memory-tcp", &a.kernel_memory_tcp)?);
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
    let c = store.open(id, true)?;
    if c.status() == Status::Stopped {
        bail!("cannot update a stopped container {id:?}");
    }
    let res = match a.resources.as_deref() {
        Some(src) => {
            let text = if src == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .errno()
                    .context("read resources from stdin")?;
                s
            } else {
                std::fs::read_to_string(src)
                    .errno()
                    .with_context(|| format!("read {src}"))?
            };
            let mut r = serde_json::from_str::<LinuxResources>(&text)
                .map_err(|e| anyhow::anyhow!("parse resources {src}: {e}"))?;
            let raw: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            crate::cgroups::drop_pids_without_limit(&mut r, raw.get("pids"));
            r
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
        let size = |s: &str| parse_size("--memory", s);
        assert_eq!(size("1024").unwrap(), 1024);
        assert_eq!(size("100m").unwrap(), 100 << 20);
        assert_eq!(size("1G").unwrap(), 1 << 30);
        assert_eq!(size("512KiB").unwrap(), 512 << 10);
        assert_eq!(size("1.5g").unwrap(), 3 << 29);
        assert_eq!(size("2 MB").unwrap(), 2 << 20);
        assert_eq!(size("8191p").unwrap(), 8191 << 50);
        assert_eq!(size("0").unwrap(), 0);
        assert_eq!(size("-1").unwrap(), -1);
        assert_eq!(size("9223372036854775807").unwrap(), i64::MAX);
    }

    #[test]
    fn sizes_that_are_not_sizes_or_do_not_fit_are_errors() {
        for bad in [
            "lots", "inf", "nan", "1e30", "-5", "-1m", "", "m", "1.", ".5m", "1.2.3", "0x10", "5x",
        ] {
            let e = parse_size("--memory", bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid --memory {bad:?}: expected bytes")),
                "{bad:?}: {e}"
            );
        }
        for big in [
            "8192p",
            "9223372036854775808",
            "99999999999999999999999999999999999t",
            "16777216t",
        ] {
            let e = parse_size("--memory-swap", big).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("--memory-swap {big:?} is out of range (0 to 9223372036854775807 bytes, or -1)")
            );
        }
    }

    #[test]
    fn intervals_are_go_durations() {
        use std::time::Duration;
        let ok = |s: &str| parse_interval(s).unwrap();
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("100ms"), Duration::from_millis(100));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("+2us"), Duration::from_micros(2));
        assert_eq!(ok("3\u{b5}s"), Duration::from_micros(3));
        assert_eq!(ok("1ns"), Duration::from_nanos(1));
        assert_eq!(ok(MAX_INTERVAL), Duration::from_nanos(i64::MAX as u64));
    }

    #[test]
    fn intervals_out_of_range_or_malformed_are_errors_naming_the_flag() {
        let range = |s: &str| format!("--interval {s:?} is out of range (1ns to 2562047h47m16.854775807s)");
        for s in [
            "0",
            "-1s",
            "-0",
            "0s",
            "0.1ns",
            "2562047h47m16.854775808s",
            "3000000h",
            "99999999999999999999999999999999999s",
        ] {
            assert_eq!(parse_interval(s).unwrap_err().to_string(), range(s), "{s:?}");
        }
        for (s, why) in [
            ("inf", "not a number"),
            ("nan", "not a number"),
            ("", "empty"),
            ("-1", "a number needs a unit"),
            ("5", "a number needs a unit"),
            ("1e30", "unknown unit \"e\""),
            ("5 s", "unknown unit \" s\""),
            ("5sec", "unknown unit \"sec\""),
            ("5s.", "not a number"),
        ] {
            let e = parse_interval(s).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid --interval {s:?}: {why}; expected a duration")),
                "{s:?}: {e}"
            );
        }
    }
}
