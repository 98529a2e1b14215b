//! `cordon spec`: writes a default config.json like `runc spec`.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json into.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
}

pub fn spec(a: &SpecArgs) -> Result<u8> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let mut spec = oci_spec::runtime::Spec::default();
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(false));
    }
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}
