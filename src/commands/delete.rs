//! `husk delete [--force] ID`.

use anyhow::{Context, Result, bail};

use crate::state::{Container, Status, Store};

pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let c = match store.open(id, true) {
        Ok(c) => c,
        Err(e) => {
            if !store.container_dir(id).exists() && force {
                return Ok(());
            }
            return Err(e);
        }
    };
    match c.status() {
        Status::Stopped | Status::Creating => {}
        s if !force => bail!(
            "cannot delete container {id:?} that is not stopped: {} (use --force)",
            s.as_str()
        ),
        _ => {
            if let Some(fd) = super::kill::init_pidfd(&c)? {
                let _ = crate::sys::pidfd_send_signal(&fd, libc::SIGKILL);
                // A paused container's processes die only once thawed:
                // kill_all signals the whole cgroup and thaws it.
                if let Some(cg) = c.cgroup() {
                    cg.kill_all(libc::SIGKILL)
                        .context("kill every process in the container's cgroup")?;
                }
                if !crate::sys::pidfd_wait(&fd, 10_000).context("wait for the container init to exit")? {
                    bail!(
                        "the container init (pid {}) did not exit within 10s of SIGKILL",
                        c.state.pid
                    );
                }
            }
        }
    }
    destroy(&c)
}

/// Remove what a container leaves behind: processes still in its cgroup
/// (the init may have died and left children), the cgroup, poststop
/// hooks, its state.
pub fn destroy(c: &Container) -> Result<()> {
    if let Some(cg) = c.cgroup() {
        cg.kill_all(libc::SIGKILL)
            .context("kill what is left in the container's cgroup")?;
        cg.destroy().context("remove the container's cgroup")?;
    }
    if let Some(v) = &c.state.poststop
        && let Ok(hooks) = serde_json::from_value::<Vec<oci_spec::runtime::Hook>>(v.clone())
    {
        let mut st = c.oci_state();
        st["status"] = "stopped".into();
        crate::hooks::run_all_warn("poststop", &hooks, &st.to_string());
    }
    c.remove_dir()
}
