//! Container escapes runc, crun and youki fixed over the years, each
//! checked from outside: the host must be untouched.
mod common;
use common::*;
use serde_json::json;
use std::process::Command;

/// CVE-2024-21626: a leaked fd to a host directory used as the cwd. husk
/// marks every inherited fd close-on-exec and checks that the cwd lies
/// inside the container's root.
#[test]
fn leaked_fd_cannot_be_the_cwd() {
    let e = Env::new("cwdleak");
    let b = e.bundle("b", &["sh", "-c", "pwd; ls .. | head -3"], |v| {
        v["process"]["cwd"] = json!("/proc/self/fd/7");
    });
    let c = with_leaked_fd(e.cmd(&["run", "-b", b.to_str().unwrap(), &e.id("c")]), 7);
    let o = output_via_files(c, &e.base);
    assert!(
        !o.status.success(),
        "ran with a leaked cwd: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(msg.contains("cwd"), "{msg}");
}

/// CVE-2019-5736 (and its /proc/<pid> cousins): until it execs the
/// entrypoint, the init — a copy of husk — must not be readable through
/// /proc, even by a process of the same (rootless) user. husk sets it
/// non-dumpable; note that the kernel also clears dumpable when the init
/// changes its ids in the user namespace, so this test guards the outcome
/// rather than that one prctl.
#[test]
fn the_waiting_init_is_not_dumpable() {
    const UID: u32 = 54_322;
    let e = Env::new("dumpable");
    let xdg = e.base.join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    std::os::unix::fs::chown(&xdg, Some(UID), Some(UID)).unwrap();
    let rootfs = e.rootfs_for_any_user();
    let b = e.bundle("b", &["true"], |v| {
        v["root"]["path"] = json!(rootfs);
        husk::commands::spec::make_rootless(v, UID, UID)
    });
    let user = |args: &[&str]| as_user(&e, UID, &xdg, args);
    let husk = e.husk_for_any_user();
    let husk = husk.to_str().unwrap();
    let o = user(&[husk, "create", "-b", b.to_str().unwrap(), "d1"]);
    if !rootless_possible(&o, "the rootless init not dumpable (CVE-2019-5736)") {
        return;
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st: serde_json::Value = serde_json::from_slice(&user(&[husk, "state", "d1"]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    // the same user cannot read the init's memory map or open its exe
    let o = user(&["cat", &format!("/proc/{pid}/maps")]);
    let o2 = user(&["cat", &format!("/proc/{pid}/exe")]);
    let _ = Command::new(HUSK)
        .arg("--root")
        .arg(xdg.join("husk"))
        .args(["delete", "-f", "d1"])
        .status();
    assert!(
        !o.status.success(),
        "the init's /proc/{pid}/maps was readable by its user"
    );
    assert!(
        !o2.status.success(),
        "the init's /proc/{pid}/exe was openable by its user"
    );
}

/// CVE-2025-31133: masking must bind the real /dev/null. A rootfs whose
/// /dev/null is a symlink to a host-sensitive file must not turn a masked
/// path into that file.
#[test]
fn masking_uses_the_real_dev_null() {
    let e = Env::new("devnull");
    let rootfs = e.private_rootfs();
    std::fs::create_dir_all(rootfs.join("dev")).unwrap();
    let _ = std::fs::remove_file(rootfs.join("dev/null"));
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", rootfs.join("dev/null")).unwrap();
    let b = e.bundle(
        "b",
        &[
            "sh",
            "-c",
            "echo pwned > /proc/kcore; cat /proc/kcore | head -c 10; echo end",
        ],
        |v| {
            v["root"] = json!({"path": rootfs, "readonly": false});
            // no /dev tmpfs: the rootfs's own /dev is used
            v["mounts"].as_array_mut().unwrap().retain(|m| {
                m["destination"] != "/dev"
                    && m["destination"] != "/dev/pts"
                    && m["destination"] != "/dev/shm"
                    && m["destination"] != "/dev/mqueue"
            });
            v["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
        },
    );
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let o = e.run(&b, &e.id("c"));
    let after = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert_eq!(before, after, "the host's core_pattern changed");
    assert!(
        String::from_utf8_lossy(&o.stdout).ends_with("end\n"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// CVE-2021-30465-style: a bind mount destination through a symlink that
/// points at the host must land inside the rootfs (see also
/// isolation::symlinked_mount_destination_stays_in_rootfs), and a `..`
/// destination is refused outright.
#[test]
fn dotdot_destination_is_refused() {
    let e = Env::new("dotdot");
    let b = e.bundle("b", &["true"], |v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/tmp/../../../../etc", "type": "tmpfs", "source": "tmpfs"}));
    });
    let msg = e.err(&["run", "-b", b.to_str().unwrap(), &e.id("c")]);
    assert!(msg.contains("must not contain"), "{msg}");
}
