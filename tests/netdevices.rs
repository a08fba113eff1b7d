//! `linux.netDevices` (runtime-spec 1.3): host network devices moved into
//! the container's network namespace, renamed, with their permanent
//! global addresses, and up; and the mistakes refused naming the field.
//! This kernel has no dummy driver: the devices are one end of a veth pair.
mod common;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// A veth pair on the host with unique names, both ends deleted on drop
/// (the end moved into a container is gone with its namespace; the peer
/// goes with it, or here).
struct Veth {
    host: String,
    peer: String,
}

impl Veth {
    /// None (recorded as not checked) where the host cannot make one.
    fn new(what: &str) -> Option<Veth> {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = std::process::id() % 100_000;
        let v = Veth {
            host: format!("hkd{id}x{n}"),
            peer: format!("hkd{id}p{n}"),
        };
        let o = Command::new("ip")
            .args(["link", "add", &v.host, "type", "veth", "peer", "name", &v.peer])
            .output()
            .expect("run ip");
        if !o.status.success() {
            not_checked(
                what,
                &format!(
                    "ip link add … type veth failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            );
            return None;
        }
        Some(v)
    }

    fn ip(&self, args: &[&str]) {
        let o = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for d in [&self.host, &self.peer] {
            let _ = Command::new("ip").args(["link", "del", d]).output();
        }
    }
}

fn on_host(dev: &str) -> bool {
    Path::new("/sys/class/net").join(dev).exists()
}

#[test]
fn host_devices_are_moved_renamed_with_their_addresses_and_up() {
    let e = Env::new("netdev");
    let what = "linux.netDevices moving a veth end into the container";
    let Some(a) = Veth::new(what) else { return };
    let Some(b) = Veth::new(what) else { return };
    let x = std::process::id() % 250;
    let v4 = format!("10.213.{x}.1/24");
    let v6 = format!("fd00:213:{x}::1/64");
    a.ip(&["addr", "add", &v4, "dev", &a.host]);
    a.ip(&["-6", "addr", "add", &v6, "dev", &a.host, "nodad"]);
    a.ip(&["link", "set", &a.host, "up"]);
    // b: down on the host, no address, keeps its name.
    let script = format!(
        "ls /sys/class/net; ip -o addr show dev ceth0 | while read -r _ _ fam addr _; do echo \"$fam $addr\"; done; \
         cat /sys/class/net/ceth0/flags /sys/class/net/{}/flags",
        b.host
    );
    let bundle = e.bundle("a", &["sh", "-c", &script], |v| {
        v["linux"]["netDevices"] = json!({ a.host.as_str(): {"name": "ceth0"}, b.host.as_str(): {} });
    });
    let o = e.run(&bundle, &e.id("a"));
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let mut names = ["ceth0", b.host.as_str(), "lo"];
    names.sort();
    assert_eq!(lines[..3], names[..], "{out}");
    assert!(lines.contains(&format!("inet {v4}").as_str()), "{out}");
    assert!(lines.contains(&format!("inet6 {v6}").as_str()), "{out}");
    // Both up (IFF_UP, bit 0 of the flags), b too though it was down.
    let flags: Vec<u32> = lines[lines.len() - 2..]
        .iter()
        .map(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).unwrap())
        .collect();
    assert!(flags.iter().all(|f| f & 1 == 1), "{out}");
    // Never moved back (the spec): gone from the host.
    assert!(!on_host(&a.host) && !on_host(&b.host));
}

/// A process holding a network namespace of its own, killed on drop.
struct NetnsHolder(std::process::Child);
impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace joined by path (a pod's, made by someone else):
/// the device is moved into it, as runc does.
#[test]
fn a_device_moves_into_a_network_namespace_joined_by_path() {
    let e = Env::new("netdevjoin");
    let Some(a) = Veth::new("linux.netDevices into a network namespace joined by path") else {
        return;
    };
    let child = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("run unshare");
    let holder = NetnsHolder(child);
    let pid = holder.0.id();
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    wait_for(std::time::Duration::from_secs(10), || {
        std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|l| l != own)
            && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    })
    .expect("unshare --net never made its namespace");
    let bundle = e.bundle("a", &["ls", "/sys/class/net"], |v| {
        v["linux"]["netDevices"] = json!({ a.host.as_str(): {"name": "pod0"} });
        for ns in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(format!("/proc/{pid}/ns/net"));
            }
        }
    });
    let o = e.run(&bundle, &e.id("a"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "lo\npod0\n");
    // Still there after the container: the namespace is the holder's.
    let o = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip", "-o", "link", "show", "pod0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!on_host(&a.host));
}

#[test]
fn net_devices_mistakes_are_refused_naming_the_field() {
    let e = Env::new("netdevbad");
    let missing = format!("hkdno{}", std::process::id() % 100_000);
    // (devices, the network namespace: new, none, or husk's own joined by path; the error)
    let cases: Vec<(serde_json::Value, Option<bool>, String)> = vec![
        (
            json!({ missing.as_str(): {} }),
            Some(true),
            format!("linux.netDevices.{missing}: the host has no network device {missing:?}"),
        ),
        (
            json!({ missing.as_str(): {"name": "lo"} }),
            Some(true),
            format!("linux.netDevices.{missing}.name \"lo\": the container's network namespace has a lo of its own"),
        ),
        (
            json!({ "lo": {} }),
            Some(true),
            "linux.netDevices.lo: the loopback device cannot be moved".to_string(),
        ),
        (
            json!({ missing.as_str(): {"name": "a/b"} }),
            Some(true),
            format!("linux.netDevices.{missing}.name \"a/b\" is not a valid network device name"),
        ),
        (
            json!({ missing.as_str(): {} }),
            None,
            "linux.netDevices needs a network namespace in linux.namespaces".to_string(),
        ),
        (
            json!({ missing.as_str(): {} }),
            Some(false),
            "linux.netDevices: the container's network namespace is husk's own".to_string(),
        ),
    ];
    for (n, (devs, netns, want)) in cases.into_iter().enumerate() {
        let b = e.bundle(&format!("c{n}"), &["true"], |v| {
            v["linux"]["netDevices"] = devs;
            let nss = v["linux"]["namespaces"].as_array_mut().unwrap();
            match netns {
                Some(true) => {}
                None => nss.retain(|ns| ns["type"] != "network"),
                Some(false) => {
                    for ns in nss.iter_mut().filter(|ns| ns["type"] == "network") {
                        ns["path"] = json!("/proc/self/ns/net");
                    }
                }
            }
        });
        let o = e.run(&b, &e.id(&format!("c{n}")));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "case {n} was accepted");
        assert!(err.contains(&want), "case {n}: {err}");
    }
}

#[test]
fn features_say_net_devices_are_supported() {
    let e = Env::new("netdevfeat");
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["features"])).unwrap();
    assert_eq!(v["linux"]["netDevices"]["enabled"], json!(true), "{v}");
}
