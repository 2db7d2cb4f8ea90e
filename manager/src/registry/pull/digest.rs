//! Digests checked: a blob's content against the digest that names it.

use std::io;

use sha2::{Digest, Sha256};

use super::error::PullError;

/// The digest mismatch oci-client reports at the end of a blob stream.
pub(super) fn verification_error(e: &io::Error) -> Option<&str> {
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<oci_client::errors::DigestError>())
    {
        Some(oci_client::errors::DigestError::VerificationError { actual, .. }) => Some(actual),
        _ => None,
    }
}

/// A layer whose content hashes to another digest than the manifest gives.
pub(super) fn digest_mismatch(reference: &str, layer: &str, actual: &str) -> PullError {
    PullError::BadImage {
        reference: reference.to_string(),
        why: format!(
            "layer {layer}: digest mismatch: the registry sent content that hashes to {actual}"
        ),
    }
}

pub(crate) fn check_digest(data: &[u8], digest: &str) -> std::result::Result<(), String> {
    let got = format!("sha256:{:x}", Sha256::digest(data));
    if digest.starts_with("sha256:") && got != digest {
        return Err(format!("content of {digest} hashes to {got}"));
    }
    Ok(())
}
