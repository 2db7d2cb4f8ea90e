//! The layers of a pull downloaded, a few at a time; each streamed through
//! a channel to a blocking task that writes the compressed blob (hashed,
//! checked against the manifest's digest) and unpacks it in the same pass
//! (diff_id checked against the config's).

use std::io::{self, Read};

use futures::future::{ready, Either};
use futures::StreamExt;
use indicatif::ProgressBar;
use oci_client::manifest::OciDescriptor;
use oci_client::Client;

use super::digest::{digest_mismatch, verification_error};
use super::error::{PullError, Result, SizeProblem};
use super::plan::Step;
use super::progress::Progress;
use super::remote::Remote;
use super::size::Counted;
use crate::image::unpack::{UnpackError, Unpacked};
use crate::image::{self, NewLayer};
use crate::registry::client::{chain, registry_message, MAX_CONCURRENT_DOWNLOADS};
use crate::store::{BlobWriter, PendingBlob, Store, StoreError, TempPath};

/// Every step's layer, in the manifest's order: downloads run
/// `MAX_CONCURRENT_DOWNLOADS` at a time while the store's dirty pages are
/// written back. The first error, once every download has ended.
pub(super) async fn download(
    remote: &Remote<'_>,
    store: &Store,
    steps: Vec<Step<'_>>,
    name: &str,
    progress: &mut Progress<'_>,
) -> Result<Vec<NewLayer>> {
    let flusher = (!steps.is_empty()).then(|| store.flush_in_background());
    let jobs = steps.into_iter().map(|step| match step {
        Step::Have(layer) => Either::Left(ready(Ok(layer))),
        Step::Fetch { desc, diff_id, bar } => Either::Right(fetch_layer(
            &remote.client,
            store,
            &remote.oref,
            desc,
            diff_id,
            name,
            bar,
        )),
    });
    let mut layers = Vec::new();
    let mut results = futures::stream::iter(jobs).buffered(MAX_CONCURRENT_DOWNLOADS);
    let mut first_err = None;
    while let Some(res) = results.next().await {
        match res {
            Ok(l) => {
                progress.complete(&l);
                layers.push(l);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    drop(flusher);
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(layers)
}

/// One layer: downloaded into the unpack task, its size, digest and
/// diff_id checked. On error, its temp blob and snapshot are gone.
async fn fetch_layer(
    client: &Client,
    store: &Store,
    oref: &oci_client::Reference,
    desc: &OciDescriptor,
    diff_id: &str,
    name: &str,
    bar: Option<ProgressBar>,
) -> Result<NewLayer> {
    let snapshot = image::temp_snapshot(store)?;
    let blob = store.blob_writer()?;
    let (tx, unpacker) = start_unpack(blob, &snapshot, desc, diff_id);
    let sized = match client.pull_blob_stream(oref, desc).await {
        Ok(s) => s,
        Err(e) => {
            drop(tx);
            let _ = unpacker.await;
            return Err(PullError::Registry {
                reference: name.to_string(),
                what: "layer",
                message: registry_message(&e),
            });
        }
    };
    // counted against the descriptor's size (not negative: checked)
    let got = receive(sized, &tx, desc.size as u64, bar.as_ref()).await;
    // the stream and its connection went when `receive` returned, not
    // when the unpacker is done; the unpacker reads to the end now
    drop(tx);
    let (res, blob) = unpacker.await.map_err(|e| PullError::BadImage {
        reference: name.to_string(),
        why: format!("layer {}: unpack task: {e}", desc.digest),
    })?;
    // on any error below, the blob's and the snapshot's temp files go
    // with `blob`, `res` and `snapshot`
    let (unpacked, blob) = outcome(name, desc, got, res, blob)?;
    if let Some(pb) = &bar {
        pb.finish_with_message("Pull complete");
    }
    Ok(NewLayer::unpacked(unpacked, blob, snapshot))
}

/// What the unpack task gives back: the unpack's outcome and the blob's.
type Unpacking = tokio::task::JoinHandle<(
    std::result::Result<Unpacked, UnpackError>,
    std::result::Result<PendingBlob, StoreError>,
)>;

/// The task that writes `blob` and unpacks the layer into `snapshot`'s
/// `fs/` as the download comes in through the channel.
fn start_unpack(
    blob: BlobWriter,
    snapshot: &TempPath,
    desc: &OciDescriptor,
    diff_id: &str,
) -> (tokio::sync::mpsc::Sender<bytes::Bytes>, Unpacking) {
    let fs_dir = snapshot.path().join("fs");
    let expected = diff_id.to_string();
    let blob_digest = desc.digest.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let unpacker = tokio::task::spawn_blocking(move || {
        let download = ChannelReader {
            rx,
            cur: bytes::Bytes::new(),
        };
        image::unpack_blob(download, blob, &fs_dir, &blob_digest, &expected)
    });
    (tx, unpacker)
}

/// How a download went: the bytes counted, and what stopped it early.
struct Received {
    count: Counted,
    size_problem: Option<SizeProblem>,
    net_err: Option<io::Error>,
}

/// The blob's bytes into `tx` as they come, each chunk counted against
/// `size`: a Content-Length that is not `size` reads nothing, and the
/// download stops at `size` + 1 bytes. It also stops when the unpacker
/// does (its error says why). The stream, and its connection, are dropped
/// on return.
async fn receive(
    sized: oci_client::client::SizedStream,
    tx: &tokio::sync::mpsc::Sender<bytes::Bytes>,
    size: u64,
    bar: Option<&ProgressBar>,
) -> Received {
    let mut count = Counted { size, got: 0 };
    let mut size_problem = count.announced(sized.content_length).err();
    let mut stream = sized.stream;
    let mut net_err = None;
    if let Some(pb) = bar {
        pb.set_message("Downloading");
    }
    while size_problem.is_none() {
        let Some(chunk) = stream.next().await else {
            // the whole blob came (its digest checked): it must be as long
            // as the descriptor says, too
            if count.got != count.size {
                size_problem = Some(SizeProblem::Shorter {
                    got: count.got,
                    size: count.size,
                });
            }
            break;
        };
        match chunk {
            Ok(b) => {
                // more than the descriptor says: stop at size + 1 bytes
                if let Err(p) = count.take(b.len()) {
                    size_problem = Some(p);
                    break;
                }
                if let Some(pb) = bar {
                    pb.inc(b.len() as u64);
                }
                if tx.send(b).await.is_err() {
                    break; // the unpacker stopped: its error says why
                }
            }
            Err(e) => {
                net_err = Some(e);
                break;
            }
        }
    }
    Received {
        count,
        size_problem,
        net_err,
    }
}

/// The layer's outcome, its errors in the order that says most: the size,
/// the download, the blob's digest (content corrupted on the way also
/// fails to unpack, and the digest says why), then the unpack.
fn outcome(
    name: &str,
    desc: &OciDescriptor,
    got: Received,
    res: std::result::Result<Unpacked, UnpackError>,
    blob: std::result::Result<PendingBlob, StoreError>,
) -> Result<(Unpacked, PendingBlob)> {
    let layer_err = |source| PullError::Layer {
        reference: name.to_string(),
        layer: desc.digest.clone(),
        source,
    };
    if let Some(p) = got.size_problem {
        return Err(size_err(name, desc, p));
    }
    if let Some(e) = got.net_err {
        return Err(download_error(name, desc, &got.count, e));
    }
    let blob = match blob {
        Ok(b) => b,
        Err(StoreError::DigestMismatch { actual, .. }) => {
            return Err(digest_mismatch(name, &desc.digest, &actual))
        }
        // a full disk fails the unpack first: that error names the layer
        Err(e) => {
            return Err(match res {
                Err(u) => layer_err(u),
                Ok(_) => PullError::LayerStore {
                    reference: name.to_string(),
                    layer: desc.digest.clone(),
                    source: Box::new(e),
                },
            })
        }
    };
    let unpacked = res.map_err(layer_err)?;
    Ok((unpacked, blob))
}

/// The stream's error: oci-client checks the digest at its end too, and a
/// short blob fails that check.
fn download_error(name: &str, desc: &OciDescriptor, count: &Counted, e: io::Error) -> PullError {
    if let Some(actual) = verification_error(&e) {
        if count.got < count.size {
            return size_err(
                name,
                desc,
                SizeProblem::Shorter {
                    got: count.got,
                    size: count.size,
                },
            );
        }
        return digest_mismatch(name, &desc.digest, actual);
    }
    PullError::Registry {
        reference: name.to_string(),
        what: "layer download",
        message: chain(&e),
    }
}

fn size_err(name: &str, desc: &OciDescriptor, problem: SizeProblem) -> PullError {
    PullError::Size {
        reference: name.to_string(),
        what: "layer",
        digest: desc.digest.clone(),
        problem,
    }
}

/// The channel end the unpack task reads the download from.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    cur: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}
