//! `state`: the container's OCI state as JSON.

use std::path::Path;

use crate::state::State;

pub fn state(root: &Path, id: &str) -> anyhow::Result<()> {
    let st = State::load(root, id)?;
    println!("{}", serde_json::to_string_pretty(&st.oci(root))?);
    Ok(())
}
