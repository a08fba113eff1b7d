//! seccomp filters with libseccomp, from `linux.seccomp`.
//!
//! The filter is built before the container is reported ready (so a bad
//! profile fails `create`) and loaded as late as possible: right before
//! execve when no_new_privs is set, otherwise just before husk drops
//! CAP_SYS_ADMIN (the kernel requires one of the two), as runc does.

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

/// Build (but do not load) the filter for a config.
pub fn build(s: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let notifies = s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
    if notifies && s.listener_path().is_none() {
        bail!("linux.seccomp uses SCMP_ACT_NOTIFY but sets no listenerPath for the seccomp agent");
    }
    if let Some(p) = s.listener_path()
        && !p.is_absolute()
    {
        bail!("linux.seccomp.listenerPath {p:?} must be absolute");
    }
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    let mut ctx = ScmpFilterContext::new(default).context("seccomp_init")?;
    // husk sets no_new_privs itself, from process.noNewPrivileges.
    ctx.set_ctl_nnp(false).context("seccomp: clear the NNP attribute")?;
    for a in s.architectures().iter().flatten() {
        let name = a.to_string();
        let arch =
            ScmpArch::from_str(&name).map_err(|_| anyhow::anyhow!("linux.seccomp.architectures: unknown {name}"))?;
        match ctx.add_arch(arch) {
            Ok(_) => {}
            Err(e) if e.errno() == Some(libseccomp::error::SeccompErrno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("seccomp: add architecture {name}")),
        }
    }
    for f in s.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                ctx.set_ctl_log(true).context("seccomp flag SECCOMP_FILTER_FLAG_LOG")?;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true)
                    .context("seccomp flag SECCOMP_FILTER_FLAG_SPEC_ALLOW")?;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                ctx.set_ctl_waitkill(true).context(
                    "seccomp flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (needs libseccomp 2.6 and Linux 5.19)",
                )?;
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
    Ok(ctx)
}

thread_local! {
    /// The connection to the seccomp agent (listenerPath) and the state to
    /// send it with the notify fd, set up by the init before pivot_root.
    static LISTENER: std::cell::RefCell<Option<(std::os::fd::OwnedFd, String)>> = const { std::cell::RefCell::new(None) };
}

/// Connect to `linux.seccomp.listenerPath` (a host path: call before
/// pivot_root) and remember what to send once the filter is loaded.
pub fn connect_listener(s: &LinuxSeccomp, state: &str, pid: i32) -> Result<()> {
    let Some(path) = s.listener_path() else { return Ok(()) };
    let conn =
        crate::tty::connect(path).with_context(|| format!("connect to the seccomp agent at {}", path.display()))?;
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
pub fn load(ctx: &ScmpFilterContext) -> Result<()> {
    ctx.load().context("load the seccomp filter")?;
    if let Some((conn, msg)) = LISTENER.with(|l| l.borrow_mut().take()) {
        let fd = ctx.get_notify_fd().context("get the seccomp notify fd")?;
        // SAFETY: the fd was just created for us by seccomp; we own it.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
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
        let ctx = build(&s).unwrap();
        let path = std::env::temp_dir().join(format!("husk-seccomp-test-{}", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        ctx.export_bpf(&f).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::remove_file(&path).unwrap();
        // classic BPF instructions are 8 bytes each; rules make several
        assert!(len >= 8 * 10 && len.is_multiple_of(8), "{len}");
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

    #[test]
    fn notify_needs_a_listener() {
        let s = parse(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        let e = format!("{:#}", build(&s).unwrap_err());
        assert!(e.contains("no listenerPath"), "{e}");
        let s = parse(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "relative",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        assert!(format!("{:#}", build(&s).unwrap_err()).contains("must be absolute"));
    }
}
