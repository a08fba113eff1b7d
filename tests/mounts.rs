//! Mounts from the config as runc (1.1.5 for behaviour, 1.5 for the
//! runtime-spec 1.3 words) makes them: destinations through dangling
//! symlinks, bind sources the container cannot reach, rbind of /sys with a
//! cgroup mount, the tmpfs root's mode, `ro` vs `rro` on recursive binds,
//! the recursive attributes, nosymfollow, id-mapped mounts, and errors
//! that name the options.
mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn run_sh(e: &Env, name: &str, script: &str, edit: impl FnOnce(&mut serde_json::Value)) -> (i32, String, String) {
    let b = e.bundle(name, &["sh", "-c", script], edit);
    let o = e.run(&b, &e.id(name));
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn add_mount(v: &mut serde_json::Value, m: serde_json::Value) {
    v["mounts"].as_array_mut().unwrap().push(m);
}

fn userns(v: &mut serde_json::Value) {
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

/// A tmpfs mounted on the host at `dir` for the test's life (a submount
/// for a recursive bind to carry), detached on drop.
struct HostTmpfs(PathBuf);
impl HostTmpfs {
    fn new(dir: &Path) -> HostTmpfs {
        std::fs::create_dir_all(dir).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap_or_else(|e| panic!("mount a tmpfs on {}: {e}", dir.display()));
        HostTmpfs(dir.to_path_buf())
    }
}
impl Drop for HostTmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The options column of `dest`'s line in the container's /proc/mounts
/// output `out` (lines "dest opts").
fn opts_of<'a>(out: &'a str, dest: &str) -> &'a str {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(d, _)| *d == dest)
        .map(|(_, o)| o)
        .unwrap_or_else(|| panic!("{dest} not mounted in:\n{out}"))
}

fn has(opts: &str, word: &str) -> bool {
    opts.split(',').any(|o| o == word)
}

const MOUNTS: &str = "while read -r _ d _ o _; do echo \"$d $o\"; done < /proc/mounts";

#[test]
fn dangling_symlink_destinations_are_created_inside_the_rootfs() {
    let e = Env::new("danglink");
    let rootfs = e.private_rootfs();
    // A file bind onto /etc/link -> /etc/not-existing (absolute), a tmpfs
    // onto /dirlink -> ../../../nodir (climbing above the root: clamped),
    // a file bind onto /esc -> /../../tmp/<unique> (must stay inside).
    std::os::unix::fs::symlink("/etc/not-existing", rootfs.join("etc/link")).unwrap();
    std::os::unix::fs::symlink("../../../nodir", rootfs.join("dirlink")).unwrap();
    let unique = format!("husk-escape-{}", e.name);
    std::os::unix::fs::symlink(format!("/../../tmp/{unique}"), rootfs.join("esc")).unwrap();
    let host_escape = Path::new("/tmp").join(&unique);
    let src = e.base.join("hello");
    std::fs::write(&src, "hello\n").unwrap();
    let (code, out, err) = run_sh(&e, "a", "cat /etc/link /esc; grep -c ' /nodir ' /proc/mounts", |v| {
        v["root"] = json!({"path": rootfs, "readonly": false});
        add_mount(
            v,
            json!({"destination": "/etc/link", "type": "bind", "source": src, "options": ["bind"]}),
        );
        add_mount(
            v,
            json!({"destination": "/dirlink", "type": "tmpfs", "source": "tmpfs"}),
        );
        add_mount(
            v,
            json!({"destination": "/esc", "type": "bind", "source": src, "options": ["bind"]}),
        );
    });
    let escaped = host_escape.exists();
    let _ = std::fs::remove_file(&host_escape);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hello\nhello\n1\n");
    assert!(
        rootfs.join("etc/not-existing").is_file(),
        "the link's target was not made as a file"
    );
    assert!(rootfs.join("nodir").is_dir(), "the clamped target was not made");
    assert!(
        rootfs.join("tmp").join(&unique).is_file(),
        "the absolute ../ target was not made inside"
    );
    assert!(
        !escaped,
        "a mount target escaped the rootfs to {}",
        host_escape.display()
    );
}

#[test]
fn userns_bind_source_behind_a_directory_the_container_cannot_search() {
    let e = Env::new("privsrc");
    // Host root's mode-0700 directory; the container's root is uid 100000.
    let private = e.base.join("private");
    std::fs::create_dir_all(private.join("dir")).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(private.join("file"), "secret file\n").unwrap();
    std::fs::write(private.join("dir/inner"), "secret dir\n").unwrap();
    std::fs::create_dir_all(private.join("dir/x")).unwrap();
    // A submount in the source, for the recursive bind to carry.
    let _sub = HostTmpfs::new(&private.join("dir/sub"));
    std::fs::write(private.join("dir/sub/deep"), "deep\n").unwrap();
    let (code, out, err) = run_sh(
        &e,
        "a",
        "cat /mnt/f /mnt/d/inner /mnt/d/sub/deep; grep -c ' /mnt/d/sub ' /proc/mounts",
        |v| {
            userns(v);
            // (a tmpfs of the container's root to make the mount points in)
            add_mount(v, json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}));
            add_mount(
                v,
                json!({"destination": "/mnt/f", "type": "bind", "source": private.join("file"), "options": ["bind", "ro"]}),
            );
            add_mount(
                v,
                json!({"destination": "/mnt/d", "type": "bind", "source": private.join("dir"), "options": ["rbind"]}),
            );
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "secret file\nsecret dir\ndeep\n1\n");
    // Nothing the container mounts under the bind reaches the host.
    let (code, _, err) = run_sh(&e, "b", "mount -t tmpfs none /mnt/d/x", |v| {
        userns(v);
        v["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN"]);
        v["process"]["capabilities"]["effective"] = json!(["CAP_SYS_ADMIN"]);
        v["process"]["capabilities"]["permitted"] = json!(["CAP_SYS_ADMIN"]);
        add_mount(v, json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}));
        add_mount(
            v,
            json!({"destination": "/mnt/d", "type": "bind", "source": private.join("dir"), "options": ["rbind"]}),
        );
    });
    assert_eq!(code, 0, "{err}");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(&format!("{}/dir/x ", private.display())),
        "a mount made in the container propagated to the host"
    );
}

#[test]
fn rbind_of_sys_with_a_cgroup_mount() {
    let e = Env::new("rbindsys");
    let (code, out, err) = run_sh(
        &e,
        "a",
        "ls /sys/fs/cgroup | head -1 | grep -c .; touch /sys/fs/cgroup/x 2>/dev/null || echo cg-ro",
        |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}));
            for m in v["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/sys" {
                    *m = json!({"destination": "/sys", "type": "bind", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
            }
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\ncg-ro\n");
}

#[test]
fn tmpfs_root_takes_the_mode_of_the_mount_point() {
    let e = Env::new("tmpfsmode");
    let rootfs = e.private_rootfs();
    std::fs::create_dir_all(rootfs.join("mnt/t")).unwrap();
    std::fs::set_permissions(rootfs.join("mnt/t"), std::fs::Permissions::from_mode(0o712)).unwrap();
    let (code, out, err) = run_sh(&e, "a", "stat -c %a /mnt/t /mnt/new /mnt/given", |v| {
        v["root"] = json!({"path": rootfs, "readonly": false});
        add_mount(v, json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs"}));
        add_mount(
            v,
            json!({"destination": "/mnt/new", "type": "tmpfs", "source": "tmpfs"}),
        );
        add_mount(
            v,
            json!({"destination": "/mnt/given", "type": "tmpfs", "source": "tmpfs", "options": ["mode=750"]}),
        );
    });
    assert_eq!(code, 0, "{err}");
    // A mount point made by the runtime: tmpfs's own 1777 (runc's too).
    assert_eq!(out, "712\n1777\n750\n");
}

#[test]
fn recursive_bind_ro_is_the_top_mount_only_rro_is_all() {
    let e = Env::new("rro");
    let src = e.base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let _sub = HostTmpfs::new(&src.join("sub"));
    let script = format!(
        "touch /top/x 2>/dev/null || echo top-ro; touch /top/sub/x && echo top-sub-rw; \
         touch /all/x 2>/dev/null || echo all-ro; touch /all/sub/y 2>/dev/null || echo all-sub-ro; {MOUNTS}"
    );
    let (code, out, err) = run_sh(&e, "a", &script, |v| {
        add_mount(
            v,
            json!({"destination": "/top", "type": "bind", "source": src, "options": ["rbind", "ro"]}),
        );
        add_mount(
            v,
            json!({"destination": "/all", "type": "bind", "source": src,
                            "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime", "rnosymfollow"]}),
        );
        add_mount(
            v,
            json!({"destination": "/back", "type": "bind", "source": src,
                            "options": ["rbind", "rro", "rrw", "rnoexec", "rexec"]}),
        );
    });
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("top-ro\ntop-sub-rw\nall-ro\nall-sub-ro\n"), "{out}");
    assert!(has(opts_of(&out, "/top"), "ro"));
    assert!(has(opts_of(&out, "/top/sub"), "rw"), "{out}");
    for d in ["/all", "/all/sub"] {
        let o = opts_of(&out, d);
        for w in ["ro", "nosuid", "nodev", "noexec", "noatime", "nosymfollow"] {
            assert!(has(o, w), "{d} lacks {w}: {o}");
        }
    }
    for d in ["/back", "/back/sub"] {
        let o = opts_of(&out, d);
        assert!(has(o, "rw") && !has(o, "noexec"), "{d}: {o}");
    }
}

#[test]
fn nosymfollow_is_applied() {
    let e = Env::new("nosymfollow");
    let src = e.base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    std::os::unix::fs::symlink("f", src.join("l")).unwrap();
    let script = format!("cat /b/l 2>/dev/null || echo no-follow; cat /s/l; {MOUNTS}");
    let (code, out, err) = run_sh(&e, "a", &script, |v| {
        add_mount(
            v,
            json!({"destination": "/b", "type": "bind", "source": src, "options": ["bind", "nosymfollow"]}),
        );
        add_mount(
            v,
            json!({"destination": "/s", "type": "bind", "source": src,
                            "options": ["bind", "nosymfollow", "symfollow"]}),
        );
        add_mount(
            v,
            json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["nosymfollow"]}),
        );
    });
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("no-follow\nf\n"), "{out}");
    assert!(has(opts_of(&out, "/b"), "nosymfollow"));
    assert!(!has(opts_of(&out, "/s"), "nosymfollow"));
    assert!(has(opts_of(&out, "/t"), "nosymfollow"));
}

#[test]
fn a_rejected_filesystem_option_is_named() {
    let e = Env::new("bogusopt");
    let (code, _, err) = run_sh(&e, "a", "true", |v| {
        add_mount(
            v,
            json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "bogusopt42"]}),
        );
    });
    assert_ne!(code, 0);
    assert!(
        err.contains("mount tmpfs on /mnt/t (type tmpfs) with options \"bogusopt42\": EINVAL: Invalid argument"),
        "{err}"
    );
}

#[test]
fn features_lists_every_mount_option_word() {
    let e = Env::new("features");
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["features"])).unwrap();
    let words: Vec<&str> = v["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    for w in [
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "rnodiratime",
        "rdiratime",
        "rrelatime",
        "rnorelatime",
        "rnoatime",
        "ratime",
        "rstrictatime",
        "rnostrictatime",
        "rnosymfollow",
        "rsymfollow",
        "nosymfollow",
        "symfollow",
        "ro",
        "rbind",
        "tmpcopyup",
        "rprivate",
        "idmap",
        "ridmap",
    ] {
        assert!(words.contains(&w), "features lacks {w}: {words:?}");
    }
    assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], json!(true));
}

/// Can this kernel id-map a mount of the filesystem `path` lies on? From
/// the filesystem's type and the kernel version that gave it
/// FS_ALLOW_IDMAP (ext4 and xfs 5.12, btrfs 5.15, tmpfs 6.3): Err(why)
/// where not, or where the filesystem is not one of those.
fn idmap_supported(path: &Path) -> Result<(), String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = release.trim().split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
    let kernel = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    let magic = nix::sys::statfs::statfs(path).unwrap().filesystem_type().0 as u64;
    let (name, since) = match magic {
        0xEF53 => ("ext4", (5, 12)),
        0x5846_5342 => ("xfs", (5, 12)),
        0x9123_683E => ("btrfs", (5, 15)),
        0x0102_1994 => ("tmpfs", (6, 3)),
        m => {
            return Err(format!(
                "{} is on a filesystem of type {m:#x}, not ext4/xfs/btrfs/tmpfs",
                path.display()
            ));
        }
    };
    if kernel < since {
        return Err(format!(
            "{name} supports id-mapped mounts since Linux {}.{}, this kernel is {release}",
            since.0, since.1
        ));
    }
    Ok(())
}

/// Where the filesystem of a test's source cannot be id-mapped: husk must
/// have failed naming the mount; `what` is recorded as not checked.
/// Returns whether the test can go on.
fn idmap_possible(code: i32, err: &str, mount: &str, sources: &[&Path], what: &str) -> bool {
    let why: Vec<String> = sources.iter().filter_map(|p| idmap_supported(p).err()).collect();
    if why.is_empty() {
        return true;
    }
    assert_ne!(code, 0, "an id-mapped mount of an unsupported filesystem was accepted");
    assert!(
        err.contains(mount) && (err.contains("does not support id-mapped mounts") || err.contains("Linux 5.12")),
        "{err}"
    );
    not_checked(what, &why.join("; "));
    false
}

fn caps(v: &mut serde_json::Value, names: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        v["process"]["capabilities"][set] = json!(names);
    }
}

fn owner(p: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    format!("{}:{}", m.uid(), m.gid())
}

/// `idmap` without mappings of its own: the container's user namespace
/// maps the source, so a host file of uid 1000 shows as 1000 inside (not
/// 65534, the overflow id it shows as through a plain bind), and what the
/// container's root writes lands on the host with the container's ids.
#[test]
fn idmapped_bind_mount_shows_and_writes_the_mapped_ids() {
    let e = Env::new("idmapct");
    let src = e.base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    std::os::unix::fs::chown(src.join("f"), Some(1000), Some(1001)).unwrap();
    let script = "stat -c %u:%g /mnt/i/f /mnt/p/f; touch /mnt/i/new && touch /mnt/i/c && chown 1234:1235 /mnt/i/c \
                  && grep -c ' /mnt/i .*idmapped' /proc/self/mountinfo";
    let (code, out, err) = run_sh(&e, "a", script, |v| {
        userns(v);
        caps(v, &["CAP_CHOWN"]);
        add_mount(v, json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}));
        add_mount(
            v,
            json!({"destination": "/mnt/i", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
        );
        add_mount(
            v,
            json!({"destination": "/mnt/p", "type": "bind", "source": src, "options": ["bind"]}),
        );
    });
    if !idmap_possible(
        code,
        &err,
        "mounts[8]",
        &[&src],
        "an id-mapped bind mount (container's mapping)",
    ) {
        return;
    }
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1000:1001\n65534:65534\n1\n");
    assert_eq!(owner(&src.join("new")), "0:0");
    assert_eq!(owner(&src.join("c")), "1234:1235");
}

/// Mappings of the mount's own, other than the container's: a throwaway
/// user namespace holds them. Also in a container without a user
/// namespace (runc allows it): there the ids inside are the host's.
#[test]
fn idmapped_mount_with_mappings_of_its_own() {
    let e = Env::new("idmapown");
    let src = e.base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    std::os::unix::fs::chown(src.join("f"), Some(5), Some(6)).unwrap();
    let uid = json!([{"containerID": 0, "hostID": 101000, "size": 65536}]);
    let gid = json!([{"containerID": 0, "hostID": 102000, "size": 65536}]);
    // In the container's user namespace (0 -> 100000): disk 5 is host
    // 101005, which is 1005 inside; gid 6 is 102006, 2006 inside.
    let (code, out, err) = run_sh(&e, "a", "stat -c %u:%g /mnt/m/f; chown 1007:2008 /mnt/m/f", |v| {
        userns(v);
        caps(v, &["CAP_CHOWN"]);
        add_mount(v, json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}));
        add_mount(
            v,
            json!({"destination": "/mnt/m", "type": "bind", "source": src, "options": ["rbind", "idmap"],
                   "uidMappings": uid, "gidMappings": gid}),
        );
    });
    if !idmap_possible(
        code,
        &err,
        "mounts[8]",
        &[&src],
        "an id-mapped bind mount with its own mapping",
    ) {
        return;
    }
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1005:2006\n");
    assert_eq!(owner(&src.join("f")), "7:8");
    // No user namespace: disk 7 shows as host 101007 (no option word: runc
    // takes mappings alone as `idmap`).
    let (code, out, err) = run_sh(&e, "b", "stat -c %u:%g /mnt/m/f", |v| {
        add_mount(v, json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}));
        add_mount(
            v,
            json!({"destination": "/mnt/m", "type": "bind", "source": src, "options": ["rbind"],
                   "uidMappings": uid, "gidMappings": gid}),
        );
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "101007:102008\n");
}

/// `rbind,idmap` maps the top mount only, `rbind,ridmap` every mount of
/// the tree. The submount stays locked (made in the container's mount
/// namespace): the container's root cannot unmount it to see below.
#[test]
fn ridmap_maps_the_submounts_idmap_only_the_top() {
    let e = Env::new("ridmap");
    let src = e.base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let _sub = HostTmpfs::new(&src.join("sub"));
    for f in [src.join("f"), src.join("sub/g")] {
        std::fs::write(&f, "x\n").unwrap();
        std::os::unix::fs::chown(&f, Some(1000), Some(1001)).unwrap();
    }
    let script = "cd /mnt; stat -c '%n %u:%g' a/f a/sub/g b/f b/sub/g; \
                  umount b/sub 2>/dev/null && echo unlocked || echo locked";
    let (code, out, err) = run_sh(&e, "a", script, |v| {
        userns(v);
        caps(v, &["CAP_SYS_ADMIN"]);
        add_mount(v, json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}));
        add_mount(
            v,
            json!({"destination": "/mnt/a", "type": "bind", "source": src, "options": ["rbind", "idmap"]}),
        );
        add_mount(
            v,
            json!({"destination": "/mnt/b", "type": "bind", "source": src, "options": ["rbind", "ridmap"]}),
        );
    });
    if !idmap_possible(
        code,
        &err,
        "mounts[",
        &[&src, &src.join("sub")],
        "ridmap vs idmap on a tree with a tmpfs submount",
    ) {
        return;
    }
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "a/f 1000:1001\na/sub/g 65534:65534\nb/f 1000:1001\nb/sub/g 1000:1001\nlocked\n"
    );
}

#[test]
fn id_mapped_mounts_refused_naming_the_field() {
    let e = Env::new("idmapbad");
    let src = e.base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // (userns, mount, what the error must say)
    let cases = [
        (
            false,
            json!({"destination": "/mnt/m", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
            "mounts[8].options \"idmap\": an id-mapped mount without mounts[8].uidMappings and gidMappings takes the container's user namespace mapping, but linux.namespaces has no user namespace",
        ),
        (
            false,
            json!({"destination": "/mnt/m", "type": "bind", "source": src, "options": ["rbind", "ridmap"]}),
            "mounts[8].options \"ridmap\": an id-mapped mount without",
        ),
        (
            true,
            json!({"destination": "/mnt/m", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                   "uidMappings": maps, "gidMappings": maps}),
            "mounts[8].uidMappings: id-mapped mounts are only supported for bind mounts",
        ),
        (
            true,
            json!({"destination": "/mnt/m", "type": "bind", "source": src, "options": ["rbind", "idmap"],
                   "uidMappings": maps}),
            "mounts[8].gidMappings is required with mounts[8].uidMappings",
        ),
        (
            true,
            json!({"destination": "/mnt/m", "type": "bind", "source": src, "options": ["rbind"],
                   "uidMappings": [], "gidMappings": maps}),
            "mounts[8].uidMappings must not be empty",
        ),
        // sysfs has no id-mapped mounts: refused naming the mount.
        (
            true,
            json!({"destination": "/mnt/m", "type": "bind", "source": "/sys/kernel", "options": ["rbind", "idmap"]}),
            "mounts[8]: mount /sys/kernel on /mnt/m (type bind): the filesystem of /sys/kernel does not support id-mapped mounts",
        ),
    ];
    for (n, (with_userns, m, want)) in cases.into_iter().enumerate() {
        let (code, _, err) = run_sh(&e, &format!("c{n}"), "true", |v| {
            if with_userns {
                userns(v);
            }
            add_mount(v, json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"}));
            add_mount(v, m);
        });
        assert_ne!(code, 0, "case {n} was accepted: {err}");
        assert!(err.contains(want), "case {n}: {err}");
    }
}
