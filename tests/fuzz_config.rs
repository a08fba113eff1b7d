//! A bounded property test over config.json loading and validation: random
//! mutations of a real config (values swapped for huge, negative, wrong-typed
//! or adversarial ones, keys dropped, syntax broken) must give an error or a
//! valid spec, never a panic. Deterministic (fixed seeds) so CI is stable;
//! HUSK_FUZZ_ITERS raises the count for a longer local run.

use serde_json::{Value, json};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

fn nasty(r: &mut Rng) -> Value {
    let pool = [
        json!(null),
        json!(-1),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e308),
        json!(""),
        json!("../../../../etc/passwd"),
        json!("/proc/self/fd/0"),
        json!("a\u{0}b"),
        json!("x".repeat(5000)),
        json!([]),
        json!({}),
        json!([{"type": "bogus"}]),
        json!({"type": "pid", "path": "relative"}),
        json!(["CAP_NOPE", "CAP_SYS_ADMIN"]),
        json!({"destination": "/../..", "type": "bind", "source": "/", "options": ["rbind", "rw"]}),
        json!({"defaultAction": "SCMP_ACT_NOPE"}),
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["nope"], "action": "SCMP_ACT_KILL", "args": [{"index": 99, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
        json!(true),
    ];
    pool[r.below(pool.len())].clone()
}

fn mutate(v: &mut Value, r: &mut Rng, depth: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = &keys[r.below(keys.len())];
            match r.below(4) {
                0 => {
                    m.remove(k);
                }
                1 if depth < 6 => mutate(m.get_mut(k).unwrap(), r, depth + 1),
                _ => {
                    m.insert(k.clone(), nasty(r));
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = r.below(a.len());
            match r.below(3) {
                0 => {
                    a.remove(i);
                }
                1 if depth < 6 => mutate(&mut a[i], r, depth + 1),
                _ => a.push(nasty(r)),
            }
        }
        other => *other = nasty(r),
    }
}

#[test]
fn mutated_configs_never_panic() {
    let iters: usize = std::env::var("HUSK_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut base = husk::commands::spec::default_spec();
    base["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    });
    base["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..iters {
        let mut v = base.clone();
        for _ in 0..1 + r.below(4) {
            mutate(&mut v, &mut r, 0);
        }
        let mut text = v.to_string();
        if r.below(10) == 0 {
            // broken syntax too
            let cut = r.below(text.len());
            text.truncate(cut);
        }
        match husk::bundle::parse(&text).and_then(|s| {
            husk::bundle::validate(&s)?;
            if let Some(sc) = s.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
                husk::seccomp::build(sc)?;
            }
            Ok(())
        }) {
            Ok(()) => ok += 1,
            Err(e) => {
                assert!(!format!("{e:#}").is_empty());
                err += 1;
            }
        }
    }
    // Both outcomes must occur, or the mutations are not doing anything.
    assert!(ok > 0 && err > 0, "ok={ok} err={err}");
}
