//! The mechanics of the rootfs steps the planner decided (`plan`): mounts
//! from the config, devices, /dev symlinks, masked and read-only paths,
//! sysctls, then pivot_root (or chroot / MS_MOVE), inside the container's
//! mount namespace; the executor (`process::execute`) calls these.
//!
//! The rootfs is hostile: every path inside it is resolved with openat2
//! RESOLVE_IN_ROOT (a symlink can never lead out of the rootfs) and every
//! mount goes onto the opened fd (`/proc/self/fd/N`), never onto a path a
//! racing process could swap.

use anyhow::{Context, Result, bail};
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

use crate::plan::{BindSource, DeviceStep, MountOp, MountStep, Pivot, RecursiveAttrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::mount_options::{MS_NOSYMFOLLOW, parse_options};
use crate::sys::{ErrnoResult as _, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2, os_error};

/// Path of an fd usable as a mount source or target.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `p` relative to the root: its normal components only.
pub(crate) fn rel(p: &Path) -> PathBuf {
    p.components().filter(|c| matches!(c, Component::Normal(_))).collect()
}

/// Open `path` (taken relative to the root) inside the root `root`; symlinks
/// are followed but can never leave the root.
pub fn resolve(root: &OwnedFd, path: &Path) -> std::io::Result<OwnedFd> {
    let r = rel(path);
    openat2(
        root.as_raw_fd(),
        if r.as_os_str().is_empty() { Path::new(".") } else { &r },
        libc::O_PATH,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

/// `path` with `.` and `..` taken lexically (`..` of the root is the
/// root), as chdir in the container's root sees an absolute path without
/// symlinks.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Is `fd` (the rootfs object `what`) a directory? A failed fstat is an
/// error naming it, never "not a directory".
fn is_dir(fd: &OwnedFd, what: &Path) -> Result<bool> {
    nix::sys::stat::fstat(fd)
        .map(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .with_context(|| format!("stat {}", what.display()))
}

/// Make every missing directory of `path` inside the root and open the
/// final one. Dangling symlinks on the way are followed (inside the root)
/// and their targets created, as `mkdir -p` in a chroot would.
pub fn mkdir_all(root: &OwnedFd, path: &Path) -> Result<OwnedFd> {
    let r = rel(path);
    match resolve(root, &r) {
        Ok(fd) => {
            if !is_dir(&fd, path)? {
                bail!("{} exists in the rootfs and is not a directory", path.display());
            }
            return Ok(fd);
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(os_error(e)).with_context(|| format!("resolve {} in the rootfs", path.display())),
    }
    let root_real = std::fs::read_link(fd_path(root))
        .errno()
        .context("readlink the rootfs fd")?;
    let mut pending: std::collections::VecDeque<std::ffi::OsString> =
        r.components().map(|c| c.as_os_str().to_os_string()).collect();
    // `cur` is always the real (symlink-free) path of `parent` inside the root.
    let mut cur = PathBuf::new();
    let mut parent = root.try_clone().errno().context("dup rootfs fd")?;
    let mut links = 0;
    while let Some(comp) = pending.pop_front() {
        if comp == ".." {
            cur.pop();
            parent = resolve(root, &cur)
                .errno()
                .with_context(|| format!("resolve {} in the rootfs", cur.display()))?;
            continue;
        }
        if comp == "." || comp.is_empty() {
            continue;
        }
        let cand = cur.join(&comp);
        let fd = match resolve(root, &cand) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match nix::sys::stat::mkdirat(
                    &parent,
                    comp.as_os_str(),
                    nix::sys::stat::Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) => {}
                    Err(nix::errno::Errno::EEXIST) => {
                        // A dangling symlink: continue at its target, inside the root.
                        links += 1;
                        if links > 40 {
                            bail!("too many levels of symbolic links under {}", path.display());
                        }
                        let target = nix::fcntl::readlinkat(&parent, comp.as_os_str())
                            .with_context(|| format!("readlink {} in the rootfs", cand.display()))?;
                        let t = PathBuf::from(target);
                        if t.is_absolute() {
                            cur = PathBuf::new();
                            parent = root.try_clone().errno().context("dup rootfs fd")?;
                        }
                        for c in t.components().rev() {
                            match c {
                                Component::Normal(n) => pending.push_front(n.to_os_string()),
                                Component::ParentDir => pending.push_front("..".into()),
                                _ => {}
                            }
                        }
                        continue;
                    }
                    Err(e) => return Err(e).with_context(|| format!("mkdir {} in the rootfs", cand.display())),
                }
                resolve(root, &cand)
                    .errno()
                    .with_context(|| format!("resolve {} in the rootfs", cand.display()))?
            }
            Err(e) => return Err(os_error(e)).with_context(|| format!("resolve {} in the rootfs", cand.display())),
        };
        if !is_dir(&fd, &cand)? {
            bail!("{} in the rootfs is not a directory", cand.display());
        }
        let real = std::fs::read_link(fd_path(&fd))
            .errno()
            .context("readlink a rootfs fd")?;
        cur = real.strip_prefix(&root_real).map(Path::to_path_buf).unwrap_or_default();
        parent = fd;
    }
    Ok(parent)
}

/// Make (if missing) a regular file at `path` inside the root and open it.
/// A dangling symlink at `path` (or at the target it leads to) is
/// followed inside the root and the file made at its target, as runc and
/// crun do: an absolute or `../` target can never climb out of the root.
pub fn mkfile(root: &OwnedFd, path: &Path) -> Result<OwnedFd> {
    let mut r = rel(path);
    for _ in 0..40 {
        if let Ok(fd) = resolve(root, &r) {
            return Ok(fd);
        }
        let (dir, name) = split(&r)?;
        let parent = mkdir_all(root, &dir)?;
        match create_empty(&parent, &name) {
            Ok(_) => {}
            Err(nix::errno::Errno::EEXIST) => {
                // Something is there that did not resolve: a dangling symlink.
                if let Ok(target) = nix::fcntl::readlinkat(&parent, name.as_path()) {
                    let t = PathBuf::from(target);
                    let base = if t.is_absolute() {
                        PathBuf::from("/")
                    } else {
                        // The real (symlink-free) path of the link's directory.
                        let root_real = std::fs::read_link(fd_path(root))
                            .errno()
                            .context("readlink the rootfs fd")?;
                        let real = std::fs::read_link(fd_path(&parent))
                            .errno()
                            .context("readlink a rootfs fd")?;
                        Path::new("/").join(real.strip_prefix(&root_real).unwrap_or(Path::new("")))
                    };
                    // Lexically clean, clamped at the root.
                    r = rel(&crate::cgroups::mountinfo::clean_path(&base.join(t)));
                    continue;
                }
            }
            Err(e) => return Err(e).with_context(|| format!("create {} in the rootfs", path.display())),
        }
        return resolve(root, &r)
            .errno()
            .with_context(|| format!("resolve {} in the rootfs", path.display()));
    }
    bail!("too many levels of symbolic links under {}", path.display())
}

/// Create a new empty file `name` in `parent` (never following a link).
fn create_empty(parent: &OwnedFd, name: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        parent,
        name,
        nix::fcntl::OFlag::O_CREAT
            | nix::fcntl::OFlag::O_EXCL
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC
            | nix::fcntl::OFlag::O_WRONLY,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
}

/// proc and sysfs go only on a directory, never through a symlink or
/// onto a file the rootfs put there (a symlinked /proc is an old attack,
/// and a mount through it lands elsewhere): refused as runc refuses it.
/// A destination that does not exist yet is made as a directory later.
fn ordinary_directory(root: &OwnedFd, dest: &Path, typ: &str) -> Result<()> {
    let r = rel(dest);
    let (parent, name) = split(&r)?;
    let pfd = match resolve(root, &parent) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(os_error(e)).with_context(|| format!("resolve {} in the rootfs", parent.display())),
    };
    match nix::sys::stat::fstatat(&pfd, &name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(()),
        Ok(st) => {
            let what = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                "a symlink"
            } else {
                "not a directory"
            };
            bail!(
                "filesystem {typ:?} must be mounted on an ordinary directory: {} in the rootfs is {what}",
                dest.display()
            )
        }
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("stat {} in the rootfs", dest.display())),
    }
}

fn split(r: &Path) -> Result<(PathBuf, PathBuf)> {
    let name = r
        .file_name()
        .with_context(|| format!("{} has no file name", r.display()))?;
    Ok((r.parent().unwrap_or(Path::new("")).to_path_buf(), PathBuf::from(name)))
}

fn do_mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(src, target, fstype, flags, data)
}

/// Copy the tree under directory `from` into directory `to` (both fds, so
/// no path can be swapped): files, directories and symlinks, with their
/// modes and owners; other file types are skipped.
fn copy_tree(from: &OwnedFd, to: &OwnedFd) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let src = std::path::PathBuf::from(fd_path(from));
    let dst = std::path::PathBuf::from(fd_path(to));
    let st = std::fs::metadata(&src)
        .errno()
        .context("stat the directory under the tmpfs")?;
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(st.mode() & 0o7777))
        .errno()
        .context("chmod the tmpfs")?;
    let _ = std::os::unix::fs::lchown(&dst, Some(st.uid()), Some(st.gid()));
    fn walk(src: &Path, dst: &Path) -> Result<()> {
        for e in std::fs::read_dir(src)
            .errno()
            .with_context(|| format!("read {}", src.display()))?
        {
            let e = e.errno().with_context(|| format!("read {}", src.display()))?;
            let (s, d) = (e.path(), dst.join(e.file_name()));
            let md = std::fs::symlink_metadata(&s)
                .errno()
                .with_context(|| format!("stat {}", s.display()))?;
            let ft = md.file_type();
            if ft.is_dir() {
                std::fs::create_dir(&d)
                    .errno()
                    .with_context(|| format!("mkdir {}", d.display()))?;
                walk(&s, &d)?;
            } else if ft.is_file() {
                std::fs::copy(&s, &d)
                    .errno()
                    .with_context(|| format!("copy {} to {}", s.display(), d.display()))?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&s)
                    .errno()
                    .with_context(|| format!("readlink {}", s.display()))?;
                std::os::unix::fs::symlink(target, &d)
                    .errno()
                    .with_context(|| format!("symlink {}", d.display()))?;
            } else {
                continue;
            }
            if !ft.is_symlink() {
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(md.mode() & 0o7777))
                    .errno()
                    .with_context(|| format!("chmod {}", d.display()))?;
            }
            let _ = std::os::unix::fs::lchown(&d, Some(md.uid()), Some(md.gid()));
        }
        Ok(())
    }
    walk(&src, &dst)
}

/// Bind host directory `src` onto `dest` inside the rootfs (made if missing).
pub fn bind_into(rootfs: &Path, src: &Path, dest: &Path) -> Result<()> {
    let root = nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open rootfs {}", rootfs.display()))?;
    let t = mkdir_all(&root, dest)?;
    let s = nix::fcntl::open(
        src,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {}", src.display()))?;
    do_mount(Some(&fd_path(&s)), &fd_path(&t), None, MsFlags::MS_BIND, None)
        .with_context(|| format!("bind {} to {}", src.display(), dest.display()))?;
    Ok(())
}

// ---- the executor's rootfs steps (decided in `plan`) ----------------------

/// `/` made rslave (or the rootfsPropagation) in a new mount namespace.
pub fn root_propagation(flags: MsFlags) -> Result<()> {
    do_mount(None, "/", None, flags, None).context("make / a slave mount (rootfsPropagation)")
}

/// Bind the rootfs onto itself (every mount of the container lands on
/// this one) and open it: the root every later path resolves in.
pub fn bind_rootfs(rootfs: &Path) -> Result<OwnedFd> {
    let s = rootfs.to_str().context("rootfs path is not UTF-8")?;
    do_mount(Some(s), s, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
        .with_context(|| format!("bind mount the rootfs {s} onto itself"))?;
    nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open rootfs {s}"))
}

/// Make process.cwd when it is missing.
pub fn make_cwd(root: &OwnedFd, cwd: &Path) -> Result<()> {
    if let Err(e) = resolve(root, cwd)
        && e.raw_os_error() == Some(libc::ENOENT)
    {
        mkdir_all(root, cwd).with_context(|| format!("create process.cwd {} in the rootfs", cwd.display()))?;
    }
    Ok(())
}

fn is_enoent(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<nix::errno::Errno>() == Some(&nix::errno::Errno::ENOENT)
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.raw_os_error() == Some(libc::ENOENT))
    })
}

/// The words of a mount's context in errors: `mounts[3]: mount SRC on
/// DEST (type T)`, and the filesystem data the config passed, if any.
pub fn mount_context(i: usize, m: &Mount) -> String {
    context_words(
        i,
        m.source().as_deref(),
        m.destination(),
        m.typ().as_deref(),
        m.options().as_deref().unwrap_or(&[]),
    )
}

fn context_words(i: usize, src: Option<&Path>, dest: &Path, typ: Option<&str>, options: &[String]) -> String {
    let mut c = format!(
        "mounts[{i}]: mount {} on {} (type {})",
        src.unwrap_or(Path::new("none")).display(),
        dest.display(),
        typ.unwrap_or("none")
    );
    let o = parse_options(options);
    if !o.bind && !o.data.is_empty() {
        c.push_str(&format!(" with options {:?}", o.data.join(",")));
    }
    c
}

/// A bind mount's source path: a relative one is taken against the bundle
/// (husk's and the init's cwd), as runc does.
pub fn bind_source_path(m: &Mount) -> Result<PathBuf> {
    bind_source_in(
        m,
        &std::env::current_dir()
            .errno()
            .context("getcwd for a relative bind source")?,
    )
}

/// A bind mount's source, a relative one resolved against `dir`.
pub fn bind_source_in(m: &Mount, dir: &Path) -> Result<PathBuf> {
    let src = m.source().as_deref().context("a bind mount needs a source")?;
    Ok(if src.is_absolute() {
        src.to_path_buf()
    } else {
        dir.join(src)
    })
}

/// Host side, for an init in a user namespace: open every bind source
/// (O_PATH) through `/proc/<init>/root`, i.e. in the init's mount
/// namespace (so the init can bind it: a mount of another namespace
/// cannot be bound) but with husk's credentials, as runc and crun do: the
/// container's root may not be able to reach a source that host root can
/// (a file under a mode-0700 directory). Symlinks in the source resolve
/// as on the host (RESOLVE_IN_ROOT at the init's root, the host's `/`).
/// Returns (mount index, fd) pairs.
pub fn open_bind_sources(sources: &[(usize, &MountStep, &Path)], init_pid: i32) -> Result<Vec<(usize, OwnedFd)>> {
    let mut out = Vec::new();
    if sources.is_empty() {
        return Ok(out);
    }
    let root = open_proc_root(init_pid)?;
    for (i, m, src) in sources {
        let fd = openat2(root.as_raw_fd(), &rel(src), libc::O_PATH, RESOLVE_IN_ROOT)
            .errno()
            .with_context(|| format!("open bind source {}", src.display()))
            .with_context(|| {
                context_words(
                    m.index,
                    m.source.as_deref(),
                    &m.destination,
                    m.fstype.as_deref(),
                    &m.options,
                )
            })?;
        out.push((*i, fd));
    }
    Ok(out)
}

/// The root directory of process `pid` (`/proc/<pid>/root`, O_PATH): a
/// path opened under it with RESOLVE_IN_ROOT lies in that process's mount
/// namespace and root, opened with the caller's credentials.
pub(crate) fn open_proc_root(pid: i32) -> Result<OwnedFd> {
    let proc_root = format!("/proc/{pid}/root");
    nix::fcntl::open(
        proc_root.as_str(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {proc_root}"))
}

/// One planned config mount, inside the rootfs `root`.
pub fn mount(root: &OwnedFd, m: &MountStep, bind_sources: &[(usize, OwnedFd)]) -> Result<()> {
    mount_op(root, m, bind_sources).with_context(|| {
        context_words(
            m.index,
            m.source.as_deref(),
            &m.destination,
            m.fstype.as_deref(),
            &m.options,
        )
    })
}

fn mount_op(root: &OwnedFd, m: &MountStep, bind_sources: &[(usize, OwnedFd)]) -> Result<()> {
    let dest = m.destination.as_path();
    let typ = m.fstype.as_deref().unwrap_or("");
    if m.ordinary_directory {
        ordinary_directory(root, dest, typ)?;
    }
    match &m.op {
        MountOp::Bind {
            source,
            recursive,
            remount,
            keep_locked_except,
        } => {
            let (src, idmapped) = match source {
                BindSource::Path(p) | BindSource::FromHusk(p) => (p, false),
                BindSource::IdmappedTree { source, .. } => (source, true),
            };
            let sfd = match bind_sources.iter().find(|(n, _)| *n == m.index) {
                Some((_, fd)) => fd.try_clone().errno().context("dup the bind source fd")?,
                None if idmapped => bail!("husk sent no id-mapped tree for this mount"),
                None => nix::fcntl::open(
                    src,
                    nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .with_context(|| format!("open bind source {}", src.display()))?,
            };
            let tfd = if is_dir(&sfd, src)? {
                mkdir_all(root, dest)?
            } else {
                mkfile(root, dest)?
            };
            if idmapped {
                // The detached, id-mapped tree husk made (`idmap`): attached
                // here, in the container's mount namespace.
                crate::sys::move_mount(sfd.as_raw_fd(), tfd.as_raw_fd())
                    .errno()
                    .context("attach the id-mapped tree (move_mount)")?;
            } else {
                let rec = if *recursive { MsFlags::MS_REC } else { MsFlags::empty() };
                do_mount(Some(&fd_path(&sfd)), &fd_path(&tfd), None, MsFlags::MS_BIND | rec, None)
                    .context("bind mount")?;
            }
            let newfd = resolve(root, dest).errno().context("reopen the mount point")?;
            if let Some(extra) = remount {
                // Like runc: the flags apply to the top mount only (a recursive
                // bind's submounts keep theirs; `rro` & co. are for them). Keep
                // the flags the kernel locks on a mount from a less privileged
                // namespace (nosuid, nodev, noexec) unless asked to clear them.
                let locked = locked_flags(&newfd).difference(keep_locked_except.0);
                do_mount(
                    None,
                    &fd_path(&newfd),
                    None,
                    MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra.0 | locked,
                    None,
                )
                .context("remount the bind mount with its options")?;
            }
            if let Some(r) = &m.recursive_attrs {
                set_rec_attr(&newfd, r)?;
            }
            for p in &m.propagation {
                do_mount(None, &fd_path(&newfd), None, p.0, None).context("set propagation")?;
            }
            return Ok(());
        }
        MountOp::Cgroup {
            flags,
            cgroup_ns,
            rootless_fallback,
        } => {
            if let Err(e) = mount_cgroup(root, dest, flags.0, *cgroup_ns) {
                if !(*rootless_fallback && is_enoent(&e)) {
                    return Err(e);
                }
                // runc's answer for rootless containers whose cgroup is not
                // there: a read-only empty tmpfs over the destination, so a
                // /sys bound from the host (`rbind,ro`: read-only at the top
                // only) never shows writable hierarchies (CVE-2023-25809).
                crate::debug!(
                    "rootless cgroup mount failed ({e:#}); masking {} read-only",
                    dest.display()
                );
                let n = resolve(root, dest).errno()?;
                do_mount(
                    Some("tmpfs"),
                    &fd_path(&n),
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    Some("nr_blocks=1,nr_inodes=2"),
                )
                .context("mask the cgroup mount point with a read-only tmpfs")?;
            }
        }
        MountOp::Sysfs {
            flags,
            data,
            userns_fallback,
        } => {
            let t = mkdir_all(root, dest)?;
            match do_mount(Some("sysfs"), &fd_path(&t), Some("sysfs"), flags.0, data.as_deref()) {
                Ok(()) => {}
                Err(nix::errno::Errno::EPERM) if *userns_fallback => {
                    // A user namespace that does not own the network
                    // namespace may not mount sysfs: bind the host's instead,
                    // read-only all through, as a read-only sysfs would be.
                    do_mount(
                        Some("/sys"),
                        &fd_path(&t),
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None,
                    )
                    .context("bind /sys (sysfs cannot be mounted in this user namespace)")?;
                    let n = resolve(root, dest).errno()?;
                    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked_flags(&n);
                    do_mount(None, &fd_path(&n), None, flags, None).context("remount /sys read-only")?;
                    set_attrs_recursive(&n, MsFlags::MS_RDONLY).context("make the mounts under /sys read-only")?;
                }
                Err(e) => return Err(e).context("mount sysfs"),
            }
        }
        MountOp::Fs {
            source,
            fstype,
            flags,
            data,
            mode_of_directory,
            copy_up,
            eperm_hint,
        } => {
            // runc: a tmpfs on an existing directory gets that directory's
            // mode (a `mode=` in the options still wins, coming later).
            let mode = if *mode_of_directory {
                resolve(root, dest)
                    .ok()
                    .and_then(|fd| nix::sys::stat::fstat(&fd).ok())
                    .map(|st| format!("mode={:04o}", st.st_mode & 0o7777))
            } else {
                None
            };
            let t = mkdir_all(root, dest)?;
            // For tmpcopyup: a handle on what is there before the tmpfs hides it.
            let below = if *copy_up {
                Some(
                    nix::fcntl::openat(
                        &t,
                        ".",
                        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                        nix::sys::stat::Mode::empty(),
                    )
                    .context("open the directory under the tmpfs (tmpcopyup)")?,
                )
            } else {
                None
            };
            let fsdata = match (mode, data) {
                (Some(m), Some(d)) => Some(format!("{m},{d}")),
                (m, d) => m.or(d.clone()),
            };
            do_mount(
                Some(source),
                &fd_path(&t),
                fstype.as_deref(),
                flags.0,
                fsdata.as_deref(),
            )
            .map_err(|e| {
                let mut msg = e.to_string();
                if let (nix::errno::Errno::EPERM, Some(h)) = (e, eperm_hint) {
                    msg.push_str(&format!(" (hint: {h})"));
                }
                anyhow::anyhow!(msg)
            })?;
            if let Some(below) = below {
                let top = resolve(root, dest).errno().context("reopen the tmpfs (tmpcopyup)")?;
                copy_tree(&below, &top).context("copy the rootfs content into the tmpfs (tmpcopyup)")?;
            }
        }
    }
    if let Some(r) = &m.recursive_attrs {
        let n = resolve(root, dest).errno()?;
        set_rec_attr(&n, r)?;
    }
    if !m.propagation.is_empty() {
        let n = resolve(root, dest).errno()?;
        for p in &m.propagation {
            do_mount(None, &fd_path(&n), None, p.0, None).context("set propagation")?;
        }
    }
    Ok(())
}

fn locked_flags(fd: &OwnedFd) -> MsFlags {
    let mut f = MsFlags::empty();
    if let Ok(st) = nix::sys::statvfs::fstatvfs(fd) {
        use nix::sys::statvfs::FsFlags;
        let fl = st.flags();
        if fl.contains(FsFlags::ST_NOSUID) {
            f |= MsFlags::MS_NOSUID;
        }
        if fl.contains(FsFlags::ST_NODEV) {
            f |= MsFlags::MS_NODEV;
        }
        if fl.contains(FsFlags::ST_NOEXEC) {
            f |= MsFlags::MS_NOEXEC;
        }
    }
    f
}

/// cgroup mounts: with a cgroup namespace each hierarchy is mounted fresh
/// (the container sees its own cgroup as the root); without one, the
/// container's own cgroup directories are bound. v1 hierarchies go under a
/// tmpfs. Read-only unless the options say rw. The hierarchies are those
/// `cgroups::mountinfo` finds (one mount per hierarchy, the host's own
/// first: not the copies a recursive bind of /sys put under the rootfs).
fn mount_cgroup(root: &OwnedFd, dest: &Path, flags: MsFlags, cgroup_ns: bool) -> Result<()> {
    use crate::cgroups::mountinfo;
    let mounts = crate::cgroups::read_mounts()?;
    let own = crate::cgroups::read_proc_cgroup("self")?;
    let t = mkdir_all(root, dest)?;
    let own_v2 = || {
        own.iter()
            .find(|c| c.controllers.is_empty())
            .map(|c| c.path.clone())
            .unwrap_or_else(|| PathBuf::from("/"))
    };
    // Pure v2 host: one cgroup2 mount.
    if let (true, Some(v2)) = (mounts.v1.is_empty(), &mounts.v2)
        && v2.mountpoint == Path::new("/sys/fs/cgroup")
    {
        if cgroup_ns {
            do_mount(Some("cgroup2"), &fd_path(&t), Some("cgroup2"), flags, None).context("mount cgroup2")?;
        } else {
            let src = mountinfo::own_dir(&v2.mountpoint, &v2.root, &own_v2());
            bind_ro(&src.to_string_lossy(), root, dest, flags)?;
        }
        return Ok(());
    }
    do_mount(
        Some("tmpfs"),
        &fd_path(&t),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .context("mount a tmpfs for the cgroup hierarchies")?;
    // A fresh tmpfs of ours: its directories need no symlink-safe walk.
    let top = resolve(root, dest).errno().context("reopen the cgroup tmpfs")?;
    // (mount point, mount root, controllers; empty for cgroup2)
    let mut hier: Vec<(&Path, &Path, Vec<String>)> = mounts
        .v1
        .iter()
        .map(|m| (m.mountpoint.as_path(), m.root.as_path(), m.controllers.clone()))
        .collect();
    if let Some(v2) = &mounts.v2 {
        hier.push((v2.mountpoint.as_path(), v2.root.as_path(), Vec::new()));
    }
    let mut made: Vec<&std::ffi::OsStr> = Vec::new();
    for (mountpoint, mroot, controllers) in &hier {
        let Some(name) = mountpoint.file_name() else {
            continue;
        };
        if made.contains(&name) {
            crate::debug!(
                "cgroup mount: {} shares its name with another hierarchy; skipped",
                mountpoint.display()
            );
            continue;
        }
        made.push(name);
        let ctrl = controllers.join(",");
        nix::sys::stat::mkdirat(&top, name, nix::sys::stat::Mode::from_bits_truncate(0o755))
            .with_context(|| format!("mkdir {} in the cgroup tmpfs", name.to_string_lossy()))?;
        let sfd = nix::fcntl::openat(
            &top,
            name,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("open {} in the cgroup tmpfs", name.to_string_lossy()))?;
        if cgroup_ns {
            let (ty, opts) = if controllers.is_empty() {
                ("cgroup2", None)
            } else {
                ("cgroup", Some(ctrl.as_str()))
            };
            do_mount(
                Some(ty),
                &fd_path(&sfd),
                Some(ty),
                flags.difference(MsFlags::MS_RDONLY),
                opts,
            )
            .with_context(|| format!("mount {ty} {ctrl} at {}", dest.join(name).display()))?;
        } else {
            let path = if controllers.is_empty() {
                own_v2()
            } else {
                own.iter()
                    .find(|c| c.controllers.iter().any(|x| controllers.contains(x)))
                    .map(|c| c.path.clone())
                    .unwrap_or_else(|| PathBuf::from("/"))
            };
            let src = mountinfo::own_dir(mountpoint, mroot, &path);
            do_mount(
                Some(&*src.to_string_lossy()),
                &fd_path(&sfd),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .with_context(|| format!("bind {}", src.display()))?;
        }
    }
    // One mount_setattr makes the tmpfs and every hierarchy under it
    // read-only (and nosuid, nodev, noexec) instead of a remount each.
    let n = resolve(root, dest).errno().context("reopen the cgroup mount")?;
    set_attrs_recursive(&n, flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)
        .context("apply the cgroup mount's options to every hierarchy")?;
    Ok(())
}

/// mount_setattr(AT_RECURSIVE) with the `r…` words of a mount. A kernel
/// without mount_setattr (before 5.12) cannot apply them: refused, naming
/// the words.
fn set_rec_attr(fd: &OwnedFd, r: &RecursiveAttrs) -> Result<()> {
    match crate::sys::mount_setattr(fd.as_raw_fd(), r.set, r.clear, true) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => bail!(
            "options {:?} need mount_setattr (Linux 5.12 or later), which this kernel lacks",
            r.words.join(",")
        ),
        Err(e) => {
            Err(os_error(e)).with_context(|| format!("mount_setattr(AT_RECURSIVE) for options {:?}", r.words.join(",")))
        }
    }
}

/// mount_setattr(AT_RECURSIVE): apply ro/nosuid/nodev/noexec from `flags`
/// to the mount at `fd` and every mount below it.
fn set_attrs_recursive(fd: &OwnedFd, flags: MsFlags) -> Result<()> {
    use crate::mount_options as mo;
    let mut set = 0u64;
    for (f, a) in [
        (MsFlags::MS_RDONLY, mo::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, mo::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, mo::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, mo::MOUNT_ATTR_NOEXEC),
        (MS_NOSYMFOLLOW, mo::MOUNT_ATTR_NOSYMFOLLOW),
    ] {
        if flags.contains(f) {
            set |= a;
        }
    }
    crate::sys::mount_setattr(fd.as_raw_fd(), set, 0, true)
        .errno()
        .context("mount_setattr (Linux 5.12 or later)")
}

fn bind_ro(src: &str, root: &OwnedFd, dest: &Path, flags: MsFlags) -> Result<()> {
    let t = mkdir_all(root, dest)?;
    do_mount(Some(src), &fd_path(&t), None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
        .with_context(|| format!("bind {src}"))?;
    let extra = flags & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    if !extra.is_empty() {
        // Reopen: the old fd names the directory under the new mount.
        let n = resolve(root, dest).errno().context("reopen the mount point")?;
        do_mount(
            None,
            &fd_path(&n),
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra | locked_flags(&n),
            None,
        )
        .with_context(|| format!("remount {src} with its options"))?;
    }
    Ok(())
}

pub fn default_devices() -> Vec<LinuxDevice> {
    let mk = |path: &str, major: i64, minor: i64| {
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from(path));
        d.set_typ(LinuxDeviceType::C);
        d.set_major(major);
        d.set_minor(minor);
        d.set_file_mode(Some(0o666));
        d.set_uid(Some(0));
        d.set_gid(Some(0));
        d
    };
    vec![
        mk("/dev/null", 1, 3),
        mk("/dev/zero", 1, 5),
        mk("/dev/full", 1, 7),
        mk("/dev/random", 1, 8),
        mk("/dev/urandom", 1, 9),
        mk("/dev/tty", 5, 0),
    ]
}

/// A planned device node: mknod, or (in a user namespace) a bind of the host's node.
pub fn make_device(root: &OwnedFd, d: &DeviceStep) -> Result<()> {
    make_device_node(root, d).with_context(|| format!("create device {}", d.path.display()))
}

fn make_device_node(root: &OwnedFd, d: &DeviceStep) -> Result<()> {
    let r = rel(&d.path);
    let (dir, name) = split(&r)?;
    let parent = mkdir_all(root, &dir)?;
    let kind = match d.kind {
        'b' => libc::S_IFBLK,
        'p' => libc::S_IFIFO,
        _ => libc::S_IFCHR,
    };
    let perm = d.mode;
    let dev = nix::sys::stat::makedev(d.major, d.minor);
    // Replace whatever the rootfs has at that path (never following it).
    match nix::unistd::unlinkat(&parent, name.as_path(), nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e).with_context(|| format!("remove existing {}", d.path.display())),
    }
    if d.bind_from_host {
        // mknod is not allowed in a user namespace: bind the host's node.
        create_empty(&parent, &name).context("create the bind target")?;
        let t = resolve(root, &r).errno()?;
        do_mount(
            Some(d.path.to_str().unwrap_or("")),
            &fd_path(&t),
            None,
            MsFlags::MS_BIND,
            None,
        )
        .context("bind the host device node")?;
        return Ok(());
    }
    let mode = nix::sys::stat::SFlag::from_bits_truncate(kind);
    nix::sys::stat::mknodat(
        &parent,
        name.as_path(),
        mode,
        nix::sys::stat::Mode::from_bits_truncate(perm),
        dev,
    )
    .context("mknod")?;
    nix::unistd::fchownat(
        &parent,
        name.as_path(),
        d.uid.map(nix::unistd::Uid::from_raw),
        d.gid.map(nix::unistd::Gid::from_raw),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("chown")?;
    crate::debug!("device {} ({}:{})", d.path.display(), d.major, d.minor);
    Ok(())
}

/// The planned /dev symlinks; /dev/ptmx → pts/ptmx when the rootfs has
/// a devpts at /dev/pts.
pub fn dev_symlinks(root: &OwnedFd, links: &[(String, String)]) -> Result<()> {
    let dev = mkdir_all(root, Path::new("/dev"))?;
    for (target, name) in links {
        match nix::unistd::symlinkat(target.as_str(), &dev, name.as_str()) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{name} -> {target}")),
        }
    }
    // /dev/ptmx must be the one of the container's devpts instance.
    // (No devpts mounted: ENOENT, nothing to point at; any other failure
    // is an error, not a missing /dev/pts.)
    let has_pts = match resolve(root, Path::new("/dev/pts/ptmx")) {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
        Err(e) => return Err(os_error(e)).context("resolve /dev/pts/ptmx in the rootfs"),
    };
    if has_pts {
        match nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e).context("remove /dev/ptmx"),
        }
        nix::unistd::symlinkat("pts/ptmx", &dev, "ptmx").context("symlink /dev/ptmx -> pts/ptmx")?;
    }
    Ok(())
}

/// The host's /dev/null, verified to be the 1:3 character device (never a
/// file or link someone put there).
fn dev_null() -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .context("open /dev/null")?;
    let st = nix::sys::stat::fstat(&fd).context("stat /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        bail!("/dev/null is not the null character device (1:3)");
    }
    Ok(fd)
}

pub fn mask_path(root: &OwnedFd, p: &Path) -> Result<()> {
    mask_one(root, p).with_context(|| format!("mask path {}", p.display()))
}

fn mask_one(root: &OwnedFd, p: &Path) -> Result<()> {
    let fd = match resolve(root, p) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(os_error(e)).context("resolve"),
    };
    if is_dir(&fd, p)? {
        do_mount(Some("tmpfs"), &fd_path(&fd), Some("tmpfs"), MsFlags::MS_RDONLY, None)
            .context("mount a read-only tmpfs")?;
    } else {
        let null = dev_null()?;
        do_mount(Some(&fd_path(&null)), &fd_path(&fd), None, MsFlags::MS_BIND, None).context("bind /dev/null")?;
    }
    crate::debug!("masked {}", p.display());
    Ok(())
}

pub fn readonly_path(root: &OwnedFd, p: &Path) -> Result<()> {
    readonly_one(root, p).with_context(|| format!("make {} read-only", p.display()))
}

fn readonly_one(root: &OwnedFd, p: &Path) -> Result<()> {
    let fd = match resolve(root, p) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(os_error(e)).context("resolve"),
    };
    do_mount(
        Some(&fd_path(&fd)),
        &fd_path(&fd),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .context("bind onto itself")?;
    let n = resolve(root, p).errno().context("reopen")?;
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked_flags(&n);
    do_mount(None, &fd_path(&n), None, flags, None).context("remount read-only")?;
    Ok(())
}

/// Write a sysctl through the host's procfs, checked to be procfs.
pub fn write_sysctl(key: &str, path: &str, value: &str) -> Result<()> {
    crate::sys::write_checked(path, value.as_bytes(), nix::sys::statfs::PROC_SUPER_MAGIC)
        .with_context(|| format!("sysctl {key}"))
}

/// The id of the mount `path` lies on (the topmost one when `path` is a
/// mount point), from statx.
pub fn mount_id(path: &Path) -> Result<u64> {
    let c = crate::sys::cstr(path)
        .errno()
        .with_context(|| format!("path {}", path.display()))?;
    // SAFETY: statx fills a zeroed struct of the right type; the path is a
    // valid C string.
    let (r, st) = unsafe {
        let mut st: libc::statx = std::mem::zeroed();
        let r = libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MNT_ID, &mut st);
        (r, st)
    };
    if r != 0 {
        return Err(os_error(std::io::Error::last_os_error())).with_context(|| format!("statx {}", path.display()));
    }
    if st.stx_mask & libc::STATX_MNT_ID == 0 {
        bail!("statx {}: the kernel gave no mount id", path.display());
    }
    Ok(st.stx_mnt_id)
}

/// Undo a container's mounts made in a mount namespace it shares (the
/// host's): detach the mounts stacked on `path` until the one it lay on
/// before (`before`, from [`mount_id`]) is on top again. The rootfs bind
/// carries every other mount of the container, so this is one detach.
pub fn unmount_down_to(path: &Path, before: u64) -> Result<()> {
    for _ in 0..16 {
        if mount_id(path)? == before {
            return Ok(());
        }
        nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)
            .with_context(|| format!("detach the container's mounts on {}", path.display()))?;
    }
    bail!("{}: still covered by mounts after 16 detaches", path.display())
}

/// Switch the process root to the rootfs.
pub fn pivot(rootfs: &Path, how: Pivot) -> Result<()> {
    nix::unistd::chdir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    if how != Pivot::PivotRoot {
        if how == Pivot::MoveAndChroot {
            do_mount(Some("."), "/", None, MsFlags::MS_MOVE, None).context("move the rootfs onto / (--no-pivot)")?;
        }
        nix::unistd::chroot(".").context("chroot into the rootfs")?;
    } else {
        let old = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .context("open the old root")?;
        nix::unistd::pivot_root(".", ".").context("pivot_root")?;
        // The old root is now stacked under the new one: detach it.
        nix::unistd::fchdir(&old).context("fchdir to the old root")?;
        do_mount(None, ".", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None).context("make the old root a slave")?;
        nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).context("detach the old root")?;
    }
    nix::unistd::chdir("/").context("chdir / in the new root")?;
    Ok(())
}

/// After pivot, with a terminal: bind the pty `peer` onto /dev/console,
/// made as an empty file when missing (resolved inside the root, which
/// is `/` now), as runc and crun do. The bind goes from the fd to the
/// opened target (open_tree + move_mount): no /dev/pts/N or /proc path
/// the container controls is used. Only a regular file or a character
/// device is mounted over.
pub fn bind_console(peer: &OwnedFd) -> Result<()> {
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("open the container's root")?;
    let target = mkfile(&root, Path::new("/dev/console")).context("make /dev/console")?;
    let st = nix::sys::stat::fstat(&target).context("stat /dev/console")?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFCHR {
        bail!("/dev/console in the container is neither a file nor a character device");
    }
    crate::sys::bind_fd_onto(peer, &target)
        .errno()
        .context("bind the pty onto /dev/console")
}

/// After pivot: the read-only root and the requested root propagation.
/// After pivot_root: stdio that is the null device (the caller's
/// /dev/null, a file of the host's /dev) is reopened from the
/// container's own /dev/null, as runc does. Every file the container
/// holds is then on one of its own mounts: CRIU cannot checkpoint an fd
/// on a mount the container does not have ("Can't lookup mount").
/// Skipped when the container has no null device at /dev/null (a rootfs
/// without one, or something else put there: never opened as such).
pub fn reopen_dev_null() -> Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
    let null = nix::sys::stat::makedev(1, 3);
    let is_null = |st: &libc::stat| st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == null;
    let mut ours: Option<OwnedFd> = None;
    for fd in 0..3 {
        // SAFETY: 0..3 are this process's stdio, borrowed for fstat only.
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        if !nix::sys::stat::fstat(b).is_ok_and(|st| is_null(&st)) {
            continue;
        }
        if ours.is_none() {
            // O_NONBLOCK and O_NOFOLLOW: a fifo or a link at /dev/null
            // never blocks nor leads elsewhere; checked below.
            let f = match open(
                "/dev/null",
                OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            ) {
                Ok(f) => f,
                Err(e) => {
                    crate::debug!("stdio: the container's /dev/null cannot be opened ({e}); kept the caller's");
                    return Ok(());
                }
            };
            if !nix::sys::stat::fstat(&f).is_ok_and(|st| is_null(&st)) {
                crate::debug!("stdio: the container's /dev/null is not the null device; kept the caller's");
                return Ok(());
            }
            fcntl(&f, FcntlArg::F_SETFL(OFlag::empty())).context("clear O_NONBLOCK on /dev/null")?;
            ours = Some(f);
        }
        if let Some(f) = &ours {
            // SAFETY: dup3 onto a stdio number this process owns.
            if unsafe { libc::dup3(f.as_raw_fd(), fd, 0) } < 0 {
                return Err(os_error(std::io::Error::last_os_error()))
                    .with_context(|| format!("dup /dev/null onto fd {fd}"));
            }
        }
    }
    Ok(())
}

/// root.readonly: remount / read-only (keeping the locked flags).
pub fn read_only_root() -> Result<()> {
    let fd = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("open /")?;
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked_flags(&fd);
    do_mount(None, "/", None, flags, None).context("remount the root read-only (root.readonly)")
}

/// rootfsPropagation on / after the pivot.
pub fn final_propagation(word: &str, flags: MsFlags) -> Result<()> {
    do_mount(None, "/", None, flags, None).with_context(|| format!("set rootfsPropagation {word} on /"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_stays_inside_the_root() {
        let dir = std::env::temp_dir().join(format!("husk-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("a/escape")).unwrap();
        std::os::unix::fs::symlink("../../../../..", dir.join("up")).unwrap();
        let root = nix::fcntl::open(
            &dir,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        // A symlink to /etc resolves to <root>/etc, which does not exist.
        assert_eq!(
            resolve(&root, Path::new("/a/escape/passwd"))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOENT)
        );
        // mkdir_all through an absolute symlink creates inside the root.
        let fd = mkdir_all(&root, Path::new("/a/escape/sub")).unwrap();
        assert!(is_dir(&fd, Path::new("x")).unwrap());
        assert!(dir.join("etc/sub").is_dir());
        // ".." through a symlink is clamped at the root.
        mkdir_all(&root, Path::new("/up/clamped")).unwrap();
        assert!(dir.join("clamped").is_dir());
        let f = mkfile(&root, Path::new("/up/file")).unwrap();
        assert!(!is_dir(&f, Path::new("f")).unwrap());
        assert!(dir.join("file").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
