//! The one table of mount option words: what `parse_options` understands
//! and what `husk features` lists as `mountOptions` (so the two cannot
//! drift). Words not in the table are filesystem data (`size=1m`,
//! `mode=755`, …) passed to mount(2) as they are. The meanings follow
//! runc 1.5: `ro` and the other plain words act on the mount itself (for a
//! recursive bind: the top mount only); the `r…` words of runtime-spec 1.3
//! act on every mount of the tree, through mount_setattr(AT_RECURSIVE).

use nix::mount::MsFlags;

/// mount_setattr(2) attribute bits (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// MS_NOSYMFOLLOW (Linux 5.10), which nix does not name.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// What one option word does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Effect {
    /// Set (`clear: false`) or clear a mount(2) flag.
    Flag { clear: bool, flag: MsFlags },
    /// A propagation change applied after the mount.
    Propagation(MsFlags),
    /// A recursive attribute, set or cleared with mount_setattr(AT_RECURSIVE).
    RecAttr { clear: bool, attr: u64 },
    /// runc's `tmpcopyup` (`true`) / `notmpcopyup`.
    CopyUp(bool),
    /// `idmap` (`false`) / `ridmap` (`true`): an id-mapped mount.
    IdMap { recursive: bool },
}

const fn set(flag: MsFlags) -> Effect {
    Effect::Flag { clear: false, flag }
}
const fn clear(flag: MsFlags) -> Effect {
    Effect::Flag { clear: true, flag }
}
const fn rset(attr: u64) -> Effect {
    Effect::RecAttr { clear: false, attr }
}
const fn rclear(attr: u64) -> Effect {
    Effect::RecAttr { clear: true, attr }
}

/// Every option word husk knows, with its effect.
pub const TABLE: &[(&str, Effect)] = &[
    ("async", clear(MsFlags::MS_SYNCHRONOUS)),
    ("atime", clear(MsFlags::MS_NOATIME)),
    ("bind", set(MsFlags::MS_BIND)),
    ("defaults", set(MsFlags::empty())),
    ("dev", clear(MsFlags::MS_NODEV)),
    ("diratime", clear(MsFlags::MS_NODIRATIME)),
    ("dirsync", set(MsFlags::MS_DIRSYNC)),
    ("exec", clear(MsFlags::MS_NOEXEC)),
    ("lazytime", set(MsFlags::MS_LAZYTIME)),
    ("loud", clear(MsFlags::MS_SILENT)),
    ("mand", set(MsFlags::MS_MANDLOCK)),
    ("noatime", set(MsFlags::MS_NOATIME)),
    ("nodev", set(MsFlags::MS_NODEV)),
    ("nodiratime", set(MsFlags::MS_NODIRATIME)),
    ("noexec", set(MsFlags::MS_NOEXEC)),
    ("nolazytime", clear(MsFlags::MS_LAZYTIME)),
    ("nomand", clear(MsFlags::MS_MANDLOCK)),
    ("norelatime", clear(MsFlags::MS_RELATIME)),
    ("nostrictatime", clear(MsFlags::MS_STRICTATIME)),
    ("nosuid", set(MsFlags::MS_NOSUID)),
    ("nosymfollow", set(MS_NOSYMFOLLOW)),
    ("rbind", set(MsFlags::MS_BIND.union(MsFlags::MS_REC))),
    ("relatime", set(MsFlags::MS_RELATIME)),
    ("remount", set(MsFlags::MS_REMOUNT)),
    ("ro", set(MsFlags::MS_RDONLY)),
    ("rw", clear(MsFlags::MS_RDONLY)),
    ("silent", set(MsFlags::MS_SILENT)),
    ("strictatime", set(MsFlags::MS_STRICTATIME)),
    ("suid", clear(MsFlags::MS_NOSUID)),
    ("symfollow", clear(MS_NOSYMFOLLOW)),
    ("sync", set(MsFlags::MS_SYNCHRONOUS)),
    ("private", Effect::Propagation(MsFlags::MS_PRIVATE)),
    (
        "rprivate",
        Effect::Propagation(MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ),
    ("shared", Effect::Propagation(MsFlags::MS_SHARED)),
    (
        "rshared",
        Effect::Propagation(MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ),
    ("slave", Effect::Propagation(MsFlags::MS_SLAVE)),
    ("rslave", Effect::Propagation(MsFlags::MS_SLAVE.union(MsFlags::MS_REC))),
    ("unbindable", Effect::Propagation(MsFlags::MS_UNBINDABLE)),
    (
        "runbindable",
        Effect::Propagation(MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
    ),
    ("rro", rset(MOUNT_ATTR_RDONLY)),
    ("rrw", rclear(MOUNT_ATTR_RDONLY)),
    ("rnosuid", rset(MOUNT_ATTR_NOSUID)),
    ("rsuid", rclear(MOUNT_ATTR_NOSUID)),
    ("rnodev", rset(MOUNT_ATTR_NODEV)),
    ("rdev", rclear(MOUNT_ATTR_NODEV)),
    ("rnoexec", rset(MOUNT_ATTR_NOEXEC)),
    ("rexec", rclear(MOUNT_ATTR_NOEXEC)),
    ("rnodiratime", rset(MOUNT_ATTR_NODIRATIME)),
    ("rdiratime", rclear(MOUNT_ATTR_NODIRATIME)),
    ("rrelatime", rset(MOUNT_ATTR_RELATIME)),
    ("rnorelatime", rclear(MOUNT_ATTR_RELATIME)),
    ("rnoatime", rset(MOUNT_ATTR_NOATIME)),
    ("ratime", rclear(MOUNT_ATTR_NOATIME)),
    ("rstrictatime", rset(MOUNT_ATTR_STRICTATIME)),
    ("rnostrictatime", rclear(MOUNT_ATTR_STRICTATIME)),
    ("rnosymfollow", rset(MOUNT_ATTR_NOSYMFOLLOW)),
    ("rsymfollow", rclear(MOUNT_ATTR_NOSYMFOLLOW)),
    ("tmpcopyup", Effect::CopyUp(true)),
    ("notmpcopyup", Effect::CopyUp(false)),
    ("idmap", Effect::IdMap { recursive: false }),
    ("ridmap", Effect::IdMap { recursive: true }),
];

/// The effect of one word, if it is an option word (not filesystem data).
pub fn lookup(word: &str) -> Option<Effect> {
    TABLE.iter().find(|(w, _)| *w == word).map(|(_, e)| *e)
}

/// The propagation flags of a propagation word (`rslave`, …).
pub fn propagation_flag(word: &str) -> Option<MsFlags> {
    match lookup(word) {
        Some(Effect::Propagation(f)) => Some(f),
        _ => None,
    }
}

/// The words `husk features` lists, sorted: every word of the table,
/// `idmap` and `ridmap` included (runc 1.5 leaves those two out of its
/// list and tells only through `mountExtensions.idmap`; husk applies
/// them, so it lists them).
pub fn known_words() -> Vec<&'static str> {
    let mut v: Vec<&str> = TABLE.iter().map(|(w, _)| *w).collect();
    v.sort_unstable();
    v
}

/// The recursive attributes of a mount: mount_setattr's `attr_set` and
/// `attr_clr`, with the words that asked for them (for errors).
#[derive(Debug, Default, PartialEq, Clone)]
pub struct RecAttr {
    pub set: u64,
    pub clr: u64,
    pub words: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags a word explicitly cleared (`rw`, `suid`, …).
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    /// runc's `tmpcopyup`: copy what the rootfs has at the destination into
    /// the new tmpfs (podman --read-only uses it for /run, /tmp, /var/tmp).
    pub copy_up: bool,
    /// `r…` words, applied to the whole mount tree after the mount.
    pub rec_attr: Option<RecAttr>,
    /// `idmap` / `ridmap`: Some(recursive).
    pub idmap: Option<bool>,
}

/// Split mount option words into flags, propagation changes, recursive
/// attributes and the data string passed to the filesystem.
pub fn parse_options(opts: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
        bind: false,
        copy_up: false,
        rec_attr: None,
        idmap: None,
    };
    for w in opts {
        match lookup(w) {
            Some(Effect::Flag { clear, flag }) => {
                if clear {
                    o.flags.remove(flag);
                    o.cleared.insert(flag);
                } else {
                    o.flags.insert(flag);
                    o.cleared.remove(flag);
                }
                if flag.contains(MsFlags::MS_BIND) {
                    o.bind = true;
                }
            }
            Some(Effect::Propagation(p)) => o.propagation.push(p),
            Some(Effect::RecAttr { clear, attr }) => {
                let r = o.rec_attr.get_or_insert_with(RecAttr::default);
                if clear {
                    r.clr |= attr;
                    r.set &= !attr;
                } else {
                    r.set |= attr;
                    r.clr &= !attr;
                }
                // The access-time setting is an enum: mount_setattr wants
                // the whole field cleared for any of its values (runc too).
                if attr & MOUNT_ATTR_ATIME == attr {
                    r.clr |= MOUNT_ATTR_ATIME;
                }
                r.words.push(w.clone());
            }
            Some(Effect::CopyUp(on)) => o.copy_up = on,
            Some(Effect::IdMap { recursive }) => o.idmap = Some(recursive),
            None => o.data.push(w.clone()),
        }
    }
    o
}

/// A bind mount by its options (`bind`, `rbind`: the words with MS_BIND),
/// as the rootfs setup decides it.
pub fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    parse_options(m.options().as_deref().unwrap_or(&[])).bind
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = parse_options(&s(&["nosuid", "strictatime", "mode=755", "size=65536k", "rprivate"]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, s(&["mode=755", "size=65536k"]));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(!o.bind);
        assert!(o.rec_attr.is_none());
        let o = parse_options(&s(&["rbind", "ro", "rw", "nodev", "nosymfollow"]));
        assert!(o.bind);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NODEV | MS_NOSYMFOLLOW
        );
        assert_eq!(o.cleared, MsFlags::MS_RDONLY);
    }

    #[test]
    fn recursive_attributes() {
        let o = parse_options(&s(&["rbind", "rro", "rnoexec", "rexec", "rnoatime"]));
        let r = o.rec_attr.unwrap();
        assert_eq!(r.set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME);
        assert_eq!(r.clr, MOUNT_ATTR_NOEXEC | MOUNT_ATTR_ATIME);
        assert_eq!(r.words, s(&["rro", "rnoexec", "rexec", "rnoatime"]));
        // rrelatime: the atime field cleared, nothing set (relatime is 0).
        let r = parse_options(&s(&["rrelatime"])).rec_attr.unwrap();
        assert_eq!((r.set, r.clr), (0, MOUNT_ATTR_ATIME));
        let r = parse_options(&s(&["rnodiratime"])).rec_attr.unwrap();
        assert_eq!((r.set, r.clr), (MOUNT_ATTR_NODIRATIME, 0));
        assert_eq!(parse_options(&s(&["ridmap"])).idmap, Some(true));
    }

    #[test]
    fn every_word_is_known_once_and_listed() {
        let words = known_words();
        let mut dedup = words.clone();
        dedup.dedup();
        assert_eq!(words, dedup, "a word appears twice in the table");
        for w in ["rro", "nosymfollow", "tmpcopyup", "rslave", "idmap", "ridmap"] {
            assert!(words.contains(&w), "{w}");
        }
        assert_eq!(propagation_flag("rslave"), Some(MsFlags::MS_SLAVE | MsFlags::MS_REC));
        assert_eq!(propagation_flag("ro"), None);
    }
}
