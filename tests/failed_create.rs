//! A create that fails at any step leaves nothing behind: no process, no
//! cgroup, no state, and no mount in the host's mount namespace.
mod common;
use common::*;
use serde_json::{Value, json};
use std::path::Path;

/// Mount points at or below `dir` in this (the host's) mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m == dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

/// Detaches whatever a test left mounted on its private rootfs, so that
/// removing the test directory never walks into a mounted /proc or /sys.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        // Deepest first: also what a husk without the fix left behind.
        for _ in 0..4 {
            let mut left = mounts_under(self.0);
            if left.is_empty() {
                return;
            }
            left.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in left {
                let _ = std::process::Command::new("umount").arg("-l").arg(&m).status();
            }
        }
    }
}

/// The default config without a mount namespace, on a private rootfs.
fn no_mount_ns(v: &mut Value, rootfs: &Path) {
    v["root"]["path"] = json!(rootfs);
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
}

/// runc bind-mounts the rootfs onto itself first, so `root.readonly`
/// has a mount to remount even without a mount namespace. (Before:
/// "remount the root read-only (root.readonly): EINVAL", and the 17
/// mounts made until then stayed in the host.) delete detaches the
/// container's mounts from the host's namespace (before: they stayed).
#[test]
fn readonly_root_without_a_mount_namespace() {
    let e = Env::new("romntns");
    let rootfs = e.private_rootfs();
    let _u = Unmount(&rootfs);
    let b = e.bundle("b", &["sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro"], |v| {
        no_mount_ns(v, &rootfs);
        v["root"]["readonly"] = json!(true);
    });
    let o = e.run(&b, &e.id("a"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ro\n");
    // run deleted the container: its mounts in the host's namespace too.
    assert_eq!(mounts_under(&rootfs), Vec::<String>::new());
    // create, start, delete alike.
    let id = e.id("b");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(!mounts_under(&rootfs).is_empty(), "no mounts while created?");
    e.ok(&["start", &id]);
    e.wait_status(&id, "stopped");
    e.ok(&["delete", &id]);
    assert_eq!(mounts_under(&rootfs), Vec::<String>::new());
}

/// Failures after the mounts (the executable is missing; a mount the
/// kernel refuses after proc and the rest were mounted): create fails and
/// the host keeps none of the container's mounts, no state, no cgroup.
#[test]
fn failed_create_without_a_mount_namespace_leaves_no_mounts() {
    let e = Env::new("failmnt");
    let rootfs = e.private_rootfs();
    let _u = Unmount(&rootfs);
    let bad_exec = e.bundle("exec", &["/no/such/program"], |v| no_mount_ns(v, &rootfs));
    let bad_mount = e.bundle("mount", &["true"], |v| {
        no_mount_ns(v, &rootfs);
        v["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["bogusopt42"]
        }));
    });
    for (b, want) in [(bad_exec, "/no/such/program"), (bad_mount, "/mnt")] {
        let id = e.id(b.file_name().unwrap().to_str().unwrap());
        let err = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
        assert!(err.contains(want), "{err}");
        assert_eq!(mounts_under(&rootfs), Vec::<String>::new(), "after: {err}");
        assert!(!e.root.join(&id).exists(), "state left behind");
        assert_eq!(
            default_cgroup_dirs_left(&id),
            Vec::<std::path::PathBuf>::new(),
            "cgroups left behind"
        );
    }
}

/// A rootfs whose /proc or /sys is a symlink (or a file): refused as runc
/// refuses it, naming the filesystem and the path; before, husk mounted
/// through the symlink.
#[test]
fn proc_or_sys_on_a_symlink_is_refused() {
    let e = Env::new("procsymlink");
    let rootfs = e.private_rootfs();
    for (dir, fs) in [("proc", "proc"), ("sys", "sysfs")] {
        let path = rootfs.join(dir);
        std::fs::remove_dir_all(&path).unwrap();
        std::fs::create_dir_all(rootfs.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", &path).unwrap();
        let b = e.bundle(dir, &["true"], |v| v["root"]["path"] = json!(rootfs));
        let id = e.id(dir);
        let err = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
        assert!(
            err.contains(&format!(
                "filesystem \"{fs}\" must be mounted on an ordinary directory: /{dir}"
            )),
            "{err}"
        );
        assert!(!e.root.join(&id).exists(), "state left behind");
        // A file there is refused too.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        let err = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
        assert!(err.contains("not a directory"), "{err}");
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
    }
    assert!(std::fs::read_dir(rootfs.join("elsewhere")).unwrap().next().is_none());
}

/// The last step of create failing (the pid file cannot be put in place:
/// its path is a directory) undoes everything: init, cgroup, state and the
/// temporary pid file.
#[test]
fn failed_pid_file_leaves_nothing() {
    let e = Env::new("pidfilefail");
    let b = e.bundle("b", &["true"], |_| {});
    let pid_dir = e.base.join("pids");
    let target = pid_dir.join("taken");
    std::fs::create_dir_all(target.join("sub")).unwrap();
    let id = e.id("a");
    let err = e.err(&[
        "create",
        "--pid-file",
        target.to_str().unwrap(),
        "-b",
        b.to_str().unwrap(),
        &id,
    ]);
    assert!(err.contains("pid file"), "{err}");
    assert!(!e.root.join(&id).exists(), "state left behind");
    assert_eq!(
        default_cgroup_dirs_left(&id),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left behind"
    );
    let left: Vec<_> = std::fs::read_dir(&pid_dir)
        .unwrap()
        .flatten()
        .map(|d| d.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("taken")]);
}
