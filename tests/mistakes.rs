//! The most common bundle mistakes and the exact words husk answers with
//! (the README's table of mistakes is this list).
mod common;
use common::*;
use serde_json::{Value, json};

type Edit = Box<dyn Fn(&mut Value, &std::path::Path)>;

#[test]
fn common_mistakes_get_clear_messages() {
    let e = Env::new("mistakes");
    // A rootfs copy we can break in various ways.
    let rootfs = e.private_rootfs();
    std::fs::write(rootfs.join("not-exec"), "data").unwrap();
    std::fs::write(rootfs.join("script"), "#!/bin/bash\necho hi\n").unwrap();
    let mut perm = std::fs::metadata(rootfs.join("script")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(rootfs.join("script"), perm.clone()).unwrap();
    std::fs::copy("/bin/ls", rootfs.join("dynamic-ls")).unwrap();
    std::fs::set_permissions(rootfs.join("dynamic-ls"), perm).unwrap();
    let r = rootfs.clone();
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "no rootfs",
            Box::new(|v, _| v["root"]["path"] = json!("/nonexistent/rootfs")),
            "root.path /nonexistent/rootfs does not exist",
        ),
        (
            "empty args",
            Box::new(|v, _| v["process"]["args"] = json!([])),
            "process.args must not be empty",
        ),
        (
            "not in PATH",
            Box::new(|v, _| v["process"]["args"] = json!(["nosuch"])),
            "exec: \"nosuch\": executable file not found in $PATH",
        ),
        (
            "missing path",
            Box::new(|v, _| v["process"]["args"] = json!(["/bin/nosuch"])),
            "exec: \"/bin/nosuch\": no such file or directory",
        ),
        (
            "not executable",
            Box::new(|v, _| v["process"]["args"] = json!(["/not-exec"])),
            "exec: \"/not-exec\": permission denied",
        ),
        (
            "script interpreter missing",
            Box::new(|v, _| v["process"]["args"] = json!(["/script"])),
            "exec: \"/script\": no such file or directory (hint: /script exists, but the program it needs to start, /bin/bash, is missing",
        ),
        (
            "dynamic loader missing",
            Box::new(|v, _| v["process"]["args"] = json!(["/dynamic-ls"])),
            "exec: \"/dynamic-ls\": no such file or directory (hint: /dynamic-ls exists, but the program it needs to start, /lib64/ld-linux-x86-64.so.2, is missing",
        ),
        (
            "cwd missing",
            Box::new(|v, _| v["process"]["cwd"] = json!("/no/such")),
            "chdir to cwd (\"/no/such\") set in config.json failed: no such file or directory",
        ),
        (
            "relative cwd",
            Box::new(|v, _| v["process"]["cwd"] = json!("tmp")),
            "process.cwd \"tmp\" must be an absolute path",
        ),
        (
            "relative mount destination",
            Box::new(|v, _| v["mounts"][1]["destination"] = json!("dev")),
            "mounts[1].destination \"dev\" must be absolute",
        ),
        (
            "bind source missing",
            Box::new(|v, _| {
                v["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/data", "type": "bind", "source": "/no/such/dir", "options": ["rbind"]}),
                )
            }),
            "mounts[7]: mount /no/such/dir on /data (type bind): open bind source /no/such/dir",
        ),
        (
            "unknown capability",
            Box::new(|v, _| v["process"]["capabilities"]["bounding"] = json!(["CAP_NOPE"])),
            "CAP_NOPE",
        ),
        (
            "unknown namespace",
            Box::new(|v, _| v["linux"]["namespaces"] = json!([{"type": "bogus"}])),
            "unknown variant `bogus`",
        ),
        (
            "duplicate namespace",
            Box::new(|v, _| v["linux"]["namespaces"] = json!([{"type": "uts"}, {"type": "uts"}])),
            "linux.namespaces[1]: duplicate namespace type uts",
        ),
        (
            "user namespace without maps",
            Box::new(|v, _| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}))
            }),
            "linux.uidMappings is required with a new user namespace",
        ),
        (
            "hostname without uts",
            Box::new(|v, _| v["linux"]["namespaces"] = json!([{"type": "mount"}])),
            "hostname is set but the config has no uts namespace",
        ),
        (
            "host sysctl",
            Box::new(|v, _| v["linux"]["sysctl"] = json!({"vm.swappiness": "10"})),
            "linux.sysctl \"vm.swappiness\" is not namespaced: a container may not set it",
        ),
        (
            "net sysctl without netns",
            Box::new(|v, _| {
                v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
                v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            }),
            "linux.sysctl \"net.ipv4.ip_forward\" needs a network namespace",
        ),
        (
            "terminal without console socket",
            Box::new(|v, _| v["process"]["terminal"] = json!(true)),
            "process.terminal is true but no --console-socket was given",
        ),
        (
            "kernel rejects a limit",
            Box::new(|v, _| v["linux"]["resources"]["cpu"] = json!({"cpus": "4095"})),
            "cannot set cpuset cpus: write 4095 to /sys/fs/cgroup/cpuset/husk/",
        ),
    ];
    for (i, (name, edit, want)) in cases.iter().enumerate() {
        let b = e.bundle(&format!("m{i}"), &["true"], |v| {
            v["root"] = json!({"path": r, "readonly": true});
            edit(v, &r);
        });
        let id = e.id(&format!("m{i}"));
        let msg = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
        assert!(msg.contains(want), "{name}: {msg:?}\n  does not contain {want:?}");
        assert!(!e.root.join(&id).exists(), "{name}: state left behind");
    }
    // Mistakes on the command line.
    let b = e.bundle("ok", &["sleep", "100"], |v| v["root"]["path"] = json!(r));
    let id = e.id("ok");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    assert!(
        e.err(&["create", "-b", b.to_str().unwrap(), &id])
            .contains(&format!("container with id {id:?} already exists"))
    );
    assert!(e.err(&["delete", &id]).contains(&format!(
        "cannot delete container {id:?} that is not stopped: running (use --force)"
    )));
    assert!(
        e.err(&["start", &id])
            .contains("cannot start an already running container")
    );
    assert!(
        e.err(&["state", "nosuch"])
            .contains("container \"nosuch\" does not exist")
    );
    assert!(e.err(&["kill", &id, "SIGFOO"]).contains("unknown signal \"SIGFOO\""));
    let nocfg = e.base.join("empty");
    std::fs::create_dir_all(&nocfg).unwrap();
    assert!(
        e.err(&["create", "-b", nocfg.to_str().unwrap(), &e.id("x")])
            .contains("config.json: No such file or directory")
    );
}

/// The error is printed bare on one line, as runc prints it: managers put
/// the runtime's name in front themselves (podman said "husk: husk: ...").
#[test]
fn error_line_is_bare_like_runc() {
    let e = Env::new("bare-error");
    let err = e.err(&["delete", "nosuch"]);
    assert_eq!(err, "container \"nosuch\" does not exist\n", "stderr was {err:?}");
}
