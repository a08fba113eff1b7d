//! The D-Bus client against real peers, without systemd: a private
//! dbus-daemon (Debian's dbus-daemon package; installed if missing), a
//! stand-in for systemd on that bus, and a stand-in for systemd's private
//! socket (a direct connection, no bus daemon). Every daemon and thread is
//! stopped and every directory removed on drop, also when a test fails.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use husk::dbus::{self, Connection, Endpoint, Message, MessageType, Peer, Value};
use husk::systemd::{self, Manager, Property, ScopeSpec};

static N: AtomicUsize = AtomicUsize::new(0);

fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let d = std::env::temp_dir().join(format!("husk-dbus-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

/// A private dbus-daemon, killed on drop.
struct Bus {
    child: Child,
    socket: PathBuf,
    _dir: TempDir,
}

fn ensure_dbus_daemon() {
    let have = || {
        Command::new("dbus-daemon")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have() {
        return;
    }
    // idempotent, as `make deps` does it
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-qq", "dbus-daemon"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    assert!(
        have(),
        "dbus-daemon is missing: run `make deps` (Debian package dbus-daemon)"
    );
}

impl Bus {
    fn start() -> Bus {
        ensure_dbus_daemon();
        let dir = TempDir::new("bus");
        let config = dir.0.join("bus.conf");
        let socket = dir.0.join("bus");
        let log = dir.0.join("stderr");
        std::fs::write(&config, CONFIG.replace("SOCKET", &socket.display().to_string())).unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start dbus-daemon");
        let mut out = child.stdout.take().unwrap();
        let bus = Bus {
            child,
            socket,
            _dir: dir,
        };
        // --print-address prints once the daemon listens: wait for that line
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut line = Vec::new();
        while !line.ends_with(b"\n") {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [nix::poll::PollFd::new(out.as_fd(), nix::poll::PollFlags::POLLIN)];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).unwrap();
            let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
            assert!(n > 0, "dbus-daemon did not print its address within 20 s: {}", stderr());
            let mut b = [0u8; 256];
            let k = out.read(&mut b).unwrap();
            assert!(k > 0, "dbus-daemon exited: {}", stderr());
            line.extend_from_slice(&b[..k]);
        }
        let addr = String::from_utf8_lossy(&line);
        assert!(addr.starts_with("unix:path="), "{addr}");
        assert!(bus.socket.exists());
        bus
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::Path(self.socket.clone())
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn talks_to_a_real_bus() {
    let bus = Bus::start();
    let mut c = Connection::connect_address(&bus.address(), Peer::Bus, uid(), Duration::from_secs(10)).unwrap();
    let me = c.unique_name().expect("Hello gave a unique name").to_string();
    assert!(me.starts_with(':'), "{me}");

    let names = c.call(Message::bus_call("ListNames", vec![])).unwrap();
    let [Value::Array(sig, names)] = names.as_slice() else {
        panic!("ListNames: {names:?}");
    };
    assert_eq!(sig, "s");
    let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
    assert!(
        names.contains(&"org.freedesktop.DBus") && names.contains(&me.as_str()),
        "{names:?}"
    );

    let id = c.call(Message::bus_call("GetId", vec![])).unwrap();
    let id = id.first().and_then(Value::as_str).unwrap();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");

    c.call(Message::bus_call(
        "AddMatch",
        vec![Value::str(systemd::JOB_REMOVED_MATCH)],
    ))
    .unwrap();
    // the daemon validates the rule: a bad one is an error reply
    let e = c
        .call(Message::bus_call("AddMatch", vec![Value::str("type='nonsense'")]))
        .unwrap_err();
    assert_eq!(
        dbus::remote_error(&e).unwrap().name,
        "org.freedesktop.DBus.Error.MatchRuleInvalid"
    );

    let e = c
        .call(Message::bus_call(
            "GetNameOwner",
            vec![Value::str("org.example.Nobody")],
        ))
        .unwrap_err();
    let r = dbus::remote_error(&e).unwrap();
    assert_eq!(r.name, systemd::NAME_HAS_NO_OWNER);
    assert!(!r.message.is_empty());

    // a longer reply (a few KiB of XML)
    let xml = c
        .call(Message::method_call(
            Some(dbus::BUS_NAME),
            dbus::BUS_PATH,
            "org.freedesktop.DBus.Introspectable",
            "Introspect",
            vec![],
        ))
        .unwrap();
    assert!(xml.first().and_then(Value::as_str).unwrap().contains("<interface"));

    // the connection still works after errors
    c.call(Message::bus_call("GetId", vec![])).unwrap();
}

#[test]
fn no_systemd_on_the_bus_is_an_actionable_error() {
    let bus = Bus::start();
    let t = Instant::now();
    let e = match Manager::connect_to(&bus.endpoint(), Peer::Bus, uid()) {
        Err(e) => e,
        Ok(_) => panic!("connected to systemd on a bus without it"),
    };
    let text = format!("{e:#}");
    assert!(
        text.starts_with(&format!(
            "systemd is not running (no org.freedesktop.systemd1 on the bus at unix:path={} after {} s",
            bus.socket.display(),
            systemd::NAME_WAIT.as_secs()
        )),
        "{text}"
    );
    // it waited for systemd to take its name (a session bus that has just
    // been activated) before saying so
    assert!(t.elapsed() >= systemd::NAME_WAIT, "{:?}", t.elapsed());
}

/// systemd taking its name after husk connected (a socket-activated
/// session bus, husk its first client): husk asks, subscribes to
/// NameOwnerChanged, asks again, and waits for the signal. A stand-in for
/// the bus daemon on a direct socket plays it step by step.
#[test]
fn systemd_taking_its_name_late_is_waited_for() {
    let dir = TempDir::new("late");
    let path = dir.0.join("bus");
    let l = UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || {
        let mut w = DirectWire::accept(&l);
        let reply = |w: &mut DirectWire, m: &Message, body: Vec<Value>| {
            let mut r = Message::reply(m, MessageType::MethodReturn, body);
            r.sender = Some(dbus::BUS_NAME.into());
            w.send(r);
        };
        let mut asked = Vec::new();
        for want in ["Hello", "NameHasOwner", "AddMatch", "NameHasOwner"] {
            let m = w.recv();
            assert_eq!(m.member.as_deref(), Some(want), "{m:?}");
            asked.push(format!(
                "{want}({:?})",
                m.body.first().and_then(Value::as_str).unwrap_or_default()
            ));
            match want {
                "Hello" => reply(&mut w, &m, vec![Value::str(":1.7")]),
                "NameHasOwner" => reply(&mut w, &m, vec![Value::Bool(false)]),
                _ => reply(&mut w, &m, vec![]),
            }
        }
        // someone else's name first, then systemd's
        for (name, owner) in [("org.example.Other", ":1.3"), (systemd::SERVICE, ":1.9")] {
            let mut sig = Message::signal(
                dbus::BUS_PATH,
                dbus::BUS_INTERFACE,
                "NameOwnerChanged",
                vec![Value::str(name), Value::str(""), Value::str(owner)],
            );
            sig.sender = Some(dbus::BUS_NAME.into());
            w.send(sig);
        }
        let seen = serve(&mut w, false);
        (asked, seen)
    });
    let mut m = Manager::connect_to(&Endpoint::Path(path.clone()), Peer::Bus, uid()).unwrap();
    assert_eq!(
        m.get_unit("husk-a.scope").unwrap().as_deref(),
        Some("/org/freedesktop/systemd1/unit/husk_2da_2escope")
    );
    let mut q = Message::method_call(None, "/", "x.y", "Quit", vec![]);
    q.flags |= dbus::FLAG_NO_REPLY_EXPECTED;
    m.connection().send(q).unwrap();
    let (asked, seen) = thread.join().unwrap();
    assert_eq!(
        asked,
        [
            "Hello(\"\")",
            "NameHasOwner(\"org.freedesktop.systemd1\")",
            &format!("AddMatch({:?})", systemd::NAME_OWNER_MATCH),
            "NameHasOwner(\"org.freedesktop.systemd1\")",
        ]
    );
    assert_eq!(seen.calls.first().map(|(m, _)| m.as_str()), Some("GetUnit"));
}

#[test]
fn authentication_and_silence_time_out() {
    let dir = TempDir::new("silent");
    let path = dir.0.join("sock");
    // listening, never accepting: connect succeeds, no answer ever comes
    let _l = UnixListener::bind(&path).unwrap();
    let t0 = Instant::now();
    let e = Connection::connect(
        &Endpoint::Path(path.clone()),
        Peer::Direct,
        uid(),
        Duration::from_millis(300),
    )
    .err()
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(
        format!("{e:#}").contains("timed out reading the authentication answer"),
        "{e:#}"
    );
    // nothing listening
    let e = Connection::connect(
        &Endpoint::Path(dir.0.join("none")),
        Peer::Direct,
        uid(),
        Duration::from_secs(1),
    )
    .err()
    .unwrap();
    assert!(format!("{e:#}").contains("connect to unix:path="), "{e:#}");
}

fn scope(unit: &str, pid: u32) -> ScopeSpec {
    ScopeSpec {
        unit: unit.into(),
        slice: "system.slice".into(),
        description: format!("husk container {unit}"),
        pid,
        extra: vec![
            Property::u64("MemoryMax", 1 << 30),
            Property::bytes("AllowedCPUs", vec![3]),
        ],
    }
}

// ---------------------------------------------------------------------------
// A stand-in for systemd: answers the manager calls husk makes and emits
// JobRemoved like systemd (after the reply), with a few traps.

/// How the stand-in reaches its client.
trait Wire {
    fn recv(&mut self) -> Message;
    fn send(&mut self, m: Message);
}

struct BusWire(Connection);

impl Wire for BusWire {
    fn recv(&mut self) -> Message {
        self.0.recv(Duration::from_secs(20)).unwrap()
    }
    fn send(&mut self, m: Message) {
        self.0.send(m).unwrap();
    }
}

/// A direct connection, server side: SASL, then raw messages.
struct DirectWire {
    s: UnixStream,
    buf: Vec<u8>,
    serial: u32,
}

impl DirectWire {
    fn accept(l: &UnixListener) -> DirectWire {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 512];
        let want = format!("\0{}BEGIN\r\n", dbus::auth_external_line(uid()));
        while buf.len() < want.len() {
            let n = s.read(&mut b).unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&b[..n]);
        }
        assert_eq!(
            &buf[..want.len()],
            want.as_bytes(),
            "{:?}",
            String::from_utf8_lossy(&buf)
        );
        s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n").unwrap();
        DirectWire {
            s,
            buf: buf[want.len()..].to_vec(),
            serial: 1000,
        }
    }
}

impl Wire for DirectWire {
    fn recv(&mut self) -> Message {
        let mut b = [0u8; 4096];
        loop {
            if self.buf.len() >= 16 {
                let n = dbus::message_len(&self.buf[..16]).unwrap();
                if self.buf.len() >= n {
                    let m = Message::decode(&self.buf[..n]).unwrap();
                    self.buf.drain(..n);
                    return m;
                }
            }
            let k = self.s.read(&mut b).unwrap();
            assert!(k > 0, "client closed");
            self.buf.extend_from_slice(&b[..k]);
        }
    }
    fn send(&mut self, mut m: Message) {
        self.serial += 1;
        m.serial = self.serial;
        self.s.write_all(&m.encode().unwrap()).unwrap();
    }
}

fn error(call: &Message, name: &str, text: &str) -> Message {
    let mut e = Message::reply(call, MessageType::Error, vec![Value::str(text)]);
    e.error_name = Some(name.into());
    e
}

fn job_removed(id: u32, job: &str, unit: &str, result: &str) -> Message {
    Message::signal(
        systemd::OBJECT,
        systemd::MANAGER,
        "JobRemoved",
        vec![
            Value::U32(id),
            Value::ObjPath(job.into()),
            Value::str(unit),
            Value::str(result),
        ],
    )
}

fn noise(i: u32) -> Message {
    // what a direct connection to systemd sees all the time
    Message::signal(
        "/org/freedesktop/systemd1/unit/other_2eservice",
        "org.freedesktop.DBus.Properties",
        "PropertiesChanged",
        vec![
            Value::str("org.freedesktop.systemd1.Unit"),
            Value::array(
                "{sv}",
                vec![Value::DictEntry(
                    Box::new(Value::str("ActiveState")),
                    Box::new(Value::variant(Value::Bytes(vec![
                        u8::try_from(i % 256).unwrap();
                        20_000
                    ]))),
                )],
            ),
            Value::array("s", vec![]),
        ],
    )
}

/// What the stand-in saw, for the test to check.
#[derive(Debug, Default)]
struct Seen {
    calls: Vec<(String, String)>,
    props: Vec<String>,
    /// Error replies the client sent (to a call it does not serve).
    client_errors: Vec<String>,
}

fn serve(w: &mut dyn Wire, direct: bool) -> Seen {
    let mut seen = Seen::default();
    let mut job = 0u32;
    let mut exists_once = true;
    loop {
        let m = w.recv();
        if m.kind == MessageType::Error {
            seen.client_errors.push(m.error_name.clone().unwrap_or_default());
        }
        if m.kind != MessageType::MethodCall {
            continue;
        }
        let member = m.member.clone().unwrap_or_default();
        let sig = m.signature();
        seen.calls.push((member.clone(), sig.clone()));
        if direct {
            assert!(
                m.destination.as_deref() != Some(dbus::BUS_NAME),
                "a bus call on a direct connection: {m:?}"
            );
        }
        let unit = m.body.first().and_then(Value::as_str).unwrap_or_default().to_string();
        match member.as_str() {
            "Quit" => return seen,
            "StartTransientUnit" | "StopUnit" => {
                if member == "StartTransientUnit" {
                    assert_eq!(sig, "ssa(sv)a(sa(sv))");
                    assert_eq!(m.flags & dbus::FLAG_NO_AUTO_START, dbus::FLAG_NO_AUTO_START);
                    if let Some(Value::Array(_, props)) = m.body.get(2) {
                        for p in props {
                            if let Value::Struct(f) = p {
                                seen.props.push(format!(
                                    "{}={}",
                                    f[0].as_str().unwrap(),
                                    f[1].unwrap_variant().signature()
                                ));
                            }
                        }
                    }
                    if unit == "exists.scope" && exists_once {
                        exists_once = false;
                        w.send(error(&m, systemd::UNIT_EXISTS, "Unit exists.scope already exists."));
                        continue;
                    }
                } else if unit == "gone.scope" {
                    w.send(error(&m, systemd::NO_SUCH_UNIT, "Unit gone.scope not loaded."));
                    continue;
                }
                job += 1;
                let path = format!("/org/freedesktop/systemd1/job/{job}");
                let result = if unit == "fails.scope" { "failed" } else { "done" };
                if unit == "early.scope" {
                    // the signal before the reply: must be found in the queue
                    w.send(job_removed(job, &path, &unit, result));
                    w.send(Message::reply(
                        &m,
                        MessageType::MethodReturn,
                        vec![Value::ObjPath(path)],
                    ));
                    continue;
                }
                w.send(Message::reply(
                    &m,
                    MessageType::MethodReturn,
                    vec![Value::ObjPath(path.clone())],
                ));
                if direct {
                    for i in 0..50 {
                        w.send(noise(i));
                    }
                    // systemd never calls its clients; husk must answer with an error
                    let mut call = Message::method_call(None, "/", "org.example.X", "Poke", vec![]);
                    call.flags = 0;
                    w.send(call);
                    // other jobs' signals
                    w.send(job_removed(
                        999,
                        "/org/freedesktop/systemd1/job/999",
                        "x.service",
                        "failed",
                    ));
                } else if let Some(client) = &m.sender {
                    // a forged signal sent to the client alone: to be ignored
                    let mut forged = job_removed(job, &path, &unit, "failed");
                    forged.destination = Some(client.clone());
                    w.send(forged);
                }
                w.send(job_removed(job, &path, &unit, result));
            }
            "ResetFailedUnit" | "SetUnitProperties" => {
                if member == "SetUnitProperties" {
                    assert_eq!(sig, "sba(sv)");
                }
                w.send(Message::reply(&m, MessageType::MethodReturn, vec![]));
            }
            "GetUnit" => {
                if unit == "husk-a.scope" {
                    w.send(Message::reply(
                        &m,
                        MessageType::MethodReturn,
                        vec![Value::ObjPath("/org/freedesktop/systemd1/unit/husk_2da_2escope".into())],
                    ));
                } else {
                    w.send(error(&m, systemd::NO_SUCH_UNIT, &format!("Unit {unit} not loaded.")));
                }
            }
            "Get" => {
                let iface = m.body.first().and_then(Value::as_str).unwrap_or_default();
                let prop = m.body.get(1).and_then(Value::as_str).unwrap_or_default();
                let v = match (m.path.as_deref().unwrap_or_default(), iface, prop) {
                    (
                        "/org/freedesktop/systemd1/unit/husk_2da_2escope",
                        "org.freedesktop.systemd1.Scope",
                        "ControlGroup",
                    ) => "/system.slice/husk-a.scope",
                    (systemd::OBJECT, systemd::MANAGER, "Version") => "252.22-1~deb12u1",
                    (systemd::OBJECT, systemd::MANAGER, "ControlGroup") => "",
                    _ => {
                        w.send(error(
                            &m,
                            "org.freedesktop.DBus.Error.UnknownProperty",
                            "no such property",
                        ));
                        continue;
                    }
                };
                w.send(Message::reply(
                    &m,
                    MessageType::MethodReturn,
                    vec![Value::variant(Value::str(v))],
                ));
            }
            _ => w.send(error(&m, "org.freedesktop.DBus.Error.UnknownMethod", "unknown")),
        }
    }
}

/// The stand-in's thread; told to quit and joined on drop.
struct FakeSystemd {
    thread: Option<JoinHandle<Seen>>,
    quit: Box<dyn FnMut() + Send>,
}

impl FakeSystemd {
    fn finish(mut self) -> Seen {
        (self.quit)();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            (self.quit)();
            let _ = t.join();
        }
    }
}

fn exercise(m: &mut Manager) {
    m.start_transient_scope(&scope("husk-a.scope", 4242)).unwrap();
    // a leftover unit: reset and retried once
    m.start_transient_scope(&scope("exists.scope", 1)).unwrap();
    // the signal arrives before the reply
    m.start_transient_scope(&scope("early.scope", 1)).unwrap();
    let e = m.start_transient_scope(&scope("fails.scope", 1)).unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        "error creating systemd unit `fails.scope`: got `failed`"
    );
    m.set_properties("husk-a.scope", &[Property::u64("TasksMax", 10)])
        .unwrap();
    assert_eq!(m.unit_cgroup("husk-a.scope").unwrap(), "/system.slice/husk-a.scope");
    assert_eq!(m.get_unit("nope.scope").unwrap(), None);
    assert!(format!("{:#}", m.unit_cgroup("nope.scope").unwrap_err()).contains("not loaded"));
    assert_eq!(m.version().unwrap(), 252);
    assert_eq!(m.manager_cgroup().unwrap(), "/");
    m.stop_unit("husk-a.scope").unwrap();
    // already gone: fine
    m.stop_unit("gone.scope").unwrap();
}

const RUNC_PROPS: [&str; 11] = [
    "Description=s",
    "Slice=s",
    "Delegate=b",
    "PIDs=au",
    "MemoryAccounting=b",
    "CPUAccounting=b",
    "IOAccounting=b",
    "TasksAccounting=b",
    "DefaultDependencies=b",
    "MemoryMax=t",
    "AllowedCPUs=ay",
];

#[test]
fn manager_on_a_bus_with_a_stand_in_for_systemd() {
    let bus = Bus::start();
    let mut fake = Connection::connect(&bus.endpoint(), Peer::Bus, uid(), Duration::from_secs(10)).unwrap();
    let owner = fake
        .call(Message::bus_call(
            "RequestName",
            vec![Value::str(systemd::SERVICE), Value::U32(0)],
        ))
        .unwrap();
    assert_eq!(owner, vec![Value::U32(1)], "primary owner");
    let ep = bus.endpoint();
    let thread = std::thread::spawn(move || serve(&mut BusWire(fake), false));
    let quit_ep = ep.clone();
    let fake = FakeSystemd {
        thread: Some(thread),
        quit: Box::new(move || {
            if let Ok(mut c) = Connection::connect(&quit_ep, Peer::Bus, uid(), Duration::from_secs(5)) {
                let mut q = Message::method_call(Some(systemd::SERVICE), "/", "x.y", "Quit", vec![]);
                q.flags |= dbus::FLAG_NO_REPLY_EXPECTED;
                let _ = c.send(q);
            }
        }),
    };
    let mut m = Manager::connect_to(&ep, Peer::Bus, uid()).unwrap();
    exercise(&mut m);
    let seen = fake.finish();
    let calls: Vec<&str> = seen.calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(&seen.props[..11], &RUNC_PROPS);
    assert_eq!(calls.first(), Some(&"StartTransientUnit"));
    assert!(calls.contains(&"ResetFailedUnit"));
}

#[test]
fn manager_on_a_direct_socket_like_systemds_private_one() {
    let dir = TempDir::new("private");
    let path = dir.0.join("private");
    let l = UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || serve(&mut DirectWire::accept(&l), true));
    let quit_path = path.clone();
    let fake = FakeSystemd {
        thread: Some(thread),
        quit: Box::new(move || {
            // unblock a stand-in still waiting to accept
            let _ = UnixStream::connect(&quit_path);
        }),
    };
    let mut m = Manager::connect_to(&Endpoint::Path(path.clone()), Peer::Direct, uid()).unwrap();
    exercise(&mut m);
    let mut q = Message::method_call(None, "/", "x.y", "Quit", vec![]);
    q.flags |= dbus::FLAG_NO_REPLY_EXPECTED;
    m.connection().send(q).unwrap();
    let seen = fake.finish();
    assert_eq!(&seen.props[..11], &RUNC_PROPS);
    // no Hello, no AddMatch on a direct connection
    assert!(
        seen.client_errors
            .iter()
            .all(|e| e == "org.freedesktop.DBus.Error.UnknownMethod")
    );
    assert!(!seen.client_errors.is_empty());
    assert!(
        !seen.calls.iter().any(|(m, _)| m == "Hello" || m == "AddMatch"),
        "{:?}",
        seen.calls
    );
}

#[test]
fn a_peer_that_hangs_up_is_an_error() {
    let dir = TempDir::new("hangup");
    let path = dir.0.join("s");
    let l = UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        let mut w = DirectWire::accept(&l);
        let _ = w.recv();
        // drop: the connection closes without a reply
    });
    let mut c = Connection::connect(&Endpoint::Path(path), Peer::Direct, uid(), Duration::from_secs(10)).unwrap();
    let e = c.call(Message::method_call(None, "/", "x.y", "Z", vec![])).unwrap_err();
    assert!(format!("{e:#}").contains("closed the connection"), "{e:#}");
    let e = c.call(Message::method_call(None, "/", "x.y", "Z", vec![])).unwrap_err();
    assert!(format!("{e:#}").contains("unusable after an earlier error"), "{e:#}");
    t.join().unwrap();
}
