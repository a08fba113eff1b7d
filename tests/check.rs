//! `husk check`: every problem at once, located, with exit 0/1/2.
mod common;
use common::*;
use serde_json::json;

#[test]
fn clean_warning_and_error_bundles() {
    let e = Env::new("check");
    let clean = e.bundle("clean", &["sh"], |_| {});
    let o = e.husk(&["check", "-b", clean.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));

    let warn = e.bundle("warn", &["sh"], |v| v["hostnmae"] = json!("typo"));
    let o = e.husk(&["check", "-b", warn.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stdout).contains("hostnmae: unknown field (ignored)"));

    let bad = e.bundle("bad", &["nosuch"], |v| {
        v["process"]["cwd"] = json!("/bin/busybox");
        v["mounts"][1]["destination"] = json!("dev");
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
    });
    let o = e.husk(&["check", "--json", "-b", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let f: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let msgs: Vec<String> = f.iter().map(|x| x["message"].as_str().unwrap().to_string()).collect();
    // all problems at once, each with its field path and position
    assert!(msgs.iter().any(|m| m.contains("mounts[1].destination")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("uidMappings is required")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("executable file not found")), "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|m| m.contains("process.cwd /bin/busybox in the rootfs is not a directory")),
        "{msgs:?}"
    );
    let dest = f.iter().find(|x| x["path"] == "mounts[1].destination").unwrap();
    assert!(dest["line"].as_u64().unwrap() > 1 && dest["column"].as_u64().unwrap() > 1);
    assert!(!dest["fix"].as_str().unwrap().is_empty());
    // relative: deprecated, taken as relative to "/" (runc and crun too)
    assert_eq!(dest["severity"], "warning", "{dest}");
    // check created nothing
    assert!(!e.root.exists() || e.ok(&["list", "-q"]).trim().is_empty());
}
