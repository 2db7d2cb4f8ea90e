//! `features`: what this runtime supports, as the OCI features JSON.

pub fn features() -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&crate::features::features())?
    );
    Ok(())
}
