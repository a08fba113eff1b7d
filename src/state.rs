//! The on-disk container store under `--root`: `<root>/<id>/state.json`,
//! written atomically, guarded by an flock on the container directory, and
//! the container's status derived from the live process.
//!
//! Layout of `<root>/<id>/`:
//! - `state.json`: what husk recorded at create (see [`Stored`]).
//! - `exec.sock`: the unix socket the container init waits on until `start`
//!   connects; its presence means "created, not yet started".

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_SOCK: &str = "exec.sock";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What husk records about a container.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub oci_version: String,
    pub id: String,
    /// Host pid of the container init.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/<pid>/stat), to detect pid reuse.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The container has its own pid namespace (killing the init kills all).
    #[serde(default)]
    pub new_pid_ns: bool,
    /// Cgroup placement (every hierarchy's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroups::Cgroup>,
    /// poststart hooks, run by `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poststart: Option<Vec<oci_spec::runtime::Hook>>,
    /// The caller's NOTIFY_SOCKET, to which `start` relays READY=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_socket: Option<String>,
    /// poststop hooks to run at delete (kept here so delete needs no config parse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poststop: Option<Vec<oci_spec::runtime::Hook>>,
    /// Without a mount namespace of its own the container mounted in
    /// husk's: the id of the mount the rootfs lay on before, so that
    /// delete detaches what the container stacked there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mounts_over: Option<u64>,
}

/// Decode a `state.json`. Every field is typed: a file that does not
/// decode is an error naming it and, for a value of the wrong type, the
/// top-level field (serde names only missing fields itself).
pub fn decode(bytes: &[u8], path: &Path) -> Result<Stored> {
    let v: serde_json::Value = serde_json::from_slice(bytes).with_context(|| format!("parse {}", path.display()))?;
    if !v.is_object() {
        bail!("parse {}: not a JSON object", path.display());
    }
    Stored::deserialize(&v).map_err(|e| match bad_field(&v) {
        Some(f) => anyhow::anyhow!("parse {}: field {f:?}: {e}", path.display()),
        None => anyhow::anyhow!("parse {}: {e}", path.display()),
    })
}

/// The first top-level field of `v` that fails to decode on its own (put
/// into an otherwise valid, default record).
fn bad_field(v: &serde_json::Value) -> Option<String> {
    let obj = v.as_object()?;
    let serde_json::Value::Object(base) = serde_json::to_value(Stored::default()).ok()? else {
        return None;
    };
    obj.iter().find_map(|(k, val)| {
        let mut m = base.clone();
        m.insert(k.clone(), val.clone());
        Stored::deserialize(&serde_json::Value::Object(m))
            .is_err()
            .then(|| k.clone())
    })
}

/// runc's container id rule: letters, digits, `_ + - .`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("container id cannot be empty");
    }
    if id == "." || id == ".." {
        bail!("invalid container id {id:?}: must not be \".\" or \"..\"");
    }
    if id.len() > 1024 {
        bail!("invalid container id: longer than 1024 characters");
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')))
    {
        bail!("invalid container id {id:?}: character {c:?} is not allowed (use letters, digits, _ + - .)");
    }
    Ok(())
}

pub struct Store {
    pub root: PathBuf,
}

/// An opened (and possibly locked) container directory.
pub struct Container {
    pub dir: PathBuf,
    pub dir_fd: OwnedFd,
    pub state: Stored,
}

fn open_dir(p: &Path) -> std::io::Result<OwnedFd> {
    nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(std::io::Error::from)
}

fn flock(fd: &OwnedFd, what: &Path) -> Result<()> {
    loop {
        // SAFETY: flock on an fd we own.
        let r = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e).errno().with_context(|| format!("lock {}", what.display()));
        }
    }
}

/// Release the lock on a container directory (shared by every copy of the fd).
pub fn unlock(fd: &OwnedFd) {
    // SAFETY: flock on an fd we own.
    unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_UN) };
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Make `<root>/<id>` exclusively (a second creator of the same id
    /// fails here without touching the first) and lock it.
    pub fn create(&self, id: &str) -> Result<(PathBuf, OwnedFd)> {
        validate_id(id)?;
        // mkdir first (the root usually exists: EEXIST, one syscall), the
        // parents only when missing: a stat of an existing root that fails
        // must not come back as "File exists".
        match std::fs::DirBuilder::new().mode(0o711).create(&self.root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(&self.root)
                .errno()
                .with_context(|| format!("create root directory {}", self.root.display()))?,
            Err(e) => {
                return Err(e)
                    .errno()
                    .with_context(|| format!("create root directory {}", self.root.display()));
            }
        }
        let dir = self.container_dir(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container with id {id:?} already exists")
            }
            Err(e) => return Err(e).errno().with_context(|| format!("create {}", dir.display())),
        }
        // Ours now: a failure before the caller holds it removes it.
        let locked = open_dir(&dir)
            .errno()
            .with_context(|| format!("open {}", dir.display()))
            .and_then(|fd| flock(&fd, &dir).map(|()| fd));
        match locked {
            Ok(fd) => Ok((dir, fd)),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// Open an existing container; `lock` serialises against other husk
    /// processes that change it (create, start, delete, pause, resume,
    /// update).
    pub fn open(&self, id: &str, lock: bool) -> Result<Container> {
        let (dir, dir_fd) = self.open_dir(id, lock)?;
        let state = load(&dir, id)?;
        Ok(Container { dir, dir_fd, state })
    }

    /// Open (and with `lock`, lock) an existing container's directory
    /// without reading its state.
    pub fn open_dir(&self, id: &str, lock: bool) -> Result<(PathBuf, OwnedFd)> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        let dir_fd = match open_dir(&dir) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                bail!("container {id:?} does not exist")
            }
            Err(e) => return Err(e).errno().with_context(|| format!("open {}", dir.display())),
        };
        if lock {
            flock(&dir_fd, &dir)?;
        }
        Ok((dir, dir_fd))
    }

    /// Ids of all containers under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e).errno().with_context(|| format!("read {}", self.root.display())),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_id(n).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// Read and decode `<dir>/state.json` of container `id`.
pub fn load(dir: &Path, id: &str) -> Result<Stored> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(b) => decode(&b, &path),
        // A directory without state.json is a container being created
        // (or a create that died): report it as creating.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stored {
            id: id.to_string(),
            ..Default::default()
        }),
        Err(e) => Err(e).errno().with_context(|| format!("read {}", path.display())),
    }
}

/// Write `state.json` atomically (temp file + rename) into `dir`.
pub fn save(dir: &Path, st: &Stored) -> Result<()> {
    let tmp = dir.join(".state.json.tmp");
    let data = serde_json::to_vec(st).context("serialise state")?;
    let mut f = std::fs::File::create(&tmp)
        .errno()
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(&data)
        .errno()
        .with_context(|| format!("write {}", tmp.display()))?;
    drop(f);
    let dst = dir.join(STATE_FILE);
    std::fs::rename(&tmp, &dst)
        .errno()
        .with_context(|| format!("rename {} to {}", tmp.display(), dst.display()))
}

/// (state char, start time) from /proc/<pid>/stat, or None if gone.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&s)
}

/// The start time of `pid` (field 22 of /proc/<pid>/stat), or an error
/// naming the file and why it could not be read.
pub fn start_time(pid: i32) -> Result<u64> {
    let p = format!("/proc/{pid}/stat");
    let s = std::fs::read_to_string(&p)
        .errno()
        .with_context(|| format!("read {p} (the container init's start time)"))?;
    parse_stat(&s)
        .map(|(_, t)| t)
        .with_context(|| format!("parse {p} (the container init's start time)"))
}

pub fn parse_stat(s: &str) -> Option<(char, u64)> {
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut it = rest.split_ascii_whitespace();
    let state = it.next()?.chars().next()?;
    // rest starts at field 3 (state); starttime is field 22.
    let start = it.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// How long `kill` (after SIGKILL) and `delete` wait for a killed init to
/// finish exiting (runc's delete allows the same 10 s).
pub const EXIT_WAIT_MS: i32 = 10_000;

/// PF_EXITING in the flags of /proc/<pid>/stat (field 9): do_exit started.
const PF_EXITING: u64 = 0x4;

/// Is `pid` on its way out: a SIGKILL pending (for the process or one of
/// its threads) or do_exit started? Such a process runs no more user code
/// but is not a zombie yet: tearing down its mount namespace alone waits
/// for an RCU grace period (milliseconds).
pub fn exiting(pid: i32) -> bool {
    let kill_bit = 1u64 << (libc::SIGKILL - 1);
    let pending = std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .filter_map(|l| l.strip_prefix("SigPnd:").or_else(|| l.strip_prefix("ShdPnd:")))
            .filter_map(|v| u64::from_str_radix(v.trim(), 16).ok())
            .any(|set| set & kill_bit != 0)
    });
    pending
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| parse_stat_flags(&s))
            .is_some_and(|f| f & PF_EXITING != 0)
}

/// The flags (field 9) of a /proc/<pid>/stat line.
fn parse_stat_flags(s: &str) -> Option<u64> {
    let rest = &s[s.rfind(')')? + 1..];
    // rest starts at field 3 (state); flags is field 9.
    rest.split_ascii_whitespace().nth(6)?.parse().ok()
}

impl Container {
    /// Is the recorded init still the same live (non-zombie) process?
    pub fn init_alive(&self) -> bool {
        match proc_stat(self.state.pid) {
            Some((st, start)) => start == self.state.start_time && st != 'Z' && st != 'X',
            None => false,
        }
    }

    pub fn status(&self) -> Status {
        if self.state.pid == 0 {
            return Status::Creating;
        }
        if !self.init_alive() {
            return Status::Stopped;
        }
        if self.has_exec_sock() {
            return Status::Created;
        }
        if let Some(cg) = self.cgroup()
            && cg.is_frozen().unwrap_or(false)
        {
            return Status::Paused;
        }
        Status::Running
    }

    /// The container's cgroup placement, as recorded at create.
    pub fn cgroup(&self) -> Option<&crate::cgroups::Cgroup> {
        self.state.cgroup.as_ref()
    }

    pub fn has_exec_sock(&self) -> bool {
        nix::sys::stat::fstatat(&self.dir_fd, EXEC_SOCK, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    /// The OCI state document (`husk state`), in runc's field order.
    pub fn oci_state(&self) -> serde_json::Value {
        let status = self.status();
        let pid = if status == Status::Stopped { 0 } else { self.state.pid };
        let mut m = serde_json::Map::new();
        m.insert("ociVersion".into(), self.state.oci_version.clone().into());
        m.insert("id".into(), self.state.id.clone().into());
        m.insert("pid".into(), pid.into());
        m.insert("status".into(), status.as_str().into());
        m.insert("bundle".into(), self.state.bundle.to_string_lossy().into_owned().into());
        m.insert("rootfs".into(), self.state.rootfs.to_string_lossy().into_owned().into());
        m.insert("created".into(), self.state.created.clone().into());
        m.insert("owner".into(), self.state.owner.clone().into());
        if !self.state.annotations.is_empty() {
            m.insert(
                "annotations".into(),
                serde_json::to_value(&self.state.annotations).unwrap_or_default(),
            );
        }
        serde_json::Value::Object(m)
    }

    /// Remove the container directory and everything in it.
    pub fn remove_dir(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).errno().with_context(|| format!("remove {}", self.dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_x+y", "0123456789abcdef"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn stat_parsing_survives_odd_names() {
        let s = "123 (a) b) (c) S 1 123 123 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(s), Some(('S', 98765)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat_flags(s), Some(4194560));
        assert_eq!(parse_stat_flags("garbage"), None);
    }

    /// `Stored` as husk wrote it before its fields were typed: the cgroup
    /// and hooks went through `serde_json::to_value`.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Legacy {
        oci_version: String,
        id: String,
        pid: i32,
        start_time: u64,
        bundle: PathBuf,
        rootfs: PathBuf,
        created: String,
        owner: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        annotations: BTreeMap<String, String>,
        #[serde(default)]
        new_pid_ns: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cgroup: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        poststart: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notify_socket: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        poststop: Option<serde_json::Value>,
    }

    fn sample() -> Stored {
        let cg = crate::cgroups::Cgroup {
            layout: crate::cgroups::Layout::Hybrid,
            v1: vec![crate::cgroups::V1Dir {
                controllers: vec!["cpu".into(), "cpuacct".into()],
                mount: "/sys/fs/cgroup/cpu,cpuacct".into(),
                path: "/sys/fs/cgroup/cpu,cpuacct/husk/x".into(),
            }],
            unified: Some("/sys/fs/cgroup/unified/husk/x".into()),
            unified_mount: Some("/sys/fs/cgroup/unified".into()),
            systemd_unit: None,
            systemd_user: false,
        };
        let hooks: Vec<oci_spec::runtime::Hook> = serde_json::from_str(
            r#"[{"path": "/bin/sh", "args": ["sh", "-c", "true"], "env": ["A=1"], "timeout": 5}, {"path": "/bin/true"}]"#,
        )
        .unwrap();
        Stored {
            oci_version: "1.2.1".into(),
            id: "x".into(),
            pid: 42,
            start_time: 4242,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: String::new(),
            annotations: [("a".to_string(), "b".to_string())].into_iter().collect(),
            new_pid_ns: true,
            cgroup: Some(cg),
            poststart: Some(hooks.clone()),
            notify_socket: Some("/run/notify".into()),
            poststop: Some(hooks),
            host_mounts_over: None,
        }
    }

    #[test]
    fn typed_state_is_byte_compatible_with_the_old_record() {
        let st = sample();
        // What the previous husk wrote for the same container.
        let old = Legacy {
            oci_version: st.oci_version.clone(),
            id: st.id.clone(),
            pid: st.pid,
            start_time: st.start_time,
            bundle: st.bundle.clone(),
            rootfs: st.rootfs.clone(),
            created: st.created.clone(),
            owner: st.owner.clone(),
            annotations: st.annotations.clone(),
            new_pid_ns: st.new_pid_ns,
            cgroup: st.cgroup.as_ref().map(|c| serde_json::to_value(c).unwrap()),
            poststart: st.poststart.as_ref().map(|h| serde_json::to_value(h).unwrap()),
            notify_socket: st.notify_socket.clone(),
            poststop: st.poststop.as_ref().map(|h| serde_json::to_value(h).unwrap()),
        };
        let old_bytes = serde_json::to_vec(&old).unwrap();
        let new_bytes = serde_json::to_vec(&st).unwrap();
        assert_eq!(String::from_utf8_lossy(&new_bytes), String::from_utf8_lossy(&old_bytes));
        // an old file loads into the typed record, and back
        let loaded = decode(&old_bytes, Path::new("state.json")).unwrap();
        assert_eq!(loaded.cgroup, st.cgroup);
        assert_eq!(serde_json::to_vec(&loaded).unwrap(), old_bytes);
        let back: Legacy = serde_json::from_slice(&new_bytes).unwrap();
        assert_eq!(serde_json::to_vec(&back).unwrap(), new_bytes);
        // a record without the optional fields too
        let bare = Stored {
            cgroup: None,
            poststart: None,
            poststop: None,
            ..sample()
        };
        let bytes = serde_json::to_vec(&bare).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("cgroup"));
        assert!(decode(&bytes, Path::new("state.json")).unwrap().cgroup.is_none());
    }

    #[test]
    fn undecodable_state_names_the_file_and_field() {
        let p = Path::new("/run/husk/x/state.json");
        let msg = |b: &[u8]| format!("{:#}", decode(b, p).unwrap_err());
        let m = msg(b"{");
        assert!(m.starts_with("parse /run/husk/x/state.json: EOF"), "{m}");
        let mut v = serde_json::to_value(sample()).unwrap();
        v["cgroup"] = "oops".into();
        let m = msg(v.to_string().as_bytes());
        assert!(
            m.starts_with("parse /run/husk/x/state.json: field \"cgroup\": invalid type: string \"oops\""),
            "{m}"
        );
        let mut v = serde_json::to_value(sample()).unwrap();
        v["poststop"][0]["path"] = 7.into();
        let m = msg(v.to_string().as_bytes());
        assert!(m.contains("field \"poststop\": invalid type: integer `7`"), "{m}");
        let mut v = serde_json::to_value(sample()).unwrap();
        v.as_object_mut().unwrap().remove("pid");
        let m = msg(v.to_string().as_bytes());
        assert!(m.contains("missing field `pid`"), "{m}");
        let m = msg(b"[]");
        assert_eq!(m, "parse /run/husk/x/state.json: not a JSON object");
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        let (st, start) = proc_stat(me).unwrap();
        assert_ne!(st, 'Z');
        assert!(start > 0);
    }
}
