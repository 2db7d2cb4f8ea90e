//! Every failure of a request, converted once to Docker's error: a status
//! code and `{"message": "…"}`. The library's errors are classified here
//! (`status`), by what they say about the request: a missing container or
//! image is 404, a state that forbids the verb 409, a bad value 400, a
//! verb with nothing to do 304; the rest (the host, the store, the
//! runtime) is 500.

use hyper::StatusCode;

use crate::bundle::BundleError;
use crate::container::ContainerError;
use crate::filter::FilterError;
use crate::image::ImageError;
use crate::listing::ListError;
use crate::net::usernet::UserNetError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// an unknown endpoint (Docker's words)
    #[error("page not found")]
    NoSuchEndpoint,
    /// an endpoint of a later phase of `rbox serve`
    #[error("{method} {path}: {what} is not implemented by rbox serve yet")]
    NotImplemented {
        method: String,
        path: String,
        what: &'static str,
    },
    #[error("client version {0} is too new. Maximum supported API version is {max}", max = super::API_VERSION)]
    VersionTooNew(String),
    #[error("client version {0} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version", min = super::MIN_API_VERSION)]
    VersionTooOld(String),
    #[error("invalid JSON in the request body: {0}")]
    BadJson(serde_json::Error),
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("reading the request body: {0}")]
    BodyRead(hyper::Error),
    #[error("bad parameter {name}={value:?}: {why}")]
    BadParam {
        name: &'static str,
        value: String,
        why: &'static str,
    },
    /// a field or parameter set to something rbox does not do (yet)
    #[error("{0} is not supported by rbox serve")]
    Unsupported(String),
    /// a value the library refuses, named by the field it came from
    #[error("{field}: {message}")]
    BadField { field: String, message: String },
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// Docker's 304: start of a running container, stop of a stopped one
    #[error("container {0} is already {1}")]
    NotModified(String, &'static str),
    #[error(transparent)]
    Container(ContainerError),
    #[error(transparent)]
    Image(ImageError),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    List(ListError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Pull(#[from] crate::registry::pull::PullError),
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    #[error(transparent)]
    RegistryConfig(#[from] crate::registry::config::ConfigError),
    #[error("the request's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ApiError {
    /// Docker's status code for it.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            NoSuchEndpoint | NoSuchContainer(_) | NoSuchImage(_) => StatusCode::NOT_FOUND,
            NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
            VersionTooNew(_)
            | VersionTooOld(_)
            | BadJson(_)
            | BodyTooLarge(_)
            | BodyRead(_)
            | BadParam { .. }
            | Unsupported(_)
            | BadField { .. }
            | Filter(_)
            | Reference(_) => StatusCode::BAD_REQUEST,
            NotModified(..) => StatusCode::NOT_MODIFIED,
            Container(e) => container_status(e),
            Image(e) => image_status(e),
            Store(e) => store_status(e),
            List(ListError::Container(e)) => container_status(e),
            List(ListError::Image(e)) => image_status(e),
            List(ListError::Store(e)) => store_status(e),
            List(ListError::Template(_) | ListError::UnknownField { .. }) => {
                StatusCode::BAD_REQUEST
            }
            Pull(_) | RegistryConfig(_) | Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Docker's error body.
    pub fn body(&self) -> String {
        serde_json::json!({ "message": self.to_string() }).to_string()
    }
}

fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::NoSuchImage(_) => StatusCode::NOT_FOUND,
        StoreError::Ambiguous(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn image_status(e: &ImageError) -> StatusCode {
    match e {
        ImageError::Store(e) => store_status(e),
        ImageError::Reference(_) | ImageError::TagWithDigest(_) | ImageError::Change { .. } => {
            StatusCode::BAD_REQUEST
        }
        ImageError::MultipleRepositories(_) | ImageError::InUse { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn container_status(e: &ContainerError) -> StatusCode {
    use ContainerError as E;
    match e {
        E::NoSuch(_) | E::NoSuchVolume(_) | E::NoNetTarget(_) => StatusCode::NOT_FOUND,
        E::UserNet(UserNetError::NoSuch(_)) => StatusCode::NOT_FOUND,
        E::Image { source, .. } => image_status(source),
        E::Bundle(BundleError::Image(e)) => image_status(e),
        E::Bundle(BundleError::Store(e)) | E::Store(e) => store_status(e),
        E::NameInUse(_)
        | E::Running(_)
        | E::NotRunning(_)
        | E::AlreadyPaused(_)
        | E::NotPaused(_)
        | E::Paused(_)
        | E::CannotAttach { .. }
        | E::VolumeInUse { .. }
        | E::NetTargetGone(_)
        | E::NetTargetStopped(_)
        | E::NetTargetShares { .. } => StatusCode::CONFLICT,
        E::AlreadyRunning(_) => StatusCode::NOT_MODIFIED,
        E::Ambiguous(_)
        | E::BadName(_)
        | E::NetMode(_)
        | E::Restart(_)
        | E::LogOpt(_)
        | E::SecurityOpt(_)
        | E::Signal(_)
        | E::RestartWithRm(_)
        | E::MemoryTooLow(_)
        | E::NoBindSource { .. }
        | E::NoController { .. }
        | E::PortsNeedBridge { .. }
        | E::ConflictsWithNetContainer { .. }
        | E::BadVolumeName(_)
        | E::Device(_)
        | E::ExposedPort { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A container that is not there is Docker's `No such container: X`, an
/// image that is not there `No such image: X` (what clients match on).
impl From<ContainerError> for ApiError {
    fn from(e: ContainerError) -> ApiError {
        match e {
            ContainerError::NoSuch(what) => ApiError::NoSuchContainer(what),
            ContainerError::Image { source, .. } if is_no_image(&source) => no_image(*source),
            ContainerError::Bundle(BundleError::Image(e)) if is_no_image(&e) => no_image(e),
            e => ApiError::Container(e),
        }
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> ApiError {
        if is_no_image(&e) {
            return no_image(e);
        }
        ApiError::Image(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NoSuchImage(what) => ApiError::NoSuchImage(what),
            e => ApiError::Store(e),
        }
    }
}

impl From<ListError> for ApiError {
    fn from(e: ListError) -> ApiError {
        match e {
            ListError::Container(e) => e.into(),
            ListError::Image(e) => e.into(),
            ListError::Store(e) => e.into(),
            e => ApiError::List(e),
        }
    }
}

fn is_no_image(e: &ImageError) -> bool {
    matches!(e, ImageError::Store(StoreError::NoSuchImage(_)))
}

fn no_image(e: ImageError) -> ApiError {
    match e {
        ImageError::Store(StoreError::NoSuchImage(what)) => ApiError::NoSuchImage(what),
        e => ApiError::Image(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_get_dockers_codes_and_words() {
        let e: ApiError = ContainerError::NoSuch("web".into()).into();
        assert_eq!(
            (e.status(), e.to_string()),
            (StatusCode::NOT_FOUND, "No such container: web".into())
        );
        let e: ApiError = ContainerError::Bundle(BundleError::Image(ImageError::Store(
            StoreError::NoSuchImage("nginx:latest".into()),
        )))
        .into();
        assert_eq!(
            (e.status(), e.to_string()),
            (StatusCode::NOT_FOUND, "No such image: nginx:latest".into())
        );
        let e: ApiError = ContainerError::NameInUse("web".into()).into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
        let e: ApiError = ContainerError::NotRunning("web".into()).into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
        let e: ApiError = ContainerError::RestartWithRm("always".into()).into();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e: ApiError = ImageError::InUse {
            image: "0123".into(),
            container: "web".into(),
        }
        .into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(
            ApiError::NoSuchEndpoint.body(),
            r#"{"message":"page not found"}"#
        );
    }
}
