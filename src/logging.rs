//! runc-compatible logging: `--log FILE`, `--log-format text|json`, `--debug`.
//!
//! Lines look like runc's (logrus) so that managers which parse the log
//! (containerd reads the `msg` of the last `error` line) see no difference:
//! json: `{"level":"error","msg":"...","time":"2024-01-02T03:04:05Z"}`
//! text: `time="2024-01-02T03:04:05Z" level=error msg="..."`
//!
//! Nothing is opened or formatted unless a line is actually written, so the
//! cheap commands pay nothing for logging.

use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    file: Option<File>,
    json: bool,
    debug: bool,
    /// When husk started (for the --debug timeline); set only with --debug.
    start: Option<std::time::Instant>,
}

thread_local! {
    static LOGGER: RefCell<Logger> = const { RefCell::new(Logger { file: None, json: false, debug: false, start: None }) };
}

/// One step of the container setup, timed and logged with --debug:
/// `step mount /proc (proc): 41µs at +3.2ms`, or `... failed` when it
/// fails. Without --debug it only runs `f`.
pub fn step<T, E>(name: &str, target: impl FnOnce() -> String, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let Some(start) = LOGGER.with(|l| {
        let l = l.borrow();
        if l.debug { l.start } else { None }
    }) else {
        return f();
    };
    let t0 = std::time::Instant::now();
    let r = f();
    log_step(start, name, &target(), t0, r.is_ok());
    r
}

/// Log a step that began at `t0` and has just ended, for a step that
/// cannot run inside [`step`] (a clone: only the parent may log it).
/// Does nothing without --debug.
pub fn step_done(name: &str, target: impl FnOnce() -> String, t0: std::time::Instant, ok: bool) {
    if let Some(start) = LOGGER.with(|l| {
        let l = l.borrow();
        if l.debug { l.start } else { None }
    }) {
        log_step(start, name, &target(), t0, ok);
    }
}

fn log_step(start: std::time::Instant, name: &str, tgt: &str, t0: std::time::Instant, ok: bool) {
    let took = t0.elapsed();
    let at = t0.duration_since(start);
    let sep = if tgt.is_empty() { "" } else { " " };
    let outcome = if ok { "" } else { " failed" };
    log(
        Level::Debug,
        &format!(
            "step {name}{sep}{tgt}{outcome}: {}µs at +{:.3}ms (pid {})",
            took.as_micros(),
            at.as_secs_f64() * 1000.0,
            std::process::id()
        ),
    );
}

/// Configure the logger from the global flags. The log file is opened
/// O_APPEND|O_CLOEXEC: the container never inherits it.
pub fn init(path: Option<&str>, json: bool, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) if !p.is_empty() => Some(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        _ => None,
    };
    LOGGER.with(|l| {
        let mut l = l.borrow_mut();
        l.file = file;
        l.json = json;
        l.debug = debug;
        l.start = if debug { Some(std::time::Instant::now()) } else { None };
    });
    Ok(())
}

/// Whether debug lines are wanted (so callers can skip building them).
pub fn debug_enabled() -> bool {
    LOGGER.with(|l| l.borrow().debug)
}

pub fn log(level: Level, msg: &str) {
    LOGGER.with(|l| {
        let mut l = l.borrow_mut();
        if level == Level::Debug && !l.debug {
            return;
        }
        let line = format_line(level, msg, l.json, &rfc3339_now());
        match l.file.as_mut() {
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                // Without --log, runc writes its log lines to stderr; errors
                // are printed there by the caller already, so only debug and
                // warnings go here.
                if level != Level::Error {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
            }
        }
    });
}

pub fn format_line(level: Level, msg: &str, json: bool, time: &str) -> String {
    if json {
        let mut s = String::with_capacity(msg.len() + 64);
        s.push_str("{\"level\":\"");
        s.push_str(level.as_str());
        s.push_str("\",\"msg\":");
        s.push_str(&serde_json::Value::String(msg.to_string()).to_string());
        s.push_str(",\"time\":\"");
        s.push_str(time);
        s.push_str("\"}\n");
        s
    } else {
        format!(
            "time=\"{}\" level={} msg={}\n",
            time,
            level.as_str(),
            serde_json::Value::String(msg.to_string())
        )
    }
}

/// Current UTC time as RFC 3339 with nanoseconds (Go's RFC3339Nano style).
pub fn rfc3339_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Format seconds since the epoch as RFC 3339 UTC (`2006-01-02T15:04:05.999999999Z`).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    if nanos == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        let mut frac = format!("{nanos:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac}Z")
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // day 1..=31 and month 1..=12 by construction
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::logging::debug_enabled() {
            $crate::logging::log($crate::logging::Level::Debug, &format!($($arg)*));
        }
    };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::logging::log($crate::logging::Level::Warn, &format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000, 120_000_000), "2023-11-14T22:13:20.12Z");
    }

    #[test]
    fn json_line_is_logrus_shaped() {
        let l = format_line(Level::Error, "bad \"x\"", true, "T");
        assert_eq!(l, "{\"level\":\"error\",\"msg\":\"bad \\\"x\\\"\",\"time\":\"T\"}\n");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["msg"], "bad \"x\"");
        let t = format_line(Level::Warn, "w", false, "T");
        assert_eq!(t, "time=\"T\" level=warning msg=\"w\"\n");
    }
}
