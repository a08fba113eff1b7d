//! CRIU's RPC (`criu swrk`): the few protobuf messages husk sends and reads,
//! encoded by hand, and one session with a `criu swrk` child over a
//! `SOCK_SEQPACKET` socket pair (one message per datagram).
//!
//! Why not the `rust-criu` crate: it pulls in the `protobuf` runtime and
//! generated code for every message of rpc.proto, for the handful of fields
//! husk uses (a static binary measured against crun). proto2's wire format
//! for these messages is only varints and length-delimited fields; the
//! field numbers below are those of CRIU's `images/rpc.proto`.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// `criu_req_type` values.
pub mod req {
    pub const DUMP: u64 = 1;
    pub const RESTORE: u64 = 2;
    pub const PRE_DUMP: u64 = 4;
    pub const NOTIFY: u64 = 6;
    pub const VERSION: u64 = 10;
}

/// `criu_opts` field numbers.
pub mod opt {
    pub const IMAGES_DIR_FD: u32 = 1;
    pub const PID: u32 = 2;
    pub const LEAVE_RUNNING: u32 = 3;
    pub const EXT_UNIX_SK: u32 = 4;
    pub const TCP_ESTABLISHED: u32 = 5;
    pub const EVASIVE_DEVICES: u32 = 6;
    pub const SHELL_JOB: u32 = 7;
    pub const FILE_LOCKS: u32 = 8;
    pub const LOG_LEVEL: u32 = 9;
    pub const LOG_FILE: u32 = 10;
    pub const NOTIFY_SCRIPTS: u32 = 12;
    pub const ROOT: u32 = 13;
    pub const PARENT_IMG: u32 = 14;
    pub const TRACK_MEM: u32 = 15;
    pub const AUTO_DEDUP: u32 = 16;
    pub const WORK_DIR_FD: u32 = 17;
    pub const EXT_MNT: u32 = 23;
    pub const MANAGE_CGROUPS: u32 = 24;
    pub const CG_ROOT: u32 = 25;
    pub const RST_SIBLING: u32 = 26;
    pub const INHERIT_FD: u32 = 27;
    pub const MANAGE_CGROUPS_MODE: u32 = 34;
    pub const EMPTY_NS: u32 = 38;
    pub const FREEZE_CGROUP: u32 = 44;
    pub const ORPHAN_PTS_MASTER: u32 = 50;
    pub const CONFIG_FILE: u32 = 51;
    pub const LSM_PROFILE: u32 = 53;
    pub const LSM_MOUNT_CONTEXT: u32 = 63;
}

/// A protobuf message being encoded (fields appended in any order).
#[derive(Default, Clone, Debug)]
pub struct Msg(pub Vec<u8>);

impl Msg {
    fn varint_raw(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(low7(v) | 0x80);
            v >>= 7;
        }
        self.0.push(low7(v));
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint_raw((u64::from(field) << 3) | u64::from(wire));
    }
    pub fn uint(&mut self, field: u32, v: u64) -> &mut Self {
        self.key(field, 0);
        self.varint_raw(v);
        self
    }
    /// int32: a negative value is sign-extended to 64 bits (proto2).
    pub fn int32(&mut self, field: u32, v: i32) -> &mut Self {
        self.uint(field, i64::from(v) as u64)
    }
    pub fn bool(&mut self, field: u32, v: bool) -> &mut Self {
        self.uint(field, u64::from(v))
    }
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint_raw(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }
    pub fn str(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }
    pub fn msg(&mut self, field: u32, m: &Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }
    /// A message of two string fields 1 and 2 (`ext_mount_map`).
    pub fn pair(&mut self, field: u32, k: &str, v: &str) -> &mut Self {
        let mut m = Msg::default();
        m.str(1, k).str(2, v);
        self.msg(field, &m)
    }
}

/// One decoded field: a varint or a length-delimited payload (fixed32 and
/// fixed64 fields are skipped: rpc.proto's responses have none).
#[derive(Debug, PartialEq)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn read_varint(b: &[u8], i: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i).context("criu response: truncated varint")?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    bail!("criu response: varint longer than 10 bytes")
}

/// The fields of one message, in order.
fn fields(b: &[u8]) -> Result<Vec<(u32, Field<'_>)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = read_varint(b, &mut i)?;
        let num = u32::try_from(key >> 3).context("criu response: field number out of range")?;
        match key & 7 {
            0 => out.push((num, Field::Varint(read_varint(b, &mut i)?))),
            2 => {
                let n = usize::try_from(read_varint(b, &mut i)?).context("criu response: length")?;
                let end = i
                    .checked_add(n)
                    .filter(|e| *e <= b.len())
                    .context("criu response: truncated field")?;
                out.push((num, Field::Bytes(&b[i..end])));
                i = end;
            }
            1 => i += 8,
            5 => i += 4,
            w => bail!("criu response: unknown wire type {w} (field {num})"),
        }
    }
    if i > b.len() {
        bail!("criu response: truncated fixed-size field");
    }
    Ok(out)
}

/// What husk reads of a `criu_resp`.
#[derive(Debug, Default, PartialEq)]
pub struct Resp {
    pub typ: u64,
    pub success: bool,
    /// `restore.pid`: the restored init.
    pub restore_pid: Option<i32>,
    /// `notify.script` and `notify.pid`.
    pub notify: Option<(String, i32)>,
    pub cr_errno: Option<i32>,
    pub cr_errmsg: Option<String>,
    /// `version`: major, minor, sublevel.
    pub version: Option<(i32, i32, i32)>,
}

/// protobuf's int32 on the wire: the low 32 bits of the varint.
#[allow(clippy::cast_possible_truncation, reason = "protobuf int32 is the low 32 bits")]
fn as_i32(v: u64) -> i32 {
    v as i64 as i32
}

/// The low 7 bits of a varint's value.
fn low7(v: u64) -> u8 {
    v.to_le_bytes()[0] & 0x7f
}

impl Resp {
    pub fn decode(b: &[u8]) -> Result<Resp> {
        let mut r = Resp::default();
        for (num, f) in fields(b)? {
            match (num, f) {
                (1, Field::Varint(v)) => r.typ = v,
                (2, Field::Varint(v)) => r.success = v != 0,
                (4, Field::Bytes(m)) => {
                    for (n, f) in fields(m)? {
                        if let (1, Field::Varint(v)) = (n, f) {
                            r.restore_pid = Some(as_i32(v));
                        }
                    }
                }
                (5, Field::Bytes(m)) => {
                    let (mut script, mut pid) = (String::new(), 0);
                    for (n, f) in fields(m)? {
                        match (n, f) {
                            (1, Field::Bytes(s)) => script = String::from_utf8_lossy(s).into_owned(),
                            (2, Field::Varint(v)) => pid = as_i32(v),
                            _ => {}
                        }
                    }
                    r.notify = Some((script, pid));
                }
                (7, Field::Varint(v)) => r.cr_errno = Some(as_i32(v)),
                (9, Field::Bytes(s)) => r.cr_errmsg = Some(String::from_utf8_lossy(s).into_owned()),
                (10, Field::Bytes(m)) => {
                    let (mut a, mut b2, mut c) = (0, 0, 0);
                    for (n, f) in fields(m)? {
                        match (n, f) {
                            (1, Field::Varint(v)) => a = as_i32(v),
                            (2, Field::Varint(v)) => b2 = as_i32(v),
                            (4, Field::Varint(v)) => c = as_i32(v),
                            _ => {}
                        }
                    }
                    r.version = Some((a, b2, c));
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

/// The name of a request type, for messages.
pub fn type_name(t: u64) -> &'static str {
    match t {
        req::DUMP => "dump",
        req::RESTORE => "restore",
        req::PRE_DUMP => "pre-dump",
        req::NOTIFY => "notify",
        req::VERSION => "version",
        _ => "request",
    }
}

/// A notification handler: the script's name, its pid, the fd that came
/// with it.
pub type OnNotify<'a> = dyn FnMut(&str, i32, Option<OwnedFd>) -> Result<()> + 'a;

/// A running `criu swrk` and husk's end of its socket.
pub struct Session {
    child: std::process::Child,
    sock: OwnedFd,
    bin: String,
}

impl Session {
    /// Start `criu swrk 3` (`bin`: `--criu`, default `criu` in PATH) with
    /// its end of a socket pair as fd 3 and husk's stdio as its own (the
    /// restored container's pipes are husk's).
    pub fn spawn(bin: &str) -> Result<Session> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        use std::os::unix::process::CommandExt;
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .context("socketpair for criu swrk")?;
        let raw: RawFd = theirs.as_raw_fd();
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("swrk").arg("3");
        // SAFETY: between fork and exec only dup2 and fcntl, both
        // async-signal-safe; husk is single-threaded.
        unsafe {
            cmd.pre_exec(move || {
                if raw == 3 {
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "checkpoint/restore needs CRIU: {bin:?} was not found (install the criu package: apt-get install criu, dnf install criu; or give its path with --criu)"
            ),
            Err(e) => return Err(e).errno().with_context(|| format!("start {bin} swrk")),
        };
        drop(theirs);
        Ok(Session {
            child,
            sock: ours,
            bin: bin.to_string(),
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn send(&self, m: &Msg) -> Result<()> {
        let n = nix::unistd::write(&self.sock, &m.0).context("send a request to criu swrk")?;
        if n != m.0.len() {
            bail!("criu swrk took {n} of {} bytes of a request", m.0.len());
        }
        Ok(())
    }

    /// One response, and the fd that came with it (orphan-pts-master).
    fn recv(&self) -> Result<(Resp, Option<OwnedFd>)> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("read criu's answer")?;
        let n = msg.bytes;
        let mut fd = None;
        for c in msg.cmsgs().context("criu's control message")? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for f in fds {
                    // SAFETY: the kernel installed this fd for us.
                    let o = unsafe { OwnedFd::from_raw_fd(f) };
                    fd.get_or_insert(o);
                }
            }
        }
        if n == 0 {
            bail!("criu swrk closed its socket without an answer");
        }
        Ok((Resp::decode(&buf[..n])?, fd))
    }

    /// Send `req` (a `criu_req` of type `typ`) and answer criu's
    /// notifications with `on_notify(script, pid, fd)` until the final
    /// response, which is returned. A failure names the first error line
    /// of `log` (criu's log file) when there is one.
    pub fn call(&mut self, typ: u64, opts: &Msg, log: &Path, on_notify: &mut OnNotify<'_>) -> Result<Resp> {
        let mut r = Msg::default();
        r.uint(1, typ).msg(2, opts);
        self.send(&r)?;
        loop {
            let (resp, fd) = self.recv().map_err(|e| self.failed(e, log))?;
            if !resp.success {
                let mut what = format!("{} {} failed", self.bin, type_name(typ));
                if let Some(e) = resp.cr_errno.filter(|e| *e != 0) {
                    what += &format!(" ({})", nix::errno::Errno::from_raw(e));
                }
                // criu's own words: the first error line of its log, else
                // the message of its answer
                match (first_error(log), &resp.cr_errmsg) {
                    (Some(line), _) => what += &format!(": {line}"),
                    (None, Some(m)) => what += &format!(": {}", m.trim()),
                    (None, None) => {}
                }
                bail!("{what} (log: {})", log.display());
            }
            if resp.typ == req::NOTIFY {
                let (script, pid) = resp.notify.clone().unwrap_or_default();
                crate::debug!("criu notification {script} (pid {pid})");
                on_notify(&script, pid, fd).with_context(|| format!("criu notification {script}"))?;
                let mut ok = Msg::default();
                ok.uint(1, req::NOTIFY).bool(3, true);
                self.send(&ok)?;
                continue;
            }
            if resp.typ != typ {
                bail!("criu answered a {} request with type {}", type_name(typ), resp.typ);
            }
            return Ok(resp);
        }
    }

    /// The error `e`, with the first error line of criu's log.
    fn failed(&self, e: anyhow::Error, log: &Path) -> anyhow::Error {
        match first_error(log) {
            Some(line) => e.context(format!("{}: {line} (log: {})", self.bin, log.display())),
            None => e.context(format!("{} (log: {})", self.bin, log.display())),
        }
    }

    /// Close husk's end and wait for criu to exit; its exit status.
    pub fn finish(mut self) -> Result<std::process::ExitStatus> {
        drop(self.sock);
        self.child.wait().errno().context("wait for criu swrk")
    }
}

/// The first line of criu's log that reports an error.
pub fn first_error(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    String::from_utf8_lossy(&text)
        .lines()
        .find(|l| l.contains("Error (") || l.contains("Error:"))
        // without criu's "(seconds.micros) " prefix
        .map(|l| {
            l.trim()
                .trim_start_matches(|c: char| c == '(' || c == '.' || c == ')' || c.is_ascii_digit())
                .trim()
                .to_string()
        })
}

/// Where criu writes its log: the work directory, else the image directory.
pub fn log_path(images: &Path, work: Option<&Path>, file: &str) -> PathBuf {
    work.unwrap_or(images).join(file)
}

/// `--manage-cgroups-mode` (runc's words) as a `criu_cg_mode`.
pub fn cg_mode(s: &str) -> Result<u64> {
    Ok(match s {
        "soft" => 3,
        "full" => 4,
        "strict" => 5,
        "ignore" => 0,
        other => bail!("--manage-cgroups-mode {other:?}: expected soft, full, strict or ignore"),
    })
}

/// `--empty-ns` names (runc's: the namespace types of config.json) as
/// clone flags, with the network namespace always in, as runc does: the
/// runtime does not set up network devices, so criu neither dumps nor
/// restores them.
pub fn empty_ns(names: &[String]) -> Result<u64> {
    let mut mask = libc::CLONE_NEWNET as u64;
    for n in names {
        mask |= match crate::namespaces::from_config_name(n) {
            // criu has no time namespace to leave empty
            Some(t) if t != oci_spec::runtime::LinuxNamespaceType::Time => crate::namespaces::clone_flag(t),
            _ => bail!("--empty-ns {n:?}: not a namespace type (network, mount, uts, ipc, pid, user, cgroup)"),
        } as u64;
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_protobuf() {
        let mut m = Msg::default();
        m.uint(1, 1).int32(9, 4).str(10, "dump.log").bool(3, true);
        assert_eq!(m.0, b"\x08\x01\x48\x04\x52\x08dump.log\x18\x01");
        let mut n = Msg::default();
        n.int32(2, -1);
        assert_eq!(n.0, b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01");
        let mut p = Msg::default();
        p.pair(23, "/a", "/b");
        assert_eq!(p.0, b"\xba\x01\x08\x0a\x02/a\x12\x02/b");
    }

    #[test]
    fn decodes_a_response() {
        // type NOTIFY, success, notify {script "post-restore", pid 300}
        let mut notify = Msg::default();
        notify.str(1, "post-restore").int32(2, 300);
        let mut r = Msg::default();
        r.uint(1, req::NOTIFY).bool(2, true).msg(5, &notify);
        let d = Resp::decode(&r.0).unwrap_or_default();
        assert_eq!(d.notify, Some(("post-restore".to_string(), 300)));
        assert!(d.success);
        let mut restore = Msg::default();
        restore.int32(1, 42);
        let mut r = Msg::default();
        r.uint(1, req::RESTORE)
            .bool(2, false)
            .msg(4, &restore)
            .int32(7, 2)
            .str(9, "oops");
        let d = Resp::decode(&r.0).unwrap_or_default();
        assert_eq!(
            (d.restore_pid, d.cr_errno, d.cr_errmsg.as_deref()),
            (Some(42), Some(2), Some("oops"))
        );
        assert!(Resp::decode(b"\x08").is_err());
        assert!(Resp::decode(b"\x12\x05ab").is_err());
    }
}
