//! `linux.netDevices` (runtime-spec 1.3): host network devices moved into
//! the container's network namespace by husk, after the clone and before
//! the init goes on (as runc 1.3+): each device's permanent addresses of
//! global scope are read (before it goes down: that drops IPv6 addresses;
//! runc reads them after), it is set down, moved with one RTM_NEWLINK carrying
//! the namespace fd and the name it gets there, its addresses added again
//! inside (the kernel drops them on the move) and set up. The runtime
//! never moves a device back (the spec): when the namespace goes, the
//! kernel returns physical devices to the host and destroys virtual ones.

use crate::sys::ErrnoResult as _;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::Spec;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;

use crate::netlink::{IFA_F_PERMANENT, RT_SCOPE_UNIVERSE, Socket};

/// Why `name` cannot name a network device (the kernel's rule,
/// dev_valid_name: 1 to 15 bytes, not `.` or `..`, no `/`, `:` or
/// white space), or None.
pub fn invalid_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() >= 16 {
        return Some("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Some("it is . or ..");
    }
    if name.contains(['/', ':']) || name.chars().any(char::is_whitespace) {
        return Some("it contains /, : or white space");
    }
    None
}

/// The devices of the config, sorted by host name, with the name each
/// gets in the container.
pub fn devices(spec: &Spec) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .into_iter()
        .flatten()
        .map(|(k, d)| {
            let inside = d.name().as_deref().filter(|n| !n.is_empty()).unwrap_or(k);
            (k.clone(), inside.to_string())
        })
        .collect();
    v.sort();
    v
}

/// The config rules (bundle validation): a network namespace to move
/// into; valid names; not `lo` (it cannot leave its namespace, and the
/// container's namespace has its own); no two devices given one name.
pub fn problems(spec: &Spec, has_netns: bool) -> Vec<crate::bundle::Problem> {
    let mut out = Vec::new();
    let mut e = |path: String, message: String| out.push(crate::bundle::Problem { path, message });
    let devs = devices(spec);
    if devs.is_empty() {
        return out;
    }
    if !has_netns {
        e(
            "linux.netDevices".into(),
            "linux.netDevices needs a network namespace in linux.namespaces: the devices are moved into the container's"
                .into(),
        );
    }
    let mut seen = HashSet::new();
    let named = |key: &str| {
        spec.linux()
            .as_ref()
            .and_then(|l| l.net_devices().as_ref())
            .and_then(|d| d.get(key))
            .and_then(|d| d.name().as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    for (key, inside) in &devs {
        let path = format!("linux.netDevices.{key}");
        if let Some(why) = invalid_name(key) {
            e(
                path.clone(),
                format!("{path}: {key:?} is not a valid network device name: {why}"),
            );
        } else if key == "lo" {
            e(
                path.clone(),
                format!("{path}: the loopback device cannot be moved out of the host's network namespace"),
            );
        }
        if named(key) {
            let npath = format!("{path}.name");
            if let Some(why) = invalid_name(inside) {
                e(
                    npath.clone(),
                    format!("{npath} {inside:?} is not a valid network device name: {why}"),
                );
            } else if inside == "lo" {
                e(
                    npath.clone(),
                    format!("{npath} \"lo\": the container's network namespace has a lo of its own"),
                );
            }
        }
        // (a `%d` template gets a free name from the kernel)
        if !inside.contains('%') && !seen.insert(inside.clone()) {
            e(
                path.clone(),
                format!("{path}: another device of linux.netDevices gets the name {inside:?} in the container too"),
            );
        }
    }
    out
}

/// Before the clone: moving devices needs a root husk (runc refuses
/// netDevices in rootless containers too).
pub fn check_privilege(spec: &Spec) -> Result<()> {
    if !devices(spec).is_empty() && !nix::unistd::geteuid().is_root() {
        bail!(
            "linux.netDevices: moving network devices needs husk to run as root (runc refuses it in rootless containers too)"
        );
    }
    Ok(())
}

/// The `--debug` timeline's (and `husk plan`'s) name of one device's move.
pub const STEP_MOVE: &str = "move a network device into the container";

/// Host side, after the clone and before `G`: move every device into the
/// network namespace of the init `init_pid`.
pub fn move_devices(spec: &Spec, init_pid: i32) -> Result<()> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    let p = format!("/proc/{init_pid}/ns/net");
    let netns = nix::fcntl::open(
        p.as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("linux.netDevices: open {p}"))?;
    // A namespace joined by path may be husk's own (the host's).
    let theirs = nix::sys::stat::fstat(&netns).with_context(|| format!("stat {p}"))?;
    let own = std::fs::metadata("/proc/self/ns/net")
        .errno()
        .context("stat /proc/self/ns/net")?;
    if (theirs.st_dev, theirs.st_ino) == (own.dev(), own.ino()) {
        bail!(
            "linux.netDevices: the container's network namespace is husk's own: there is nothing to move the devices into"
        );
    }
    let mut host = Socket::new().context("linux.netDevices: a netlink socket")?;
    let mut inside =
        Socket::new_in(&netns).context("linux.netDevices: a netlink socket in the container's network namespace")?;
    for (key, name) in devs {
        let field = format!("linux.netDevices.{key}");
        crate::logging::step(
            STEP_MOVE,
            || format!("{key} as {name}"),
            || move_one(&mut host, &mut inside, &netns, &key, &name),
        )
        .with_context(|| field.clone())?;
    }
    Ok(())
}

fn move_one(host: &mut Socket, inside: &mut Socket, netns: &std::os::fd::OwnedFd, key: &str, name: &str) -> Result<()> {
    let index = host
        .link_index(key)?
        .with_context(|| format!("the host has no network device {key:?}"))?;
    // The addresses first: setting a device down drops its IPv6
    // addresses (unless the host keeps them, keep_addr_on_down).
    let addrs: Vec<_> = host
        .addresses(index)
        .with_context(|| format!("read the addresses of {key}"))?
        .into_iter()
        .filter(|a| a.flags & IFA_F_PERMANENT != 0 && a.scope == RT_SCOPE_UNIVERSE)
        .collect();
    // Down on the host before it moves, as runc does.
    host.set_up(index, false).with_context(|| format!("set {key} down"))?;
    let before: HashSet<i32> = inside.links()?.into_iter().map(|(i, _)| i).collect();
    host.move_to_netns(index, name, netns)
        .map_err(|e| match e.downcast_ref::<nix::errno::Errno>() {
            Some(nix::errno::Errno::EEXIST) => {
                anyhow::anyhow!("the container's network namespace has a device named {name:?} already")
            }
            _ => e.context(format!(
                "move {key} into the container's network namespace as {name} (RTM_NEWLINK)"
            )),
        })?;
    // Its index there: the one link that was not there before (the
    // kernel keeps the index when it is free, and a `%d` name is chosen
    // by the kernel).
    let new: Vec<(i32, String)> = inside
        .links()?
        .into_iter()
        .filter(|(i, _)| !before.contains(i))
        .collect();
    let (new_index, new_name) = match new.as_slice() {
        [one] => one.clone(),
        _ => new.iter().find(|(_, n)| n == name).cloned().with_context(|| {
            format!("{key} moved, but no device {name:?} shows in the container's network namespace")
        })?,
    };
    for a in &addrs {
        inside
            .add_address(new_index, a)
            .with_context(|| format!("add address {a} to {new_name} in the container"))?;
    }
    inside
        .set_up(new_index, true)
        .with_context(|| format!("set {new_name} up in the container"))?;
    crate::debug!(
        "network device {key} is {new_name} in the container, with {} address(es)",
        addrs.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_follow_the_kernels_rule() {
        assert_eq!(invalid_name("eth0"), None);
        assert_eq!(invalid_name("net%d"), None);
        assert_eq!(invalid_name("123456789012345"), None);
        assert!(invalid_name("1234567890123456").is_some());
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a\tb"] {
            assert!(invalid_name(bad).is_some(), "{bad:?}");
        }
    }
}
