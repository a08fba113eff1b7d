//! `husk state ID`: the OCI state of a container as JSON.

use crate::state::Store;
use anyhow::Result;

pub fn state(store: &Store, id: &str) -> Result<()> {
    let c = store.open(id, false)?;
    let v = c.oci_state();
    crate::output::out(&(serde_json::to_string_pretty(&v)? + "\n"));
    Ok(())
}
