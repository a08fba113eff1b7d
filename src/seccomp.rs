//! seccomp filters with libseccomp, from `linux.seccomp`.
//!
//! The filter is built before the container is reported ready (so a bad
//! profile fails `create`) and loaded as late as possible: right before
//! execve when no_new_privs is set, otherwise just before husk drops
//! CAP_SYS_ADMIN (the kernel requires one of the two), as runc does.
//! With a seccomp agent (`listenerPath` and a SCMP_ACT_NOTIFY rule) the
//! init loads it during `create` instead, so that the agent has the
//! notify fd before `create` returns (see ARCHITECTURE.md).
//!
//! libseccomp compiles the rules; husk exports its BPF program and loads
//! it itself with seccomp(2), after prepending a stub that answers ENOSYS
//! for every system call newer than the newest one the profile names
//! (see [`enosys_stub`]), as runc does.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};
use std::str::FromStr;

/// `field` is the JSON path of the errno value (`linux.seccomp.syscalls[2].errnoRet`).
fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<ScmpAction> {
    // The kernel keeps 16 bits of data with SECCOMP_RET_ERRNO and SECCOMP_RET_TRACE.
    let data = || -> Result<u16> {
        let v = errno.unwrap_or(libc::EPERM as u32);
        u16::try_from(v).map_err(|_| anyhow::anyhow!("{field} {v} is out of range (0 to {})", u16::MAX))
    };
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(data()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data()?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn compare(op: LinuxSeccompOperator, value: u64, value_two: u64) -> (ScmpCompareOp, u64) {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // value is the mask, valueTwo what the masked argument must equal
        LinuxSeccompOperator::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), value_two),
    }
}

/// Does the profile hand system calls to a seccomp agent (SCMP_ACT_NOTIFY
/// as the default action or in a rule)? Only then does the kernel give a
/// notify fd, and only then is `listenerPath` used.
pub fn notifies(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
}

/// A filter ready to load: the BPF program (libseccomp's, after the ENOSYS
/// stub) and the seccomp(2) flags.
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({} instructions, flags {:#x})", self.prog.len(), self.flags)
    }
}

impl Filter {
    /// Instructions in the program (stub included).
    pub fn len(&self) -> usize {
        self.prog.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prog.is_empty()
    }

    /// Does loading it give a notify fd for a seccomp agent?
    pub fn has_listener(&self) -> bool {
        self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }
}

use libc::{SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV};

/// Build (but do not load) the filter for a config.
pub fn build(s: &LinuxSeccomp) -> Result<Filter> {
    let notifies = notifies(s);
    if notifies && s.listener_path().is_none() {
        bail!("linux.seccomp uses SCMP_ACT_NOTIFY but sets no listenerPath for the seccomp agent");
    }
    if let Some(p) = s.listener_path()
        && !p.is_absolute()
    {
        bail!("linux.seccomp.listenerPath {p:?} must be absolute");
    }
    // Right after the load, the process hands the notify fd to the agent
    // with sendmsg: notified itself, that call would wait forever for an
    // agent that has no fd yet. (runc refuses the same two for its write.)
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        bail!(
            "linux.seccomp.defaultAction SCMP_ACT_NOTIFY is not supported: the notify fd is sent to the agent with sendmsg, which would wait for the agent itself"
        );
    }
    if let Some(i) = s
        .syscalls()
        .iter()
        .flatten()
        .position(|r| r.action() == LinuxSeccompAction::ScmpActNotify && r.names().iter().any(|n| n == "sendmsg"))
    {
        bail!(
            "linux.seccomp.syscalls[{i}]: SCMP_ACT_NOTIFY cannot apply to sendmsg: the notify fd is sent to the agent with it"
        );
    }
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    let mut ctx = ScmpFilterContext::new(default).context("seccomp_init")?;
    // husk sets no_new_privs itself, from process.noNewPrivileges.
    ctx.set_ctl_nnp(false).context("seccomp: clear the NNP attribute")?;
    let mut archs = vec![ScmpArch::native()];
    for a in s.architectures().iter().flatten() {
        let name = a.to_string();
        let arch =
            ScmpArch::from_str(&name).map_err(|_| anyhow::anyhow!("linux.seccomp.architectures: unknown {name}"))?;
        match ctx.add_arch(arch) {
            Ok(_) => {}
            Err(e) if e.errno() == Some(libseccomp::error::SeccompErrno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("seccomp: add architecture {name}")),
        }
        if !archs.contains(&arch) {
            archs.push(arch);
        }
    }
    // The seccomp(2) flags husk loads with; libseccomp's attributes are
    // set too, so that a libseccomp or kernel without one fails here.
    let mut flags: libc::c_ulong = 0;
    if notifies {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    for f in s.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                ctx.set_ctl_log(true).context("seccomp flag SECCOMP_FILTER_FLAG_LOG")?;
                flags |= SECCOMP_FILTER_FLAG_LOG;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true)
                    .context("seccomp flag SECCOMP_FILTER_FLAG_SPEC_ALLOW")?;
                flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                ctx.set_ctl_waitkill(true).context(
                    "seccomp flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (needs libseccomp 2.6 and Linux 5.19)",
                )?;
                // The kernel takes it only with a notify listener.
                if notifies {
                    flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
                }
            }
            // husk is single-threaded when it loads the filter.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {}
        }
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let act = action(
            rule.action(),
            rule.errno_ret(),
            &format!("linux.seccomp.syscalls[{i}].errnoRet"),
        )?;
        if act == default {
            continue; // libseccomp refuses rules that repeat the default action
        }
        let args: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, a)| {
                // A system call has six arguments, 0 to 5.
                let index = u32::try_from(a.index()).ok().filter(|n| *n < 6).with_context(|| {
                    format!(
                        "linux.seccomp.syscalls[{i}].args[{j}].index {} is out of range (0 to 5)",
                        a.index()
                    )
                })?;
                let (op, datum) = compare(a.op(), a.value(), a.value_two().unwrap_or(0));
                Ok(ScmpArgCompare::new(index, op, datum))
            })
            .collect::<Result<_>>()?;
        let mut idx: Vec<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
        idx.sort();
        let repeated = idx.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let sc = match ScmpSyscall::from_name(name) {
                Ok(sc) => sc,
                Err(_) => {
                    crate::debug!("seccomp: syscall {name:?} is unknown to this libseccomp: rule skipped");
                    continue;
                }
            };
            let r = if args.is_empty() {
                ctx.add_rule(act, sc)
            } else if repeated {
                // Conditions on one argument index cannot be ANDed: each is a rule of its own.
                args.iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]).map(|_| ()))
                    .map(|_| &mut ctx)
            } else {
                ctx.add_rule_conditional(act, sc, &args)
            };
            r.with_context(|| format!("linux.seccomp.syscalls[{i}]: add rule for {name}"))?;
        }
    }
    let mut prog = if wants_enosys_stub(s) {
        enosys_stub(&newest_syscalls(s, &archs))?
    } else {
        Vec::new()
    };
    prog.extend(export(&mut ctx)?);
    if prog.len() > BPF_MAXINSNS {
        bail!(
            "linux.seccomp: the filter has {} BPF instructions, more than the kernel's {BPF_MAXINSNS}",
            prog.len()
        );
    }
    Ok(Filter { prog, flags })
}

/// The kernel's limit on a classic BPF program.
const BPF_MAXINSNS: usize = libc::BPF_MAXINSNS.unsigned_abs() as usize;

/// libseccomp's BPF program, through a memfd (seccomp_export_bpf_mem
/// needs libseccomp 2.6).
fn export(ctx: &mut ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    use std::io::{Read, Seek};
    let fd = crate::sys::memfd(c"husk-seccomp")
        .errno()
        .context("memfd_create for the seccomp program")?;
    // Without SCMP_FLTATR_API_SYSRAWRC libseccomp turns a failed write(2)
    // into ECANCELED ("a system failure beyond the control of
    // libseccomp"); with it the message names the errno. libseccomp < 2.5
    // lacks the attribute: the export then works, only its errors are vaguer.
    let raw = ctx.set_api_sysrawrc(true).is_ok();
    ctx.export_bpf(&fd).map_err(|e| match e.sysrawrc() {
        Some(rc) if raw && rc < 0 => anyhow::anyhow!(
            "seccomp_export_bpf: writing the program to a memfd: {}",
            crate::sys::errno_text(&std::io::Error::from_raw_os_error(-rc))
        ),
        _ => anyhow::Error::new(e).context("seccomp_export_bpf"),
    })?;
    let mut f = std::fs::File::from(fd);
    f.rewind().errno().context("seek the exported seccomp program")?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .errno()
        .context("read the exported seccomp program")?;
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.len() % INSN != 0 {
        bail!("seccomp_export_bpf gave {} bytes, not whole instructions", bytes.len());
    }
    // seccomp_export_bpf writes the program in the host's byte order.
    Ok(bytes
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

// ---- the ENOSYS stub -------------------------------------------------------
//
// A profile names the system calls its author knew. With a default action
// that refuses (SCMP_ACT_ERRNO, KILL, TRAP, NOTIFY), every system call
// added to the kernel later gets that action too: clone3, faccessat2,
// fchmodat2, epoll_pwait2 fail with EPERM, and libc, which falls back to
// the older call only on ENOSYS, breaks. runc therefore answers ENOSYS to
// every system call whose number is above the largest number the profile
// names (per architecture), ahead of the profile's own program; husk does
// the same. (crun 1.29 does not.) A table of the kernel version each
// system call came with would be more exact for the few calls numbered
// out of order, but it goes stale with every kernel and every libseccomp;
// "above the newest one named" needs no table and also covers calls that
// libseccomp does not know by name.

/// runc's condition: a default action that lets calls through (ALLOW,
/// LOG, TRACE — a tracer handles new calls itself) needs no stub, and
/// neither does a default of ENOSYS already.
fn wants_enosys_stub(s: &LinuxSeccomp) -> bool {
    use LinuxSeccompAction::*;
    !matches!(s.default_action(), ScmpActAllow | ScmpActLog | ScmpActTrace)
        && s.default_errno_ret() != Some(libc::ENOSYS as u32)
}

/// The kernel's AUDIT_ARCH_* value of an architecture the stub handles.
/// x32 shares x86_64's (its calls have bit 30 set); s390 (whose unknown
/// calls arrive as number 0) and MIPS are left to the profile's program.
fn audit_arch(a: ScmpArch) -> Option<u32> {
    const B64: u32 = 0x8000_0000;
    const LE: u32 = 0x4000_0000;
    Some(match a {
        ScmpArch::X8664 | ScmpArch::X32 => 62 | B64 | LE,
        ScmpArch::X86 => 3 | LE,
        ScmpArch::Aarch64 => 183 | B64 | LE,
        ScmpArch::Arm => 40 | LE,
        ScmpArch::Riscv64 => 243 | B64 | LE,
        ScmpArch::Ppc64Le => 21 | B64 | LE,
        ScmpArch::Loongarch64 => 258 | B64 | LE,
        _ => return None,
    })
}

const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Per kernel architecture: the largest system call number the profile
/// names (for x86_64: the x86_64 one and the x32 one).
#[derive(Debug, Default, PartialEq)]
struct Newest {
    audit: u32,
    max: Option<u32>,
    x32_max: Option<u32>,
}

fn newest_syscalls(s: &LinuxSeccomp, archs: &[ScmpArch]) -> Vec<Newest> {
    let mut out: Vec<Newest> = Vec::new();
    for &arch in archs {
        let arch = if arch == ScmpArch::Native {
            ScmpArch::native()
        } else {
            arch
        };
        let Some(audit) = audit_arch(arch) else {
            crate::debug!("seccomp: no ENOSYS stub for architecture {arch:?}");
            continue;
        };
        // Every name the profile lists, whatever its action: a rule with
        // the default action says the author knew the call too.
        let max = s
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|r| r.names())
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .filter_map(|sc| u32::try_from(i32::from(sc)).ok())
            .max();
        let i = match out.iter().position(|n| n.audit == audit) {
            Some(i) => i,
            None => {
                out.push(Newest {
                    audit,
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        if arch == ScmpArch::X32 {
            out[i].x32_max = max;
        } else {
            out[i].max = max;
        }
    }
    out
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGT_K: u16 = 0x25;
const BPF_JMP_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;
/// Offsets in struct seccomp_data.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// Where a stub jump goes: an instruction index, the ENOSYS return, or
/// the end of the stub (the profile's own program).
#[derive(Clone, Copy)]
enum To {
    Next,
    At(usize),
    Enosys,
    Filter,
}

struct Insn {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn ins(code: u16, k: u32, jt: To, jf: To) -> Insn {
    Insn { code, k, jt, jf }
}

/// The stub put in front of the profile's program:
///
/// ```text
///       ld [arch]
///       jeq AUDIT_ARCH_a, sec_a        (one per architecture)
///       ja filter
/// sec:  ld [nr]
///       (x86_64: jset X32_SYSCALL_BIT, x32)
///       jgt max, enosys, filter        (no max: ja filter)
/// x32:  jgt x32_max, enosys, filter    (no x32 in the profile: ja filter)
/// enosys: ret ERRNO(ENOSYS)
/// filter: the profile's program
/// ```
///
/// A call at or below the newest one named falls through to the profile.
fn enosys_stub(newest: &[Newest]) -> Result<Vec<libc::sock_filter>> {
    let used: Vec<&Newest> = newest
        .iter()
        .filter(|n| n.max.is_some() || n.x32_max.is_some())
        .collect();
    if used.is_empty() {
        return Ok(Vec::new());
    }
    let above = |max: Option<u32>| match max {
        Some(m) => ins(BPF_JMP_JGT_K, m, To::Enosys, To::Filter),
        None => ins(BPF_JMP_JA, 0, To::Filter, To::Filter),
    };
    // Header: ld + one jeq per arch + ja; sections follow.
    let mut sections: Vec<Vec<Insn>> = Vec::new();
    for n in &used {
        let mut sec = vec![ins(BPF_LD_W_ABS, DATA_NR, To::Next, To::Next)];
        if n.audit == audit_arch(ScmpArch::X8664).unwrap_or(0) {
            // jset → the x32 check (section index 3)
            sec.push(ins(BPF_JMP_JSET_K, X32_SYSCALL_BIT, To::At(3), To::Next));
            sec.push(above(n.max));
            sec.push(above(n.x32_max));
        } else {
            sec.push(above(n.max));
        }
        sections.push(sec);
    }
    let header_len = 1 + used.len() + 1;
    let mut starts = Vec::new();
    let mut at = header_len;
    for sec in &sections {
        starts.push(at);
        at += sec.len();
    }
    let enosys = at;
    let filter = at + 1;
    let mut all: Vec<Insn> = vec![ins(BPF_LD_W_ABS, DATA_ARCH, To::Next, To::Next)];
    for (n, start) in used.iter().zip(&starts) {
        all.push(ins(BPF_JMP_JEQ_K, n.audit, To::At(*start), To::Next));
    }
    all.push(ins(BPF_JMP_JA, 0, To::Filter, To::Filter));
    for (sec, start) in sections.into_iter().zip(&starts) {
        for i in sec {
            // Section-relative targets become absolute ones.
            let fix = |t: To| match t {
                To::At(r) => To::At(start + r),
                t => t,
            };
            all.push(ins(i.code, i.k, fix(i.jt), fix(i.jf)));
        }
    }
    all.push(ins(
        BPF_RET_K,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        To::Next,
        To::Next,
    ));
    let target = |pc: usize, t: To| -> usize {
        match t {
            To::Next => pc + 1,
            To::At(a) => a,
            To::Enosys => enosys,
            To::Filter => filter,
        }
    };
    all.iter()
        .enumerate()
        .map(|(pc, i)| {
            let off = |t: To| target(pc, t) - pc - 1;
            Ok(match i.code {
                BPF_JMP_JA => libc::sock_filter {
                    code: i.code,
                    jt: 0,
                    jf: 0,
                    k: u32::try_from(off(i.jt)).context("seccomp stub jump")?,
                },
                BPF_JMP_JEQ_K | BPF_JMP_JGT_K | BPF_JMP_JSET_K => libc::sock_filter {
                    code: i.code,
                    jt: u8::try_from(off(i.jt)).context("seccomp stub jump too long")?,
                    jf: u8::try_from(off(i.jf)).context("seccomp stub jump too long")?,
                    k: i.k,
                },
                _ => libc::sock_filter {
                    code: i.code,
                    jt: 0,
                    jf: 0,
                    k: i.k,
                },
            })
        })
        .collect()
}

thread_local! {
    /// The connection to the seccomp agent (listenerPath) and the state to
    /// send it with the notify fd, set up by the init before pivot_root.
    static LISTENER: std::cell::RefCell<Option<(std::os::fd::OwnedFd, String)>> = const { std::cell::RefCell::new(None) };
}

/// Connect to `linux.seccomp.listenerPath` (a host path: call before
/// pivot_root) and remember what to send once the filter is loaded. A
/// profile without SCMP_ACT_NOTIFY gives no notify fd: then there is
/// nothing to send and the agent is not contacted (as runc and crun).
pub fn connect_listener(s: &LinuxSeccomp, state: &str, pid: i32) -> Result<()> {
    let Some(path) = s.listener_path() else { return Ok(()) };
    if !notifies(s) {
        crate::debug!(
            "seccomp: listenerPath {} set but no SCMP_ACT_NOTIFY rule: no notify fd to send",
            path.display()
        );
        return Ok(());
    }
    let conn = crate::tty::connect_named(path, "the seccomp agent's socket (linux.seccomp.listenerPath)")?;
    let st: serde_json::Value = serde_json::from_str(state).unwrap_or_default();
    let msg = serde_json::json!({
        "ociVersion": st["ociVersion"].clone(),
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": s.listener_metadata().clone().unwrap_or_default(),
        "state": st,
    });
    LISTENER.with(|l| *l.borrow_mut() = Some((conn, msg.to_string())));
    Ok(())
}

/// Load the filter; with a seccomp agent, hand it the notify fd and the
/// container process state over listenerPath (SCM_RIGHTS), as the spec says.
pub fn load(f: &Filter) -> Result<()> {
    let fd = crate::sys::seccomp_set_filter(f.flags, &f.prog)
        .errno()
        .context("load the seccomp filter")?;
    if let (Some(fd), Some((conn, msg))) = (fd, LISTENER.with(|l| l.borrow_mut().take())) {
        crate::tty::send_fd(&conn, msg.as_bytes(), &fd).context("send the seccomp notify fd to the agent")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn builds_rules_with_every_operator() {
        let s = parse(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "nosuchsyscall_xyz"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 8, "op": "SCMP_CMP_NE"},
                    {"index": 0, "value": 0xff, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}
                ]},
                {"names": ["setns"], "action": "SCMP_ACT_KILL_PROCESS", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_GT"}, {"index": 1, "value": 2, "op": "SCMP_CMP_LE"}
                ]},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
            ]
        }));
        let len = build(&s).unwrap().len();
        // rules make several instructions each
        assert!(len >= 10, "{len}");
    }

    #[test]
    fn errno_and_argument_index_must_fit() {
        let rule = |r: serde_json::Value| {
            let s = parse(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [r]}));
            build(&s).err().map(|e| format!("{e:#}"))
        };
        assert_eq!(
            rule(serde_json::json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536})).as_deref(),
            Some("linux.seccomp.syscalls[0].errnoRet 65536 is out of range (0 to 65535)")
        );
        assert_eq!(
            rule(serde_json::json!({"names": ["mkdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 70000})).as_deref(),
            Some("linux.seccomp.syscalls[0].errnoRet 70000 is out of range (0 to 65535)")
        );
        assert_eq!(
            rule(serde_json::json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})),
            None
        );
        assert_eq!(
            rule(serde_json::json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}))
            .as_deref(),
            Some("linux.seccomp.syscalls[0].args[0].index 6 is out of range (0 to 5)")
        );
        let s = parse(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4294967295u32}));
        assert_eq!(
            format!("{:#}", build(&s).unwrap_err()),
            "linux.seccomp.defaultErrnoRet 4294967295 is out of range (0 to 65535)"
        );
    }

    /// Run the stub on (arch, nr): Some(return value) or None when it
    /// falls through to the profile's program.
    fn run_stub(prog: &[libc::sock_filter], arch: u32, nr: u32) -> Option<u32> {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            if pc == prog.len() {
                return None;
            }
            let i = prog[pc];
            let skip = |cond: bool| usize::from(if cond { i.jt } else { i.jf });
            pc += 1 + match i.code {
                BPF_LD_W_ABS => {
                    a = if i.k == DATA_ARCH { arch } else { nr };
                    0
                }
                BPF_JMP_JA => i.k as usize,
                BPF_JMP_JEQ_K => skip(a == i.k),
                BPF_JMP_JGT_K => skip(a > i.k),
                BPF_JMP_JSET_K => skip(a & i.k != 0),
                BPF_RET_K => return Some(i.k),
                c => panic!("unexpected instruction {c:#x}"),
            };
        }
    }

    #[test]
    fn enosys_stub_answers_calls_above_the_newest_named() {
        let x86_64 = audit_arch(ScmpArch::X8664).unwrap();
        let i386 = audit_arch(ScmpArch::X86).unwrap();
        let aarch64 = audit_arch(ScmpArch::Aarch64).unwrap();
        let enosys = Some(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
        let s = parse(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["read", "rseq", "nosuchsyscall_xyz"], "action": "SCMP_ACT_ALLOW"}]
        }));
        assert!(wants_enosys_stub(&s));
        let newest = newest_syscalls(&s, &[ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32]);
        // rseq: 334 on x86_64, 386 on i386, 334 | bit 30 on x32
        assert_eq!(
            newest,
            vec![
                Newest {
                    audit: x86_64,
                    max: Some(334),
                    x32_max: Some(X32_SYSCALL_BIT | 334)
                },
                Newest {
                    audit: i386,
                    max: Some(386),
                    x32_max: None
                },
            ]
        );
        let stub = enosys_stub(&newest).unwrap();
        assert_eq!(run_stub(&stub, x86_64, 0), None);
        assert_eq!(run_stub(&stub, x86_64, 334), None);
        assert_eq!(run_stub(&stub, x86_64, 435), enosys);
        assert_eq!(run_stub(&stub, x86_64, X32_SYSCALL_BIT | 334), None);
        assert_eq!(run_stub(&stub, x86_64, X32_SYSCALL_BIT | 435), enosys);
        assert_eq!(run_stub(&stub, i386, 386), None);
        assert_eq!(run_stub(&stub, i386, 435), enosys);
        // an architecture the profile does not have: its program decides
        assert_eq!(run_stub(&stub, aarch64, 9999), None);
        // x86_64 without x32 in the profile: x32 calls go to the program
        let stub = enosys_stub(&newest_syscalls(&s, &[ScmpArch::X8664])).unwrap();
        assert_eq!(run_stub(&stub, x86_64, X32_SYSCALL_BIT | 435), None);
        assert_eq!(run_stub(&stub, x86_64, 435), enosys);
        // default actions that need no stub
        for (act, errno) in [
            ("SCMP_ACT_ALLOW", None),
            ("SCMP_ACT_LOG", None),
            ("SCMP_ACT_ERRNO", Some(38)),
        ] {
            let s = parse(serde_json::json!({"defaultAction": act, "defaultErrnoRet": errno}));
            assert!(!wants_enosys_stub(&s), "{act}");
        }
        let s = parse(serde_json::json!({"defaultAction": "SCMP_ACT_KILL_PROCESS"}));
        assert!(wants_enosys_stub(&s));
        // a profile naming nothing: no stub at all
        assert!(
            enosys_stub(&newest_syscalls(&s, &[ScmpArch::X8664]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn notify_needs_a_listener() {
        let s = parse(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
        let e = format!("{:#}", build(&s).unwrap_err());
        assert!(e.contains("no listenerPath"), "{e}");
        let s = parse(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}));
        let e = format!("{:#}", build(&s).unwrap_err());
        assert!(e.contains("defaultAction SCMP_ACT_NOTIFY is not supported"), "{e}");
        let s = parse(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                         {"names": ["write", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        let e = format!("{:#}", build(&s).unwrap_err());
        assert!(
            e.contains("syscalls[1]: SCMP_ACT_NOTIFY cannot apply to sendmsg"),
            "{e}"
        );
        let s = parse(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "relative",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        assert!(format!("{:#}", build(&s).unwrap_err()).contains("must be absolute"));
    }
}
