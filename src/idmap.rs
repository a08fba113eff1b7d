//! Id-mapped mounts (`mounts[].uidMappings`/`gidMappings`, the `idmap` and
//! `ridmap` options; runtime-spec 1.1+), made as runc 1.5 makes them: only
//! bind mounts; the source cloned with open_tree(OPEN_TREE_CLONE, with
//! AT_RECURSIVE for `rbind`), MOUNT_ATTR_IDMAP set with mount_setattr (with
//! AT_RECURSIVE for `ridmap`: every mount of the tree mapped, else the top
//! one only) and a user namespace: the container's when the mount has no
//! mappings of its own, else a throwaway one holding its mappings. The
//! init attaches the detached tree with move_mount.
//!
//! Husk (host root) makes the trees, after the clone and before `G`: the
//! init cannot (MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the source's
//! filesystem, i.e. host root). They are made in the init's mount
//! namespace, by a helper process husk forks (husk itself never leaves
//! its own): a clone of a mount there keeps the locks the kernel put on
//! the submounts when it copied the host's mounts into a namespace of
//! the container's user namespace, so the container's root cannot unmount
//! one and see what it covers; a clone made in husk's namespace would
//! carry no locks. A detached tree may then be attached in any mount
//! namespace, so the fds travel to the init with the bind sources (`F`).

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};
use std::os::fd::{AsRawFd, OwnedFd};

use crate::mount_options::{MOUNT_ATTR_IDMAP, parse_options};
use crate::rootfs::{bind_source_path, mount_context, rel};
use crate::sys;

/// How one mount is id-mapped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdMap {
    /// `ridmap`: every mount of the tree gets the mapping.
    pub recursive: bool,
    /// The mount has uidMappings/gidMappings of its own.
    pub own_mappings: bool,
}

/// The id mapping of mount `m`, if it is id-mapped: `idmap`/`ridmap` in
/// its options or mappings of its own (runc takes mappings without either
/// word as `idmap`).
pub fn of(m: &Mount) -> Option<IdMap> {
    let word = parse_options(m.options().as_deref().unwrap_or(&[])).idmap;
    let own_mappings = m.uid_mappings().is_some() || m.gid_mappings().is_some();
    if word.is_none() && !own_mappings {
        return None;
    }
    Some(IdMap {
        recursive: word.unwrap_or(false),
        own_mappings,
    })
}

/// Is any mount of the config id-mapped?
pub fn any(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| of(m).is_some())
}

/// The field an error about mount `i` names: its mappings, or the option
/// word that asked for the mapping.
pub fn field(i: usize, m: &Mount) -> String {
    if m.uid_mappings().is_some() {
        return format!("mounts[{i}].uidMappings");
    }
    if m.gid_mappings().is_some() {
        return format!("mounts[{i}].gidMappings");
    }
    let word = m
        .options()
        .iter()
        .flatten()
        .find(|o| *o == "idmap" || *o == "ridmap")
        .map(String::as_str)
        .unwrap_or("idmap");
    format!("mounts[{i}].options {word:?}")
}

/// Before the clone: id-mapped mounts need a root husk (runc refuses them
/// in rootless containers too: MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over
/// the source's filesystem).
pub fn check_privilege(spec: &Spec) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    if let Some((i, m)) = spec
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, m)| of(m).is_some())
    {
        bail!(
            "{}: id-mapped mounts need husk to run as root (runc refuses them in rootless containers too)",
            field(i, m)
        );
    }
    Ok(())
}

/// A user namespace holding `uid`/`gid` maps, for a mount's own mapping:
/// a child cloned into a new user namespace waits on a pipe while its maps
/// are written and its namespace opened, then exits. The fd keeps the
/// namespace alive.
fn throwaway_userns(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe for a user namespace holder")?;
    // SAFETY: husk is single-threaded; no CLONE_VM.
    let pid = unsafe { sys::fork_clone(libc::CLONE_NEWUSER as libc::c_ulong) }
        .errno()
        .context("clone a process into a new user namespace (for a mount's id mapping)")?;
    if pid == 0 {
        drop(w);
        let mut b = [0u8; 1];
        // Returns at EOF: when husk is done (or gone).
        let _ = nix::unistd::read(&r, &mut b);
        sys::exit_now(0);
    }
    drop(r);
    let fmt = |maps: &[LinuxIdMapping]| {
        maps.iter()
            .map(|x| format!("{} {} {}\n", x.container_id(), x.host_id(), x.size()))
            .collect::<String>()
    };
    let result = (|| {
        for (file, text) in [("uid_map", fmt(uid)), ("gid_map", fmt(gid))] {
            let p = format!("/proc/{pid}/{file}");
            std::fs::write(&p, &text)
                .errno()
                .with_context(|| format!("write {text:?} to {p}"))?;
        }
        let p = format!("/proc/{pid}/ns/user");
        nix::fcntl::open(
            p.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("open {p}"))
    })();
    drop(w);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    result
}

/// One tree to make: mount `index`, its source (O_PATH, in the init's
/// mount namespace), whether to clone the whole tree (`rbind`) and to map
/// every mount of it (`ridmap`), and the user namespace to map with.
struct Job {
    index: usize,
    what: String,
    source: OwnedFd,
    source_path: String,
    rbind: bool,
    ridmap: bool,
    userns: usize,
}

/// Host side, after the clone (id maps written) and before `G`: the
/// detached, id-mapped tree of every id-mapped mount, by mount index.
pub fn make_trees(spec: &Spec, init_pid: i32) -> Result<Vec<(usize, OwnedFd)>> {
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    if !mounts.iter().any(|m| of(m).is_some()) {
        return Ok(Vec::new());
    }
    check_privilege(spec)?;
    let root = crate::rootfs::open_proc_root(init_pid)?;
    // The user namespaces: the container's (index 0, opened when needed),
    // then one per distinct mapping of a mount's own.
    let mut userns: Vec<(Option<String>, OwnedFd)> = Vec::new();
    let mut jobs = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let Some(idmap) = of(m) else { continue };
        let o = parse_options(m.options().as_deref().unwrap_or(&[]));
        if !o.bind {
            // (bundle validation refuses it first)
            bail!("{}: id-mapped mounts are only supported for bind mounts", field(i, m));
        }
        let key = if idmap.own_mappings {
            let (u, g) = (
                m.uid_mappings().as_deref().unwrap_or(&[]),
                m.gid_mappings().as_deref().unwrap_or(&[]),
            );
            Some(format!("{:?}/{:?}", u, g))
        } else {
            None
        };
        let n = match userns.iter().position(|(k, _)| *k == key) {
            Some(n) => n,
            None => {
                let fd = if idmap.own_mappings {
                    let (u, g) = (
                        m.uid_mappings().as_deref().unwrap_or(&[]),
                        m.gid_mappings().as_deref().unwrap_or(&[]),
                    );
                    throwaway_userns(u, g)
                        .with_context(|| format!("{}: a user namespace for the mapping", field(i, m)))?
                } else {
                    let p = format!("/proc/{init_pid}/ns/user");
                    nix::fcntl::open(
                        p.as_str(),
                        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                        nix::sys::stat::Mode::empty(),
                    )
                    .with_context(|| format!("{}: open the container's user namespace {p}", field(i, m)))?
                };
                userns.push((key, fd));
                userns.len() - 1
            }
        };
        let src = bind_source_path(m).with_context(|| mount_context(i, m))?;
        // As the bind sources: through the init's root, symlinks resolved
        // as on the host, with husk's permissions.
        let source = sys::openat2(root.as_raw_fd(), &rel(&src), libc::O_PATH, sys::RESOLVE_IN_ROOT)
            .errno()
            .with_context(|| format!("open bind source {}", src.display()))
            .with_context(|| mount_context(i, m))?;
        jobs.push(Job {
            index: i,
            what: mount_context(i, m),
            source,
            source_path: src.display().to_string(),
            rbind: o.flags.contains(nix::mount::MsFlags::MS_REC),
            ridmap: idmap.recursive,
            userns: n,
        });
    }
    let mntns_path = format!("/proc/{init_pid}/ns/mnt");
    let mntns = nix::fcntl::open(
        mntns_path.as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {mntns_path}"))?;
    let (mine, theirs) = crate::process::socketpair()?;
    // SAFETY: husk is single-threaded.
    let helper = unsafe { sys::fork_clone(0) }
        .errno()
        .context("fork the id-mapped mount helper")?;
    if helper == 0 {
        drop(mine);
        let code = match helper_main(&mntns, &jobs, &userns, &theirs) {
            Ok(()) => 0,
            Err(e) => {
                let _ = crate::process::send(&theirs, b'E', format!("{e:#}").as_bytes());
                1
            }
        };
        sys::exit_now(code);
    }
    drop(theirs);
    let got = receive_trees(&mine, jobs.len());
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(helper), None);
    got
}

/// In the helper: join the init's mount namespace, make each tree, send it.
fn helper_main(mntns: &OwnedFd, jobs: &[Job], userns: &[(Option<String>, OwnedFd)], sock: &OwnedFd) -> Result<()> {
    nix::sched::setns(mntns, nix::sched::CloneFlags::CLONE_NEWNS).context("join the init's mount namespace")?;
    for j in jobs {
        let tree = sys::open_tree_clone(j.source.as_raw_fd(), j.rbind)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOSYS) {
                    anyhow::anyhow!(
                        "id-mapped mounts need open_tree and mount_setattr (Linux 5.12 or later), which this kernel lacks"
                    )
                } else {
                    anyhow::Error::new(e).context(format!("open_tree(OPEN_TREE_CLONE) of {}", j.source_path))
                }
            })
            .with_context(|| j.what.clone())?;
        let ns = userns[j.userns].1.as_raw_fd() as u64;
        sys::mount_setattr_userns(tree.as_raw_fd(), MOUNT_ATTR_IDMAP, 0, ns, j.ridmap)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => anyhow::anyhow!(
                    "the filesystem of {} does not support id-mapped mounts on this kernel (mount_setattr MOUNT_ATTR_IDMAP: {})",
                    j.source_path,
                    sys::errno_text(&e)
                ),
                Some(libc::ENOSYS) => anyhow::anyhow!(
                    "id-mapped mounts need mount_setattr (Linux 5.12 or later), which this kernel lacks"
                ),
                _ => anyhow::Error::new(e).context(format!("mount_setattr MOUNT_ATTR_IDMAP on {}", j.source_path)),
            })
            .with_context(|| j.what.clone())?;
        let mut msg = vec![b'T'];
        msg.extend_from_slice(j.index.to_string().as_bytes());
        crate::tty::send_fd(sock, &msg, &tree).context("send an id-mapped tree to husk")?;
    }
    Ok(())
}

/// husk: the helper's trees (`T index` + fd), or its error (`E text`).
fn receive_trees(sock: &OwnedFd, want: usize) -> Result<Vec<(usize, OwnedFd)>> {
    let mut out = Vec::with_capacity(want);
    while out.len() < want {
        let mut tag = [0u8; 1];
        match nix::sys::socket::recv(sock.as_raw_fd(), &mut tag, nix::sys::socket::MsgFlags::MSG_PEEK) {
            Ok(1) if tag[0] == b'T' => {
                let (msg, fd) = crate::tty::recv_fd(sock).context("receive an id-mapped tree")?;
                let i = std::str::from_utf8(&msg[1..])
                    .ok()
                    .and_then(|n| n.parse::<usize>().ok())
                    .context("bad message from the id-mapped mount helper")?;
                out.push((i, fd));
            }
            Ok(1) => match crate::process::recv(sock)? {
                Some((b'E', m)) => bail!("{}", String::from_utf8_lossy(&m)),
                _ => bail!("unexpected message from the id-mapped mount helper"),
            },
            Ok(_) => bail!("the id-mapped mount helper exited without making every tree"),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("receive from the id-mapped mount helper"),
        }
    }
    Ok(out)
}
