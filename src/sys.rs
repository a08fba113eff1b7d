//! Thin wrappers over the system calls nix does not cover (or covers in a
//! shape that costs more than it should). Every `unsafe` in husk lives at
//! this boundary or next to the single call it guards.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// The one wording of a system call's error in husk's messages: nix's
/// `Errno` display, `ENOENT: No such file or directory` (the symbolic name,
/// a colon, the C library's text), never std's `No such file or directory
/// (os error 2)`. An error that is not an errno keeps its own text.
pub fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).to_string(),
        None => e.to_string(),
    }
}

/// [`errno_text`]'s convention as an error value: an `io::Error` that
/// carries an errno becomes that `nix::errno::Errno` (which displays so, and
/// which code matching on errors downcasts to); any other stays as it is.
pub fn os_error(e: io::Error) -> anyhow::Error {
    match e.raw_os_error() {
        Some(n) => anyhow::Error::new(nix::errno::Errno::from_raw(n)),
        None => anyhow::Error::new(e),
    }
}

/// `.errno()` on an `io::Result` before `.context(…)`: the error reads
/// `…: ENOENT: No such file or directory` ([`errno_text`]).
pub trait ErrnoResult<T> {
    fn errno(self) -> anyhow::Result<T>;
}

impl<T> ErrnoResult<T> for io::Result<T> {
    fn errno(self) -> anyhow::Result<T> {
        self.map_err(os_error)
    }
}

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// The result of a system call that returns an int (a pid, an fd).
fn cvt_int(r: libc::c_long) -> io::Result<libc::c_int> {
    libc::c_int::try_from(cvt(r)?).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))
}

/// The new fd a system call returned, owned.
///
/// # Safety
/// `r` is the return value of a system call that returns a new file
/// descriptor (or -1 with errno), nobody else owns.
unsafe fn cvt_fd(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = cvt_int(r)?;
    // SAFETY: the caller guarantees the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn cstr(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// fork-like clone: the child continues on a copy of the caller's stack.
/// Returns 0 in the child, the child's pid in the parent.
///
/// # Safety
/// As for `fork(2)` (and nix's `fork`): the caller must be
/// single-threaded (husk never starts threads), or the child may only
/// call async-signal-safe functions — another thread may have held a
/// lock (the allocator's) at the moment of the clone, and the child
/// inherits it held forever. `flags` must not ask for shared memory
/// (`CLONE_VM`) or a shared stack: the child returns here.
pub unsafe fn fork_clone(flags: libc::c_ulong) -> io::Result<libc::pid_t> {
    // SAFETY: with a null stack pointer and no CLONE_VM clone behaves like
    // fork: the child gets a copy-on-write copy of this address space; the
    // caller guarantees it is single-threaded.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    cvt_int(r)
}

/// CLONE_INTO_CGROUP (Linux 5.7): clone3 places the child in the cgroup
/// given by `clone_args.cgroup` (a cgroup2 directory fd) at creation.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), up to the `cgroup` field
/// (CLONE_ARGS_SIZE_VER2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// fork-like clone3 with CLONE_INTO_CGROUP: the child starts as a member
/// of the cgroup2 directory `cgroup_dir` (no cgroup.procs write needed).
/// Returns 0 in the child, the child's pid in the parent.
///
/// Errors leave no child behind. Old kernels answer ENOSYS (no clone3) or
/// E2BIG (clone3 without the `cgroup` field); the kernel refuses a threaded
/// or domain-invalid cgroup with EOPNOTSUPP, a domain with controllers in
/// its subtree_control with EBUSY, and a full pids.max with EAGAIN.
///
/// # Safety
/// As for [`fork_clone`]: the caller must be single-threaded, and `flags`
/// must not ask for shared memory or a shared stack.
pub unsafe fn fork_clone3_into_cgroup(flags: libc::c_ulong, cgroup_dir: RawFd) -> io::Result<libc::pid_t> {
    let cgroup = u64::try_from(cgroup_dir).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // c_ulong is u64 here but not on every target.
    #[allow(clippy::unnecessary_cast)]
    let flags = flags as u64;
    // With CLONE_PARENT the exit signal is the caller's own and clone3
    // wants 0 here (EINVAL otherwise).
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        exit_signal,
        cgroup,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed. Without
    // CLONE_VM and with no stack (stack 0, stack_size 0) clone3 behaves
    // like fork: the child runs on a copy-on-write copy of this
    // address space (single-threaded: the caller guarantees it) and
    // returns here with 0, as fork_clone's child does.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    cvt_int(r)
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: pidfd_open returns a new fd that we now own.
    unsafe { cvt_fd(r) }
}

pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo means "as kill(2)".
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    cvt(r).map(|_| ())
}

/// Wait until the process behind `pidfd` exits, at most `timeout_ms`
/// (negative: forever). Returns true when it exited.
pub fn pidfd_wait(pidfd: &OwnedFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        return Ok(r > 0);
    }
}

pub const RESOLVE_NO_MAGICLINKS: u64 = libc::RESOLVE_NO_MAGICLINKS;
pub const RESOLVE_IN_ROOT: u64 = libc::RESOLVE_IN_ROOT;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2): open `path` relative to `dirfd` with `resolve` restrictions.
pub fn openat2(dirfd: RawFd, path: &Path, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    loop {
        // SAFETY: `c` is a valid C string and `how` a valid open_how of the given size.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        // SAFETY: openat2 returns a new fd that we own.
        match unsafe { cvt_fd(r) } {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Mark every fd >= `from` close-on-exec.
pub fn cloexec_from(from: u32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    cvt(r).map(|_| ())
}

pub fn prctl(option: i32, arg2: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(option, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    cvt(r as libc::c_long).map(|_| ())
}

pub fn prctl3(option: i32, arg2: libc::c_ulong, arg3: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    cvt(r as libc::c_long).map(|_| ())
}

/// capget(2): (effective, permitted, inheritable) of this process.
pub fn capget() -> io::Result<(u64, u64, u64)> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and two data structs laid out as the kernel expects for v3.
    let r = unsafe { libc::syscall(libc::SYS_capget, &hdr as *const Header, data.as_mut_ptr()) };
    cvt(r)?;
    let join = |lo: u32, hi: u32| (lo as u64) | ((hi as u64) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// capset(2) for all three sets at once (64-bit capability masks).
#[allow(clippy::cast_possible_truncation, reason = "each set is passed as two 32-bit halves")]
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        Data {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        Data {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs laid out as the kernel expects for v3.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    cvt(r).map(|_| ())
}

/// Reset every catchable signal to its default action and unblock all
/// signals: the entrypoint must not inherit husk's dispositions (Rust's
/// runtime ignores SIGPIPE) or its blocked mask.
pub fn reset_signals() -> io::Result<()> {
    // The raw system call, not glibc's sigaction: glibc refuses signals 32
    // and 33 (its own), but a caller may have left them ignored, and an
    // ignored signal stays ignored across exec. An all-zero kernel
    // sigaction is SIG_DFL with no flags and an empty mask, whatever the
    // architecture's field order.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid, zeroed struct large enough for
        // the kernel's sigaction, no old action, and the kernel's sigset size.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("reset the disposition of signal {sig}: {}", errno_text(&e)),
            ));
        }
    }
    // SAFETY: an empty, initialised set passed to sigprocmask.
    let r = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("unblock all signals: {}", errno_text(&e)),
        ));
    }
    Ok(())
}

/// Block all signals, returning the previous mask.
pub fn block_all_signals() -> libc::sigset_t {
    // SAFETY: both sets are initialised before use.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

pub fn set_sigmask(set: &libc::sigset_t) {
    // SAFETY: `set` is an initialised signal set.
    unsafe {
        libc::sigprocmask(libc::SIG_SETMASK, set, std::ptr::null_mut());
    }
}

/// Wait for any signal (all must be blocked). Returns the signal number.
pub fn sigwait_any() -> io::Result<i32> {
    // SAFETY: an initialised full set; siginfo is written by the kernel.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut info: libc::siginfo_t = std::mem::zeroed();
        loop {
            let r = libc::sigwaitinfo(&all, &mut info);
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            return Ok(r);
        }
    }
}

/// _exit(2): leave the child without running the parent's destructors.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// AT_RECURSIVE of open_tree(2) and mount_setattr(2), as the u32 they take.
pub const AT_RECURSIVE: u32 = libc::AT_RECURSIVE.unsigned_abs();

/// mount_setattr(2) on the mount at `fd` (AT_EMPTY_PATH), recursively
/// with `recursive`: set the MOUNT_ATTR_* bits `set`, clear `clr`.
pub fn mount_setattr(fd: RawFd, set: u64, clr: u64, recursive: bool) -> io::Result<()> {
    mount_setattr_userns(fd, set, clr, 0, recursive)
}

/// mount_setattr(2) with a user namespace fd (for MOUNT_ATTR_IDMAP).
pub fn mount_setattr_userns(fd: RawFd, set: u64, clr: u64, userns_fd: u64, recursive: bool) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd,
    };
    let flags = (libc::AT_EMPTY_PATH as u32) | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: mount_setattr on a caller's fd with an empty C string path
    // and a valid struct of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An anonymous close-on-exec memory file (memfd_create(2)).
pub fn memfd(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: a valid C string and integer flags; the result is checked.
    let r = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): load a classic BPF
/// program. With SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the
/// notify fd.
pub fn seccomp_set_filter(flags: libc::c_ulong, prog: &[libc::sock_filter]) -> io::Result<Option<OwnedFd>> {
    let len = u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `len` valid instructions that outlive the
    // call; the kernel copies them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER seccomp returns a new fd that we own.
        return unsafe { cvt_fd(r) }.map(Some);
    }
    cvt(r).map(|_| None)
}

/// Bind the file `src` (an open fd, e.g. a pty) onto the file `target`
/// (an O_PATH fd) with the new mount API: open_tree(OPEN_TREE_CLONE) of
/// the source and move_mount onto the target, no path in between.
pub fn bind_fd_onto(src: &OwnedFd, target: &OwnedFd) -> io::Result<()> {
    let tree = open_tree_clone(src.as_raw_fd(), false)?;
    move_mount(tree.as_raw_fd(), target.as_raw_fd())
}

/// open_tree(2) with OPEN_TREE_CLONE on the object `fd` names
/// (AT_EMPTY_PATH): a detached copy of its mount (with `recursive`, of
/// the whole tree below it), close-on-exec. The mount must lie in the
/// caller's mount namespace.
pub fn open_tree_clone(fd: RawFd, recursive: bool) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: u32 = 1;
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as u32
        | libc::AT_EMPTY_PATH as u32
        | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree on a caller's fd with an empty C string path.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) };
    // SAFETY: open_tree returns a new fd that we own.
    unsafe { cvt_fd(r) }
}

/// move_mount(2) of the (detached) mount `from` onto the object `to`
/// names, both given as fds (MOVE_MOUNT_F_EMPTY_PATH | _T_EMPTY_PATH).
pub fn move_mount(from: RawFd, to: RawFd) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    // SAFETY: move_mount on two caller fds with empty C string paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            to,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    cvt(r).map(|_| ())
}

/// Write `value` to a file of procfs or sysfs (`fs`: `PROC_SUPER_MAGIC`,
/// `SYSFS_MAGIC`), refusing a symlink as the last component and a file on
/// any other filesystem (something mounted over /proc or /sys). The one
/// checked writer: LSM attributes, sysctls.
pub fn write_checked(path: &str, value: &[u8], fs: nix::sys::statfs::FsType) -> anyhow::Result<()> {
    use anyhow::Context;
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {path}"))?;
    let found = nix::sys::statfs::fstatfs(&fd).with_context(|| format!("statfs {path}"))?;
    if found.filesystem_type() != fs {
        let name = if fs == nix::sys::statfs::PROC_SUPER_MAGIC {
            "procfs"
        } else {
            "sysfs"
        };
        anyhow::bail!("{path} is not on {name}");
    }
    nix::unistd::write(&fd, value).with_context(|| format!("write {:?} to {path}", String::from_utf8_lossy(value)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_wording() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(errno_text(&e), "ENOENT: No such file or directory");
        let r: io::Result<()> = Err(e);
        let a = anyhow::Context::context(r.errno(), "read /x").unwrap_err();
        assert_eq!(format!("{a:#}"), "read /x: ENOENT: No such file or directory");
        assert_eq!(a.downcast_ref::<nix::errno::Errno>(), Some(&nix::errno::Errno::ENOENT));
        let other = io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8");
        assert_eq!(errno_text(&other), "stream did not contain valid UTF-8");
    }
}
