//! husk run by a non-root user: a user namespace mapping the caller's own
//! id, state under $XDG_RUNTIME_DIR/husk, no cgroup unless one is writable.
mod common;
use common::*;
use serde_json::json;
use std::process::Command;

const UID: u32 = 54_321;

fn as_user(e: &Env, xdg: &std::path::Path, args: &[&str]) -> std::process::Output {
    let husk = e.husk_for_any_user();
    let mut all = vec![husk.to_str().unwrap()];
    all.extend_from_slice(args);
    common::as_user(e, UID, xdg, &all)
}

fn rootless_bundle(
    e: &Env,
    name: &str,
    args: &[&str],
    edit: impl FnOnce(&mut serde_json::Value),
) -> std::path::PathBuf {
    let rootfs = e.rootfs_for_any_user();
    e.bundle(name, args, |v| {
        v["root"]["path"] = json!(rootfs);
        husk::commands::spec::make_rootless(v, UID, UID);
        edit(v);
    })
}

/// A directory of the test's own, owned by the user.
fn user_dir(e: &Env, name: &str) -> std::path::PathBuf {
    let d = e.base.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(UID), Some(UID)).unwrap();
    d
}

struct KillAll(std::path::PathBuf);
impl Drop for KillAll {
    fn drop(&mut self) {
        let root = self.0.join("husk");
        if let Ok(rd) = std::fs::read_dir(&root) {
            for d in rd.flatten() {
                let _ = Command::new(HUSK)
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "-f"])
                    .arg(d.file_name())
                    .status();
            }
        }
    }
}

#[test]
fn a_non_root_user_runs_a_container() {
    let e = Env::new("rootless");
    let xdg = user_dir(&e, "xdg");
    let _guard = KillAll(xdg.clone());
    let b = rootless_bundle(
        &e,
        "a",
        &[
            "sh",
            "-c",
            // The topmost mount at /sys/fs/cgroup and at every hierarchy
            // must be read-only (CVE-2023-25809): the spec's /sys is an
            // `rbind,ro` of the host's, read-only at its top only (runc's
            // meaning), and its cgroup mount covers the hierarchies.
            "id -u; tr -s ' ' < /proc/self/uid_map; hostname; echo $$; \
             awk '$2 ~ /^\\/sys\\/fs\\/cgroup/ {o[$2]=$4} END {n=0; t=0; for (k in o) {t++; if (o[k] !~ /^ro/) n++}; print (t > 0) \" \" n}' /proc/self/mounts",
        ],
        |_| {},
    );
    let o = as_user(&e, &xdg, &["run", "-b", b.to_str().unwrap(), "r1"]);
    if !rootless_possible(&o, "rootless containers (tests/rootless.rs)") {
        return;
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("0\n 0 {UID} 1\nhusk\n1\n1 0\n")
    );

    // create/state/kill/delete with the state under $XDG_RUNTIME_DIR/husk
    let b = rootless_bundle(&e, "b", &["sleep", "100"], |_| {});
    let o = as_user(&e, &xdg, &["run", "-d", "-b", b.to_str().unwrap(), "r2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(xdg.join("husk/r2/state.json").exists());
    let st: serde_json::Value = serde_json::from_slice(&as_user(&e, &xdg, &["state", "r2"]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    assert!(as_user(&e, &xdg, &["kill", "r2", "KILL"]).status.success());
    wait_for(std::time::Duration::from_secs(10), || {
        serde_json::from_slice::<serde_json::Value>(&as_user(&e, &xdg, &["state", "r2"]).stdout)
            .map(|v| v["status"] == "stopped")
            .unwrap_or(false)
    })
    .expect("never stopped");
    assert!(as_user(&e, &xdg, &["delete", "r2"]).status.success());
    assert!(!xdg.join("husk/r2").exists());
}

#[test]
fn rootless_limits_without_a_delegated_cgroup_fail_clearly() {
    let e = Env::new("rootlesscg");
    let xdg = user_dir(&e, "xdg");
    let _guard = KillAll(xdg.clone());
    let b = rootless_bundle(&e, "a", &["true"], |v| {
        v["linux"]["resources"] = json!({"pids": {"limit": 10}});
    });
    let o = as_user(&e, &xdg, &["run", "-b", b.to_str().unwrap(), "r1"]);
    assert!(!o.status.success());
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(msg.contains("rootless") && msg.contains("delegated"), "{msg}");
    assert!(!xdg.join("husk/r1").exists());
}

/// `exec` by the user who made the container: it joins the container's pid
/// namespace (which an unprivileged caller may only do from inside the
/// container's user namespace, so the exec process forks once more there),
/// gives the command's exit status back, and a detached exec's pid file
/// names the process that runs the command.
#[test]
fn a_non_root_user_execs_into_its_container() {
    let e = Env::new("rootlessexec");
    let xdg = user_dir(&e, "xdg");
    let _guard = KillAll(xdg.clone());
    let b = rootless_bundle(&e, "a", &["sleep", "1000"], |_| {});
    let o = as_user(&e, &xdg, &["run", "-d", "-b", b.to_str().unwrap(), "rx"]);
    if !rootless_possible(&o, "rootless exec (tests/rootless.rs)") {
        return;
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // in the container's pid namespace: the init is its pid 1
    let o = as_user(
        &e,
        &xdg,
        &[
            "exec",
            "rx",
            "sh",
            "-c",
            "id -u; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 7",
        ],
    );
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\nsleep 1000 \n");
    // detached, with a pid file: the host pid of the command, in the container
    let pid_file = xdg.join("exec.pid");
    let o = as_user(
        &e,
        &xdg,
        &[
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "rx",
            "sleep",
            "999",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\0999\0");
    let st: serde_json::Value = serde_json::from_slice(&as_user(&e, &xdg, &["state", "rx"]).stdout).unwrap();
    let init = st["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap()
    );
    assert!(as_user(&e, &xdg, &["delete", "-f", "rx"]).status.success());
}

/// `spec` keeps no state: a user without XDG_RUNTIME_DIR (a `su`, a cron
/// job) gets a rootless spec without giving --root, as from runc; a
/// command that reads containers still says what to give.
#[test]
fn a_user_without_xdg_runtime_dir_writes_a_spec() {
    let e = Env::new("rootless-noxdg");
    let dir = user_dir(&e, "spec");
    let husk = e.husk_for_any_user();
    let user = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &UID.to_string(),
            "--regid",
            &UID.to_string(),
            "--clear-groups",
        ])
        .arg(&husk)
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(std::process::Stdio::null());
        output_via_files(c, &e.base)
    };
    let o = user(&["spec", "--rootless", "-b", dir.to_str().unwrap()]);
    assert!(o.status.success(), "spec: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["linux"]["uidMappings"][0]["hostID"], json!(UID), "{v}");
    let o = user(&["list"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("XDG_RUNTIME_DIR is not set: give --root DIR"), "{err}");
}
