// TEMP scaffold (not committed)
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
#[error("ctx")]
pub struct ContextError;
pub struct Context {
    root: PathBuf,
}
impl Context {
    pub fn from_dir(dir: &Path, _f: Option<&Path>) -> Result<Context, ContextError> {
        Ok(Context {
            root: dir.to_path_buf(),
        })
    }
    pub fn from_tar(_r: impl std::io::Read, _p: &Path) -> Result<Context, ContextError> {
        Err(ContextError)
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn dockerfile_text(&self, _f: Option<&Path>) -> Result<(String, String), ContextError> {
        Ok((
            std::fs::read_to_string(self.root.join("Dockerfile")).map_err(|_| ContextError)?,
            "Dockerfile".into(),
        ))
    }
}
