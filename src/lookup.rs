//! Lookups in the files of whatever root the caller runs in: the one
//! /etc/passwd parser (name and home of a uid) and the one PATH search
//! order (which candidates an unqualified program name stands for).

use std::path::PathBuf;

/// PATH when the environment has none (runc's and Go's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The value of the last `PATH=` in `env` (a later entry wins, as execve
/// sees it), or [`DEFAULT_PATH`].
pub fn path_var(env: &[String]) -> &str {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

/// The paths `arg0` stands for, in the order execvp tries them: `arg0`
/// itself when it has a `/`, else `<dir>/<arg0>` for every directory of
/// `path_var` (an empty entry is the current directory).
pub fn path_candidates(arg0: &str, path_var: &str) -> Vec<PathBuf> {
    if arg0.contains('/') {
        return vec![PathBuf::from(arg0)];
    }
    path_var
        .split(':')
        .map(|dir| PathBuf::from(if dir.is_empty() { "." } else { dir }).join(arg0))
        .collect()
}

/// One line of /etc/passwd: `name:password:uid:gid:gecos:home:shell`.
struct Passwd<'a> {
    name: &'a str,
    uid: Option<u32>,
    home: Option<&'a str>,
}

fn passwd_lines(text: &str) -> impl Iterator<Item = Passwd<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 2).then(|| Passwd {
            name: f[0],
            uid: f[2].parse().ok(),
            home: f.get(5).copied(),
        })
    })
}

/// The name of `uid` in the passwd text, if a line has it.
pub fn passwd_name(text: &str, uid: u32) -> Option<&str> {
    passwd_lines(text).find(|p| p.uid == Some(uid)).map(|p| p.name)
}

/// The home directory of `uid` in the passwd text, if a complete line has it.
pub fn passwd_home(text: &str, uid: u32) -> Option<&str> {
    passwd_lines(text).filter(|p| p.uid == Some(uid)).find_map(|p| p.home)
}

/// HOME for `uid` from /etc/passwd of the caller's root, or "/" (runc's rule).
pub fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| passwd_home(&text, uid).map(str::to_string))
        .unwrap_or_else(|| "/".into())
}

/// The user name of `uid` from /etc/passwd of the caller's root.
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&text, uid).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd() {
        let t = "root:x:0:0:root:/root:/bin/sh\nshort:x:5\nbad:x:zz:1::/h:/bin/sh\nuser:x:1000:1000::/home/u:/bin/sh\n";
        assert_eq!(passwd_name(t, 0), Some("root"));
        assert_eq!(passwd_home(t, 1000), Some("/home/u"));
        assert_eq!(passwd_name(t, 5), Some("short"));
        assert_eq!(passwd_home(t, 5), None);
        assert_eq!(passwd_name(t, 7), None);
    }

    #[test]
    fn path() {
        let env = vec!["PATH=/a".to_string(), "X=1".into(), "PATH=/b::/c/".into()];
        assert_eq!(path_var(&env), "/b::/c/");
        assert_eq!(path_var(&[]), DEFAULT_PATH);
        assert_eq!(
            path_candidates("sh", "/b::/c/"),
            vec![PathBuf::from("/b/sh"), PathBuf::from("./sh"), PathBuf::from("/c/sh")]
        );
        assert_eq!(path_candidates("./x", "/b"), vec![PathBuf::from("./x")]);
    }
}
