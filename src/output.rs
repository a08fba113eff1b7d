//! What husk prints on stdout: [`out`], which ends husk quietly when the
//! reader went away, and the version strings (`--version`, `man`, `features`).

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const OCI_VERSION: &str = "1.3.0";

/// Write to stdout. A reader that went away (`husk state x | head -1`)
/// is not an error to report: like other Unix tools, husk just stops.
pub fn out(s: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|_| o.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(141);
    }
}

/// Did a command fail only because its reader went away? (exit 141, silently)
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
