//! `husk completion SHELL` and `husk man`: generated from the clap
//! definitions, so they never drift from the real command line.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Shell;

pub fn completion(shell: Shell) -> Result<()> {
    let sh = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = crate::cli::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(sh, &mut cmd, "husk", &mut buf);
    crate::output::out(&String::from_utf8_lossy(&buf));
    Ok(())
}

/// Section 8 (system administration commands), as runc's pages: a runtime
/// is run by root and by container managers. `make install` puts this page
/// at share/man/man8/husk.8.gz.
pub fn man() -> Result<()> {
    let cmd = crate::cli::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .source(format!("husk {}", crate::output::VERSION))
        .manual("System Manager's Manual")
        .render(&mut buf)?;
    crate::output::out(&String::from_utf8_lossy(&buf));
    Ok(())
}
