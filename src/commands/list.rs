//! `husk list [--format table|json] [--quiet]`.

use anyhow::{Result, bail};
use std::io::Write;

use crate::cli::Format;
use crate::state::Store;

pub fn list(store: &Store, format: Format, quiet: bool) -> Result<()> {
    let ids = store.ids()?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for id in ids {
            writeln!(out, "{id}")?;
        }
        return Ok(());
    }
    // A container deleted since the directory was listed is skipped; one
    // whose state cannot be read is listed without, then reported.
    let mut states: Vec<serde_json::Value> = Vec::new();
    let mut unreadable = Vec::new();
    for id in &ids {
        let (dir, dir_fd) = match store.open_dir(id, false) {
            Ok(d) => d,
            Err(_) if !store.container_dir(id).exists() => continue,
            Err(e) => {
                unreadable.push(format!("{e:#}"));
                continue;
            }
        };
        match crate::state::load(&dir, id) {
            Ok(state) => {
                let c = crate::state::Container { dir, dir_fd, state };
                let mut v = c.oci_state();
                if v["owner"] == "" {
                    v["owner"] = owner_name(&c.dir).into();
                }
                states.push(v);
            }
            Err(e) => unreadable.push(format!("container {id:?}: {e:#}")),
        }
    }
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&states)?)?,
        Format::Table => {
            let mut rows = vec![
                ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                    .map(String::from)
                    .to_vec(),
            ];
            for v in &states {
                rows.push(vec![
                    v["id"].as_str().unwrap_or("").to_string(),
                    v["pid"].to_string(),
                    v["status"].as_str().unwrap_or("").to_string(),
                    v["bundle"].as_str().unwrap_or("").to_string(),
                    v["created"].as_str().unwrap_or("").to_string(),
                    v["owner"].as_str().unwrap_or("").to_string(),
                ]);
            }
            write!(out, "{}", table(&rows))?;
        }
    }
    if !unreadable.is_empty() {
        bail!("{}", unreadable.join("\n"));
    }
    Ok(())
}

/// Columns padded like Go's tabwriter with minwidth 12 and padding 3.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.len()) + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}", w = widths[i]));
            }
        }
        s.push('\n');
    }
    s
}

fn owner_name(dir: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(dir) else {
        return String::new();
    };
    let uid = m.uid();
    if let Some(name) = crate::lookup::user_name(uid) {
        return name;
    }
    format!("#{uid}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_pads_like_tabwriter() {
        let rows = vec![
            vec!["ID".to_string(), "PID".into(), "STATUS".into()],
            vec!["a-long-container-id".to_string(), "12".into(), "running".into()],
        ];
        let t = super::table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("{:<22}{:<12}STATUS", "ID", "PID"));
        assert_eq!(lines[1], format!("{:<22}{:<12}running", "a-long-container-id", "12"));
    }
}
