//! Container state under `<root>/<id>/`.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// Checks a container id the way runc does.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if !ok {
        bail!("invalid container id format: {id:?}");
    }
    Ok(())
}

/// The state directory of a container, removed when dropped unless kept.
pub struct StateDir {
    pub dir: PathBuf,
    keep: bool,
}

/// What `state.json` holds.
#[derive(Serialize)]
pub struct State<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    pub pid: u32,
    pub bundle: &'a Path,
}

impl StateDir {
    /// Creates `<root>/<id>`, failing if the container exists.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        fs::create_dir_all(root).with_context(|| format!("creating state root {}", root.display()))?;
        let dir = root.join(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(StateDir { dir, keep: false }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container \"{id}\" already exists")
            }
            Err(e) => Err(e).with_context(|| format!("creating state directory {}", dir.display())),
        }
    }

    /// Writes `state.json` atomically: a temp file, fsync, rename.
    pub fn write(&self, state: &State) -> Result<()> {
        let tmp = self.dir.join("state.json.tmp");
        let mut f = fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(state)?)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join("state.json"))?;
        Ok(())
    }

    #[allow(dead_code)]
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
