//! Device access rules: runc's default allow list, the reduction of an
//! ordered rule list to one state (default policy plus exceptions, with the
//! cgroup v1 devices controller's semantics, so that the last rule that
//! applies wins), the v1 devices.allow/deny writes for that state, and the
//! eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) that enforces it on v2.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Access bits, identical to the kernel's BPF_DEVCG_ACC_* values.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device kinds, with the kernel's BPF_DEVCG_DEV_* values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DevKind {
    Block = 1,
    Char = 2,
}

impl DevKind {
    fn letter(self) -> char {
        match self {
            DevKind::Block => 'b',
            DevKind::Char => 'c',
        }
    }
}

/// The device an exception is about; `None` is the `*` wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevKey {
    pub kind: DevKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
}

/// The effective device policy: everything is allowed (`default_allow`)
/// or denied, except the listed devices and accesses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceState {
    pub default_allow: bool,
    pub exceptions: BTreeMap<DevKey, u8>,
    /// The order in which exceptions first appeared: v1's devices.list
    /// shows them in write order, and the config's order must survive.
    pub order: Vec<DevKey>,
}

fn rule(allow: bool, typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// runc's default device rules (its `AllowedDevices`): mknod of any char
/// and block device, and rwm on /dev/null, random, full, tty, zero,
/// urandom, the /dev/pts/* ptys (136:*), /dev/ptmx (5:2) and /dev/net/tun
/// (10:200). The caller merges them with the config's
/// `linux.resources.devices`: runc appends them after the config's rules
/// and starts from "deny everything".
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    vec![
        rule(true, C, None, None, "m"),
        rule(true, B, None, None, "m"),
        rule(true, C, Some(1), Some(3), "rwm"),
        rule(true, C, Some(1), Some(8), "rwm"),
        rule(true, C, Some(1), Some(7), "rwm"),
        rule(true, C, Some(5), Some(0), "rwm"),
        rule(true, C, Some(1), Some(5), "rwm"),
        rule(true, C, Some(1), Some(9), "rwm"),
        rule(true, C, Some(136), None, "rwm"),
        rule(true, C, Some(5), Some(2), "rwm"),
        rule(true, C, Some(10), Some(200), "rwm"),
    ]
}

/// Rootless, no device program can be attached (the kernel loads a cgroup
/// device program only for a process with CAP_BPF or CAP_SYS_ADMIN in the
/// initial user namespace). What the container can reach is then bounded
/// by its user namespace instead: it cannot create a device node, and the
/// nodes in it are the ones its config binds from the host, with the
/// host's permissions. The config's rules that this still honours pass:
/// allow rules (nothing is filtered) and the baseline "deny every device"
/// (`{allow: false, access: rwm}`, which the user namespace keeps for every
/// node the container could make). Any other deny rule would be accepted
/// and not applied, so it is refused naming the rule.
pub fn check_rootless_rules(rules: &[LinuxDeviceCgroup]) -> Result<()> {
    for (i, r) in rules.iter().enumerate() {
        if r.allow() {
            continue;
        }
        let every_type = matches!(r.typ(), None | Some(LinuxDeviceType::A));
        let any = |n: Option<i64>| matches!(n, None | Some(-1));
        let rwm = match r.access().as_deref() {
            None => true,
            Some(a) => parse_access(a)? == ACC_READ | ACC_WRITE | ACC_MKNOD,
        };
        if every_type && any(r.major()) && any(r.minor()) && rwm {
            continue;
        }
        let num = |n: Option<i64>| match n {
            None | Some(-1) => "*".to_string(),
            Some(n) => n.to_string(),
        };
        bail!(
            "linux.resources.devices[{i}] (deny {} {}:{} {}): a rootless container has no device cgroup filter \
             (the kernel loads one only for a privileged user), so a deny rule other than \"deny every device\" \
             cannot be enforced; drop the rule, or run the container as root",
            r.typ().map_or_else(|| "a".to_string(), |t| t.as_str().to_string()),
            num(r.major()),
            num(r.minor()),
            r.access().as_deref().unwrap_or("rwm")
        );
    }
    Ok(())
}

fn parse_access(s: &str) -> Result<u8> {
    let mut acc = 0;
    for ch in s.chars() {
        acc |= match ch {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => bail!("invalid device access {s:?}: only r, w and m are allowed"),
        };
    }
    if acc == 0 {
        bail!("invalid device access {s:?}: empty");
    }
    Ok(acc)
}

fn access_string(acc: u8) -> String {
    let mut s = String::new();
    if acc & ACC_READ != 0 {
        s.push('r');
    }
    if acc & ACC_WRITE != 0 {
        s.push('w');
    }
    if acc & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

fn number(v: Option<i64>, what: &str) -> Result<Option<u32>> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) => match u32::try_from(n) {
            Ok(n) => Ok(Some(n)),
            Err(_) => bail!(
                "device {what} number {n} is out of range (-1 for any, or 0 to {})",
                u32::MAX
            ),
        },
    }
}

impl DeviceState {
    /// Reduce an ordered rule list, starting from "deny everything" like
    /// runc. A rule of type `a` replaces the whole state (allow or deny
    /// everything); any other rule either adds an exception (when it goes
    /// against the default) or takes its accesses away from the exception
    /// for exactly that device. Taking away part of a wildcard exception
    /// ("punching a hole") is refused like runc does, because the v1
    /// controller cannot express it.
    pub fn from_rules(rules: &[LinuxDeviceCgroup]) -> Result<DeviceState> {
        let mut st = DeviceState {
            default_allow: false,
            exceptions: BTreeMap::new(),
            order: Vec::new(),
        };
        for r in rules {
            st.apply(r)?;
        }
        Ok(st)
    }

    fn apply(&mut self, r: &LinuxDeviceCgroup) -> Result<()> {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => {
                self.default_allow = r.allow();
                self.exceptions.clear();
                self.order.clear();
                return Ok(());
            }
            LinuxDeviceType::B => DevKind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DevKind::Char,
            LinuxDeviceType::P => {
                bail!("device rule {r}: fifo (p) devices cannot be put in a device cgroup rule")
            }
        };
        let key = DevKey {
            kind,
            major: number(r.major(), "major")?,
            minor: number(r.minor(), "minor")?,
        };
        let acc = parse_access(r.access().as_deref().unwrap_or("rwm"))?;
        if r.allow() != self.default_allow {
            if !self.exceptions.contains_key(&key) {
                self.order.push(key);
            }
            *self.exceptions.entry(key).or_insert(0) |= acc;
            return Ok(());
        }
        for wider in [
            DevKey { major: None, ..key },
            DevKey { minor: None, ..key },
            DevKey {
                major: None,
                minor: None,
                ..key
            },
        ] {
            if wider == key {
                continue;
            }
            if let Some(have) = self.exceptions.get(&wider)
                && have & acc != 0
            {
                bail!(
                    "device rule {r} cannot be applied: it would punch a hole in the wildcard rule {} {}",
                    key_string(&wider),
                    access_string(*have)
                );
            }
        }
        if let Some(have) = self.exceptions.get_mut(&key) {
            *have &= !acc;
            if *have == 0 {
                self.exceptions.remove(&key);
                self.order.retain(|k| *k != key);
            }
        }
        Ok(())
    }

    /// Whether an access (ACC_* bits, one device kind) is allowed (the
    /// model the tests hold the eBPF program to).
    #[cfg(test)]
    pub fn allows(&self, kind: DevKind, major: u32, minor: u32, acc: u8) -> bool {
        let matching = self.exceptions.iter().filter(|(k, _)| {
            k.kind == kind && k.major.is_none_or(|m| m == major) && k.minor.is_none_or(|m| m == minor)
        });
        if self.default_allow {
            // Denied when any deny exception covers a requested access.
            !matching.into_iter().any(|(_, a)| a & acc != 0)
        } else {
            // Allowed when one allow exception covers all requested accesses.
            matching.into_iter().any(|(_, a)| acc & !a == 0)
        }
    }

    /// The writes that put a fresh v1 devices cgroup into this state, in
    /// order: ("devices.deny" | "devices.allow", "type major:minor access").
    pub fn v1_writes(&self) -> Vec<(String, String)> {
        let (reset, exc) = if self.default_allow {
            ("devices.allow", "devices.deny")
        } else {
            ("devices.deny", "devices.allow")
        };
        let mut out = vec![(reset.to_string(), "a *:* rwm".to_string())];
        for k in &self.order {
            if let Some(a) = self.exceptions.get(k) {
                out.push((exc.to_string(), format!("{} {}", key_string(k), access_string(*a))));
            }
        }
        out
    }
}

fn key_string(k: &DevKey) -> String {
    let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
    format!("{} {}:{}", k.kind.letter(), n(k.major), n(k.minor))
}

/// One eBPF instruction, laid out like the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// dst register in the low nibble, src register in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes used by the device program (class | op | source).
pub const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
pub const JMP32_JNE_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
pub const JMP32_JEQ_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
pub const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// A conditional jump to the end of the current rule block; the offset is
/// patched once the block's length is known.
fn jump_next(code: u8, reg: u8, imm: i32) -> BpfInsn {
    insn(code, reg, 0, i16::MAX, imm)
}

/// The BPF_PROG_TYPE_CGROUP_DEVICE program for a device state. The
/// context is `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
/// u32 minor; }` with access_type = (access << 16) | device type; the
/// program returns 1 to allow and 0 to deny. Registers: r2 device type, r3
/// access, r4 major, r5 minor, r1 scratch.
pub fn device_program(st: &DeviceState) -> Vec<BpfInsn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    let verdict_exc = i32::from(!st.default_allow);
    for (k, acc) in &st.exceptions {
        let mut block = vec![jump_next(JMP32_JNE_K, 2, k.kind as i32)];
        if let Some(m) = k.major {
            block.push(jump_next(JMP32_JNE_K, 4, m as i32));
        }
        if let Some(m) = k.minor {
            block.push(jump_next(JMP32_JNE_K, 5, m as i32));
        }
        if st.default_allow {
            // A deny exception applies when it covers any requested access.
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(*acc)));
            block.push(jump_next(JMP32_JEQ_K, 1, 0));
        } else if *acc != ACC_ALL {
            // An allow exception applies when it covers every requested access.
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(!*acc & ACC_ALL)));
            block.push(jump_next(JMP32_JNE_K, 1, 0));
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, verdict_exc));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.off == i16::MAX {
                // Blocks are at most 8 instructions long.
                ins.off = i16::try_from(len - i - 1).unwrap_or(i16::MAX);
            }
        }
        p.extend(block);
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(st.default_allow)));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rootless_rules_allow_and_deny_all_pass_other_denies_refused() {
        // runtime-spec's default, podman's --device allow rules, no rules
        for ok in [
            r#"[{"allow": false, "access": "rwm"}]"#,
            r#"[{"allow": false, "type": "a", "major": -1, "minor": -1, "access": "mrw"}]"#,
            r#"[{"allow": false}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]"#,
            r#"[]"#,
        ] {
            assert!(check_rootless_rules(&parse_rules(ok)).is_ok(), "{ok}");
        }
        for (bad, want) in [
            (
                r#"[{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]"#,
                "linux.resources.devices[1] (deny c 1:3 rwm)",
            ),
            (
                r#"[{"allow": false, "access": "rw"}]"#,
                "linux.resources.devices[0] (deny a *:* rw)",
            ),
            (
                r#"[{"allow": false, "type": "b"}]"#,
                "linux.resources.devices[0] (deny b *:* rwm)",
            ),
        ] {
            let e = check_rootless_rules(&parse_rules(bad)).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("rootless"), "{e}");
        }
        assert!(check_rootless_rules(&parse_rules(r#"[{"allow": false, "access": "rwx"}]"#)).is_err());
    }

    /// A tiny interpreter for exactly the instructions device_program emits.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the ALU32/JMP32 operations act on the low 32 bits"
    )]
    fn run(prog: &[BpfInsn], access_type: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access_type, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            let dst = usize::from(i.regs & 0x0f);
            let src = usize::from(i.regs >> 4);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & (i.imm as u32)),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP32_JNE_K => {
                    if r[dst] as u32 != i.imm as u32 {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                JMP32_JEQ_K => {
                    if r[dst] as u32 == i.imm as u32 {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                JMP_EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("program did not terminate");
    }

    fn bpf_allows(st: &DeviceState, kind: DevKind, major: u32, minor: u32, acc: u8) -> bool {
        let prog = device_program(st);
        run(&prog, (u32::from(acc) << 16) | kind as u32, major, minor) == 1
    }

    /// Exhaustively compare the program with the reference `allows` over a
    /// grid of devices and accesses.
    fn check_program(st: &DeviceState) {
        for kind in [DevKind::Block, DevKind::Char] {
            for major in [0, 1, 5, 10, 136, 254] {
                for minor in [0, 2, 3, 5, 7, 200] {
                    for acc in 1..=7u8 {
                        assert_eq!(
                            bpf_allows(st, kind, major, minor, acc),
                            st.allows(kind, major, minor, acc),
                            "{kind:?} {major}:{minor} acc {acc} in {st:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn defaults() {
        let mut rules = parse_rules(r#"[{"allow": false, "access": "rwm"}]"#);
        rules.extend(default_device_rules());
        let st = DeviceState::from_rules(&rules).unwrap();
        assert!(!st.default_allow);
        assert!(st.allows(DevKind::Char, 1, 3, ACC_READ | ACC_WRITE));
        assert!(st.allows(DevKind::Char, 136, 4, ACC_READ | ACC_WRITE));
        assert!(st.allows(DevKind::Block, 8, 0, ACC_MKNOD));
        assert!(!st.allows(DevKind::Block, 8, 0, ACC_READ));
        assert!(!st.allows(DevKind::Char, 1, 1, ACC_READ));
        assert!(st.allows(DevKind::Char, 10, 200, ACC_READ));
        check_program(&st);
        let w = st.v1_writes();
        assert_eq!(w[0], ("devices.deny".into(), "a *:* rwm".into()));
        assert!(w.contains(&("devices.allow".into(), "c 1:3 rwm".into())));
        assert!(w.contains(&("devices.allow".into(), "c *:* m".into())));
        assert!(w.contains(&("devices.allow".into(), "c 136:* rwm".into())));
        assert_eq!(w.len(), 12);
    }

    #[test]
    fn last_rule_wins() {
        // Allow null, then take write away again, then deny-all resets.
        let st = DeviceState::from_rules(&parse_rules(
            r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#,
        ))
        .unwrap();
        assert!(st.allows(DevKind::Char, 1, 3, ACC_READ));
        assert!(!st.allows(DevKind::Char, 1, 3, ACC_WRITE));
        assert!(!st.allows(DevKind::Char, 1, 3, ACC_READ | ACC_WRITE));
        check_program(&st);

        let st = DeviceState::from_rules(&parse_rules(
            r#"[{"allow": true, "type": "c", "major": 1, "minor": 3},
                {"allow": false}]"#,
        ))
        .unwrap();
        assert!(st.exceptions.is_empty());
        assert!(!st.default_allow);
        check_program(&st);

        // Allow everything, then deny one device (a blacklist).
        let st = DeviceState::from_rules(&parse_rules(
            r#"[{"allow": true, "type": "a"},
                {"allow": false, "type": "b", "major": 254, "access": "w"},
                {"allow": false, "type": "c", "major": 5, "minor": 0, "access": "rw"}]"#,
        ))
        .unwrap();
        assert!(st.default_allow);
        assert!(!st.allows(DevKind::Block, 254, 3, ACC_READ | ACC_WRITE));
        assert!(st.allows(DevKind::Block, 254, 3, ACC_READ));
        assert!(!st.allows(DevKind::Char, 5, 0, ACC_READ));
        assert!(st.allows(DevKind::Char, 5, 0, ACC_MKNOD));
        check_program(&st);
        assert_eq!(
            st.v1_writes(),
            vec![
                ("devices.allow".into(), "a *:* rwm".into()),
                ("devices.deny".into(), "b 254:* w".into()),
                ("devices.deny".into(), "c 5:0 rw".into()),
            ]
        );
        // Allowing it again removes the deny exception.
        let mut rules =
            parse_rules(r#"[{"allow": true, "type": "a"}, {"allow": false, "type": "c", "major": 5, "minor": 0}]"#);
        rules.extend(parse_rules(r#"[{"allow": true, "type": "c", "major": 5, "minor": 0}]"#));
        let st = DeviceState::from_rules(&rules).unwrap();
        assert!(st.exceptions.is_empty());
        check_program(&st);
    }

    #[test]
    fn invalid_rules() {
        // Punching a hole in a wildcard.
        assert!(
            DeviceState::from_rules(&parse_rules(
                r#"[{"allow": true, "type": "c", "access": "rwm"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "r"}]"#,
            ))
            .is_err()
        );
        assert!(DeviceState::from_rules(&parse_rules(r#"[{"allow": true, "type": "c", "access": "x"}]"#)).is_err());
        assert!(DeviceState::from_rules(&parse_rules(r#"[{"allow": true, "type": "p"}]"#)).is_err());
        assert!(DeviceState::from_rules(&parse_rules(r#"[{"allow": true, "type": "c", "major": -5}]"#)).is_err());
    }

    #[test]
    fn program_shape() {
        let st = DeviceState::from_rules(&[]).unwrap();
        let p = device_program(&st);
        assert_eq!(p.len(), 8);
        assert_eq!(run(&p, (2 << 16) | 2, 1, 3), 0);
        // A wildcard-major rwm allow exception needs no access check.
        let st = DeviceState::from_rules(&parse_rules(r#"[{"allow": true, "type": "c", "major": 1}]"#)).unwrap();
        let p = device_program(&st);
        assert_eq!(p.len(), 6 + 4 + 2);
        check_program(&st);
    }
}
