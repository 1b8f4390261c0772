//! Files sent in conversations: one JetStream object store bucket beside the
//! log, `<stream>_FILES`, on the same NATS.
//!
//! Each file is stored once, named by the SHA-256 of its bytes (lowercase
//! hex): the same scan sent twice is one object, and a name says what the
//! bytes must be. Events carry only that reference (`proto::events::Attachment`).
//!
//! The bucket is kept like the log: its stream denies delete and purge, and
//! allows no rollup (a message with a `Nats-Rollup` header could otherwise
//! replace what is stored). So the command service writes objects itself in
//! the object store's layout (chunks on `$O.<bucket>.C.<nuid>`, then the
//! description on `$O.<bucket>.M.<name>`, only where none is yet): the
//! client's own `put` sends a rollup. Reading is the object store's own
//! `get`, which checks the digest of what it returns.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, object_store};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use futures::StreamExt as _;
use tokio::io::AsyncReadExt as _;

use crate::{Error, JetStreamStore};

/// The size of one stored chunk.
pub const CHUNK: usize = 128 * 1024;

/// How many chunks are in flight to JetStream at once.
const WINDOW: usize = 16;

/// The bucket of `stream`'s files.
pub fn files_bucket(stream: &str) -> String {
    format!("{stream}_FILES")
}

/// What the bucket knows of one stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// SHA-256 of the bytes, lowercase hex: the object's name.
    pub digest: String,
    pub size: u64,
    /// The media type found in the bytes when it was stored.
    pub media_type: String,
}

/// The bucket of files.
#[derive(Clone)]
pub struct FileStore {
    js: jetstream::Context,
    bucket: String,
    objects: object_store::ObjectStore,
    timeout: Duration,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("bucket", &self.bucket)
            .finish()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

/// `bytes` in lowercase hex (a digest as files are named).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `digest` is a SHA-256 in lowercase hex.
pub fn is_digest(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FileStore {
    /// The bucket of `store`'s stream, made if it is not there yet (by a
    /// user allowed to: the deployment's admin, or a single machine's
    /// unauthenticated NATS).
    pub async fn open(store: &JetStreamStore) -> Result<Self, Error> {
        let config = store.config();
        let js = store.jetstream().clone();
        let bucket = files_bucket(&config.stream);
        let objects = match js.get_object_store(&bucket).await {
            Ok(objects) => objects,
            Err(_) => {
                js.get_or_create_stream(jetstream::stream::Config {
                    name: format!("OBJ_{bucket}"),
                    description: Some("Careline: the files sent in conversations".into()),
                    subjects: vec![format!("$O.{bucket}.C.>"), format!("$O.{bucket}.M.>")],
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: config.replicas,
                    discard: jetstream::stream::DiscardPolicy::New,
                    deny_delete: true,
                    deny_purge: true,
                    allow_rollup: false,
                    allow_direct: true,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable(&format!("cannot create the bucket {bucket}"), e))?;
                js.get_object_store(&bucket)
                    .await
                    .map_err(|e| unavailable(&format!("cannot open the bucket {bucket}"), e))?
            }
        };
        Ok(Self {
            js,
            bucket,
            objects,
            timeout: config.request_timeout,
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The stored file named `digest`, if there is one.
    pub async fn stat(&self, digest: &str) -> Result<Option<StoredFile>, Error> {
        if !is_digest(digest) {
            return Ok(None);
        }
        match self.objects.info(digest).await {
            Ok(info) if !info.deleted => Ok(Some(StoredFile {
                digest: digest.to_string(),
                size: info.size as u64,
                media_type: info.metadata.get("media_type").cloned().unwrap_or_default(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable("cannot read the file's description", e)),
        }
    }

    /// Stores the `size` bytes of `file` (already checked: their SHA-256 is
    /// `digest`, their type `media_type`), unless a file of that digest is
    /// stored already. Never reads more than one chunk into memory at once.
    pub async fn put(
        &self,
        digest: &str,
        media_type: &str,
        size: u64,
        mut file: impl tokio::io::AsyncRead + Unpin,
    ) -> Result<StoredFile, Error> {
        if !is_digest(digest) {
            return Err(Error::InvalidEvent(format!("{digest:?} is not a SHA-256")));
        }
        if let Some(stored) = self.stat(digest).await? {
            return Ok(stored);
        }
        let nuid = uuid::Uuid::new_v4().simple().to_string();
        let chunk_subject = format!("$O.{}.C.{nuid}", self.bucket);
        let mut in_flight = futures::stream::FuturesOrdered::new();
        let mut chunks = 0usize;
        let mut written = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                let n = file
                    .read(&mut buf[filled..])
                    .await
                    .map_err(|e| unavailable("cannot read the file", e))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            written += filled as u64;
            chunks += 1;
            let ack = self
                .js
                .publish(chunk_subject.clone(), buf.into())
                .await
                .map_err(|e| unavailable("cannot store a chunk", e))?;
            in_flight.push_back(std::future::IntoFuture::into_future(ack));
            if in_flight.len() >= WINDOW {
                self.acked(&mut in_flight).await?;
            }
            if filled < CHUNK {
                break;
            }
        }
        while !in_flight.is_empty() {
            self.acked(&mut in_flight).await?;
        }
        if written != size {
            return Err(Error::InvalidEvent(format!(
                "the file was {written} bytes, not the {size} said"
            )));
        }
        let digest_bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&digest[i * 2..i * 2 + 2], 16).unwrap_or_default())
            .collect();
        let info = serde_json::json!({
            "name": digest,
            "bucket": self.bucket,
            "nuid": nuid,
            "size": written,
            "chunks": chunks,
            "digest": format!("SHA-256={}", URL_SAFE.encode(digest_bytes)),
            "options": { "max_chunk_size": CHUNK },
            "metadata": HashMap::from([("media_type", media_type)]),
        });
        let meta_subject = format!("$O.{}.M.{}", self.bucket, URL_SAFE.encode(digest));
        let mut headers = HeaderMap::new();
        // Only where no description is yet: a stored file is never redescribed.
        headers.insert("Nats-Expected-Last-Subject-Sequence", "0");
        let stored = async {
            self.js
                .publish_with_headers(meta_subject, headers, info.to_string().into())
                .await?
                .await
        };
        match tokio::time::timeout(self.timeout, stored).await {
            Ok(Ok(_)) => {}
            // Someone stored the same bytes meanwhile: theirs stands.
            Ok(Err(e)) if e.to_string().contains("wrong last sequence") => {}
            Ok(Err(e)) => return Err(unavailable("cannot describe the file", e)),
            Err(_) => return Err(unavailable("cannot describe the file", "no answer")),
        }
        Ok(StoredFile {
            digest: digest.to_string(),
            size: written,
            media_type: media_type.to_string(),
        })
    }

    async fn acked(
        &self,
        in_flight: &mut futures::stream::FuturesOrdered<
            <jetstream::context::PublishAckFuture as std::future::IntoFuture>::IntoFuture,
        >,
    ) -> Result<(), Error> {
        match tokio::time::timeout(self.timeout, in_flight.next()).await {
            Ok(Some(Ok(_))) | Ok(None) => Ok(()),
            Ok(Some(Err(e))) => Err(unavailable("a chunk was not stored", e)),
            Err(_) => Err(unavailable("a chunk was not stored", "no answer")),
        }
    }

    /// The stored file named `digest` and a reader of its bytes (which fails
    /// at the end if they do not match the digest), if there is one.
    pub async fn get(
        &self,
        digest: &str,
    ) -> Result<Option<(StoredFile, object_store::Object)>, Error> {
        let Some(stored) = self.stat(digest).await? else {
            return Ok(None);
        };
        let object = self
            .objects
            .get(digest)
            .await
            .map_err(|e| unavailable("cannot read the file", e))?;
        Ok(Some((stored, object)))
    }

    /// The stored file named `digest` and a reader of its bytes that
    /// fetches a few stored chunks at a time, the next few while the last
    /// are taken, only as fast as they are (at most twice [`READ_AHEAD`]
    /// held: memory stays flat however large the file and however slow its
    /// reader), checking at the end that they hash to `digest`.
    pub async fn read(&self, digest: &str) -> Result<Option<(StoredFile, FileReader)>, Error> {
        if !is_digest(digest) {
            return Ok(None);
        }
        let info = match self.objects.info(digest).await {
            Ok(info) if !info.deleted => info,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable("cannot read the file's description", e)),
        };
        let stream = self
            .js
            .get_stream(format!("OBJ_{}", self.bucket))
            .await
            .map_err(|e| unavailable("cannot read the bucket", e))?;
        // A pull consumer of this file's chunks, acknowledging nothing,
        // gone a minute after its reader stops asking.
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                filter_subject: format!("$O.{}.C.{}", self.bucket, info.nuid),
                ack_policy: jetstream::consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("cannot read the file", e))?;
        let stored = StoredFile {
            digest: digest.to_string(),
            size: info.size as u64,
            media_type: info.metadata.get("media_type").cloned().unwrap_or_default(),
        };
        let (send, chunks) = tokio::sync::mpsc::channel(READ_AHEAD);
        let fetching = tokio::spawn(fetch_chunks(consumer, info.chunks, self.timeout, send));
        Ok(Some((
            stored,
            FileReader {
                chunks,
                fetching,
                chunks_left: info.chunks,
                sha: <sha2::Sha256 as sha2::Digest>::new(),
                digest: digest.to_string(),
            },
        )))
    }

    /// Every stored file's name, and the bucket's bytes on disk (one
    /// replica's).
    pub async fn list(&self) -> Result<(Vec<String>, u64), Error> {
        let mut names = Vec::new();
        let mut listing = self
            .objects
            .list()
            .await
            .map_err(|e| unavailable("cannot list the files", e))?;
        while let Some(info) = listing.next().await {
            let info = info.map_err(|e| unavailable("cannot list the files", e))?;
            if !info.deleted {
                names.push(info.name);
            }
        }
        Ok((names, self.bytes().await?))
    }

    /// The bucket's bytes on disk (one replica's).
    pub async fn bytes(&self) -> Result<u64, Error> {
        let mut stream = self
            .js
            .get_stream(format!("OBJ_{}", self.bucket))
            .await
            .map_err(|e| unavailable("cannot read the bucket", e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| unavailable("cannot read the bucket", e))?;
        Ok(info.state.bytes)
    }
}

/// How many stored chunks a [`FileReader`] fetches at once, and holds
/// ready at most beside them.
pub const READ_AHEAD: usize = 8;

/// Fetches a file's `left` chunks a batch at a time into `send`, the next
/// batch asked for while the reader takes the last one (so no round trip
/// waits between them), and only as fast as the reader takes them: at most
/// two batches are held.
async fn fetch_chunks(
    consumer: jetstream::consumer::Consumer<jetstream::consumer::pull::Config>,
    mut left: usize,
    timeout: Duration,
    send: tokio::sync::mpsc::Sender<Result<bytes::Bytes, Error>>,
) {
    while left > 0 {
        let fetched = async {
            let mut batch = consumer
                .fetch()
                .max_messages(left.min(READ_AHEAD))
                .expires(timeout)
                .messages()
                .await
                .map_err(|e| unavailable("cannot read the file", e))?;
            let mut got = 0;
            while let Some(message) = batch.next().await {
                let message = message.map_err(|e| unavailable("cannot read the file", e))?;
                if send.send(Ok(message.payload.clone())).await.is_err() {
                    // The reader is gone.
                    return Ok(usize::MAX);
                }
                got += 1;
            }
            Ok::<_, Error>(got)
        };
        match tokio::time::timeout(timeout * 2, fetched).await {
            Ok(Ok(usize::MAX)) => return,
            Ok(Ok(0)) => {
                let _ = send
                    .send(Err(unavailable(
                        "cannot read the file",
                        "its chunks did not come",
                    )))
                    .await;
                return;
            }
            Ok(Ok(got)) => left = left.saturating_sub(got),
            Ok(Err(e)) => {
                let _ = send.send(Err(e)).await;
                return;
            }
            Err(_) => {
                let _ = send
                    .send(Err(unavailable("cannot read the file", "no answer")))
                    .await;
                return;
            }
        }
    }
}

/// The bytes of one stored file, a chunk at a time (see [`FileStore::read`]).
pub struct FileReader {
    chunks: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, Error>>,
    fetching: tokio::task::JoinHandle<()>,
    chunks_left: usize,
    sha: sha2::Sha256,
    digest: String,
}

impl Drop for FileReader {
    fn drop(&mut self) {
        self.fetching.abort();
    }
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("digest", &self.digest)
            .field("chunks_left", &self.chunks_left)
            .finish_non_exhaustive()
    }
}

impl FileReader {
    /// The next stored chunk, or `None` after the last (whose bytes, with
    /// all before, hash to the file's name, or this is an error).
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, Error> {
        use sha2::Digest as _;
        if self.chunks_left == 0 {
            if self.digest.is_empty() {
                return Ok(None);
            }
            let actual = hex(&std::mem::take(&mut self.sha).finalize());
            if actual != self.digest {
                return Err(Error::Stream(format!(
                    "the stored file {} is damaged: its bytes hash to {actual}",
                    self.digest
                )));
            }
            self.digest.clear();
            return Ok(None);
        }
        let chunk = match self.chunks.recv().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(e),
            None => {
                return Err(unavailable(
                    "cannot read the file",
                    "its chunks did not come",
                ));
            }
        };
        self.chunks_left -= 1;
        self.sha.update(&chunk);
        Ok(Some(chunk))
    }
}
