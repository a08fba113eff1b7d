//! `husk checkpoint` / `husk restore` on this host, where CRIU itself does
//! not work (Debian's criu 3.17 fails `criu check` on this kernel): the
//! flags husk refuses, a missing criu, criu's refusal quoted with its log,
//! and the stdio reopening that makes a container checkpointable. The
//! checkpoints and restores themselves run in the cgroup v2 guest
//! (`make test-checkpoint`, integration/checkpoint).
mod common;
use common::*;
use std::time::Duration;

fn running_counter(e: &Env, name: &str) -> (std::path::PathBuf, String) {
    // a cgroup namespace: on this hybrid host husk describes no cgroup
    // mount to criu otherwise (an error of its own)
    let b = e.bundle(name, &["sh", "-c", "while :; do sleep 1; done"], |v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "cgroup"}));
    });
    let id = e.id(name);
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    e.wait_status(&id, "running");
    (b, id)
}

#[test]
fn unsupported_flags_are_refused_by_name_and_the_container_runs_on() {
    let e = Env::new("ckflags");
    let (b, id) = running_counter(&e, "c");
    let img = e.base.join("img");
    let img = img.to_str().unwrap();
    for flag in [
        &["--lazy-pages"][..],
        &["--page-server", "127.0.0.1:9"],
        &["--status-fd", "5"],
    ] {
        let mut args = vec!["checkpoint", "--image-path", img];
        args.extend_from_slice(flag);
        args.push(&id);
        let err = e.err(&args);
        assert!(
            err.contains(flag[0]),
            "checkpoint {flag:?}: the error does not name it: {err}"
        );
        assert_eq!(e.status(&id), "running", "after the refused checkpoint {flag:?}");
    }
    let other = e.id("r");
    for flag in ["--lazy-pages", "--no-pivot"] {
        let err = e.err(&["restore", flag, "-b", b.to_str().unwrap(), "--image-path", img, &other]);
        assert!(err.contains(flag), "restore {flag}: the error does not name it: {err}");
        assert!(!e.root.join(&other).exists(), "a refused restore left {other} behind");
    }
    e.ok(&["delete", "--force", &id]);
}

#[test]
fn a_missing_criu_names_the_package() {
    let e = Env::new("cknocriu");
    let (_, id) = running_counter(&e, "c");
    let img = e.base.join("img");
    let err = e.err(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        img.to_str().unwrap(),
        &id,
    ]);
    assert!(err.contains("criu package"), "no package named: {err}");
    assert_eq!(e.status(&id), "running");
    e.ok(&["delete", "--force", &id]);
}

#[test]
fn criu_refusing_is_quoted_with_its_log() {
    let e = Env::new("ckrefuse");
    if !std::path::Path::new("/usr/sbin/criu").exists() {
        not_checked("criu's refusal quoted by checkpoint", "no /usr/sbin/criu on this host");
        return;
    }
    let (_, id) = running_counter(&e, "c");
    let img = e.base.join("img");
    // criu 3.17 fails on this host's kernel (its vdso): the dump fails
    // with a log; where criu works, nothing to check here.
    let o = e.husk(&[
        "--criu",
        "/usr/sbin/criu",
        "checkpoint",
        "--leave-running",
        "--image-path",
        img.to_str().unwrap(),
        &id,
    ]);
    if o.status.success() {
        not_checked("criu's refusal quoted by checkpoint", "criu works on this host");
        e.ok(&["delete", "--force", &id]);
        return;
    }
    let err = String::from_utf8_lossy(&o.stderr);
    let log = img.join("dump.log");
    assert!(
        err.contains(&format!("(log: {})", log.display())),
        "the log is not named: {err}"
    );
    let first = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .find(|l| l.contains("Error ("))
        .map(|l| l.split_once(") ").map_or(l, |(_, r)| r).trim().to_string());
    match first {
        Some(line) => assert!(
            err.contains(&line),
            "criu's first error line {line:?} not quoted: {err}"
        ),
        None => panic!("criu failed without an error line in {}: {err}", log.display()),
    }
    assert_eq!(e.status(&id), "running", "the container after criu's refusal");
    e.ok(&["delete", "--force", &id]);
}

/// fdinfo's mnt_id of fd 0 and of a /dev/null opened in the container.
const NULL_MOUNTS: &str = "a=$(sed -n 's/^mnt_id:[[:space:]]*//p' /proc/$$/fdinfo/0); exec 3</dev/null; b=$(sed -n 's/^mnt_id:[[:space:]]*//p' /proc/$$/fdinfo/3); echo \"$a $b\"";

#[test]
fn stdio_on_dev_null_is_the_containers_dev_null() {
    // As runc: stdio that is the caller's /dev/null (a file of the host's
    // /dev) is reopened from the container's /dev, so every open file is
    // on a mount of the container (CRIU cannot dump it otherwise).
    let e = Env::new("cknull");
    let b = e.bundle("b", &["sh", "-c", NULL_MOUNTS], |_| {});
    let id = e.id("c");
    let o = e.run(&b, &id);
    assert!(o.status.success(), "run: {}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let ids: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(ids.len(), 2, "output: {out:?}");
    assert_eq!(
        ids[0], ids[1],
        "stdin (mount {}) is not the container's /dev/null (mount {})",
        ids[0], ids[1]
    );
    // stdout, a file of the caller, stays what it is
    wait_for(Duration::from_secs(5), || !e.root.join(&id).exists()).ok();
}
