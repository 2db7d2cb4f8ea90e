//! Whether `run` and `create` pull their image first: Docker's `--pull`.

use super::error::Result;
use crate::image::ImageError;
use crate::reference::Reference;
use crate::store::{Store, StoreError};

/// Docker's `--pull` of `run` and `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Pull when the store does not have the image (the default)
    Missing,
    /// Pull every time (the layers the store has are not downloaded)
    Always,
    /// Never pull: a missing image is an error
    Never,
}

/// Whether `run`/`create` must pull `image` first under `policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The store has it (or `never`)
    Nothing,
    /// Not in the store: Docker says "Unable to find image 'X' locally"
    Missing(Reference),
    /// `--pull always`
    Always(Reference),
}

/// What `run`/`create` do about `image` before creating the container.
/// `--pull never` with a missing image is Docker's "No such image: X".
pub fn need(store: &Store, image: &str, policy: Policy) -> Result<Need> {
    let present = match store.resolve(image) {
        Ok(_) => true,
        Err(StoreError::NoSuchImage(_)) => false,
        Err(e) => return Err(e.into()),
    };
    match (policy, present) {
        (Policy::Always, _) => Ok(Need::Always(
            Reference::parse(image).map_err(ImageError::from)?,
        )),
        (_, true) => Ok(Need::Nothing),
        (Policy::Never, false) => {
            let name = Reference::parse(image)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| image.to_string());
            Err(StoreError::NoSuchImage(name).into())
        }
        (Policy::Missing, false) => {
            // an image id is not pulled: Docker has no registry to ask either
            if image.starts_with("sha256:") {
                return Err(StoreError::NoSuchImage(image.to_string()).into());
            }
            Ok(Need::Missing(
                Reference::parse(image).map_err(ImageError::from)?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_pulls_what_is_missing_unless_told_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = Reference::parse("redis").unwrap();
        assert_eq!(
            need(&store, "redis", Policy::Missing).unwrap(),
            Need::Missing(r.clone())
        );
        assert_eq!(
            need(&store, "redis", Policy::Always).unwrap(),
            Need::Always(r)
        );
        assert_eq!(
            need(&store, "redis", Policy::Never)
                .unwrap_err()
                .to_string(),
            "no such image: redis:latest"
        );
        // an id is not a name to pull
        let id = format!("sha256:{}", "a".repeat(64));
        assert!(need(&store, &id, Policy::Missing).is_err());
        assert!(need(&store, "Upper", Policy::Missing).is_err());
    }
}
