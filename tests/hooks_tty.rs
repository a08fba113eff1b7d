//! Hooks at their moments, and the console socket handing over a pty.
mod common;
use common::*;
use serde_json::json;

fn hook(script: String) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    let e = Env::new("hooks");
    let log = e.base.join("hooks.log");
    let l = log.display().to_string();
    // Each host-side hook records its name and the status from its stdin.
    let rec = |name: &str| {
        hook(format!(
            "echo {name} $(grep -o '\"status\":\"[a-z]*\"' | head -1) >> {l}"
        ))
    };
    let hookdir = e.base.join("hookdir");
    std::fs::create_dir_all(&hookdir).unwrap();
    let b = e.bundle("b", &["sleep", "100"], |v| {
        v["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hooklog", "type": "bind", "source": hookdir, "options": ["rbind"]}));
        v["hooks"] = json!({
            "prestart": [rec("prestart")],
            // runs in the container after pivot_root: its path is the container's /bin/sh
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer $(hostname) > /hooklog/start"]}],
            "createRuntime": [rec("createRuntime")],
            "poststart": [rec("poststart")],
            "poststop": [rec("poststop")],
            // runs in the container's namespaces before pivot_root: sees the host fs
            "createContainer": [hook(format!("echo createContainer $(hostname) >> {l}"))],
        });
    });
    let id = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    e.ok(&["start", &id]);
    e.ok(&["kill", &id, "KILL"]);
    e.wait_status(&id, "stopped");
    e.ok(&["delete", &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text,
        "prestart \"status\":\"created\"\ncreateRuntime \"status\":\"creating\"\ncreateContainer husk\npoststart \"status\":\"running\"\npoststop \"status\":\"stopped\"\n"
    );
    assert_eq!(
        std::fs::read_to_string(hookdir.join("start")).unwrap(),
        "startContainer husk\n"
    );
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    let e = Env::new("hookfail");
    let b = e.bundle("b", &["true"], |v| {
        v["hooks"] = json!({"createRuntime": [hook("echo broken >&2; exit 3".into())]});
    });
    let id = e.id("c");
    let msg = e.err(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(msg.contains("createRuntime hook #0") && msg.contains("broken"), "{msg}");
    assert!(!e.root.join(&id).exists());
}

#[test]
fn hook_timeout_kills_it() {
    let e = Env::new("hooktime");
    let b = e.bundle("b", &["true"], |v| {
        let mut h = hook("sleep 100".into());
        h["timeout"] = json!(1);
        v["hooks"] = json!({"createRuntime": [h]});
    });
    let msg = e.err(&["create", "-b", b.to_str().unwrap(), &e.id("c")]);
    assert!(msg.contains("timed out"), "{msg}");
}

/// Annotations of about 200 KiB: the state JSON on a hook's stdin is then
/// more than a pipe holds (64 KiB).
fn big_annotations() -> serde_json::Value {
    json!({"org.example.big": "x".repeat(200 * 1024)})
}

/// Run husk to completion within `limit`, or kill it and fail: a hang is a
/// test failure, not a stuck test run.
fn husk_within(e: &Env, args: &[&str], limit: std::time::Duration) -> std::process::Output {
    let out = e.base.join("bounded.out");
    let err = e.base.join("bounded.err");
    let mut c = e.cmd(args);
    c.stdout(std::fs::File::create(&out).unwrap());
    c.stderr(std::fs::File::create(&err).unwrap());
    let t0 = std::time::Instant::now();
    let mut child = c.spawn().unwrap();
    let mut status = None;
    let finished = wait_for(limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if finished.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("husk {args:?} did not finish within {limit:?}");
    }
    let o = std::process::Output {
        status: status.unwrap(),
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    };
    eprintln!("husk {args:?} took {:?}", t0.elapsed());
    o
}

#[test]
fn hook_that_never_reads_its_stdin_still_times_out() {
    let e = Env::new("hookstdin");
    let b = e.bundle("b", &["true"], |v| {
        v["annotations"] = big_annotations();
        let mut h = hook("exec sleep 30".into());
        h["timeout"] = json!(2);
        v["hooks"] = json!({"createRuntime": [h]});
    });
    let id = e.id("c");
    let o = husk_within(
        &e,
        &["create", "-b", b.to_str().unwrap(), &id],
        std::time::Duration::from_secs(20),
    );
    let msg = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains(
            "createRuntime hook #0 (/bin/sh): timed out after 2s and was killed (it had not taken its state from stdin"
        ),
        "{msg}"
    );
    assert!(!e.root.join(&id).exists(), "state left behind");
}

#[test]
fn hook_reading_a_big_state_from_stdin_succeeds() {
    let e = Env::new("hookbigstate");
    let count = e.base.join("count");
    let b = e.bundle("b", &["true"], |v| {
        v["annotations"] = big_annotations();
        // Take the state slowly, in small reads, well within the timeout.
        let mut h = hook(format!("dd bs=512 2>/dev/null | wc -c > {}", count.display()));
        h["timeout"] = json!(10);
        // One that exits without reading: its EPIPE is not an error.
        let quick = hook("exit 0".into());
        v["hooks"] = json!({"prestart": [quick.clone()], "createRuntime": [h, quick]});
    });
    let id = e.id("c");
    let o = husk_within(
        &e,
        &["create", "-b", b.to_str().unwrap(), &id],
        std::time::Duration::from_secs(20),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n: usize = std::fs::read_to_string(&count).unwrap().trim().parse().unwrap();
    assert!(n > 200 * 1024, "the hook read {n} bytes");
    e.ok(&["delete", "--force", &id]);
}

/// A timeout too long for the clock to count is no deadline, not a panic.
#[test]
fn huge_hook_timeout_is_no_deadline() {
    let e = Env::new("hookhuge");
    let b = e.bundle("b", &["true"], |v| {
        let mut h = hook("cat > /dev/null".into());
        h["timeout"] = json!(i64::MAX);
        v["hooks"] = json!({"createRuntime": [h]});
    });
    let id = e.id("c");
    let o = e.husk(&["create", "-b", b.to_str().unwrap(), &id]);
    assert!(
        o.status.success(),
        "{:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    e.ok(&["delete", "--force", &id]);
}

#[test]
fn console_socket_hands_over_a_pty() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;
    let e = Env::new("tty");
    let sock = e.base.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let b = e.bundle(
        "b",
        &["sh", "-c", "stty size; tty; read x; stty size; echo got $x"],
        |v| {
            v["process"]["terminal"] = json!(true);
            v["process"]["consoleSize"] = json!({"height": 33, "width": 111});
        },
    );
    let id = e.id("c");
    e.ok(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "-b",
        b.to_str().unwrap(),
        &id,
    ]);
    let (conn, _) = listener.accept().unwrap();
    let (name, master) = husk::tty::recv_fd(&conn.into()).unwrap();
    assert!(String::from_utf8_lossy(&name).starts_with("/dev/pts/"));
    e.ok(&["start", &id]);
    let mut m = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    // Wait for the first size and the tty name (the shell is now reading).
    while !String::from_utf8_lossy(&out).contains("/dev/pts/0") {
        match m.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    // resize the console before answering: the second stty size sees it
    let ws = libc::winsize {
        ws_row: 50,
        ws_col: 150,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on the pty master.
    let r = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&m), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0);
    m.write_all(b"hello\n").unwrap();
    // Read until the container printed its answer (or the pty closes).
    while !String::from_utf8_lossy(&out).contains("got hello") {
        match m.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("33 111"), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("got hello"), "{text}");
    assert!(text.contains("50 150"), "{text}");
}

#[test]
fn run_relays_a_terminal_without_console_socket() {
    use std::io::Write;
    let e = Env::new("relay");
    let b = e.bundle("b", &["sh"], |v| {
        v["process"]["terminal"] = json!(true);
    });
    let out = e.base.join("relay-out");
    let mut c = e.cmd(&["run", "-b", b.to_str().unwrap(), &e.id("c")]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&out).unwrap());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"tty; echo sum-$((40+2)); exit 5\n")
        .unwrap();
    let st = child.wait().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(st.code(), Some(5), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("sum-42"), "{text}");
}

#[test]
fn recvtty_helper_relays_the_console() {
    use std::io::Write;
    let e = Env::new("recvtty");
    let sock = e.base.join("c.sock");
    let out = e.base.join("out");
    let mut helper = std::process::Command::new(env!("CARGO_BIN_EXE_husk-recvtty"))
        .arg(&sock)
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    wait_for(std::time::Duration::from_secs(5), || sock.exists()).expect("helper never listened");
    let b = e.bundle("b", &["sh", "-c", "read x; echo got-$x; tty"], |v| {
        v["process"]["terminal"] = json!(true);
    });
    let id = e.id("c");
    e.ok(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "-b",
        b.to_str().unwrap(),
        &id,
    ]);
    e.ok(&["start", &id]);
    helper.stdin.take().unwrap().write_all(b"ping\n").unwrap();
    e.wait_status(&id, "stopped");
    e.ok(&["delete", &id]);
    assert!(helper.wait().unwrap().success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("got-ping") && text.contains("/dev/pts/0"), "{text}");
}

#[test]
fn notify_socket_is_relayed_after_ready() {
    use std::os::unix::net::UnixDatagram;
    let e = Env::new("notify");
    let host_sock = e.base.join("host-notify.sock");
    let host = UnixDatagram::bind(&host_sock).unwrap();
    let b = e.bundle(
        "b",
        &[
            "sh",
            "-c",
            "echo $NOTIFY_SOCKET; test -d /run/notify && echo mounted; sleep 100",
        ],
        |_| {},
    );
    let id = e.id("c");
    let mut create = e.cmd(&["create", "-b", b.to_str().unwrap(), &id]);
    create.env("NOTIFY_SOCKET", &host_sock);
    let out = e.base.join("container-out");
    create.stdout(std::fs::File::create(&out).unwrap());
    assert!(create.status().unwrap().success());
    // start waits for READY=1 from the container's socket
    let mut start = e.cmd(&["start", &id]).spawn().unwrap();
    let inner = e.root.join(&id).join("notify/notify.sock");
    wait_for(std::time::Duration::from_secs(5), || {
        std::fs::read_to_string(&out)
            .map(|t| t.contains("mounted"))
            .unwrap_or(false)
    })
    .expect("container did not see its notify socket");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("/run/notify/notify.sock\n"), "{text}");
    // Send READY=1 as the container would (the same socket, bound into it).
    UnixDatagram::unbound().unwrap().send_to(b"READY=1", &inner).unwrap();
    assert!(start.wait().unwrap().success());
    let mut buf = [0u8; 256];
    let n = host.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]);
    let pid = e.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(msg, format!("READY=1\nMAINPID={pid}"));
}

/// runtime-spec 1.3 (runtime.md, lifecycle step 9): a failing poststart
/// hook makes `start` fail and the container is stopped; `delete` then
/// destroys it and runs the poststop hooks. (runc 1.5 does the same; spec
/// 1.0–1.2 and runtime-tools' poststart_fail asked for a warning.) Hooks
/// after the failing one do not run, as runc. `run` fails the same way
/// and leaves nothing.
#[test]
fn failing_poststart_hook_fails_start_and_stops_the_container() {
    let e = Env::new("poststartfail");
    let log = e.base.join("hooks.log");
    let l = log.display().to_string();
    let b = e.bundle("b", &["sleep", "1000"], |v| {
        v["hooks"] = json!({
            "poststart": [hook("echo bad poststart >&2; exit 4".into()), hook(format!("echo poststart2 >> {l}"))],
            "poststop": [hook(format!("echo poststop >> {l}"))],
        });
    });
    let id = e.id("c");
    e.ok(&["create", "-b", b.to_str().unwrap(), &id]);
    let init = e.state(&id)["pid"].as_i64().unwrap();
    let msg = e.err(&["start", &id]);
    assert!(
        msg.contains("poststart hook #0 (/bin/sh)")
            && msg.contains("bad poststart")
            && msg.contains("the container was stopped"),
        "{msg}"
    );
    assert_eq!(e.status(&id), "stopped");
    assert!(!std::path::Path::new(&format!("/proc/{init}")).exists() || e.status(&id) == "stopped");
    assert!(!log.exists(), "a hook after the failing one ran");
    e.ok(&["delete", &id]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "poststop\n");
    // run: the same error, nothing left
    let id = e.id("r");
    let o = e.run(&b, &id);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("poststart hook #0"),
        "{o:?}"
    );
    assert!(e.err(&["state", &id]).contains("does not exist"));
    assert_eq!(default_cgroup_dirs_left(&id), Vec::<std::path::PathBuf>::new());
}

/// With a terminal, the container's /dev/console is its pty (runc and
/// crun bind the pty onto it): a character device, the same one as stdin.
#[test]
fn terminal_is_bound_onto_dev_console() {
    use std::io::Write;
    let e = Env::new("console");
    let b = e.bundle("b", &["sh"], |v| {
        v["process"]["terminal"] = json!(true);
    });
    let out = e.base.join("console-out");
    let mut c = e.cmd(&["run", "-b", b.to_str().unwrap(), &e.id("c")]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&out).unwrap());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"[ -c /dev/console ] && echo console-is-chardev; echo dev-$(stat -L -c %t:%T /dev/console)-; echo in-$(stat -L -c %t:%T /proc/self/fd/0)-; exit 0\n")
        .unwrap();
    let st = child.wait().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(st.code(), Some(0), "{text}");
    assert!(text.contains("console-is-chardev"), "{text}");
    let field = |prefix: &str| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .filter_map(|r| r.strip_suffix('-'))
            .find(|r| r.contains(':'))
            .unwrap_or_else(|| panic!("no {prefix} line: {text}"))
            .to_string()
    };
    assert_eq!(field("dev-"), field("in-"), "{text}");
}

/// A pty from openpty(3), its master and slave, for a terminal-bound
/// process started by a test.
fn openpty(rows: u16, cols: u16) -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut m, mut s) = (0, 0);
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills two ints; name and termios are not wanted.
    let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned two new fds that we own.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(m),
            std::os::fd::OwnedFd::from_raw_fd(s),
        )
    }
}

/// `exec -t` without --console-socket, on a terminal: husk relays the
/// container's pty itself (as runc does, and as `run` does): input, output,
/// the window size and the exit code.
#[test]
fn exec_tty_relays_the_terminal_without_console_socket() {
    use std::io::{Read, Write};
    let e = Env::new("exectty");
    let b = e.bundle("b", &["sleep", "1000"], |_| {});
    let id = e.id("c");
    e.ok(&["run", "-d", "-b", b.to_str().unwrap(), &id]);
    let (master, slave) = openpty(27, 91);
    let mut c = e.cmd(&[
        "exec",
        "-t",
        &id,
        "sh",
        "-c",
        "tty; stty size; read x; echo got-$x; exit 6",
    ]);
    c.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    let mut child = c.spawn().unwrap();
    drop(slave);
    let mut m = std::fs::File::from(master);
    // Read in a thread until the pty closes (EIO once husk has exited).
    let mut reader = m.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut out = Vec::new();
    let wait_text = |want: &str, out: &mut Vec<u8>| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !String::from_utf8_lossy(out).contains(want) {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => out.extend(chunk),
                Err(_) => break,
            }
        }
    };
    wait_text("27 91", &mut out);
    m.write_all(b"hello\n").unwrap();
    wait_text("got-hello", &mut out);
    let mut status = None;
    let done = wait_for(std::time::Duration::from_secs(10), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if done.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(status.and_then(|s| s.code()), Some(6), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("27 91"), "{text}");
    assert!(text.contains("got-hello"), "{text}");
}
