//! A minimal rtnetlink client (NETLINK_ROUTE), written by hand for
//! `linux.netDevices`: look links up, set them up or down, move one into
//! another network namespace (renamed on the way), read and add
//! addresses. One request at a time, each acknowledged (or a dump read to
//! its end) before the next; a socket talks to the network namespace it
//! was made in.

use anyhow::{Context, Result, bail};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};
use std::os::fd::{AsRawFd, OwnedFd};

// linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
use libc::{RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK};
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
pub const IFA_F_PERMANENT: u32 = 0x80;
/// IFA_F_NODAD, _HOMEADDRESS, _MANAGETEMPADDR, _NOPREFIXROUTE, _MCAUTOJOIN.
const IFA_F_SETTABLE: u32 = 0x02 | 0x10 | 0x100 | 0x200 | 0x400;
pub const RT_SCOPE_UNIVERSE: u8 = libc::RT_SCOPE_UNIVERSE;
const IFF_UP: u32 = 0x1;
const AF_UNSPEC: u8 = 0;
const HDR: usize = 16;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A routing attribute: type and payload.
fn attr(out: &mut Vec<u8>, typ: u16, data: &[u8]) {
    // attributes are names and addresses: far below 64 KiB
    let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&typ.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(align4(out.len()), 0);
}

/// The attributes in `buf`: (type without the nested/byte-order bits, payload).
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let typ = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((typ, &buf[4..len]));
        buf = &buf[align4(len).min(buf.len())..];
    }
    out
}

/// struct ifinfomsg.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut v = vec![AF_UNSPEC, 0, 0, 0];
    v.extend_from_slice(&index.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&change.to_ne_bytes());
    v
}

fn name_attr(name: &str) -> Vec<u8> {
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    n
}

/// One interface address as the kernel reported it (struct ifaddrmsg and
/// the attributes that make the address: IFA_ADDRESS, IFA_LOCAL,
/// IFA_BROADCAST).
#[derive(Debug, Clone, PartialEq)]
pub struct Addr {
    pub family: u8,
    pub prefixlen: u8,
    /// IFA_FLAGS when present (all 32 bits), else ifa_flags.
    pub flags: u32,
    pub scope: u8,
    pub attrs: Vec<(u16, Vec<u8>)>,
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self
            .attrs
            .iter()
            .find(|(t, _)| *t == IFA_LOCAL)
            .or_else(|| self.attrs.iter().find(|(t, _)| *t == IFA_ADDRESS))
            .map(|(_, d)| d.as_slice())
            .unwrap_or(&[]);
        match <[u8; 4]>::try_from(ip) {
            Ok(b) => write!(f, "{}/{}", std::net::Ipv4Addr::from(b), self.prefixlen),
            Err(_) => match <[u8; 16]>::try_from(ip) {
                Ok(b) => write!(f, "{}/{}", std::net::Ipv6Addr::from(b), self.prefixlen),
                Err(_) => write!(f, "(family {} address)/{}", self.family, self.prefixlen),
            },
        }
    }
}

pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// A NETLINK_ROUTE socket in the caller's network namespace.
    pub fn new() -> Result<Socket> {
        let fd = nix::sys::socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .context("socket(AF_NETLINK, NETLINK_ROUTE)")?;
        Ok(Socket { fd, seq: 0 })
    }

    /// A NETLINK_ROUTE socket in the network namespace `netns`: the
    /// caller enters it only for the socket(2) call and returns to its own.
    pub fn new_in(netns: &OwnedFd) -> Result<Socket> {
        use nix::sched::{CloneFlags, setns};
        let own = nix::fcntl::open(
            "/proc/self/ns/net",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .context("open /proc/self/ns/net")?;
        setns(netns, CloneFlags::CLONE_NEWNET).context("enter the container's network namespace")?;
        let s = Socket::new();
        setns(&own, CloneFlags::CLONE_NEWNET).context("return to husk's own network namespace")?;
        s
    }

    /// Send one request and read its answer: the payloads of the data
    /// messages, up to NLMSG_DONE for a dump, else up to the
    /// acknowledgement (always asked for). A netlink error becomes an
    /// `Errno`.
    fn request(&mut self, typ: u16, flags: u16, body: &[u8]) -> Result<Vec<Vec<u8>>> {
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let flags = if dump { flags } else { flags | NLM_F_ACK };
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut msg = Vec::with_capacity(HDR + body.len());
        let len = u32::try_from(HDR + body.len()).context("netlink message too long")?;
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        loop {
            match nix::sys::socket::send(self.fd.as_raw_fd(), &msg, MsgFlags::empty()) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("send a netlink request"),
            }
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match nix::sys::socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("receive a netlink answer"),
            };
            if n == 0 {
                bail!("the netlink socket closed");
            }
            let mut off = 0;
            while off + HDR <= n {
                let h = &buf[off..];
                let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let mtype = u16::from_ne_bytes([h[4], h[5]]);
                let mseq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
                if len < HDR || off + len > n {
                    bail!("a truncated netlink message");
                }
                let payload = &buf[off + HDR..off + len];
                off += align4(len);
                if mseq != seq {
                    continue;
                }
                match mtype {
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .context("a short netlink error message")?;
                        if code != 0 {
                            return Err(nix::errno::Errno::from_raw(-code).into());
                        }
                        return Ok(out); // the acknowledgement
                    }
                    NLMSG_DONE if dump => return Ok(out),
                    _ => out.push(payload.to_vec()),
                }
            }
        }
    }

    /// The index of the link named `name`, None when there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<i32>> {
        let mut body = ifinfomsg(0, 0, 0);
        attr(&mut body, IFLA_IFNAME, &name_attr(name));
        match self.request(RTM_GETLINK, 0, &body) {
            Ok(msgs) => Ok(msgs
                .first()
                .and_then(|m| m.get(4..8))
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))),
            Err(e) if e.downcast_ref::<nix::errno::Errno>() == Some(&nix::errno::Errno::ENODEV) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("look up network device {name} (RTM_GETLINK)")),
        }
    }

    /// Every link: (index, name).
    pub fn links(&mut self) -> Result<Vec<(i32, String)>> {
        let msgs = self
            .request(RTM_GETLINK, NLM_F_DUMP, &ifinfomsg(0, 0, 0))
            .context("list the network devices (RTM_GETLINK)")?;
        let mut out = Vec::new();
        for m in msgs {
            let Some(b) = m.get(4..8) else { continue };
            let index = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            let name = attrs(m.get(16..).unwrap_or(&[]))
                .into_iter()
                .find(|(t, _)| *t == IFLA_IFNAME)
                .map(|(_, d)| String::from_utf8_lossy(d.split(|c| *c == 0).next().unwrap_or(&[])).into_owned())
                .unwrap_or_default();
            out.push((index, name));
        }
        Ok(out)
    }

    /// Set link `index` up or down.
    pub fn set_up(&mut self, index: i32, up: bool) -> Result<()> {
        let body = ifinfomsg(index, if up { IFF_UP } else { 0 }, IFF_UP);
        self.request(RTM_NEWLINK, 0, &body).map(drop)
    }

    /// Move link `index` into the network namespace `netns`, named `name`
    /// there (one RTM_NEWLINK with IFLA_NET_NS_FD and IFLA_IFNAME, as runc).
    pub fn move_to_netns(&mut self, index: i32, name: &str, netns: &OwnedFd) -> Result<()> {
        let mut body = ifinfomsg(index, 0, 0);
        attr(&mut body, IFLA_IFNAME, &name_attr(name));
        attr(&mut body, IFLA_NET_NS_FD, &(netns.as_raw_fd() as u32).to_ne_bytes());
        self.request(RTM_NEWLINK, 0, &body).map(drop)
    }

    /// The addresses of link `index`, every family.
    pub fn addresses(&mut self, index: i32) -> Result<Vec<Addr>> {
        let body = vec![AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0];
        let msgs = self.request(RTM_GETADDR, NLM_F_DUMP, &body)?;
        let mut out = Vec::new();
        for m in msgs {
            if m.len() < 8 {
                continue;
            }
            let ifindex = u32::from_ne_bytes([m[4], m[5], m[6], m[7]]);
            if ifindex as i32 != index {
                continue;
            }
            let mut a = Addr {
                family: m[0],
                prefixlen: m[1],
                flags: m[2] as u32,
                scope: m[3],
                attrs: Vec::new(),
            };
            for (t, d) in attrs(&m[8..]) {
                match t {
                    IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => a.attrs.push((t, d.to_vec())),
                    IFA_FLAGS if d.len() == 4 => a.flags = u32::from_ne_bytes([d[0], d[1], d[2], d[3]]),
                    _ => {}
                }
            }
            out.push(a);
        }
        Ok(out)
    }

    /// Add address `a` to link `index`: its family, prefix, scope,
    /// address attributes and the flags a user sets (nodad,
    /// noprefixroute, …); a permanent address.
    pub fn add_address(&mut self, index: i32, a: &Addr) -> Result<()> {
        let mut body = vec![a.family, a.prefixlen, 0, a.scope];
        body.extend_from_slice(&(index as u32).to_ne_bytes());
        for (t, d) in &a.attrs {
            attr(&mut body, *t, d);
        }
        let settable = a.flags & IFA_F_SETTABLE;
        if settable != 0 {
            attr(&mut body, IFA_FLAGS, &settable.to_ne_bytes());
        }
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_padding() {
        let mut b = Vec::new();
        attr(&mut b, IFLA_IFNAME, &name_attr("eth0"));
        attr(&mut b, IFLA_NET_NS_FD, &7u32.to_ne_bytes());
        assert_eq!(b.len(), 12 + 8);
        let a = attrs(&b);
        assert_eq!(
            a,
            vec![(IFLA_IFNAME, &b"eth0\0"[..]), (IFLA_NET_NS_FD, &7u32.to_ne_bytes()[..])]
        );
    }

    #[test]
    fn addresses_print_as_cidr() {
        let a = Addr {
            family: 2,
            prefixlen: 24,
            flags: IFA_F_PERMANENT,
            scope: 0,
            attrs: vec![(IFA_LOCAL, vec![10, 0, 0, 1])],
        };
        assert_eq!(a.to_string(), "10.0.0.1/24");
    }
}
