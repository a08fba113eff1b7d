//! `husk check [--bundle DIR] [--json]`: validate a bundle without creating
//! anything and report every problem at once, each with where it is
//! (config.json line:column and the field path), what is wrong, and what
//! would fix it. Exit status: 0 clean, 1 errors, 2 only warnings.

use anyhow::Result;
use serde_json::Value;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub severity: &'static str,
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

/// Line and column (1-based) of every value in a JSON text, by path
/// (`process.args[0]`, `mounts[2].options[1]`; "" is the whole document).
pub fn json_positions(text: &str) -> HashMap<String, (usize, usize)> {
    let b = text.as_bytes();
    let mut out = HashMap::new();
    let mut i = 0;
    let (mut line, mut col) = (1usize, 1usize);
    // Stack of containers: (is_array, next index, path of the container).
    let mut stack: Vec<(bool, usize, String)> = Vec::new();
    let mut pending_key: Option<String> = None;
    let advance = |c: u8, line: &mut usize, col: &mut usize| {
        if c == b'\n' {
            *line += 1;
            *col = 1;
        } else if c & 0xC0 != 0x80 {
            *col += 1;
        }
    };
    let child_path = |stack: &mut Vec<(bool, usize, String)>, key: &mut Option<String>| -> String {
        match stack.last_mut() {
            None => String::new(),
            Some((true, n, p)) => {
                let s = format!("{p}[{n}]");
                *n += 1;
                s
            }
            Some((false, _, p)) => {
                let k = key.take().unwrap_or_default();
                if p.is_empty() { k } else { format!("{p}.{k}") }
            }
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | b',' | b':' => {
                advance(c, &mut line, &mut col);
                i += 1;
            }
            b'{' | b'[' => {
                let path = child_path(&mut stack, &mut pending_key);
                out.insert(path.clone(), (line, col));
                stack.push((c == b'[', 0, path));
                advance(c, &mut line, &mut col);
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                advance(c, &mut line, &mut col);
                i += 1;
            }
            b'"' => {
                let (l0, c0) = (line, col);
                let start = i + 1;
                advance(c, &mut line, &mut col);
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        advance(b[i], &mut line, &mut col);
                        i += 1;
                    }
                    advance(b[i], &mut line, &mut col);
                    i += 1;
                }
                let s = String::from_utf8_lossy(&b[start..i.min(b.len())]).into_owned();
                advance(b'"', &mut line, &mut col);
                i += 1;
                // A string in an object with no key pending is a key.
                let is_key = matches!(stack.last(), Some((false, _, _))) && pending_key.is_none();
                if is_key {
                    pending_key = Some(s);
                } else {
                    let path = child_path(&mut stack, &mut pending_key);
                    out.insert(path, (l0, c0));
                }
            }
            _ => {
                // number, true, false, null
                let path = child_path(&mut stack, &mut pending_key);
                out.insert(path, (line, col));
                while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                    advance(b[i], &mut line, &mut col);
                    i += 1;
                }
            }
        }
    }
    out
}

fn hint(message: &str) -> &'static str {
    if message.contains("must be absolute") || message.contains("is relative") {
        "start the path with /"
    } else if message.contains("executable file not found") {
        "put the program in the rootfs, or fix process.args[0] or the PATH in process.env"
    } else if message.contains("is missing from the container") {
        "copy the interpreter (and the libraries it loads) into the rootfs, or use a static binary"
    } else if message.contains("uidMappings is required") || message.contains("gidMappings is required") {
        "add linux.uidMappings and linux.gidMappings, e.g. [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}]"
    } else if message.contains("no uts namespace") {
        "add {\"type\": \"uts\"} to linux.namespaces, or remove the hostname"
    } else if message.contains("does not exist") {
        "create it, or fix the path"
    } else if message.contains("unknown capability") {
        "remove it, or check its spelling against capabilities(7)"
    } else if message.contains("unknown field") {
        "check the spelling against the runtime spec; unknown fields are ignored"
    } else {
        ""
    }
}

pub fn check_bundle(dir: &Path) -> Vec<Finding> {
    let mut f: Vec<Finding> = Vec::new();
    let cfg = dir.join("config.json");
    let text = match std::fs::read_to_string(&cfg) {
        Ok(t) => t,
        Err(e) => {
            f.push(Finding {
                severity: "error",
                path: String::new(),
                line: 0,
                column: 0,
                message: format!("read {}: {}", cfg.display(), crate::sys::errno_text(&e)),
                fix: "run `husk spec` in the bundle directory to write a default config.json".into(),
            });
            return f;
        }
    };
    let pos = json_positions(&text);
    let at = |path: &str| pos.get(path).copied().unwrap_or((0, 0));
    let mut push = |sev: &'static str, path: &str, msg: String| {
        let (line, column) = at(path);
        let fix = hint(&msg).to_string();
        f.push(Finding {
            severity: sev,
            path: path.to_string(),
            line,
            column,
            message: msg,
            fix,
        });
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(_) => {}
        Err(e) => {
            let msg = e.to_string();
            f.push(Finding {
                severity: "error",
                path: String::new(),
                line: e.line(),
                column: e.column(),
                message: format!("config.json is not valid JSON: {msg}"),
                fix: "fix the JSON syntax at that line and column".into(),
            });
            return f;
        }
    };
    let spec = match crate::bundle::parse_spec_warning(&text) {
        Ok((s, ignored)) => {
            for w in ignored {
                push("warning", &w.path, w.message);
            }
            s
        }
        Err(e) => {
            let (line, column) = if e.line > 0 {
                (e.line, e.column)
            } else {
                pos.get(e.path.as_str()).copied().unwrap_or((0, 0))
            };
            let message = if e.line > 0 {
                format!(
                    "config.json does not match the runtime spec: {} at line {line} column {column}",
                    e.message
                )
            } else {
                e.message
            };
            f.push(Finding {
                severity: "error",
                path: e.path,
                line,
                column,
                message,
                fix: "fix the value's type or name at that line and column".into(),
            });
            return f;
        }
    };
    for p in crate::bundle::problems(&spec) {
        push("error", &p.path, p.message);
    }
    for p in crate::bundle::deprecations(&spec) {
        push("warning", &p.path, p.message);
    }
    // The rootfs and what the process needs inside it.
    let rootfs = spec.root().as_ref().map(|r| {
        if r.path().is_absolute() {
            r.path().clone()
        } else {
            dir.join(r.path())
        }
    });
    let root_fd: Option<OwnedFd> = match &rootfs {
        None => {
            push("error", "root", "root.path is required".into());
            None
        }
        Some(r) => match nix::fcntl::open(
            r.as_path(),
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) {
            Ok(fd) => Some(fd),
            Err(_) => {
                push(
                    "error",
                    "root.path",
                    format!("root.path {} does not exist or is not a directory", r.display()),
                );
                None
            }
        },
    };
    if let (Some(root), Some(p)) = (&root_fd, spec.process().as_ref()) {
        check_process(root, p, &mut push);
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let bind = crate::mount_options::is_bind(m);
        if let (true, Some(src)) = (bind, m.source()) {
            let src = if src.is_absolute() { src.clone() } else { dir.join(src) };
            if !src.exists() {
                push(
                    "error",
                    &format!("mounts[{i}].source"),
                    format!("mounts[{i}].source {} does not exist on the host", src.display()),
                );
            }
        }
    }
    // The host: namespaces and capabilities.
    for (i, ns) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = crate::namespaces::proc_name(ns.typ());
        if !Path::new(&format!("/proc/self/ns/{name}")).exists() {
            push(
                "error",
                &format!("linux.namespaces[{i}]"),
                format!("this kernel has no {name} namespace"),
            );
        }
        if let Some(p) = ns.path()
            && !p.exists()
        {
            push(
                "error",
                &format!("linux.namespaces[{i}].path"),
                format!("linux.namespaces[{i}].path {} does not exist", p.display()),
            );
        }
    }
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("CapBnd:")
                    .map(|v| u64::from_str_radix(v.trim(), 16).unwrap_or(u64::MAX))
            })
        })
        .unwrap_or(u64::MAX);
    if let Some(caps) = spec.process().as_ref().and_then(|p| p.capabilities().as_ref()) {
        let asked = crate::capabilities::masks(Some(caps)).bounding;
        for n in 0..64 {
            if asked & (1 << n) != 0 && bounding & (1 << n) == 0 {
                let name = crate::capabilities::NAMES.get(n).copied().unwrap_or("?");
                push(
                    "warning",
                    "process.capabilities.bounding",
                    format!("CAP_{name} is asked for but not in this host's bounding set: the container cannot get it"),
                );
            }
        }
    }
    if let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        for (i, r) in sc.syscalls().iter().flatten().enumerate() {
            for (j, n) in r.names().iter().enumerate() {
                if libseccomp::ScmpSyscall::from_name(n).is_err() {
                    push(
                        "warning",
                        &format!("linux.seccomp.syscalls[{i}].names[{j}]"),
                        format!("syscall {n:?} is unknown to this libseccomp: its rule is skipped"),
                    );
                }
            }
        }
        if let Err(e) = crate::seccomp::build(sc) {
            push("error", "linux.seccomp", format!("linux.seccomp: {e:#}"));
        }
    }
    f
}

fn check_process(root: &OwnedFd, p: &oci_spec::runtime::Process, push: &mut impl FnMut(&'static str, &str, String)) {
    use crate::rootfs::resolve;
    let Some(arg0) = p.args().as_ref().and_then(|a| a.first()) else {
        return;
    };
    let path_var = crate::lookup::path_var(p.env().as_deref().unwrap_or(&[]));
    let candidates = crate::lookup::path_candidates(arg0, path_var);
    let found = candidates.iter().find_map(|c| {
        let fd = resolve(root, c).ok()?;
        let st = nix::sys::stat::fstat(&fd).ok()?;
        (st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some((c.display().to_string(), st.st_mode))
    });
    match found {
        None if arg0.contains('/') => push(
            "error",
            "process.args[0]",
            format!("exec: {arg0:?}: no such file or directory in the rootfs"),
        ),
        None => push(
            "error",
            "process.args[0]",
            format!("exec: {arg0:?}: executable file not found in $PATH ({path_var}) inside the rootfs"),
        ),
        Some((c, mode)) => {
            if mode & 0o111 == 0 {
                push(
                    "error",
                    "process.args[0]",
                    format!("{c} in the rootfs is not executable (chmod +x)"),
                );
            }
            // Read its first page through the rootfs-confined fd.
            if let Ok(fd) = crate::sys::openat2(
                std::os::fd::AsRawFd::as_raw_fd(root),
                Path::new(c.trim_start_matches('/')),
                libc::O_RDONLY,
                crate::sys::RESOLVE_IN_ROOT | crate::sys::RESOLVE_NO_MAGICLINKS,
            ) {
                use std::io::Read;
                let mut head = Vec::with_capacity(4096);
                let _ = std::fs::File::from(fd).take(4096).read_to_end(&mut head);
                if let Some(interp) = crate::process::interpreter_of(&head)
                    && resolve(root, Path::new(&interp)).is_err()
                {
                    push(
                        "error",
                        "process.args[0]",
                        format!("{c} needs {interp} to start, which is missing from the container's root filesystem"),
                    );
                }
            }
        }
    }
    // A missing cwd is made at create (as runc does); a file is an error.
    match resolve(root, p.cwd()) {
        Ok(fd) if nix::sys::stat::fstat(&fd).is_ok_and(|s| s.st_mode & libc::S_IFMT != libc::S_IFDIR) => push(
            "error",
            "process.cwd",
            format!("process.cwd {} in the rootfs is not a directory", p.cwd().display()),
        ),
        _ => {}
    }
}

pub fn check(dir: &Path, json: bool) -> Result<i32> {
    let findings = check_bundle(dir);
    if json {
        crate::output::out(&(serde_json::to_string_pretty(&findings)? + "\n"));
    } else {
        for f in &findings {
            let loc = if f.line > 0 {
                format!("config.json:{}:{}: ", f.line, f.column)
            } else {
                String::new()
            };
            crate::output::out(&(format!("{}: {loc}{}", f.severity, f.message) + "\n"));
            if !f.fix.is_empty() {
                crate::output::out(&(format!("  fix: {}", f.fix) + "\n"));
            }
        }
        let (e, w) = (
            findings.iter().filter(|f| f.severity == "error").count(),
            findings.iter().filter(|f| f.severity == "warning").count(),
        );
        crate::output::out(&(format!("{}: {e} error(s), {w} warning(s)", dir.join("config.json").display()) + "\n"));
    }
    Ok(if findings.iter().any(|f| f.severity == "error") {
        1
    } else if findings.is_empty() {
        0
    } else {
        2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_values() {
        let t = "{\n  \"process\": {\n    \"args\": [\"sh\", \"-c\"]\n  },\n  \"mounts\": [{\"destination\": \"x\"}, {}]\n}";
        let p = json_positions(t);
        assert_eq!(p[""], (1, 1));
        assert_eq!(p["process"], (2, 14));
        assert_eq!(p["process.args"], (3, 13));
        assert_eq!(p["process.args[1]"], (3, 20));
        assert_eq!(p["mounts[0].destination"], (5, 30));
        assert_eq!(p["mounts[1]"], (5, 36));
    }
}
