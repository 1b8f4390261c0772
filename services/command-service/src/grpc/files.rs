//! Files: `UploadFile`, and the check of the files a message names.
//!
//! An upload goes to a file of its own on this machine's disk while it is
//! read (its SHA-256 and its first bytes taken on the way, never the whole
//! file in memory); only a file that is whole, not empty, within the limit
//! and of an accepted type its name agrees with goes into the bucket. A
//! refused upload stores nothing.

use std::path::PathBuf;

use event_store::EventStore;
use futures::StreamExt as _;
use proto::command as pb;
use service_kit::media;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;
use tonic::{Request, Status, Streaming};

use crate::app::App;
use crate::domain::DomainError;
use crate::error::Error;

/// The most files one message carries.
pub const FILES_PER_MESSAGE: usize = 10;

fn invalid(field: &'static str, message: impl Into<String>) -> Status {
    Error::from(DomainError::invalid(field, message)).into()
}

fn unavailable(e: impl std::fmt::Display) -> Status {
    Error::from(event_store::Error::Unavailable(e.to_string())).into()
}

fn bucket<S: EventStore>(app: &App<S>) -> Result<&(event_store::FileStore, u64), Status> {
    app.files().ok_or_else(|| {
        Status::failed_precondition("this service keeps no files: none can be sent here")
    })
}

/// A file of this machine's, removed when dropped.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Reads one upload: its header, then its bytes onto the disk, checked;
/// then stores it (unless the same bytes are stored already).
pub async fn upload<S: EventStore>(
    app: &App<S>,
    uploader: &str,
    request: Request<Streaming<pb::UploadFileRequest>>,
) -> Result<pb::UploadFileReply, Status> {
    let (files, max) = bucket(app)?;
    if let Some(limit) = app.upload_limit() {
        limit
            .take(uploader, std::time::Instant::now())
            .map_err(|wait| limit.refusal("files sent", wait))?;
    }
    let max = *max;
    let mut parts = request.into_inner();
    let header = match parts.next().await {
        Some(Ok(pb::UploadFileRequest {
            part: Some(pb::upload_file_request::Part::Header(header)),
        })) => header,
        Some(Err(status)) => return Err(status),
        _ => return Err(invalid("header", "send the file's header (its name) first")),
    };
    let file_name = media::file_name(&header.file_name).map_err(|e| invalid("file_name", e.0))?;
    let too_big = || {
        invalid(
            "file",
            format!(
                "the file is over {}, the largest that can be sent: send a smaller one, or split it",
                media::size_words(max)
            ),
        )
    };
    if header.size > max {
        return Err(too_big());
    }

    let spool = Spool(
        std::env::temp_dir().join(format!("careline-upload-{}", uuid::Uuid::new_v4().simple())),
    );
    let mut out = tokio::fs::File::create(&spool.0)
        .await
        .map_err(unavailable)?;
    let mut sha = sha2::Sha256::new();
    let mut head: Vec<u8> = Vec::with_capacity(media::SNIFF_LEN);
    let mut size = 0u64;
    while let Some(part) = parts.next().await {
        let chunk = match part?.part {
            Some(pb::upload_file_request::Part::Chunk(chunk)) => chunk,
            _ => {
                return Err(invalid(
                    "chunk",
                    "after the header, send only the file's bytes",
                ));
            }
        };
        size += chunk.len() as u64;
        if size > max {
            return Err(too_big());
        }
        if head.len() < media::SNIFF_LEN {
            let take = (media::SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        sha.update(&chunk);
        out.write_all(&chunk).await.map_err(unavailable)?;
    }
    out.flush().await.map_err(unavailable)?;
    drop(out);
    if header.size != 0 && header.size != size {
        return Err(invalid(
            "file",
            format!(
                "the upload ended after {size} of its {} bytes: send it again",
                header.size
            ),
        ));
    }
    let media_type = media::sniff(&file_name, &head).map_err(|e| invalid("file", e.0))?;
    let digest = event_store::files::hex(&sha.finalize());
    let reader = tokio::fs::File::open(&spool.0).await.map_err(unavailable)?;
    let stored = files
        .put(&digest, media_type, size, reader)
        .await
        .map_err(|e| Status::from(Error::from(e)))?;
    tracing::info!(digest = %stored.digest, size = stored.size, media_type = %stored.media_type, "file stored");
    Ok(pb::UploadFileReply {
        file: Some(pb::Attachment {
            digest: stored.digest,
            file_name,
            media_type: stored.media_type,
            size: stored.size,
        }),
    })
}

/// Checks the files a message names (each stored, named with an extension
/// of its type, each once, at most [`FILES_PER_MESSAGE`]) and sets each one's
/// type and size to the stored file's.
pub async fn resolve<S: EventStore>(
    app: &App<S>,
    attachments: &mut [pb::Attachment],
) -> Result<(), Status> {
    if attachments.is_empty() {
        return Ok(());
    }
    let (files, _) = bucket(app)?;
    if attachments.len() > FILES_PER_MESSAGE {
        return Err(invalid(
            "attachments",
            format!("at most {FILES_PER_MESSAGE} files go with one message"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for attachment in attachments.iter_mut() {
        if !event_store::files::is_digest(&attachment.digest)
            || !seen.insert(attachment.digest.clone())
        {
            return Err(invalid(
                "attachments",
                "each file is named once, by the digest UploadFile answered",
            ));
        }
        let Some(stored) = files
            .stat(&attachment.digest)
            .await
            .map_err(|e| Status::from(Error::from(e)))?
        else {
            return Err(invalid(
                "attachments",
                "a file named was not uploaded (or not here): upload it first",
            ));
        };
        attachment.file_name =
            media::file_name(&attachment.file_name).map_err(|e| invalid("attachments", e.0))?;
        media::agrees(&attachment.file_name, &stored.media_type)
            .map_err(|e| invalid("attachments", e.0))?;
        attachment.media_type = stored.media_type;
        attachment.size = stored.size;
    }
    Ok(())
}

/// The event's form of the files a request named (already [`resolve`]d).
pub fn to_event(attachments: Vec<pb::Attachment>) -> Vec<proto::events::Attachment> {
    attachments
        .into_iter()
        .map(|a| proto::events::Attachment {
            digest: a.digest,
            file_name: a.file_name,
            media_type: a.media_type,
            size: a.size,
        })
        .collect()
}
