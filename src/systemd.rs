//! systemd's manager API over [`crate::dbus`], for the systemd cgroup
//! driver (`--systemd-cgroup`), and the pure helpers that driver needs:
//! runc's `slice:prefix:name` cgroupsPath, slice expansion, resources →
//! unit properties with runc's conversions.
//!
//! Connecting ([`Manager::connect`]): as root, systemd's private socket
//! `/run/systemd/private` first (a direct connection: no bus daemon, no
//! `Hello`, and systemd sends every job signal to it — what `systemctl`
//! does as root), then the system bus (`$DBUS_SYSTEM_BUS_ADDRESS`, else
//! `/run/dbus/system_bus_socket`). Rootless: the user manager's
//! `$XDG_RUNTIME_DIR/systemd/private`, then the session bus
//! (`$DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`). On a bus,
//! husk first makes sure org.freedesktop.systemd1 is on it, waiting up to
//! [`NAME_WAIT`] for it: a socket-activated session bus starts with its
//! first client, and the user's systemd joins it only after that.
//!
//! Waiting for jobs: `StartTransientUnit` and `StopUnit` return a job; the
//! unit is there (or gone) when systemd signals `JobRemoved` for it. On a
//! direct connection systemd sends job signals unconditionally; on a bus it
//! sends them to the bus when the job's requester is still connected (or a
//! client called `Subscribe`), and the bus daemon passes them on only to
//! connections with a matching rule: so on a bus, husk adds one `AddMatch`
//! for `JobRemoved` before its first job, and needs no `Subscribe`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::runtime::LinuxResources;

use crate::dbus::{self, Connection, Endpoint, Message, Peer, Value};

pub const SERVICE: &str = "org.freedesktop.systemd1";
pub const OBJECT: &str = "/org/freedesktop/systemd1";
pub const MANAGER: &str = "org.freedesktop.systemd1.Manager";
pub const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
pub const PRIVATE_SOCKET: &str = "/run/systemd/private";
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";

pub const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
pub const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
pub const SERVICE_UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
pub const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";

/// One method call (and the connection's authentication).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// A job (runc waits 30 s for its start and stop jobs).
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);
/// How long husk waits for systemd to take its name on a bus that does
/// not have it yet: a socket-activated session bus starts with its first
/// client (husk, on a host where nothing else talked to it), and the
/// user's systemd connects to it only once its dbus.service runs (about
/// a second later under TCG, measured in the systemd guest).
pub const NAME_WAIT: Duration = Duration::from_secs(10);
/// The bus's signal that a name got (or lost) its owner, for systemd's.
pub const NAME_OWNER_MATCH: &str = "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',\
     member='NameOwnerChanged',arg0='org.freedesktop.systemd1'";

/// The match rule that lets a bus daemon pass systemd's JobRemoved to us.
pub const JOB_REMOVED_MATCH: &str = "type='signal',sender='org.freedesktop.systemd1',\
path='/org/freedesktop/systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'";

// ---------------------------------------------------------------------------
// Properties

/// One unit property, `(sv)` on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: String,
    pub value: Value,
}

impl Property {
    pub fn new(name: &str, value: Value) -> Property {
        Property {
            name: name.to_string(),
            value,
        }
    }

    /// Description, Slice, DevicePolicy, OOMPolicy …
    pub fn string(name: &str, v: &str) -> Property {
        Property::new(name, Value::str(v))
    }

    /// Delegate, DefaultDependencies, MemoryAccounting …
    pub fn boolean(name: &str, v: bool) -> Property {
        Property::new(name, Value::Bool(v))
    }

    /// MemoryMax, CPUWeight, TasksMax, CPUQuotaPerSecUSec … (`u64::MAX` is
    /// systemd's "infinity").
    pub fn u64(name: &str, v: u64) -> Property {
        Property::new(name, Value::U64(v))
    }

    /// `PIDs` (au): the processes the scope starts with.
    pub fn pids(pids: &[u32]) -> Property {
        Property::new("PIDs", Value::array("u", pids.iter().map(|p| Value::U32(*p)).collect()))
    }

    /// AllowedCPUs, AllowedMemoryNodes (ay, see [`cpuset_to_bits`]).
    pub fn bytes(name: &str, v: Vec<u8>) -> Property {
        Property::new(name, Value::Bytes(v))
    }

    /// `DeviceAllow` (a(ss)): (device path or `char-*`/`block-*` class,
    /// "rwm" subset). An empty list resets the unit's list.
    pub fn device_allow(rules: &[(&str, &str)]) -> Property {
        let items = rules
            .iter()
            .map(|(dev, perm)| Value::Struct(vec![Value::str(*dev), Value::str(*perm)]))
            .collect();
        Property::new("DeviceAllow", Value::array("(ss)", items))
    }

    fn to_value(&self) -> Value {
        Value::Struct(vec![Value::str(&self.name), Value::variant(self.value.clone())])
    }
}

fn property_array(props: &[Property]) -> Value {
    Value::array("(sv)", props.iter().map(Property::to_value).collect())
}

/// A transient scope for a container's init.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeSpec {
    /// `docker-<id>.scope`
    pub unit: String,
    /// `system.slice`
    pub slice: String,
    pub description: String,
    /// The container's init, the scope's first process.
    pub pid: u32,
    /// Sent after runc's set (resource limits, for example).
    pub extra: Vec<Property>,
}

impl ScopeSpec {
    /// runc's properties for a container scope, then `extra`.
    pub fn properties(&self) -> Vec<Property> {
        let mut p = vec![
            Property::string("Description", &self.description),
            Property::string("Slice", &self.slice),
            Property::boolean("Delegate", true),
            Property::pids(&[self.pid]),
            Property::boolean("MemoryAccounting", true),
            Property::boolean("CPUAccounting", true),
            Property::boolean("IOAccounting", true),
            Property::boolean("TasksAccounting", true),
            Property::boolean("DefaultDependencies", false),
        ];
        p.extend(self.extra.iter().cloned());
        p
    }
}

// ---------------------------------------------------------------------------
// The manager

/// A connection to systemd's manager (the system one, or the user's).
pub struct Manager {
    conn: Connection,
    /// On a bus: the JobRemoved match rule is in place.
    matched: bool,
}

/// Where [`Manager::connect`] looks, in order (`env` reads the environment).
pub fn endpoints(rootless: bool, env: impl Fn(&str) -> Option<String>) -> Result<Vec<(Endpoint, Peer)>> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    if !rootless {
        out.push((Endpoint::Path(PRIVATE_SOCKET.into()), Peer::Direct));
        let bus = env("DBUS_SYSTEM_BUS_ADDRESS").unwrap_or_else(|| SYSTEM_BUS_ADDRESS.to_string());
        out.extend(dbus::parse_address(&bus)?.into_iter().map(|e| (e, Peer::Bus)));
        return Ok(out);
    }
    let xdg = env("XDG_RUNTIME_DIR").map(PathBuf::from);
    if let Some(x) = &xdg {
        out.push((Endpoint::Path(x.join("systemd/private")), Peer::Direct));
    }
    match (env("DBUS_SESSION_BUS_ADDRESS"), &xdg) {
        (Some(a), _) => out.extend(dbus::parse_address(&a)?.into_iter().map(|e| (e, Peer::Bus))),
        (None, Some(x)) => out.push((Endpoint::Path(x.join("bus")), Peer::Bus)),
        (None, None) => bail!(
            "cannot find the user's systemd: neither XDG_RUNTIME_DIR nor DBUS_SESSION_BUS_ADDRESS is set \
             (a rootless --systemd-cgroup needs a login session with systemd --user; dbus-user-session provides the bus)"
        ),
    }
    Ok(out)
}

/// On a bus: return once org.freedesktop.systemd1 has an owner, waiting
/// up to [`NAME_WAIT`] for its `NameOwnerChanged` (match first, then ask
/// again, so a name taken in between is not missed). Without it every
/// call would fail with NameHasNoOwner — the error names the bus.
fn await_name(conn: &mut Connection) -> Result<()> {
    let has_owner = |conn: &mut Connection| -> Result<bool> {
        match conn
            .call(Message::bus_call("NameHasOwner", vec![Value::str(SERVICE)]))?
            .as_slice()
        {
            [Value::Bool(b)] => Ok(*b),
            other => bail!(
                "NameHasOwner replied with {:?}, expected a boolean (b)",
                body_signature(other)
            ),
        }
    };
    if has_owner(conn).with_context(|| format!("ask the bus at {} whether {SERVICE} is on it", conn.endpoint()))? {
        return Ok(());
    }
    conn.keep_signals(dbus::BUS_INTERFACE, "NameOwnerChanged");
    conn.call(Message::bus_call("AddMatch", vec![Value::str(NAME_OWNER_MATCH)]))
        .context("AddMatch for the bus's NameOwnerChanged signal of org.freedesktop.systemd1")?;
    if has_owner(conn)? {
        return Ok(());
    }
    let deadline = Instant::now() + NAME_WAIT;
    let ep = conn.endpoint().to_string();
    let waited = crate::logging::step(
        "wait for systemd on the bus",
        || ep.clone(),
        || {
            conn.wait_signal(deadline, |m| {
                m.sender.as_deref() == Some(dbus::BUS_NAME)
                    && m.member.as_deref() == Some("NameOwnerChanged")
                    && m.body.first().and_then(Value::as_str) == Some(SERVICE)
                    && m.body.get(2).and_then(Value::as_str).is_some_and(|new| !new.is_empty())
            })
        },
    );
    match waited {
        Ok(_) => Ok(()),
        Err(e) => Err(e).context(format!(
            "systemd is not running (no {SERVICE} on the bus at {} after {} s: for a rootless \
             --systemd-cgroup the user's systemd must be connected to this bus)",
            ep,
            NAME_WAIT.as_secs()
        )),
    }
}

fn body_signature(body: &[Value]) -> String {
    body.iter().map(Value::signature).collect()
}

fn manager_call(member: &str, body: Vec<Value>) -> Message {
    let mut m = Message::method_call(Some(SERVICE), OBJECT, MANAGER, member, body);
    // never start a D-Bus-activated stand-in for systemd
    m.flags |= dbus::FLAG_NO_AUTO_START;
    m
}

impl Manager {
    /// Connect to systemd: see the module documentation for the order.
    /// The error lists every place tried.
    pub fn connect(rootless: bool) -> Result<Manager> {
        let uid = nix::unistd::geteuid().as_raw();
        let mut errors = Vec::new();
        for (ep, peer) in endpoints(rootless, |k| std::env::var(k).ok())? {
            match Manager::connect_to(&ep, peer, uid) {
                Ok(m) => return Ok(m),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        let which = if rootless { "the user's systemd" } else { "systemd" };
        bail!("cannot connect to {which}: {}", errors.join("; "))
    }

    /// Connect to one endpoint.
    pub fn connect_to(ep: &Endpoint, peer: Peer, uid: u32) -> Result<Manager> {
        let mut conn = Connection::connect(ep, peer, uid, CALL_TIMEOUT)?;
        conn.keep_signals(MANAGER, "JobRemoved");
        if peer == Peer::Bus {
            await_name(&mut conn)?;
        }
        Ok(Manager { conn, matched: false })
    }

    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// A call to systemd; "systemd is not running" when the bus has no
    /// systemd on it.
    fn call(&mut self, msg: Message, what: impl FnOnce() -> String) -> Result<Vec<Value>> {
        match self.conn.call(msg) {
            Ok(v) => Ok(v),
            Err(e) if dbus::is_remote_error(&e, SERVICE_UNKNOWN) || dbus::is_remote_error(&e, NAME_HAS_NO_OWNER) => {
                let ep = self.conn.endpoint().to_string();
                Err(e).context(format!("systemd is not running (no {SERVICE} on the bus at {ep})"))
            }
            Err(e) => Err(e).with_context(what),
        }
    }

    fn add_job_match(&mut self) -> Result<()> {
        if self.conn.peer() == Peer::Bus && !self.matched {
            let m = Message::bus_call("AddMatch", vec![Value::str(JOB_REMOVED_MATCH)]);
            self.conn.call(m).context("AddMatch for systemd's JobRemoved signal")?;
            self.matched = true;
        }
        Ok(())
    }

    /// Wait for `JobRemoved` of `job`; returns its result ("done",
    /// "canceled", "timeout", "failed", "dependency", "skipped").
    fn wait_job(&mut self, job: &str, unit: &str) -> Result<String> {
        let deadline = Instant::now() + JOB_TIMEOUT;
        let bus = self.conn.peer() == Peer::Bus;
        let sig = crate::logging::step(
            "wait for systemd's job",
            || format!("{job} on {unit}"),
            || {
                self.conn.wait_signal(deadline, |m| {
                    // on a bus, systemd's job signals are broadcasts: a signal
                    // sent to us alone comes from someone else
                    m.path.as_deref() == Some(OBJECT)
                        && (!bus || m.destination.is_none())
                        && m.body.get(1).and_then(Value::as_str) == Some(job)
                })
            },
        )
        .with_context(|| format!("waiting {} s for systemd's job {job} on {unit}", JOB_TIMEOUT.as_secs()))?;
        match sig.body.as_slice() {
            [Value::U32(_), Value::ObjPath(_), Value::Str(_), Value::Str(result)] => Ok(result.clone()),
            _ => bail!("JobRemoved signal of signature {:?}, expected uoss", sig.signature()),
        }
    }

    fn job_path(reply: &[Value], what: &str) -> Result<String> {
        match reply {
            [Value::ObjPath(p)] => Ok(p.clone()),
            _ => bail!(
                "{what} replied with {:?}, expected a job path (o)",
                body_signature(reply)
            ),
        }
    }

    /// `StartTransientUnit(name, "replace", props, [])`, waiting for the
    /// job. A unit of that name that exists (a failed leftover) is reset
    /// and the start tried once more, as runc does.
    pub fn start_transient_unit(&mut self, unit: &str, props: &[Property]) -> Result<()> {
        self.add_job_match()?;
        let mut retried = false;
        let job = loop {
            let m = manager_call(
                "StartTransientUnit",
                vec![
                    Value::str(unit),
                    Value::str("replace"),
                    property_array(props),
                    Value::array("(sa(sv))", Vec::new()),
                ],
            );
            match self.call(m, || format!("start the transient unit {unit}")) {
                Ok(reply) => break Self::job_path(&reply, "StartTransientUnit")?,
                Err(e) if !retried && dbus::is_remote_error(&e, UNIT_EXISTS) => {
                    retried = true;
                    let _ = self.reset_failed_unit(unit);
                }
                Err(e) => return Err(e),
            }
        };
        let result = self.wait_job(&job, unit);
        match result.as_deref() {
            Ok("done") => Ok(()),
            Ok(r) => {
                let _ = self.reset_failed_unit(unit);
                bail!("error creating systemd unit `{unit}`: got `{r}`")
            }
            Err(_) => {
                let _ = self.reset_failed_unit(unit);
                result.map(|_| ())
            }
        }
    }

    /// Create the scope of a container (runc's properties, then
    /// `spec.extra`) and wait until it exists.
    pub fn start_transient_scope(&mut self, spec: &ScopeSpec) -> Result<()> {
        self.start_transient_unit(&spec.unit, &spec.properties())
    }

    /// `SetUnitProperties(name, runtime=true, props)`: the limits systemd
    /// must know (it rewrites the cgroup files from them on daemon-reload).
    pub fn set_properties(&mut self, unit: &str, props: &[Property]) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        let m = manager_call(
            "SetUnitProperties",
            vec![Value::str(unit), Value::Bool(true), property_array(props)],
        );
        self.call(m, || format!("set the properties of {unit}"))?;
        Ok(())
    }

    /// `StopUnit(name, "replace")`, waiting for the job, then
    /// `ResetFailedUnit` so that a failed unit does not linger. A unit that
    /// is already gone is fine; a job that ends other than "done" is a
    /// warning (as in runc), a job that does not end is an error.
    pub fn stop_unit(&mut self, unit: &str) -> Result<()> {
        self.add_job_match()?;
        let m = manager_call("StopUnit", vec![Value::str(unit), Value::str("replace")]);
        match self.call(m, || format!("stop {unit}")) {
            Ok(reply) => {
                let job = Self::job_path(&reply, "StopUnit")?;
                let result = self.wait_job(&job, unit)?;
                if result != "done" {
                    crate::warn!("stopping systemd unit {unit}: got `{result}`, continuing");
                }
            }
            Err(e) if dbus::is_remote_error(&e, NO_SUCH_UNIT) => {}
            Err(e) => return Err(e),
        }
        match self.reset_failed_unit(unit) {
            Err(e) if !dbus::is_remote_error(&e, NO_SUCH_UNIT) => {
                crate::debug!("reset-failed {unit}: {e:#}");
            }
            _ => {}
        }
        Ok(())
    }

    /// `AttachProcessesToUnit(unit, subcgroup, pids)` (systemd 238+): the
    /// manager moves `pids` into the unit's cgroup (`subcgroup` below it,
    /// "" for the unit's own). A user's systemd that may not move them
    /// itself (they sit in a cgroup the user does not own: a login
    /// session's) asks the system manager, which checks that they are the
    /// user's.
    pub fn attach_processes(&mut self, unit: &str, subcgroup: &str, pids: &[u32]) -> Result<()> {
        let m = manager_call(
            "AttachProcessesToUnit",
            vec![
                Value::str(unit),
                Value::str(subcgroup),
                Value::array("u", pids.iter().map(|p| Value::U32(*p)).collect()),
            ],
        );
        self.call(m, || format!("AttachProcessesToUnit {unit} {subcgroup:?} {pids:?}"))?;
        Ok(())
    }

    pub fn reset_failed_unit(&mut self, unit: &str) -> Result<()> {
        let m = manager_call("ResetFailedUnit", vec![Value::str(unit)]);
        self.call(m, || format!("reset the failed unit {unit}"))?;
        Ok(())
    }

    /// `GetUnit(name)`: the unit's object path, `None` when it is not loaded.
    pub fn get_unit(&mut self, unit: &str) -> Result<Option<String>> {
        let m = manager_call("GetUnit", vec![Value::str(unit)]);
        match self.call(m, || format!("look up the unit {unit}")) {
            Ok(reply) => match reply.as_slice() {
                [Value::ObjPath(p)] => Ok(Some(p.clone())),
                _ => bail!(
                    "GetUnit replied with {:?}, expected an object path (o)",
                    body_signature(&reply)
                ),
            },
            Err(e) if dbus::is_remote_error(&e, NO_SUCH_UNIT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `org.freedesktop.DBus.Properties.Get(interface, name)` on an object of systemd.
    pub fn get_property(&mut self, path: &str, interface: &str, name: &str) -> Result<Value> {
        let mut m = Message::method_call(
            Some(SERVICE),
            path,
            PROPERTIES,
            "Get",
            vec![Value::str(interface), Value::str(name)],
        );
        m.flags |= dbus::FLAG_NO_AUTO_START;
        let reply = self.call(m, || format!("read {interface}.{name} of {path}"))?;
        match reply.as_slice() {
            [Value::Variant(v)] => Ok(v.as_ref().clone()),
            _ => bail!(
                "Properties.Get replied with {:?}, expected a variant (v)",
                body_signature(&reply)
            ),
        }
    }

    fn get_string(&mut self, path: &str, interface: &str, name: &str) -> Result<String> {
        match self.get_property(path, interface, name)? {
            Value::Str(s) => Ok(s),
            v => bail!("{interface}.{name} is a {:?}, expected a string", v.signature()),
        }
    }

    /// The cgroup systemd gave a unit (`/system.slice/docker-x.scope`,
    /// relative to the manager's root: see [`Manager::manager_cgroup`]).
    pub fn unit_cgroup(&mut self, unit: &str) -> Result<String> {
        let Some(path) = self.get_unit(unit)? else {
            bail!("systemd unit {unit} is not loaded");
        };
        let iface = unit_interface(unit)?;
        let cg = self.get_string(&path, iface, "ControlGroup")?;
        if cg.is_empty() {
            bail!("systemd unit {unit} has no cgroup (not running)");
        }
        Ok(cg)
    }

    /// The manager's own cgroup: "/" for the system manager,
    /// `/user.slice/user-1000.slice/user@1000.service` for a user's; unit
    /// cgroups are below it.
    pub fn manager_cgroup(&mut self) -> Result<String> {
        let cg = self.get_string(OBJECT, MANAGER, "ControlGroup")?;
        Ok(if cg.is_empty() { "/".into() } else { cg })
    }

    /// systemd's version number (252 for "252.22-1~deb12u1"): some
    /// properties need a recent one (see [`resource_properties`]).
    pub fn version(&mut self) -> Result<u32> {
        let v = self.get_string(OBJECT, MANAGER, "Version")?;
        parse_version(&v).ok_or_else(|| anyhow!("cannot read systemd's version {v:?}"))
    }
}

/// Whether the host runs systemd as its init (sd_booted(3): /run/systemd/system
/// is a directory). Without it the driver has nobody to talk to.
pub fn booted() -> bool {
    std::fs::symlink_metadata("/run/systemd/system").is_ok_and(|m| m.is_dir())
}

/// The D-Bus interface of a unit type, from its name's suffix.
fn unit_interface(unit: &str) -> Result<&'static str> {
    let suffix = unit.rsplit_once('.').map(|(_, s)| s).unwrap_or_default();
    Ok(match suffix {
        "scope" => "org.freedesktop.systemd1.Scope",
        "slice" => "org.freedesktop.systemd1.Slice",
        "service" => "org.freedesktop.systemd1.Service",
        "socket" => "org.freedesktop.systemd1.Socket",
        "mount" => "org.freedesktop.systemd1.Mount",
        "swap" => "org.freedesktop.systemd1.Swap",
        _ => bail!("unit {unit} has no cgroup (not a scope, slice, service, socket, mount or swap)"),
    })
}

/// The leading number of systemd's version string ("v245.4-1.fc32", "252").
pub fn parse_version(v: &str) -> Option<u32> {
    let v = v.trim_start_matches(['"', 'v']);
    let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    v[..end].parse().ok()
}

// ---------------------------------------------------------------------------
// cgroupsPath and slices

/// Where a container's cgroup goes under the systemd driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The parent slice (`system.slice`).
    pub slice: String,
    /// The unit (`docker-<id>.scope`, or a `.slice`).
    pub unit: String,
}

/// The prefix of the scope husk names when cgroupsPath is empty (runc's
/// is `runc`): `husk-<id>.scope`.
pub const DEFAULT_PREFIX: &str = "husk";

/// systemd's unit name characters (and a length it accepts).
fn valid_unit_name(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 255
        && u.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'-' | b'_' | b'.' | b'\\' | b'@'))
}

/// Parse runc's systemd cgroupsPath `slice:prefix:name`. An empty slice is
/// `system.slice` (`user.slice` rootless); the unit is `prefix-name.scope`
/// (`name.scope` with no prefix), or `name` itself when it ends in
/// `.slice`. An empty cgroupsPath gives `husk-<id>.scope` in the default
/// slice.
pub fn parse_cgroups_path(cgroups_path: &str, id: &str, rootless: bool) -> Result<Placement> {
    let default_slice = if rootless { "user.slice" } else { "system.slice" };
    let (slice, prefix, name) = if cgroups_path.is_empty() {
        (default_slice, DEFAULT_PREFIX, id)
    } else {
        let parts: Vec<&str> = cgroups_path.split(':').collect();
        let [slice, prefix, name] = parts.as_slice() else {
            bail!(
                "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {cgroups_path:?} instead"
            );
        };
        (if slice.is_empty() { default_slice } else { slice }, *prefix, *name)
    };
    expand_slice(slice)?;
    if name.is_empty() {
        bail!("cgroupsPath {cgroups_path:?} has an empty name");
    }
    let unit = if name.ends_with(".slice") {
        expand_slice(name)?;
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if !valid_unit_name(&unit) {
        bail!("invalid systemd unit name {unit:?} (from cgroupsPath {cgroups_path:?})");
    }
    Ok(Placement {
        slice: slice.to_string(),
        unit,
    })
}

/// A slice name → its cgroup path: `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`,
/// `-.slice` → `/`. Empty components (`a--b`, `-a`, `a-`) and `/` are invalid.
pub fn expand_slice(slice: &str) -> Result<String> {
    let invalid = || anyhow!("invalid slice name: {slice}");
    let name = slice.strip_suffix(".slice").ok_or_else(invalid)?;
    if name.is_empty() || slice.contains('/') {
        return Err(invalid());
    }
    if name == "-" {
        return Ok("/".into());
    }
    if !valid_unit_name(slice) {
        return Err(invalid());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in name.split('-') {
        if part.is_empty() {
            return Err(invalid());
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

impl Placement {
    /// The unit's cgroup relative to its manager's root
    /// (`/system.slice/docker-x.scope`). A `.slice` unit sits where its own
    /// name puts it, as systemd places it.
    pub fn cgroup(&self) -> Result<String> {
        if self.unit.ends_with(".slice") {
            return expand_slice(&self.unit);
        }
        let parent = expand_slice(&self.slice)?;
        Ok(format!("{}/{}", parent.trim_end_matches('/'), self.unit))
    }

    /// The unit's directory under the cgroup2 mount: `manager_cgroup` is
    /// "/" for the system manager, the user manager's cgroup rootless
    /// ([`Manager::manager_cgroup`]).
    pub fn dir(&self, mount: &Path, manager_cgroup: &str) -> Result<PathBuf> {
        if manager_cgroup.split('/').any(|c| c == ".." || c == ".") {
            bail!("invalid manager cgroup {manager_cgroup:?}");
        }
        let rel = format!(
            "{}/{}",
            manager_cgroup.trim_matches('/'),
            self.cgroup()?.trim_start_matches('/')
        );
        Ok(mount.join(rel.trim_start_matches('/')))
    }
}

// ---------------------------------------------------------------------------
// Resources → properties

/// runc's cpu shares → CPUWeight: the same function as the cgroup v2
/// driver's cpu.weight, so that the unit's CPUWeight and the cgroup's
/// cpu.weight agree (the current quadratic fit: 512 → 59, where runc
/// 1.1.5 and crun's old linear formula gave 20).
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    crate::cgroups::v2::cpu_shares_to_weight(shares)
}

/// CPU quota (µs per period; ≤ 0 unlimited) and period (µs; 0 = 100 ms) →
/// (CPUQuotaPerSecUSec, the quota to write to cpu.max). systemd keeps the
/// quota as a whole percentage of a CPU, so like runc the per-second value
/// is rounded up to 10 ms and the quota adjusted to match.
pub fn cpu_quota_per_sec(quota: i64, period: u64) -> (u64, i64) {
    if quota <= 0 {
        return (u64::MAX, quota);
    }
    let period = if period == 0 { 100_000 } else { period };
    let per_sec = (quota as u128 * 1_000_000 / u128::from(period)).min(u128::from(u64::MAX - 1));
    if per_sec % 10_000 == 0 {
        return (u64::try_from(per_sec).unwrap_or(u64::MAX - 1), quota);
    }
    let per_sec = (per_sec / 10_000 + 1) * 10_000;
    let quota = i64::try_from(per_sec * u128::from(period) / 1_000_000).unwrap_or(i64::MAX);
    (u64::try_from(per_sec).unwrap_or(u64::MAX - 1), quota)
}

/// The highest CPU or memory node number [`cpuset_to_bits`] takes.
pub const MAX_CPUSET_BIT: u32 = 65_535;

/// A cpuset list ("0-2,5") → the bitmask systemd takes for AllowedCPUs and
/// AllowedMemoryNodes: byte i bit j is CPU 8i+j, as many bytes as the
/// highest CPU needs.
pub fn cpuset_to_bits(list: &str) -> Result<Vec<u8>> {
    let num = |s: &str| -> Result<u32> {
        let n: u32 = s
            .trim()
            .parse()
            .map_err(|_| anyhow!("invalid cpuset {list:?}: {s:?} is not a number"))?;
        if n > MAX_CPUSET_BIT {
            bail!("invalid cpuset {list:?}: {n} is above {MAX_CPUSET_BIT}");
        }
        Ok(n)
    };
    let mut bits: Vec<u8> = Vec::new();
    for r in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let (start, end) = match r.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(r)?, num(r)?),
        };
        if start > end {
            bail!("invalid cpuset {list:?}: range {r:?} is backwards");
        }
        let need = end as usize / 8 + 1;
        if bits.len() < need {
            bits.resize(need, 0);
        }
        for i in start..=end {
            bits[i as usize / 8] |= 1 << (i % 8);
        }
    }
    if bits.is_empty() {
        bail!("invalid cpuset {list:?}: empty");
    }
    Ok(bits)
}

/// The unit properties for `linux.resources`, and the CPU quota to write to
/// cpu.max (rounded like CPUQuotaPerSecUSec; `None` when not set).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceProperties {
    pub properties: Vec<Property>,
    pub cpu_quota: Option<i64>,
}

fn limit(v: i64) -> u64 {
    if v < 0 { u64::MAX } else { v as u64 }
}

/// The systemd versions from which the properties husk sends change:
/// CPUQuotaPeriodUSec, AllowedCPUs/AllowedMemoryNodes, cpu.idle as
/// CPUWeight=0. Between two of them (and below the first) the properties
/// for given resources are the same: `husk plan`, which does not ask
/// systemd its version, computes them once per range.
pub const QUOTA_PERIOD_SINCE: u32 = 242;
pub const ALLOWED_CPUS_SINCE: u32 = 244;
pub const CPU_IDLE_SINCE: u32 = 252;
pub const VERSION_GATES: [u32; 3] = [QUOTA_PERIOD_SINCE, ALLOWED_CPUS_SINCE, CPU_IDLE_SINCE];

fn add_quota(out: &mut ResourceProperties, quota: i64, period: u64, version: u32) {
    if period != 0 && version >= QUOTA_PERIOD_SINCE {
        out.properties.push(Property::u64("CPUQuotaPeriodUSec", period));
    }
    let (per_sec, q) = cpu_quota_per_sec(quota, period);
    out.properties.push(Property::u64("CPUQuotaPerSecUSec", per_sec));
    out.cpu_quota = Some(q);
}

/// `linux.resources` → unit properties, as runc's systemd v2 driver sends
/// them (systemd `version` gates CPUQuotaPeriodUSec ≥ 242, AllowedCPUs and
/// AllowedMemoryNodes ≥ 244, cpu.idle as CPUWeight=0 ≥ 252). Memory and
/// pids values follow the cgroup v2 driver's (memory 0 unset, pids 0 sent as
/// 1, negative infinity),
/// and swap equal to memory is sent as MemorySwapMax=0, the value the v2
/// driver writes. The block IO weight is sent as IOWeight (converted as
/// the v2 driver converts it; husk still writes the io files itself, and
/// refuses a weight the host has no file for). Devices are not converted
/// here. The unified map comes last so that its values win, as on cgroupfs.
pub fn resource_properties(r: &LinuxResources, version: u32) -> Result<ResourceProperties> {
    let mut out = ResourceProperties {
        properties: Vec::new(),
        cpu_quota: None,
    };
    if let Some(m) = r.memory() {
        let mem = m.limit().unwrap_or(0);
        if mem != 0 {
            out.properties.push(Property::u64("MemoryMax", limit(mem)));
        }
        let low = m.reservation().unwrap_or(0);
        if low != 0 {
            out.properties.push(Property::u64("MemoryLow", limit(low)));
        }
        let swap_in = m.swap().unwrap_or(0);
        let swap = crate::cgroups::v2::memory_swap_to_v2(swap_in, mem)?;
        if swap != 0 || swap_in > 0 {
            out.properties.push(Property::u64("MemorySwapMax", limit(swap)));
        }
    }
    if let Some(c) = r.cpu() {
        let idle = c.idle() == Some(1) && version >= CPU_IDLE_SINCE;
        if idle {
            out.properties.push(Property::u64("CPUWeight", 0));
        } else {
            let w = cpu_weight_from_shares(c.shares().unwrap_or(0));
            if w != 0 {
                out.properties.push(Property::u64("CPUWeight", w));
            }
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            add_quota(&mut out, quota, period, version);
        }
        if version >= ALLOWED_CPUS_SINCE {
            for (v, name) in [(c.cpus(), "AllowedCPUs"), (c.mems(), "AllowedMemoryNodes")] {
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    out.properties.push(Property::bytes(name, cpuset_to_bits(v)?));
                }
            }
        }
    }
    if let Some(p) = r.pids() {
        // 0 is a real limit (spec 1.3); systemd refuses TasksMax=0, so 1,
        // as runc ≥ 1.4 sends and the cgroupfs code writes.
        out.properties.push(Property::u64("TasksMax", limit(p.limit()).max(1)));
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()).filter(|w| *w != 0) {
        out.properties.push(Property::u64(
            "IOWeight",
            crate::cgroups::v2::blkio_weight_to_io_weight(w),
        ));
    }
    let mut unified: Vec<(&String, &String)> = r.unified().iter().flatten().collect();
    unified.sort();
    for (k, v) in unified {
        let v = v.trim();
        let num = |v: &str| -> Result<u64> {
            if v == "max" {
                return Ok(u64::MAX);
            }
            v.parse()
                .map_err(|_| anyhow!("unified resource {k:?} value {v:?} is not a number"))
        };
        match k.as_str() {
            "cpu.idle" if v == "1" && version >= CPU_IDLE_SINCE => out.properties.push(Property::u64("CPUWeight", 0)),
            "cpu.weight" => out.properties.push(Property::u64("CPUWeight", num(v)?)),
            "cpu.max" => {
                let f: Vec<&str> = v.split_whitespace().collect();
                let (q, p) = match f.as_slice() {
                    [q] => (*q, None),
                    [q, p] => (*q, Some(*p)),
                    _ => bail!("unified resource {k:?} value {v:?} is not \"quota [period]\""),
                };
                let quota = if q == "max" {
                    0
                } else {
                    q.parse()
                        .map_err(|_| anyhow!("unified resource {k:?} quota {q:?} is not a number"))?
                };
                let period = p.map(|p| p.parse()).transpose();
                let period = period.map_err(|_| anyhow!("unified resource {k:?} period is not a number"))?;
                add_quota(&mut out, quota, period.unwrap_or(100_000), version);
            }
            "cpuset.cpus" | "cpuset.mems" if version >= ALLOWED_CPUS_SINCE => {
                let name = if k == "cpuset.cpus" {
                    "AllowedCPUs"
                } else {
                    "AllowedMemoryNodes"
                };
                out.properties.push(Property::bytes(name, cpuset_to_bits(v)?));
            }
            "memory.high" | "memory.low" | "memory.min" | "memory.max" | "memory.swap.max" => {
                let name = match k.as_str() {
                    "memory.high" => "MemoryHigh",
                    "memory.low" => "MemoryLow",
                    "memory.min" => "MemoryMin",
                    "memory.max" => "MemoryMax",
                    _ => "MemorySwapMax",
                };
                out.properties.push(Property::u64(name, num(v)?));
            }
            // systemd refuses TasksMax=0
            "pids.max" => out.properties.push(Property::u64("TasksMax", num(v)?.max(1))),
            // "default N" (or "N"): the default weight is IOWeight; per
            // device lines ("MAJ:MIN N") are written to the file only
            "io.weight" => {
                if let Some(w) = v.lines().find_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    match f.as_slice() {
                        ["default", w] | [w] => Some(*w),
                        _ => None,
                    }
                }) {
                    out.properties.push(Property::u64("IOWeight", num(w)?));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `linux.resources` → unit properties on a cgroup v1 or hybrid host, as
/// runc's systemd v1 driver sends them: there systemd applies `CPUWeight`
/// as cpu.shares = weight × 1024 / 100, which would not be the cpu.shares
/// the container asked for, so the v1 names are used (MemoryLimit,
/// CPUShares, BlockIOWeight) and each maps onto the v1 file with the same
/// value. The quota as for v2 (systemd writes cpu.cfs_period_us and
/// cpu.cfs_quota_us from it). Nothing systemd leaves alone on v1 is sent
/// (memory reservation and swap, cpusets).
pub fn resource_properties_v1(r: &LinuxResources, version: u32) -> Result<ResourceProperties> {
    let mut out = ResourceProperties {
        properties: Vec::new(),
        cpu_quota: None,
    };
    if let Some(m) = r.memory() {
        let mem = m.limit().unwrap_or(0);
        if mem != 0 {
            out.properties.push(Property::u64("MemoryLimit", limit(mem)));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            out.properties.push(Property::u64("CPUShares", s));
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            add_quota(&mut out, quota, period, version);
        }
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()).filter(|w| *w != 0) {
        out.properties.push(Property::u64("BlockIOWeight", u64::from(w)));
    }
    if let Some(p) = r.pids() {
        // 0 is a real limit (spec 1.3); systemd refuses TasksMax=0, so 1,
        // as runc ≥ 1.4 sends and the cgroupfs code writes.
        out.properties.push(Property::u64("TasksMax", limit(p.limit()).max(1)));
    }
    Ok(out)
}

/// Whether the properties for `r` depend on systemd's version (see
/// [`resource_properties`]; `v1`: [`resource_properties_v1`]): only then
/// is it worth asking systemd for it.
pub fn needs_version(r: &LinuxResources, v1: bool) -> bool {
    let cpu = r.cpu().as_ref();
    let quota = cpu.is_some_and(|c| c.quota().unwrap_or(0) != 0 || c.period().unwrap_or(0) != 0);
    if v1 {
        return quota;
    }
    let cpuset = cpu.is_some_and(|c| {
        c.cpus().as_deref().is_some_and(|v| !v.is_empty()) || c.mems().as_deref().is_some_and(|v| !v.is_empty())
    });
    let idle = cpu.is_some_and(|c| c.idle() == Some(1));
    let unified = r
        .unified()
        .iter()
        .flatten()
        .any(|(k, _)| matches!(k.as_str(), "cpu.idle" | "cpu.max" | "cpuset.cpus" | "cpuset.mems"));
    quota || cpuset || idle || unified
}

impl Property {
    /// `Name=value` for messages: numbers as systemd prints them
    /// (`infinity` for `u64::MAX`), byte arrays in hex, device lists as
    /// `path perms` pairs.
    pub fn describe(&self) -> String {
        fn text(v: &Value) -> String {
            match v.unwrap_variant() {
                Value::U64(u64::MAX) => "infinity".into(),
                Value::U64(n) => n.to_string(),
                Value::U32(n) => n.to_string(),
                Value::I64(n) => n.to_string(),
                Value::I32(n) => n.to_string(),
                Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
                Value::Str(s) | Value::ObjPath(s) => s.clone(),
                Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
                Value::Array(_, items) => items.iter().map(text).collect::<Vec<_>>().join(","),
                Value::Struct(fields) => fields.iter().map(text).collect::<Vec<_>>().join(" "),
                other => format!("{other:?}"),
            }
        }
        format!("{}={}", self.name, text(&self.value))
    }
}

/// The annotation prefix whose keys become unit properties (listed by
/// `husk features` as potentially unsafe, as runc lists it).
pub const SYSTEMD_PROPERTY_ANNOTATION: &str = "org.systemd.property.";

/// The unit properties asked for by `org.systemd.property.NAME`
/// annotations, as runc reads them: NAME is an identifier starting with
/// an upper-case letter, the value is GVariant text (`uint64 5`, `true`,
/// `'text'`, a bare integer is an int32), and a NAME ending in a lower-case
/// letter + `Sec` is sent as `…USec` with the value in microseconds
/// (`TimeoutStopSec=uint64 5` → `TimeoutStopUSec` 5000000).
pub fn annotation_properties<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Property>> {
    const PREFIX: &str = SYSTEMD_PROPERTY_ANNOTATION;
    let mut out = Vec::new();
    let mut sorted: Vec<_> = annotations.into_iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
    sorted.sort();
    for (k, v) in sorted {
        let name = &k[PREFIX.len()..];
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            bail!("annotation {k:?}: {name:?} is not a systemd property name");
        }
        let value = parse_gvariant(v).with_context(|| format!("annotation {k:?}: value {v:?}"))?;
        let sec = name
            .strip_suffix("Sec")
            .filter(|t| t.chars().last().is_some_and(|c| c.is_ascii_lowercase()));
        let (name, value) = match sec {
            Some(t) => (
                format!("{t}USec"),
                sec_to_usec(value).with_context(|| format!("annotation {k:?}"))?,
            ),
            None => (name.to_string(), value),
        };
        out.push(Property::new(&name, value));
    }
    Ok(out)
}

/// A seconds value of an annotation in microseconds (u64), as runc does.
#[allow(clippy::cast_possible_truncation, reason = "a double checked to be in 0..u64::MAX")]
fn sec_to_usec(v: Value) -> Result<Value> {
    const M: u64 = 1_000_000;
    let us = match v {
        Value::U64(n) => n.checked_mul(M),
        Value::U32(n) => u64::from(n).checked_mul(M),
        Value::I64(n) => u64::try_from(n).ok().and_then(|n| n.checked_mul(M)),
        Value::I32(n) => u64::try_from(n).ok().and_then(|n| n.checked_mul(M)),
        Value::Double(d) if d.is_finite() && d >= 0.0 && d * 1e6 < u64::MAX as f64 => Some((d * 1e6) as u64),
        other => bail!("a time in seconds must be a non-negative number, not {other:?}"),
    };
    us.map(Value::U64)
        .context("the time in seconds does not fit in microseconds")
}

/// The GVariant text forms runc's annotations use: a typed number
/// (`byte|int16|uint16|int32|uint32|int64|uint64|double N`), a bare
/// integer (int32) or decimal (double), `true`/`false`, a quoted string.
pub fn parse_gvariant(s: &str) -> Result<Value> {
    let s = s.trim();
    match s {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            if inner.contains(q) || inner.contains('\\') {
                bail!("escapes in strings are not supported");
            }
            return Ok(Value::Str(inner.to_string()));
        }
    }
    let (ty, num) = match s.split_once(char::is_whitespace) {
        Some((t, n)) => (t, n.trim()),
        None => ("", s),
    };
    let bad = || anyhow!("expected a GVariant value such as uint64 5, true or 'text'");
    Ok(match ty {
        "byte" => Value::Byte(num.parse().map_err(|_| bad())?),
        "int16" => Value::I16(num.parse().map_err(|_| bad())?),
        "uint16" => Value::U16(num.parse().map_err(|_| bad())?),
        "int32" => Value::I32(num.parse().map_err(|_| bad())?),
        "uint32" => Value::U32(num.parse().map_err(|_| bad())?),
        "int64" => Value::I64(num.parse().map_err(|_| bad())?),
        "uint64" => Value::U64(num.parse().map_err(|_| bad())?),
        "double" => Value::Double(num.parse().map_err(|_| bad())?),
        "" if num.contains('.') => Value::Double(num.parse().map_err(|_| bad())?),
        "" => Value::I32(num.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn annotations_become_unit_properties_as_with_runc() {
        let a: Vec<(String, String)> = vec![
            ("org.systemd.property.TimeoutStopSec".into(), "uint64 5".into()),
            ("org.systemd.property.CollectMode".into(), "'inactive-or-failed'".into()),
            ("org.systemd.property.TimeoutStopUSec".into(), "uint64 7".into()),
            ("org.systemd.property.Delegate".into(), "true".into()),
            ("other".into(), "x".into()),
        ];
        let p = annotation_properties(a.iter().map(|(k, v)| (k, v))).unwrap();
        let got: Vec<(String, Value)> = p.into_iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(
            got,
            vec![
                ("CollectMode".to_string(), Value::Str("inactive-or-failed".into())),
                ("Delegate".to_string(), Value::Bool(true)),
                ("TimeoutStopUSec".to_string(), Value::U64(5_000_000)),
                ("TimeoutStopUSec".to_string(), Value::U64(7)),
            ]
        );
        for (k, v) in [
            ("org.systemd.property.lower", "true"),
            ("org.systemd.property.A-b", "true"),
            ("org.systemd.property.TimeoutStopSec", "'five'"),
            ("org.systemd.property.TimeoutStopSec", "int64 -1"),
            ("org.systemd.property.X", "uint64 x"),
            ("org.systemd.property.X", "array [1]"),
            ("org.systemd.property.TimeoutStopSec", "uint64 18446744073709551615"),
        ] {
            let (k, v) = (k.to_string(), v.to_string());
            let e = annotation_properties([(&k, &v)]).unwrap_err();
            assert!(format!("{e:#}").contains(&k), "{e:#}");
        }
    }
    use super::*;

    #[test]
    fn cgroups_paths_like_runc() {
        let p = parse_cgroups_path("system.slice:docker:abc", "id", false).unwrap();
        assert_eq!(p.slice, "system.slice");
        assert_eq!(p.unit, "docker-abc.scope");
        assert_eq!(p.cgroup().unwrap(), "/system.slice/docker-abc.scope");
        assert_eq!(
            p.dir(Path::new("/sys/fs/cgroup"), "/").unwrap(),
            Path::new("/sys/fs/cgroup/system.slice/docker-abc.scope")
        );
        let p = parse_cgroups_path("machine.slice:libpod:xyz", "id", false).unwrap();
        assert_eq!(p.cgroup().unwrap(), "/machine.slice/libpod-xyz.scope");
        let p = parse_cgroups_path(":docker:abc", "id", false).unwrap();
        assert_eq!(p.slice, "system.slice");
        let p = parse_cgroups_path(":docker:abc", "id", true).unwrap();
        assert_eq!(p.slice, "user.slice");
        assert_eq!(
            p.dir(
                Path::new("/sys/fs/cgroup"),
                "/user.slice/user-1000.slice/user@1000.service"
            )
            .unwrap(),
            Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/docker-abc.scope")
        );
        let p = parse_cgroups_path("", "ctr1", false).unwrap();
        assert_eq!(
            p,
            Placement {
                slice: "system.slice".into(),
                unit: "husk-ctr1.scope".into()
            }
        );
        let p = parse_cgroups_path("a-b.slice:p:n", "id", false).unwrap();
        assert_eq!(p.cgroup().unwrap(), "/a.slice/a-b.slice/p-n.scope");
        let p = parse_cgroups_path("-.slice:p:n", "id", false).unwrap();
        assert_eq!(p.cgroup().unwrap(), "/p-n.scope");
        let p = parse_cgroups_path("kubepods.slice:x:kubepods-pod1.slice", "id", false).unwrap();
        assert_eq!(p.unit, "kubepods-pod1.slice");
        assert_eq!(p.cgroup().unwrap(), "/kubepods.slice/kubepods-pod1.slice");
        let p = parse_cgroups_path("system.slice::n", "id", false).unwrap();
        assert_eq!(p.unit, "n.scope");
    }

    #[test]
    fn bad_cgroups_paths() {
        for bad in ["/foo/bar", "a:b", "a:b:c:d", "system.slice"] {
            assert_eq!(
                parse_cgroups_path(bad, "id", false).unwrap_err().to_string(),
                format!(
                    "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got \"{bad}\" instead"
                )
            );
        }
        assert_eq!(
            parse_cgroups_path("foo:p:n", "id", false).unwrap_err().to_string(),
            "invalid slice name: foo"
        );
        assert!(parse_cgroups_path("system.slice:p:", "id", false).is_err());
        assert!(parse_cgroups_path("system.slice:p:../../x", "id", false).is_err());
        assert!(parse_cgroups_path("system.slice:p:a b", "id", false).is_err());
        assert!(parse_cgroups_path("system.slice:p:a--b.slice", "id", false).is_err());
    }

    #[test]
    fn slices_expand() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
            ".slice",
            "foo",
            "a.slice.x",
            "a b.slice",
        ] {
            assert_eq!(
                expand_slice(bad).unwrap_err().to_string(),
                format!("invalid slice name: {bad}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn cpusets_become_little_endian_bitmasks() {
        assert_eq!(cpuset_to_bits("0-2,5").unwrap(), vec![0b0010_0111]);
        assert_eq!(cpuset_to_bits("0").unwrap(), vec![1]);
        assert_eq!(cpuset_to_bits("8").unwrap(), vec![0, 1]);
        assert_eq!(cpuset_to_bits(" 1 , 3-4 ,, 15").unwrap(), vec![0b0001_1010, 0x80]);
        assert_eq!(cpuset_to_bits("0-15").unwrap(), vec![0xff, 0xff]);
        assert_eq!(cpuset_to_bits("65535").unwrap().len(), 8192);
        for bad in ["", ",", "3-1", "a", "1-", "-1", "65536", "0-4294967295", "1-2-3"] {
            assert!(cpuset_to_bits(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cpu_conversions() {
        assert_eq!(cpu_weight_from_shares(512), 59);
        assert_eq!(cpu_weight_from_shares(1024), 100);
        assert_eq!(cpu_weight_from_shares(0), 0);
        // 50 ms per 100 ms: 500 ms per second, exact
        assert_eq!(cpu_quota_per_sec(50_000, 100_000), (500_000, 50_000));
        // default period
        assert_eq!(cpu_quota_per_sec(50_000, 0), (500_000, 50_000));
        // 12345 µs per 100 ms = 123450 µs/s → 130 ms, quota 13000
        assert_eq!(cpu_quota_per_sec(12_345, 100_000), (130_000, 13_000));
        // per_sec 1 → 10 ms, with a 1 s period: quota 10000
        assert_eq!(cpu_quota_per_sec(1, 1_000_000), (10_000, 10_000));
        assert_eq!(cpu_quota_per_sec(-1, 100_000), (u64::MAX, -1));
        assert_eq!(cpu_quota_per_sec(0, 50_000).0, u64::MAX);
        // no overflow
        let (s, q) = cpu_quota_per_sec(i64::MAX, 1);
        assert!(s < u64::MAX && q > 0);
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("252.22-1~deb12u1"), Some(252));
        assert_eq!(parse_version("v245.4-1.fc32"), Some(245));
        assert_eq!(parse_version("\"249\""), Some(249));
        assert_eq!(parse_version("x"), None);
    }

    fn names(p: &[Property]) -> Vec<(String, Value)> {
        p.iter().map(|p| (p.name.clone(), p.value.clone())).collect()
    }

    #[test]
    fn resources_become_properties() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 1048576, "reservation": 524288, "swap": 2097152},
                "cpu": {"shares": 512, "quota": 12345, "period": 100000, "cpus": "0-2,5", "mems": "0"},
                "pids": {"limit": 100}, "blockIO": {"weight": 500}}"#,
        )
        .unwrap();
        let out = resource_properties(&r, 252).unwrap();
        assert_eq!(
            names(&out.properties),
            vec![
                ("MemoryMax".into(), Value::U64(1_048_576)),
                ("MemoryLow".into(), Value::U64(524_288)),
                ("MemorySwapMax".into(), Value::U64(1_048_576)),
                ("CPUWeight".into(), Value::U64(59)),
                ("CPUQuotaPeriodUSec".into(), Value::U64(100_000)),
                ("CPUQuotaPerSecUSec".into(), Value::U64(130_000)),
                ("AllowedCPUs".into(), Value::Bytes(vec![0x27])),
                ("AllowedMemoryNodes".into(), Value::Bytes(vec![1])),
                ("TasksMax".into(), Value::U64(100)),
                ("IOWeight".into(), Value::U64(4950)),
            ]
        );
        assert_eq!(out.cpu_quota, Some(13_000));
        // an old systemd: no period, no cpuset
        let out = resource_properties(&r, 241).unwrap();
        assert!(
            !out.properties
                .iter()
                .any(|p| p.name == "CPUQuotaPeriodUSec" || p.name == "AllowedCPUs")
        );
        // unlimited values, swap equal to memory, idle, unified last
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 1000, "swap": 1000}, "cpu": {"idle": 1, "quota": -1},
                "pids": {"limit": -1},
                "unified": {"pids.max": "0", "memory.high": "max", "cpu.max": "max 50000", "io.weight": "7"}}"#,
        )
        .unwrap();
        let out = resource_properties(&r, 252).unwrap();
        assert_eq!(
            names(&out.properties),
            vec![
                ("MemoryMax".into(), Value::U64(1000)),
                ("MemorySwapMax".into(), Value::U64(0)),
                ("CPUWeight".into(), Value::U64(0)),
                ("CPUQuotaPerSecUSec".into(), Value::U64(u64::MAX)),
                ("TasksMax".into(), Value::U64(u64::MAX)),
                ("CPUQuotaPeriodUSec".into(), Value::U64(50_000)),
                ("CPUQuotaPerSecUSec".into(), Value::U64(u64::MAX)),
                ("IOWeight".into(), Value::U64(7)),
                ("MemoryHigh".into(), Value::U64(u64::MAX)),
                ("TasksMax".into(), Value::U64(1)),
            ]
        );
        let r: LinuxResources = serde_json::from_str(r#"{"unified": {"cpu.max": "1 2 3"}}"#).unwrap();
        assert!(resource_properties(&r, 252).is_err());
        let r: LinuxResources = serde_json::from_str(r#"{"cpu": {"cpus": "3-1"}}"#).unwrap();
        assert!(resource_properties(&r, 252).is_err());
    }

    #[test]
    fn v1_properties_use_the_v1_names() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": -1, "reservation": 5, "swap": 9}, "cpu": {"shares": 512, "quota": 50000, "cpus": "0"},
                "blockIO": {"weight": 300}, "pids": {"limit": -1}}"#,
        )
        .unwrap();
        let out = resource_properties_v1(&r, 252).unwrap();
        let d: Vec<String> = out.properties.iter().map(Property::describe).collect();
        assert_eq!(
            d,
            [
                "MemoryLimit=infinity",
                "CPUShares=512",
                "CPUQuotaPerSecUSec=500000",
                "BlockIOWeight=300",
                "TasksMax=infinity"
            ]
        );
        assert_eq!(out.cpu_quota, Some(50_000));
        let empty: LinuxResources = serde_json::from_str(r#"{"cpu": {"shares": 0}}"#).unwrap();
        assert!(resource_properties_v1(&empty, 252).unwrap().properties.is_empty());
        // pids 0 is a limit: TasksMax=1 (systemd refuses 0), as runc ≥ 1.4.
        let zero: LinuxResources = serde_json::from_str(r#"{"pids": {"limit": 0}}"#).unwrap();
        let d: Vec<String> = resource_properties_v1(&zero, 252)
            .unwrap()
            .properties
            .iter()
            .map(Property::describe)
            .collect();
        assert_eq!(d, vec!["TasksMax=1"]);
        let d: Vec<String> = resource_properties(&zero, 252)
            .unwrap()
            .properties
            .iter()
            .map(Property::describe)
            .collect();
        assert_eq!(d, vec!["TasksMax=1"]);
    }

    #[test]
    fn properties_describe_themselves() {
        assert_eq!(Property::u64("MemoryMax", 5).describe(), "MemoryMax=5");
        assert_eq!(Property::u64("TasksMax", u64::MAX).describe(), "TasksMax=infinity");
        assert_eq!(Property::boolean("Delegate", true).describe(), "Delegate=yes");
        assert_eq!(
            Property::bytes("AllowedCPUs", vec![0x27, 1]).describe(),
            "AllowedCPUs=2701"
        );
        assert_eq!(Property::pids(&[7, 8]).describe(), "PIDs=7,8");
        assert_eq!(
            Property::device_allow(&[("/dev/null", "rwm"), ("char-pts", "rw")]).describe(),
            "DeviceAllow=/dev/null rwm,char-pts rw"
        );
    }

    #[test]
    fn scope_properties_are_runcs() {
        let s = ScopeSpec {
            unit: "docker-x.scope".into(),
            slice: "system.slice".into(),
            description: "husk container x".into(),
            pid: 42,
            extra: vec![Property::u64("MemoryMax", 1 << 20)],
        };
        let p = s.properties();
        let n: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            n,
            [
                "Description",
                "Slice",
                "Delegate",
                "PIDs",
                "MemoryAccounting",
                "CPUAccounting",
                "IOAccounting",
                "TasksAccounting",
                "DefaultDependencies",
                "MemoryMax"
            ]
        );
        assert_eq!(p[3].value, Value::array("u", vec![Value::U32(42)]));
        let v = property_array(&p);
        assert_eq!(v.signature(), "a(sv)");
        dbus::encode_body(&[v]).unwrap();
        let d = Property::device_allow(&[("/dev/null", "rwm"), ("char-pts", "rwm")]);
        assert_eq!(d.value.signature(), "a(ss)");
        assert_eq!(Property::device_allow(&[]).value, Value::array("(ss)", vec![]));
    }

    #[test]
    fn endpoints_in_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(
            endpoints(false, env(&[])).unwrap(),
            vec![
                (Endpoint::Path(PRIVATE_SOCKET.into()), Peer::Direct),
                (Endpoint::Path("/run/dbus/system_bus_socket".into()), Peer::Bus)
            ]
        );
        assert_eq!(
            endpoints(false, env(&[("DBUS_SYSTEM_BUS_ADDRESS", "unix:abstract=sys")])).unwrap()[1],
            (Endpoint::Abstract(b"sys".to_vec()), Peer::Bus)
        );
        assert_eq!(
            endpoints(true, env(&[("XDG_RUNTIME_DIR", "/run/user/1000")])).unwrap(),
            vec![
                (Endpoint::Path("/run/user/1000/systemd/private".into()), Peer::Direct),
                (Endpoint::Path("/run/user/1000/bus".into()), Peer::Bus)
            ]
        );
        assert_eq!(
            endpoints(
                true,
                env(&[
                    ("XDG_RUNTIME_DIR", "/run/user/1000"),
                    ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/b")
                ])
            )
            .unwrap()[1],
            (Endpoint::Path("/b".into()), Peer::Bus)
        );
        assert!(
            endpoints(true, env(&[]))
                .unwrap_err()
                .to_string()
                .contains("XDG_RUNTIME_DIR")
        );
    }
}
