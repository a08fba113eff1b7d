//! The bpf(2) calls for cgroup device programs: load, attach to a cgroup
//! directory, and replace (query + detach) programs attached earlier.

use crate::sys::ErrnoResult as _;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::devices::BpfInsn;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _rest: [u64; 8],
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _rest: [u32; 11],
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    _rest: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    _rest: [u32; 13],
}

/// bpf(2) with an attribute struct; returns the syscall's result.
///
/// # Safety
/// `attr` must be the `#[repr(C)]` `bpf_attr` variant `cmd` reads, and
/// every pointer stored in it must point to memory that stays alive (and,
/// for buffers the kernel fills, writable) for the duration of the call.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
    let size =
        libc::c_uint::try_from(std::mem::size_of::<T>()).map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?;
    // SAFETY: `attr` is valid for `size` bytes for the duration of the
    // call; the caller guarantees its layout and the pointers inside it.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T as *mut libc::c_void, size) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> Result<OwnedFd> {
    let fd = i32::try_from(r).context("bpf returned an out-of-range fd")?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Load a BPF_PROG_TYPE_CGROUP_DEVICE program; the verifier log is part
/// of the error when the kernel rejects it.
pub fn load_device_program(insns: &[BpfInsn]) -> Result<OwnedFd> {
    let license = c"Apache";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).context("device program too long")?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: u32::try_from(log.len()).context("verifier log buffer too large")?,
        log_buf: log.as_mut_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..7].copy_from_slice(b"husk_dv");
    // SAFETY: a ProgLoadAttr for BPF_PROG_LOAD; insns, license and log
    // outlive the call.
    match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => fd_from(fd),
        Err(e) => {
            let text = CStr::from_bytes_until_nul(&log)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            bail!(
                "cannot load the device cgroup eBPF program: {}; verifier log: {text}",
                crate::sys::errno_text(&e)
            )
        }
    }
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    let f = std::fs::File::open(dir)
        .errno()
        .with_context(|| format!("open {}", dir.display()))?;
    Ok(OwnedFd::from(f))
}

/// IDs of the device programs attached to a cgroup directly.
fn query(cg: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: u32::try_from(ids.len()).context("program id buffer too large")?,
        ..Default::default()
    };
    // SAFETY: a QueryAttr for BPF_PROG_QUERY; `ids` outlives the call and
    // holds prog_cnt entries.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }
        .errno()
        .context("query the device programs of the cgroup")?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Attach `insns` as the device program of the cgroup at `dir`, replacing
/// device programs attached to it before (the new one is attached first,
/// so there is no moment without a filter).
pub fn set_device_program(dir: &Path, insns: &[BpfInsn]) -> Result<()> {
    let prog = load_device_program(insns)?;
    let cg = open_dir(dir)?;
    let old = query(&cg).unwrap_or_default();
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: an AttachAttr for BPF_PROG_ATTACH (fds only, no pointers).
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }
        .errno()
        .with_context(|| format!("attach the device eBPF program to {}", dir.display()))?;
    for id in old {
        let mut ga = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        // SAFETY: a GetFdAttr for BPF_PROG_GET_FD_BY_ID (no pointers).
        let r = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut ga) };
        let old_fd = fd_from(r.errno().with_context(|| format!("open the old device program {id}"))?)?;
        let mut da = AttachAttr {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        // SAFETY: an AttachAttr for BPF_PROG_DETACH (fds only, no pointers).
        unsafe { bpf(BPF_PROG_DETACH, &mut da) }
            .errno()
            .with_context(|| format!("detach the old device program {id} from {}", dir.display()))?;
    }
    Ok(())
}

/// Number of device programs attached directly to the cgroup at `dir`.
pub fn attached_device_programs(dir: &Path) -> Result<usize> {
    let cg = open_dir(dir)?;
    Ok(query(&cg)?.len())
}
