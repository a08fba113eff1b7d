//! `husk exec`: run a new process inside a running container.
//!
//! ```text
//! husk exec ── setns(pid, time) for its children ── fork ──► child
//!   (pure v2: clone3 into the container's cgroup)        setns(user first, then mnt, net, ipc, uts, cgroup)
//!   places the child in the container's cgroup
//!   unless it was cloned there, 'G' ──►                  process setup (user, caps, cwd, rlimits)
//!   ◄── 'R' then EOF when exec succeeded (or the error text)   execve
//!   waits and forwards signals (unless --detach)
//! ```

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{Capabilities, Capability, LinuxNamespaceType, Process, Spec};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::cli::ExecArgs;
use crate::process::{self, Kind, Msg, recv_msg, send_msg};
use crate::state::{Container, Status, Store};
use crate::sys;

fn load_config(bundle: &std::path::Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path)
        .errno()
        .with_context(|| format!("read {}", path.display()))?;
    crate::bundle::parse(&text).with_context(|| format!("parse {}", path.display()))
}

/// `--cap` names; an unknown one is ignored with a warning, as runc does.
fn parse_caps(names: &[String]) -> Vec<Capability> {
    names
        .iter()
        .filter_map(|n| {
            let full = if n.to_uppercase().starts_with("CAP_") {
                n.to_uppercase()
            } else {
                format!("CAP_{}", n.to_uppercase())
            };
            match serde_json::from_value::<Capability>(serde_json::Value::String(full.clone())) {
                Ok(c) => Some(c),
                Err(_) => {
                    crate::warn!("--cap {full:?}: unknown capability, ignored (as runc ignores it)");
                    None
                }
            }
        })
        .collect()
}

/// The process to run: --process FILE, or the container's own process
/// with the command line's overrides (as runc does).
fn build_process(spec: &Spec, a: &ExecArgs, cmd: &[String]) -> Result<Process> {
    if let Some(f) = &a.process {
        let text = std::fs::read_to_string(f)
            .errno()
            .with_context(|| format!("read {}", f.display()))?;
        let (p, ignored) =
            crate::bundle::parse_process(&text).map_err(|e| anyhow::anyhow!("parse {}: {e}", f.display()))?;
        for w in ignored {
            crate::warn!("--process {}: {}", f.display(), w.message);
        }
        return Ok(p);
    }
    if cmd.is_empty() {
        bail!("exec needs a command (or --process FILE)");
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(cmd.to_vec()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(c) = &a.cwd {
        p.set_cwd(PathBuf::from(c));
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u.parse::<u32>(), g.parse::<u32>().map(Some)),
            None => (u.parse::<u32>(), Ok(None)),
        };
        let uid = uid.with_context(|| format!("--user {u:?}: expected UID[:GID] as numbers"))?;
        let gid = gid.with_context(|| format!("--user {u:?}: expected UID[:GID] as numbers"))?;
        let mut user = p.user().clone();
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if !a.caps.is_empty() {
        let add = parse_caps(&a.caps);
        let mut c = p.capabilities().clone().unwrap_or_default();
        let grow = |s: &Option<Capabilities>| {
            let mut s = s.clone().unwrap_or_default();
            s.extend(add.iter().copied());
            Some(s)
        };
        c.set_bounding(grow(c.bounding()));
        c.set_effective(grow(c.effective()));
        c.set_permitted(grow(c.permitted()));
        c.set_ambient(grow(c.ambient()));
        p.set_capabilities(Some(c));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(ap) = &a.apparmor {
        p.set_apparmor_profile(Some(ap.clone()));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

/// The namespaces the exec child joins, in order (user first), by their
/// `/proc/<pid>/ns/` name and clone flag.
const NS_ORDER: [(&str, libc::c_int); 6] = {
    use oci_spec::runtime::LinuxNamespaceType as T;
    const fn ns(t: T) -> (&'static str, libc::c_int) {
        (crate::namespaces::proc_name(t), crate::namespaces::clone_flag(t))
    }
    [
        ns(T::User),
        ns(T::Mount),
        ns(T::Network),
        ns(T::Ipc),
        ns(T::Uts),
        ns(T::Cgroup),
    ]
};

/// Open the init's namespace `name` if it differs from ours.
fn open_ns(pid: i32, name: &str) -> Result<Option<OwnedFd>> {
    let theirs = format!("/proc/{pid}/ns/{name}");
    let a = std::fs::metadata(&theirs)
        .errno()
        .with_context(|| format!("stat {theirs}"))?;
    if let Ok(b) = std::fs::metadata(format!("/proc/self/ns/{name}"))
        && a.ino() == b.ino()
        && a.dev() == b.dev()
    {
        return Ok(None);
    }
    let fd = nix::fcntl::open(
        theirs.as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {theirs}"))?;
    Ok(Some(fd))
}

/// The container `id`, its config and the process `husk exec` runs in it,
/// from `--process` or the command line `a`/`cmd`, checked as exec checks
/// it. Reads, changes nothing.
fn exec_process(store: &Store, id: &str, a: &ExecArgs, cmd: &[String]) -> Result<(Container, Spec, Process)> {
    crate::lsm::check_apparmor(a.apparmor.as_deref())?;
    let c = store.open(id, false)?;
    match c.status() {
        // A created container's init waits for start, non-dumpable: an
        // exec'd process cannot reach it through /proc (as runc and crun
        // allow exec before start; see README).
        Status::Running | Status::Created => {}
        Status::Paused if a.ignore_paused => {}
        Status::Paused => bail!("cannot exec in a paused container {id:?} (use --ignore-paused)"),
        s => bail!("cannot exec in a {} container {id:?}", s.as_str()),
    }
    let spec = load_config(&c.state.bundle)?;
    let p = build_process(&spec, a, cmd)?;
    if p.args().as_ref().is_none_or(|v| v.is_empty()) {
        bail!("process.args must not be empty");
    }
    if let Some(problem) = crate::bundle::process_ranges(&p).into_iter().next() {
        match &a.process {
            Some(f) => bail!("--process {}: {}", f.display(), problem.message),
            None => bail!("{}", problem.message),
        }
    }
    crate::lsm::check_apparmor(p.apparmor_profile().as_deref())?;
    crate::lsm::check_selinux("process.selinuxLabel", p.selinux_label().as_deref())?;
    if p.command_line().is_some() {
        bail!("process.commandLine is a Windows-only field of the runtime spec; on Linux use process.args");
    }
    if p.user().username().is_some() {
        bail!(
            "process.user.username is a Windows-only field of the runtime spec; on Linux use process.user.uid and gid"
        );
    }
    let terminal = p.terminal().unwrap_or(false);
    // A terminal with nobody to hand the pty to: husk relays it, as `run` does.
    if terminal && a.console_socket.is_none() && a.detach {
        bail!("--tty (process.terminal) with --detach needs --console-socket: nobody would relay the terminal");
    }
    Ok((c, spec, p))
}

/// `husk plan exec`: the steps the exec process would run for `husk exec`
/// with the same arguments ([`crate::plan::exec_plan`], as exec computes
/// it), printed; the container is only read.
pub fn plan(store: &Store, id: &str, a: &ExecArgs, cmd: &[String], json: bool) -> Result<()> {
    let (_, spec, p) = exec_process(store, id, a, cmd)?;
    let facts = crate::plan::HostFacts::gather();
    let plan = crate::plan::exec_plan(&p, spec.linux().as_ref(), &facts)?;
    if json {
        let v = serde_json::json!({"host": facts, "steps": plan.steps});
        crate::output::out(&(serde_json::to_string_pretty(&v)? + "\n"));
    } else {
        crate::output::out(&crate::commands::plan::render_steps(
            "exec process steps (as its --debug timeline names them):",
            &plan,
        ));
    }
    Ok(())
}

pub fn exec(store: &Store, id: &str, a: &ExecArgs, cmd: &[String]) -> Result<i32> {
    let (c, spec, p) = exec_process(store, id, a, cmd)?;
    let terminal = p.terminal().unwrap_or(false);
    let relay = terminal && a.console_socket.is_none();
    // The pty gets the caller's window size before the process can run (it
    // runs as soon as it has sent the master); the relay forwards changes.
    let p = if relay && p.console_size().is_none() {
        let mut p = p;
        p.set_console_size(crate::tty::terminal_size(0));
        p
    } else {
        p
    };
    let pid = c.state.pid;
    let pid_file = a
        .pid_file
        .as_deref()
        .map(std::path::absolute)
        .transpose()
        .errno()
        .context("--pid-file path")?;
    let mut fds = Vec::new();
    for (name, flag) in NS_ORDER {
        if let Some(fd) = open_ns(pid, name)? {
            fds.push((name, flag, fd));
        }
    }
    // pid and time namespaces apply to children: join them here, before the
    // fork. A user without privileges may not (setns wants CAP_SYS_ADMIN in
    // the caller's own user namespace too): then the exec process joins
    // them after the container's user namespace and forks once more, and
    // husk, a subreaper, adopts that grandchild (`late`).
    let in_userns = fds.iter().any(|(n, _, _)| *n == "user");
    let mut late = Vec::new();
    for t in [LinuxNamespaceType::Pid, LinuxNamespaceType::Time] {
        let (name, flag) = (crate::namespaces::proc_name(t), crate::namespaces::clone_flag(t));
        if std::path::Path::new(&format!("/proc/{pid}/ns/{name}")).exists()
            && let Some(fd) = open_ns(pid, name)?
        {
            match nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::from_bits_retain(flag)) {
                Ok(()) => {}
                Err(nix::errno::Errno::EPERM) if in_userns => late.push((name, flag, fd)),
                Err(e) => return Err(e).with_context(|| format!("setns into the container's {name} namespace")),
            }
        }
    }
    if !late.is_empty() {
        nix::sys::prctl::set_child_subreaper(true).context("become a subreaper for the exec process")?;
    }
    // The child sends the pty master over `console`: the caller's socket,
    // or one end of a socket pair whose other end husk keeps to relay.
    let mut relay_end = None;
    let console = match (&a.console_socket, terminal) {
        (Some(s), true) => Some(crate::tty::connect(s)?),
        (None, true) => {
            let (ours, theirs) = crate::tty::console_pair()?;
            relay_end = Some(ours);
            Some(theirs)
        }
        _ => None,
    };
    // Pure v2: the exec process is cloned straight into the container's
    // cgroup (or the --cgroup sub-cgroup, which must exist).
    let cgroup = c.cgroup();
    let cgroup_dir = match &cgroup {
        Some(cg) => cg.open_unified_dir(a.cgroup.as_deref())?,
        None => None,
    };
    // The exec process's steps, decided before the fork.
    let plan = crate::plan::exec_plan(&p, spec.linux().as_ref(), &crate::plan::HostFacts::gather())?;
    let old = if a.detach { None } else { Some(sys::block_all_signals()) };
    crate::process_attrs::initial_affinity(p.exec_cpu_affinity().as_ref())?;
    let (parent, child) = process::socketpair()?;
    // SAFETY: husk never starts threads; no flags: a plain fork.
    let (mut cpid, in_cgroup) = unsafe { process::clone_child(0, cgroup_dir.as_ref(), "the exec process") }
        .errno()
        .context("fork the exec process")?;
    if cpid == 0 {
        drop(parent);
        drop(cgroup_dir);
        let mut cx = process::Child::new(&child, spec.linux().as_ref());
        cx.host_fds = vec![c.dir_fd.as_raw_fd()];
        cx.ns_fds = &fds;
        cx.late_ns_fds = &late;
        cx.console_conn = console;
        cx.console_size = p.console_size();
        let msg = match process::execute(&mut cx, &plan) {
            Err(e) => format!("{e:#}"),
            Ok(never) => match never {},
        };
        let _ = send_msg(&child, &Msg::Error(msg));
        sys::exit_now(127);
    }
    drop(child);
    drop(fds);
    drop(cgroup_dir);
    let r = match &cgroup {
        Some(_) if in_cgroup => Ok(()),
        Some(cg) => match &a.cgroup {
            Some(sub) => cg.add_process_sub(cpid, sub),
            None => crate::cgroups::scope::add_process(cg, cpid)
                .context("move the exec process into the container's cgroup"),
        },
        None => Ok(()),
    }
    .and_then(|_| {
        // In the container's cgroup: its CPUs, not husk's affinity (as
        // the init; not when execCPUAffinity says otherwise).
        if !crate::process_attrs::affinity_configured(p.exec_cpu_affinity().as_ref()) {
            crate::process_attrs::reset_affinity(cpid);
        }
        let mut st = c.oci_state();
        st["pid"] = cpid.into();
        if late.is_empty()
            && let Some(path) = &a.pidfd_socket
        {
            crate::tty::send_pidfd(path, cpid, "setns")?;
        }
        send_msg(&parent, &Msg::Go(st.to_string().into_bytes()))?;
        if !late.is_empty() {
            cpid = adopt_grandchild(&parent, cpid)?;
            if let Some(path) = &a.pidfd_socket {
                crate::tty::send_pidfd(path, cpid, "setns")?;
            }
        }
        drive_exec(&parent)
    });
    if let Err(e) = r {
        process::kill_and_reap(cpid);
        if let Some(o) = &old {
            sys::set_sigmask(o);
        }
        return Err(e);
    }
    if let Some(p) = &pid_file {
        crate::container::write_pid_file(p, cpid)?;
    }
    if a.detach {
        return Ok(0);
    }
    let code = match relay_end {
        Some(end) => match crate::tty::recv_fd(&end) {
            Ok((_, master)) => crate::tty::relay(master, cpid),
            Err(e) => {
                process::kill_and_reap(cpid);
                Err(e.context("receive the pty master from the exec process"))
            }
        },
        None => crate::container::wait_forwarding(cpid),
    };
    if let Some(o) = &old {
        sys::set_sigmask(o);
    }
    code
}

/// The late namespaces (see `exec`): the exec process forked the process
/// that runs the command and sends its pid (`P`), then exits; reap it, so
/// that the grandchild is ours (husk is a subreaper) before anything waits
/// for it. Returns the grandchild's pid.
fn adopt_grandchild(sock: &OwnedFd, cpid: i32) -> Result<i32> {
    let msg = from_exec_process(sock, Kind::Pid);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(cpid), None);
    match msg? {
        Msg::Pid { pid, .. } => Ok(pid),
        m => bail!(
            "expected {} from the exec process, received {}",
            Kind::Pid.describe(),
            m.describe()
        ),
    }
}

/// The exec process's next message, which must be of kind `want`: its
/// `E` becomes the error; anything else, or its end, is named.
fn from_exec_process(sock: &OwnedFd, want: Kind) -> Result<Msg> {
    match recv_msg(sock)? {
        Some(m) if m.kind() == want => Ok(m),
        Some(Msg::Error(m)) => bail!("{m}"),
        Some(m) => bail!(
            "expected {} from the exec process, received {}",
            want.describe(),
            m.describe()
        ),
        None => bail!("the exec process exited during setup"),
    }
}

fn drive_exec(sock: &OwnedFd) -> Result<()> {
    from_exec_process(sock, Kind::Ready)?;
    // The socket is close-on-exec: EOF means the exec happened.
    match recv_msg(sock)? {
        None => Ok(()),
        Some(Msg::Error(m)) => bail!("{m}"),
        Some(m) => bail!("unexpected message {} from the exec process", m.describe()),
    }
}
