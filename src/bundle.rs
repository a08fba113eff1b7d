//! Loading and validating an OCI bundle (config.json + rootfs).
//!
//! Errors name the file and, for JSON syntax errors, the line and column;
//! validation errors name the field (`mounts[3].destination must not contain ".."`).

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Load `<dir>/config.json` and validate it.
pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir)
        .errno()
        .with_context(|| format!("bundle path {}", dir.display()))?;
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .errno()
        .with_context(|| format!("read {}", cfg.display()))?;
    let (spec, ignored) = parse_spec_warning(&text)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("parse {}", cfg.display()))?;
    for w in ignored {
        crate::warn!("{}", w.message);
    }
    let root = spec
        .root()
        .as_ref()
        .context("root.path is required: the config has no \"root\" object")?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("root.path {} is not a directory", rootfs.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("root.path {} does not exist", rootfs.display())
        }
        Err(e) => {
            return Err(e)
                .errno()
                .with_context(|| format!("root.path {}", rootfs.display()));
        }
    }
    let rootfs = std::fs::canonicalize(&rootfs)
        .errno()
        .with_context(|| format!("resolve root.path {}", rootfs.display()))?;
    validate(&spec)?;
    let mut spec = spec;
    for d in deprecations(&spec) {
        crate::warn!("{}", d.message);
    }
    absolute_destinations(&mut spec);
    Ok(Bundle { dir, rootfs, spec })
}

/// Parse config.json text; the error carries line and column. A
/// `linux.resources.pids` object without a `limit` becomes no `pids` at
/// all ([`crate::cgroups::drop_pids_without_limit`]).
pub fn parse(text: &str) -> Result<Spec> {
    parse_spec(text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Why a config (or `exec --process` file) did not parse: the message,
/// the field it is about when known (else empty) and the position (line
/// 0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub message: String,
    pub path: String,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{} (line {}, column {})", self.message, self.line, self.column)
        } else {
            write!(f, "{}", self.message)
        }
    }
}

impl std::error::Error for ParseError {}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> ParseError {
        ParseError {
            message: strip_position(&e.to_string()).to_string(),
            path: String::new(),
            line: e.line(),
            column: e.column(),
        }
    }
}

/// The runtime spec's names of `process.scheduler.flags` and the names the
/// oci-spec crate gives them (it spells two differently).
const SCHED_FLAGS: [(&str, &str); 7] = [
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_RECLAIM", "SCHED_FLAG_RECLAIM"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
    ("SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_POLICY"),
    ("SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_KEEP_PARAMS"),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MIN"),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", "SCHED_FLAG_UTIL_CLAMP_MAX"),
];

/// Put the spec's scheduler flag names of the process object `p` (at
/// `path`) the crate's way; a name the spec does not define is an error
/// naming the field. True when there were flags.
fn sched_flags_to_crate(p: &mut serde_json::Value, path: &str) -> Result<bool, ParseError> {
    let Some(flags) = p.pointer_mut("/scheduler/flags").and_then(|f| f.as_array_mut()) else {
        return Ok(false);
    };
    for (i, f) in flags.iter_mut().enumerate() {
        let Some(name) = f.as_str() else { continue };
        match SCHED_FLAGS.iter().find(|(spec, _)| *spec == name) {
            Some((_, ours)) => *f = serde_json::Value::String((*ours).to_string()),
            None => {
                let known: Vec<&str> = SCHED_FLAGS.iter().map(|(s, _)| *s).collect();
                return Err(ParseError {
                    message: format!(
                        "{path}.scheduler.flags[{i}] {name:?} is not a scheduler flag of the runtime spec (one of {})",
                        known.join(", ")
                    ),
                    path: format!("{path}.scheduler.flags[{i}]"),
                    line: 0,
                    column: 0,
                });
            }
        }
    }
    Ok(true)
}

/// Take out of the process object `p` (at `path`) the capability names
/// husk does not know, one warning each: the runtime spec says such a
/// value MUST be logged as a warning and SHOULD NOT fail the container,
/// and runc and crun ignore it so.
fn drop_unknown_capabilities(p: &mut serde_json::Value, path: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(caps) = p.get_mut("capabilities").and_then(|c| c.as_object_mut()) else {
        return out;
    };
    for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
        let Some(list) = caps.get_mut(set).and_then(|l| l.as_array_mut()) else {
            continue;
        };
        let mut i = 0;
        list.retain(|c| {
            let known = match c.as_str() {
                Some(name) => crate::capabilities::known(name),
                None => true, // not a string: serde's error names it
            };
            if !known {
                out.push(Problem {
                    path: format!("{path}.capabilities.{set}[{i}]"),
                    message: format!(
                        "{path}.capabilities.{set}[{i}] {c}: unknown capability, ignored (as runc and crun ignore it)"
                    ),
                });
            }
            i += 1;
            known
        });
    }
    out
}

/// Deserialize `text` into `T`, the process object at `process_at` (its
/// JSON pointer, "" for the whole document) read with the spec's
/// scheduler flag names and without unknown capabilities (returned as
/// warnings). Errors carry line and column: when nothing was changed the
/// text is read directly; otherwise the error of a failed read is located
/// in the text with the flags' names put the crate's way.
fn parse_with_spec_names<T: serde::de::DeserializeOwned + serde::Serialize>(
    text: &str,
    process_at: &str,
    path: &str,
) -> Result<(T, Vec<Problem>), ParseError> {
    let mut v: serde_json::Value = serde_json::from_str(text)?;
    let (had_flags, warnings) = match v.pointer_mut(process_at) {
        Some(p) => (sched_flags_to_crate(p, path)?, drop_unknown_capabilities(p, path)),
        None => (false, Vec::new()),
    };
    let base = if process_at.is_empty() { path } else { "" };
    if !had_flags && warnings.is_empty() {
        let t = serde_json::from_str::<T>(text)?;
        let warnings = check_unparsed(&v, &t, base)?;
        return Ok((t, warnings));
    }
    let t = serde_json::from_value::<T>(v.clone()).map_err(|e| {
        let mut crate_names = text.to_string();
        for (spec, ours) in SCHED_FLAGS {
            crate_names = crate_names.replace(&format!("\"{spec}\""), &format!("\"{ours}\""));
        }
        match serde_json::from_str::<T>(&crate_names) {
            // (an error about a capability taken out is not the one)
            Err(located) if warnings.is_empty() => ParseError::from(located),
            _ => ParseError::from(e),
        }
    })?;
    let mut warnings = warnings;
    warnings.extend(check_unparsed(&v, &t, base)?);
    Ok((t, warnings))
}

/// Refuse a config with a field of the runtime spec that the parser read
/// as nothing (serde drops what a struct does not name: a newer spec
/// field would be silently ignored); warn about each property the spec
/// does not have, which the spec says runtimes MUST ignore.
fn check_unparsed<T: serde::Serialize>(raw: &serde_json::Value, t: &T, base: &str) -> Result<Vec<Problem>, ParseError> {
    let parsed = serde_json::to_value(t).map_err(|e| ParseError {
        message: format!("internal error: serialize the parsed config: {e}"),
        path: String::new(),
        line: 0,
        column: 0,
    })?;
    let (spec_fields, unknown) = crate::fields::unparsed(raw, &parsed, base);
    if let Some(f) = spec_fields.first() {
        return Err(ParseError {
            message: format!(
                "{f}: a runtime-spec field husk's config parser does not read; refused rather than ignored"
            ),
            path: f.clone(),
            line: 0,
            column: 0,
        });
    }
    Ok(unknown
        .into_iter()
        .map(|f| Problem {
            message: format!("{f}: unknown field (ignored): not in runtime-spec 1.3"),
            path: f,
        })
        .collect())
}

/// Parse config.json text (see [`parse`]), keeping the error's parts.
pub fn parse_spec(text: &str) -> Result<Spec, ParseError> {
    parse_spec_warning(text).map(|(s, _)| s)
}

/// [`parse_spec`], and what was ignored with a warning (unknown capabilities).
pub fn parse_spec_warning(text: &str) -> Result<(Spec, Vec<Problem>), ParseError> {
    let (mut spec, warnings) = parse_with_spec_names::<Spec>(text, "/process", "process")?;
    drop_pids_without_limit(&mut spec, text);
    Ok((spec, warnings))
}

/// A `linux.resources.pids` object without a `limit` becomes no `pids` at
/// all ([`crate::cgroups::drop_pids_without_limit`]); the crate reads it as
/// limit 0, which is a limit.
fn drop_pids_without_limit(spec: &mut Spec, text: &str) {
    if let Some(linux) = spec.linux_mut()
        && let Some(res) = linux.resources_mut()
        && res.pids().is_some()
    {
        #[derive(serde::Deserialize)]
        struct Config {
            linux: Option<Linux>,
        }
        #[derive(serde::Deserialize)]
        struct Linux {
            resources: Option<Resources>,
        }
        #[derive(serde::Deserialize)]
        struct Resources {
            pids: Option<serde_json::Value>,
        }
        // The text parsed as a Spec just now, so it parses again.
        let raw: Option<Config> = serde_json::from_str(text).ok();
        let pids = raw.and_then(|c| c.linux?.resources?.pids);
        crate::cgroups::drop_pids_without_limit(res, pids.as_ref());
    }
}

/// Parse an `exec --process` file: an OCI process object, and what was
/// ignored with a warning.
pub fn parse_process(text: &str) -> Result<(oci_spec::runtime::Process, Vec<Problem>), ParseError> {
    parse_with_spec_names(text, "", "process")
}

fn strip_position(s: &str) -> &str {
    match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => s,
    }
}

/// One problem found in a config: the JSON path of the field it is about
/// (`mounts[2].destination`, empty for the whole config) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// The runtime-spec MUST rules husk relies on, checked before anything is
/// created; the first problem is the error.
pub fn validate(spec: &Spec) -> Result<()> {
    match problems(spec).into_iter().next() {
        Some(p) => bail!("{}", p.message),
        None => Ok(()),
    }
}

/// Every rule violation in the config, in config order.
pub fn problems(spec: &Spec) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut e = |path: String, message: String| out.push(Problem { path, message });
    if !is_semver(spec.version()) {
        e(
            "ociVersion".into(),
            format!(
                "ociVersion {:?} is not a SemVer 2.0.0 version such as \"1.0.2\" or \"1.0.2-dev\" (the runtime spec requires one)",
                spec.version()
            ),
        );
    }
    if let Some(p) = spec.process() {
        match p.args() {
            Some(a) if !a.is_empty() => {}
            _ => e("process.args".into(), "process.args must not be empty".into()),
        }
        if !p.cwd().is_absolute() {
            e(
                "process.cwd".into(),
                format!("process.cwd {:?} must be an absolute path", p.cwd()),
            );
        }
        if let Some(rl) = p.rlimits() {
            let mut seen = HashSet::new();
            for (i, r) in rl.iter().enumerate() {
                if !seen.insert(format!("{:?}", r.typ())) {
                    e(
                        format!("process.rlimits[{i}]"),
                        format!("process.rlimits[{i}]: duplicate rlimit type {:?}", r.typ()),
                    );
                }
                if r.soft() > r.hard() {
                    e(
                        format!("process.rlimits[{i}]"),
                        format!(
                            "process.rlimits[{i}]: soft limit {} exceeds hard limit {}",
                            r.soft(),
                            r.hard()
                        ),
                    );
                }
            }
        }
        for (i, v) in p.env().iter().flatten().enumerate() {
            if !v.contains('=') {
                e(
                    format!("process.env[{i}]"),
                    format!("process.env[{i}] {v:?} must have the form KEY=value"),
                );
            }
        }
        for pr in process_ranges(p) {
            e(pr.path, pr.message);
        }
        // Windows-only fields (the spec): nothing on Linux could apply them.
        if p.command_line().is_some() {
            e(
                "process.commandLine".into(),
                "process.commandLine is a Windows-only field of the runtime spec; on Linux use process.args".into(),
            );
        }
        if p.user().username().is_some() {
            e(
                "process.user.username".into(),
                "process.user.username is a Windows-only field of the runtime spec; on Linux use process.user.uid and gid"
                    .into(),
            );
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination().as_os_str().is_empty() {
            e(
                format!("mounts[{i}].destination"),
                format!("mounts[{i}].destination must not be empty"),
            );
        }
        if m.destination()
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            e(
                format!("mounts[{i}].destination"),
                format!("mounts[{i}].destination {:?} must not contain \"..\"", m.destination()),
            );
        }
        // Id-mapped mounts (runtime-spec 1.1+), with runc 1.5's rules.
        if crate::idmap::of(m).is_some() {
            for p in id_mapped_mount_problems(spec, i, m) {
                e(p.path, p.message);
            }
        }
    }
    let linux = spec.linux().as_ref();
    let mut types = HashSet::new();
    for (i, ns) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !types.insert(ns.typ()) {
            e(
                format!("linux.namespaces[{i}]"),
                format!(
                    "linux.namespaces[{i}]: duplicate namespace type {}",
                    crate::namespaces::config_name(ns.typ())
                ),
            );
        }
        if let Some(p) = ns.path()
            && !p.is_absolute()
        {
            e(
                format!("linux.namespaces[{i}].path"),
                format!("linux.namespaces[{i}].path {p:?} must be absolute"),
            );
        }
    }
    for p in crate::netdev::problems(spec, types.contains(&LinuxNamespaceType::Network)) {
        e(p.path, p.message);
    }
    let new_userns = linux.and_then(|l| l.namespaces().as_ref()).is_some_and(|v| {
        v.iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
    });
    if let Some(l) = linux {
        let has_maps = l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if new_userns {
            if l.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                e(
                    "linux.namespaces".into(),
                    "linux.uidMappings is required with a new user namespace".into(),
                );
            }
            if l.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                e(
                    "linux.namespaces".into(),
                    "linux.gidMappings is required with a new user namespace".into(),
                );
            }
        } else if has_maps && !types.contains(&LinuxNamespaceType::User) {
            e(
                "linux.uidMappings".into(),
                "linux.uidMappings/gidMappings are set but there is no user namespace in linux.namespaces".into(),
            );
        }
        for (i, d) in l.devices().iter().flatten().enumerate() {
            if !d.path().is_absolute() {
                e(
                    format!("linux.devices[{i}].path"),
                    format!("linux.devices[{i}].path {:?} must be absolute", d.path()),
                );
            }
            // A device number is 12 bits of major and 20 of minor (fifos have none).
            if d.typ() != oci_spec::runtime::LinuxDeviceType::P {
                for (field, v, hi) in [("major", d.major(), 4095), ("minor", d.minor(), 1_048_575)] {
                    if let Some(p) = out_of_range(format!("linux.devices[{i}].{field}"), v, 0, hi) {
                        e(p.path, p.message);
                    }
                }
            }
        }
        for (i, r) in l
            .resources()
            .as_ref()
            .and_then(|r| r.devices().as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            for (field, v) in [("major", r.major()), ("minor", r.minor())] {
                if let Some(v) = v.filter(|v| *v != -1 && u32::try_from(*v).is_err()) {
                    let path = format!("linux.resources.devices[{i}].{field}");
                    e(
                        path.clone(),
                        format!("{path} {v} is out of range (-1 for any, or 0 to {})", u32::MAX),
                    );
                }
            }
        }
        for (name, maps) in [("uidMappings", l.uid_mappings()), ("gidMappings", l.gid_mappings())] {
            for (i, m) in maps.iter().flatten().enumerate() {
                for p in id_mapping_problems(&format!("linux.{name}[{i}]"), m) {
                    e(p.path, p.message);
                }
            }
        }
        let mut clocks: Vec<_> = l.time_offsets().iter().flatten().collect();
        clocks.sort_by(|a, b| a.0.cmp(b.0));
        for (clock, off) in clocks {
            if clock != "monotonic" && clock != "boottime" {
                e(
                    format!("linux.timeOffsets.{clock}"),
                    format!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)"),
                );
            }
            if let Some(p) = out_of_range(
                format!("linux.timeOffsets.{clock}.nanosecs"),
                off.nanosecs().unwrap_or(0),
                0,
                999_999_999,
            ) {
                e(p.path, p.message);
            }
        }
        let mut keys: Vec<&String> = l.sysctl().iter().flat_map(|m| m.keys()).collect();
        keys.sort();
        for k in keys {
            if let Err(err) = validate_sysctl(k, &types) {
                e(format!("linux.sysctl.{k}"), err.to_string());
            }
        }
        // The UTS names have fields of their own. runc and crun refuse
        // kernel.hostname always; crun refuses a kernel.domainname that
        // differs from domainname.
        let mut entries: Vec<(&String, &String)> = l.sysctl().iter().flatten().collect();
        entries.sort();
        for (k, v) in entries {
            match sysctl_dotted(k).as_str() {
                "kernel.hostname" => e(
                    format!("linux.sysctl.{k}"),
                    format!("linux.sysctl {k:?} conflicts with the hostname field: set hostname instead"),
                ),
                "kernel.domainname" => {
                    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty() && *d != v) {
                        e(
                            format!("linux.sysctl.{k}"),
                            format!(
                                "linux.sysctl {k:?} {v:?} conflicts with the domainname field {d:?}: set only domainname"
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        if let Some(p) = l.rootfs_propagation()
            && !p.is_empty()
            && crate::mount_options::propagation_flag(p).is_none()
        {
            e(
                "linux.rootfsPropagation".into(),
                format!("linux.rootfsPropagation {p:?} is not a valid propagation mode"),
            );
        }
    }
    let has_uts = types.contains(&LinuxNamespaceType::Uts);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has_uts {
        e(
            "hostname".into(),
            "hostname is set but the config has no uts namespace: cannot set the hostname without a private UTS namespace".into(),
        );
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has_uts {
        e(
            "domainname".into(),
            "domainname is set but the config has no uts namespace".into(),
        );
    }
    out
}

/// What the spec allows but deprecates: a warning at create and in
/// `husk check`.
pub fn deprecations(spec: &Spec) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let d = m.destination();
        if !d.as_os_str().is_empty() && !d.is_absolute() {
            out.push(Problem {
                path: format!("mounts[{i}].destination"),
                message: format!(
                    "mounts[{i}].destination {d:?} is relative: taken as relative to \"/\" (deprecated by the runtime spec; runc and crun take it so too)"
                ),
            });
        }
    }
    out
}

/// Relative mount destinations made absolute (relative to "/", as the
/// spec says and runc and crun do), so that the rest of husk sees only
/// absolute ones.
fn absolute_destinations(spec: &mut Spec) {
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            if !m.destination().is_absolute() {
                let abs = Path::new("/").join(m.destination());
                m.set_destination(abs);
            }
        }
    }
}

/// A SemVer 2.0.0 version: MAJOR.MINOR.PATCH, numbers without leading
/// zeros, then an optional `-pre.release` (dot-separated identifiers of
/// [0-9A-Za-z-], numeric ones without leading zeros) and `+build` part.
pub fn is_semver(v: &str) -> bool {
    let ident = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| number(p))
        && pre.is_none_or(|p| {
            p.split('.')
                .all(|i| ident(i) && (!i.bytes().all(|b| b.is_ascii_digit()) || number(i)))
        })
        && build.is_none_or(|b| b.split('.').all(ident))
}

/// A problem when `v` is outside `lo..=hi`: it names the field and the range.
fn out_of_range<T: PartialOrd + std::fmt::Display>(path: String, v: T, lo: T, hi: T) -> Option<Problem> {
    (v < lo || v > hi).then(|| Problem {
        message: format!("{path} {v} is out of range ({lo} to {hi})"),
        path,
    })
}

/// Numbers of a process that must fit what the kernel takes: checked for
/// config.json's process and for `exec`'s.
pub fn process_ranges(p: &oci_spec::runtime::Process) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(sz) = p.console_size() {
        // The kernel's winsize has 16-bit sides.
        for (side, v) in [("height", sz.height()), ("width", sz.width())] {
            out.extend(out_of_range(
                format!("process.consoleSize.{side}"),
                v,
                0,
                u64::from(u16::MAX),
            ));
        }
    }
    if let Some(v) = p.oom_score_adj() {
        out.extend(out_of_range("process.oomScoreAdj".into(), v, -1000, 1000));
    }
    if let Some(v) = p.user().umask()
        && v > 0o777
    {
        out.push(Problem {
            path: "process.user.umask".into(),
            message: format!("process.user.umask {v} is out of range (0 to 511, which is octal 0777)"),
        });
    }
    if let Some(s) = p.scheduler() {
        if let Some(v) = *s.nice() {
            out.extend(out_of_range("process.scheduler.nice".into(), v, -20, 19));
        }
        if let Some(v) = *s.priority() {
            out.extend(out_of_range("process.scheduler.priority".into(), v, 0, 99));
        }
    }
    out
}

/// The rules of an id-mapped mount `mounts[i]`: uidMappings and
/// gidMappings together (the spec's MUST), not empty (runc), each mapping
/// valid; a bind mount (runc supports no other); without mappings of its
/// own, a user namespace in linux.namespaces whose mapping it takes (the
/// spec's MUST: an error otherwise).
fn id_mapped_mount_problems(spec: &Spec, i: usize, m: &oci_spec::runtime::Mount) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut e = |path: String, message: String| out.push(Problem { path, message });
    let field = crate::idmap::field(i, m);
    match (m.uid_mappings(), m.gid_mappings()) {
        (Some(_), None) => e(
            format!("mounts[{i}].gidMappings"),
            format!("mounts[{i}].gidMappings is required with mounts[{i}].uidMappings"),
        ),
        (None, Some(_)) => e(
            format!("mounts[{i}].uidMappings"),
            format!("mounts[{i}].uidMappings is required with mounts[{i}].gidMappings"),
        ),
        _ => {}
    }
    for (name, maps) in [("uidMappings", m.uid_mappings()), ("gidMappings", m.gid_mappings())] {
        let Some(maps) = maps else { continue };
        if maps.is_empty() {
            e(
                format!("mounts[{i}].{name}"),
                format!("mounts[{i}].{name} must not be empty (an id-mapped mount needs a mapping)"),
            );
        }
        for (j, x) in maps.iter().enumerate() {
            for p in id_mapping_problems(&format!("mounts[{i}].{name}[{j}]"), x) {
                e(p.path, p.message);
            }
        }
    }
    if !crate::mount_options::parse_options(m.options().as_deref().unwrap_or(&[])).bind {
        e(
            field.clone(),
            format!(
                "{field}: id-mapped mounts are only supported for bind mounts (as in runc), and this is a mount of type {:?} without bind or rbind",
                m.typ().as_deref().unwrap_or("")
            ),
        );
    }
    let has_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|v| v.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    if m.uid_mappings().is_none() && m.gid_mappings().is_none() && !has_userns {
        e(
            field.clone(),
            format!(
                "{field}: an id-mapped mount without mounts[{i}].uidMappings and gidMappings takes the container's user namespace mapping, but linux.namespaces has no user namespace"
            ),
        );
    }
    out
}

/// One uid/gid mapping: the kernel wants at least one id, and neither range
/// may reach 4294967295 (no valid id).
fn id_mapping_problems(path: &str, m: &oci_spec::runtime::LinuxIdMapping) -> Vec<Problem> {
    let last = u32::MAX - 1;
    let mut out = Vec::new();
    for (field, v) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
        out.extend(out_of_range(format!("{path}.{field}"), v, 0, last));
    }
    if out.is_empty() {
        let most = u32::MAX - m.container_id().max(m.host_id());
        out.extend(out_of_range(format!("{path}.size"), m.size(), 1, most).map(|mut p| {
            p.message.push_str(&format!(
                ": the ids mapped from containerID {} and from hostID {} must end below {}",
                m.container_id(),
                m.host_id(),
                u32::MAX
            ));
            p
        }));
    }
    out
}

/// A sysctl name in its dotted form. Like runc (and sysctl(8)), a name
/// whose first separator is `/` is the path form (`net/ipv4/ip_forward`):
/// its `.` and `/` are swapped (`eth0.100` in a path is `eth0/100` dotted).
pub fn sysctl_dotted(key: &str) -> String {
    if key.find(['.', '/']).is_some_and(|i| key.as_bytes()[i] == b'/') {
        sysctl_swap(key)
    } else {
        key.to_string()
    }
}

/// `.` and `/` swapped: the dotted form ↔ the path under /proc/sys.
pub fn sysctl_swap(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect()
}

fn validate_sysctl(original: &str, types: &HashSet<LinuxNamespaceType>) -> Result<()> {
    if original.contains("..") || original.starts_with(['/', '.']) || original.is_empty() {
        bail!("linux.sysctl key {original:?} is not a valid sysctl name");
    }
    let dotted = sysctl_dotted(original);
    let key = dotted.as_str();
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        if !types.contains(&LinuxNamespaceType::Ipc) {
            bail!("linux.sysctl {original:?} needs an ipc namespace in linux.namespaces");
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if !types.contains(&LinuxNamespaceType::Network) {
            bail!("linux.sysctl {original:?} needs a network namespace in linux.namespaces");
        }
        return Ok(());
    }
    if key == "kernel.hostname" {
        // refused in `problems`, naming the hostname field
        return Ok(());
    }
    if key == "kernel.domainname" {
        if !types.contains(&LinuxNamespaceType::Uts) {
            bail!("linux.sysctl {original:?} needs a uts namespace in linux.namespaces");
        }
        return Ok(());
    }
    bail!("linux.sysctl {original:?} is not namespaced: a container may not set it")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<()> {
        let spec = parse(&v.to_string())?;
        validate(&spec)
    }

    #[test]
    fn accepts_a_minimal_config() {
        check(base()).unwrap();
    }

    #[test]
    fn pids_without_a_limit_is_no_pids_setting_and_zero_is_a_limit() {
        let pids = |p: serde_json::Value| {
            let mut v = base();
            v["linux"]["resources"] = serde_json::json!({"pids": p});
            let spec = parse(&v.to_string()).unwrap();
            spec.linux()
                .as_ref()
                .unwrap()
                .resources()
                .as_ref()
                .unwrap()
                .pids()
                .map(|p| p.limit())
        };
        assert_eq!(pids(serde_json::json!({})), None);
        assert_eq!(pids(serde_json::json!({"limit": 0})), Some(0));
        assert_eq!(pids(serde_json::json!({"limit": -1})), Some(-1));
        assert_eq!(pids(serde_json::json!({"limit": 7})), Some(7));
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let e = parse("{\n  \"ociVersion\": \"1\",\n  oops\n}").unwrap_err();
        assert!(e.to_string().contains("line 3, column 3"), "{e}");
    }

    #[test]
    fn rejects_empty_args() {
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert_eq!(check(v).unwrap_err().to_string(), "process.args must not be empty");
    }

    /// Relative destinations: deprecated, relative to "/" (the spec; runc
    /// and crun take them so).
    #[test]
    fn relative_mount_destination_is_deprecated() {
        let mut v = base();
        v["mounts"] = serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}
        ]);
        let spec = parse(&v.to_string()).unwrap();
        validate(&spec).unwrap();
        let d = deprecations(&spec);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "mounts[1].destination");
        let mut spec = spec;
        absolute_destinations(&mut spec);
        assert_eq!(spec.mounts().as_ref().unwrap()[1].destination(), Path::new("/tmp"));
        v["mounts"][1]["destination"] = serde_json::json!("");
        assert_eq!(
            check(v).unwrap_err().to_string(),
            "mounts[1].destination must not be empty"
        );
    }

    #[test]
    fn rejects_dotdot_in_mount_destination() {
        let mut v = base();
        v["mounts"] = serde_json::json!([{"destination": "/a/../../etc", "type": "tmpfs"}]);
        assert!(check(v).unwrap_err().to_string().contains("must not contain"));
    }

    #[test]
    fn rejects_duplicate_namespaces() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(
            check(v)
                .unwrap_err()
                .to_string()
                .contains("duplicate namespace type pid")
        );
    }

    #[test]
    fn rejects_unknown_namespace_type() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "bogus"}]);
        assert!(check(v).unwrap_err().to_string().contains("bogus"));
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]);
        let e = check(v).unwrap_err().to_string();
        assert!(e.contains("uidMappings is required"), "{e}");
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = base();
        v["hostname"] = serde_json::json!("box");
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        assert!(check(v).unwrap_err().to_string().contains("uts namespace"));
    }

    /// The spec: an unknown capability is a warning, not a failure.
    #[test]
    fn unknown_capability_is_ignored_with_a_warning() {
        let mut v = base();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_KILL", "CAP_NOPE"], "ambient": ["CAP_X"]});
        let (spec, w) = parse_spec_warning(&v.to_string()).unwrap();
        let caps = spec.process().as_ref().unwrap().capabilities().clone().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        let paths: Vec<&str> = w.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["process.capabilities.bounding[1]", "process.capabilities.ambient[0]"]
        );
        // a value of the wrong type is still an error
        v["process"]["capabilities"] = serde_json::json!({"bounding": [5]});
        assert!(parse(&v.to_string()).is_err());
    }

    #[test]
    fn numbers_must_fit_where_they_go() {
        let err = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = base();
            edit(&mut v);
            check(v).err().map(|e| e.to_string())
        };
        assert_eq!(
            err(&|v| v["process"]["consoleSize"] = serde_json::json!({"height": 65536, "width": 80})).as_deref(),
            Some("process.consoleSize.height 65536 is out of range (0 to 65535)")
        );
        assert_eq!(
            err(&|v| v["process"]["consoleSize"] = serde_json::json!({"height": 65535, "width": 0})),
            None
        );
        assert_eq!(
            err(&|v| v["process"]["oomScoreAdj"] = serde_json::json!(-1001)).as_deref(),
            Some("process.oomScoreAdj -1001 is out of range (-1000 to 1000)")
        );
        assert_eq!(err(&|v| v["process"]["user"]["umask"] = serde_json::json!(0o777)), None);
        assert_eq!(
            err(&|v| v["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_OTHER", "nice": 20})).as_deref(),
            Some("process.scheduler.nice 20 is out of range (-20 to 19)")
        );
        assert_eq!(
            err(&|v| v["linux"]["devices"] =
                serde_json::json!([{"path": "/dev/x", "type": "b", "major": -1, "minor": 0}]))
            .as_deref(),
            Some("linux.devices[0].major -1 is out of range (0 to 4095)")
        );
        // A fifo has no device number to check.
        assert_eq!(
            err(&|v| v["linux"]["devices"] =
                serde_json::json!([{"path": "/dev/f", "type": "p", "major": -5, "minor": -5}])),
            None
        );
        assert_eq!(
            err(&|v| v["linux"]["resources"] =
                serde_json::json!({"devices": [{"allow": false, "major": -1, "minor": -1}]})),
            None
        );
    }

    #[test]
    fn id_mappings_stay_below_the_invalid_id() {
        let map = |c: u32, h: u32, n: u32| {
            let m: oci_spec::runtime::LinuxIdMapping =
                serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": n})).unwrap();
            id_mapping_problems("linux.uidMappings[0]", &m)
                .into_iter()
                .map(|p| p.message)
                .collect::<Vec<_>>()
        };
        assert!(map(0, 0, u32::MAX).is_empty());
        assert!(map(u32::MAX - 1, 0, 1).is_empty());
        assert_eq!(
            map(0, 100_000, 0),
            [
                "linux.uidMappings[0].size 0 is out of range (1 to 4294867295): the ids mapped from containerID 0 and from hostID 100000 must end below 4294967295"
            ]
        );
        assert_eq!(
            map(u32::MAX, 0, 1),
            ["linux.uidMappings[0].containerID 4294967295 is out of range (0 to 4294967294)"]
        );
    }

    #[test]
    fn sysctl_rules() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(check(v.clone()).unwrap_err().to_string().contains("network namespace"));
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(check(v.clone()).unwrap_err().to_string().contains("not namespaced"));
        // The UTS names: kernel.hostname never (runc, crun), with or
        // without hostname; kernel.domainname unless it differs from domainname.
        v["linux"]["sysctl"] = serde_json::json!({"kernel.hostname": "a"});
        assert_eq!(
            check(v.clone()).unwrap_err().to_string(),
            "linux.sysctl \"kernel.hostname\" conflicts with the hostname field: set hostname instead"
        );
        v["linux"]["sysctl"] = serde_json::json!({"kernel.domainname": "a"});
        check(v.clone()).unwrap();
        v["domainname"] = serde_json::json!("a");
        check(v.clone()).unwrap();
        v["domainname"] = serde_json::json!("b");
        assert_eq!(
            check(v.clone()).unwrap_err().to_string(),
            "linux.sysctl \"kernel.domainname\" \"a\" conflicts with the domainname field \"b\": set only domainname"
        );
        // runc's path form: the first separator is a slash
        assert_eq!(
            sysctl_dotted("net/ipv4/conf/eth0.100/forwarding"),
            "net.ipv4.conf.eth0/100.forwarding"
        );
        assert_eq!(sysctl_dotted("net.ipv4.ip_forward"), "net.ipv4.ip_forward");
        assert_eq!(
            sysctl_swap("net.ipv4.conf.eth0/100.forwarding"),
            "net/ipv4/conf/eth0.100/forwarding"
        );
        v["linux"]["sysctl"] = serde_json::json!({"kernel/hostname": "a"});
        assert!(check(v.clone()).unwrap_err().to_string().contains("hostname field"));
        v["linux"]["sysctl"] = serde_json::json!({"kernel/domainname": "a"});
        assert!(check(v.clone()).unwrap_err().to_string().contains("domainname field"));
        v["linux"]["sysctl"] = serde_json::json!({"vm/swappiness": "1"});
        assert!(check(v.clone()).unwrap_err().to_string().contains("not namespaced"));
        v["linux"]["sysctl"] = serde_json::json!({"kernel.domainname": "a"});
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        v["domainname"] = serde_json::json!("");
        assert!(check(v).unwrap_err().to_string().contains("needs a uts namespace"));
    }

    #[test]
    fn oci_version_must_be_semver() {
        for ok in [
            "1.0.2",
            "1.0.2-dev",
            "1.2.0",
            "1.0.0-rc.1+build.5",
            "10.20.30",
            "1.0.0-x-y.0a",
        ] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "invalid",
            "",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "v1.0.0",
            "1.0.0-a..b",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
        let mut v = base();
        v["ociVersion"] = serde_json::json!("invalid");
        assert_eq!(
            check(v).unwrap_err().to_string(),
            "ociVersion \"invalid\" is not a SemVer 2.0.0 version such as \"1.0.2\" or \"1.0.2-dev\" (the runtime spec requires one)"
        );
    }

    /// The spec's names, which the oci-spec crate spells differently for
    /// two flags; the crate's own spellings are not the spec's.
    #[test]
    fn scheduler_flags_by_the_specs_names() {
        use oci_spec::runtime::LinuxSchedulerFlag as F;
        let mut v = base();
        let names: Vec<&str> = SCHED_FLAGS.iter().map(|(s, _)| *s).collect();
        v["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_OTHER", "flags": names});
        let spec = parse(&v.to_string()).unwrap();
        let flags = spec
            .process()
            .as_ref()
            .unwrap()
            .scheduler()
            .as_ref()
            .unwrap()
            .flags()
            .clone();
        assert_eq!(
            flags.unwrap(),
            [
                F::SchedResetOnFork,
                F::SchedFlagReclaim,
                F::SchedFlagDLOverrun,
                F::SchedFlagKeepPolicy,
                F::SchedFlagKeepParams,
                F::SchedFlagUtilClampMin,
                F::SchedFlagUtilClampMax
            ]
        );
        for bad in ["SCHED_RESET_ON_FORK", "SCHED_FLAG_D_L_OVERRUN", "SCHED_FLAG_NOPE"] {
            v["process"]["scheduler"]["flags"] = serde_json::json!(["SCHED_FLAG_RECLAIM", bad]);
            let e = parse_spec(&v.to_string()).unwrap_err();
            assert_eq!(e.path, "process.scheduler.flags[1]");
            assert!(
                e.message.starts_with(&format!(
                    "process.scheduler.flags[1] {bad:?} is not a scheduler flag of the runtime spec (one of SCHED_FLAG_RESET_ON_FORK, "
                )),
                "{e}"
            );
        }
        // Another mistake in a config with flags is still located.
        let text = "{\"ociVersion\": \"1.0.2\",\n \"process\": {\"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0},\n  \"scheduler\": {\"policy\": \"SCHED_OTHER\", \"flags\": [\"SCHED_FLAG_RESET_ON_FORK\"]},\n  \"terminal\": 5}}";
        let e = parse_spec(text).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("invalid type"), "{e}");
        // An exec --process file
        let (p, _) = parse_process(r#"{"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}, "scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_DL_OVERRUN"]}}"#).unwrap();
        assert_eq!(
            p.scheduler().as_ref().unwrap().flags().clone().unwrap(),
            [F::SchedFlagDLOverrun]
        );
    }
}
