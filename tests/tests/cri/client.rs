//! The kubelet's side of the CRI: runtime.v1 RuntimeService and
//! ImageService over gRPC on containerd's unix socket (the k8s-cri crate's
//! tonic clients), as blocking calls on a current-thread tokio runtime of
//! the client's own.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Response, Status};

/// Longer than any of containerd's own (a stop's grace period, a shim's
/// start): a call that takes this long is a hang, reported as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

pub type CriResult<T> = Result<T, Status>;

impl Cri {
    /// Connects to the CRI served on containerd's socket.
    pub fn connect(socket: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let socket = socket.to_path_buf();
        let channel = rt
            .block_on(async {
                // the URI is not used: every connection goes to the socket
                Endpoint::from_static("http://containerd.invalid")
                    .timeout(CALL_TIMEOUT)
                    .connect_timeout(Duration::from_secs(10))
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let socket = socket.clone();
                        async move {
                            let s = tokio::net::UnixStream::connect(socket).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(s))
                        }
                    }))
                    .await
            })
            .expect("connect to containerd's socket");
        Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        }
    }

    fn rs<T, F: Future<Output = CriResult<Response<T>>>>(
        &self,
        call: impl FnOnce(RuntimeServiceClient<Channel>) -> F,
    ) -> CriResult<T> {
        self.rt
            .block_on(call(self.runtime.clone()))
            .map(Response::into_inner)
    }

    fn is<T, F: Future<Output = CriResult<Response<T>>>>(
        &self,
        call: impl FnOnce(ImageServiceClient<Channel>) -> F,
    ) -> CriResult<T> {
        self.rt
            .block_on(call(self.images.clone()))
            .map(Response::into_inner)
    }

    /// `Status`: the runtime's conditions (RuntimeReady, NetworkReady).
    pub fn status(&self) -> CriResult<StatusResponse> {
        self.rs(|mut c| async move { c.status(StatusRequest { verbose: false }).await })
    }

    /// The (type, status, reason, message) of each runtime condition.
    pub fn conditions(&self) -> CriResult<Vec<(String, bool, String, String)>> {
        Ok(self
            .status()?
            .status
            .map(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.r#type, c.status, c.reason, c.message))
            .collect())
    }

    pub fn image_status(&self, image: &str) -> CriResult<Option<Image>> {
        let req = ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        Ok(self
            .is(|mut c| async move { c.image_status(req).await })?
            .image)
    }

    /// `RunPodSandbox`: the new sandbox's id.
    pub fn run_pod(&self, config: &PodSandboxConfig, handler: &str) -> CriResult<String> {
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        Ok(self
            .rs(|mut c| async move { c.run_pod_sandbox(req).await })?
            .pod_sandbox_id)
    }

    /// `PodSandboxStatus`; `verbose` adds containerd's `info` (pid, netns,
    /// the CNI result, the runtime spec) as JSON.
    pub fn pod_status(&self, id: &str, verbose: bool) -> CriResult<PodSandboxStatusResponse> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose,
        };
        self.rs(|mut c| async move { c.pod_sandbox_status(req).await })
    }

    pub fn list_pods(&self) -> CriResult<Vec<PodSandbox>> {
        let req = ListPodSandboxRequest { filter: None };
        Ok(self
            .rs(|mut c| async move { c.list_pod_sandbox(req).await })?
            .items)
    }

    pub fn stop_pod(&self, id: &str) -> CriResult<()> {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.rs(|mut c| async move { c.stop_pod_sandbox(req).await })
            .map(drop)
    }

    pub fn remove_pod(&self, id: &str) -> CriResult<()> {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.rs(|mut c| async move { c.remove_pod_sandbox(req).await })
            .map(drop)
    }

    /// `CreateContainer` in the pod `pod_id` started with `pod_config`.
    pub fn create_container(
        &self,
        pod_id: &str,
        config: &ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> CriResult<String> {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config.clone()),
            sandbox_config: Some(pod_config.clone()),
        };
        Ok(self
            .rs(|mut c| async move { c.create_container(req).await })?
            .container_id)
    }

    pub fn start_container(&self, id: &str) -> CriResult<()> {
        let req = StartContainerRequest {
            container_id: id.into(),
        };
        self.rs(|mut c| async move { c.start_container(req).await })
            .map(drop)
    }

    pub fn container_status(&self, id: &str, verbose: bool) -> CriResult<ContainerStatusResponse> {
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose,
        };
        self.rs(|mut c| async move { c.container_status(req).await })
    }
}

pub fn image_spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}

/// containerd's verbose `info` of a pod or container status, as JSON.
pub fn info_json(info: &std::collections::HashMap<String, String>) -> serde_json::Value {
    info.get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(serde_json::Value::Null)
}
