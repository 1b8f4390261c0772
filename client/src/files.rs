//! Sending a file: `UploadFile` with a header and the bytes in chunks.

use futures::StreamExt as _;
use proto::command as pb;
use tonic::Status;

use crate::bearer::Client;

/// The size of each part an upload sends.
pub const PART: usize = 64 * 1024;

/// Uploads `bytes` as `file_name`; the reference to send with a message.
pub async fn upload(
    client: &mut Client,
    file_name: &str,
    bytes: Vec<u8>,
) -> Result<pb::Attachment, Status> {
    let size = bytes.len() as u64;
    let parts = bytes.chunks(PART).map(|c| c.to_vec()).collect::<Vec<_>>();
    upload_stream(client, file_name, size, futures::stream::iter(parts)).await
}

/// Uploads the chunks `chunks` yields (`size` bytes in all, 0 if unknown) as
/// `file_name`.
pub async fn upload_stream(
    client: &mut Client,
    file_name: &str,
    size: u64,
    chunks: impl futures::Stream<Item = Vec<u8>> + Send + 'static,
) -> Result<pb::Attachment, Status> {
    let header = pb::UploadFileRequest {
        part: Some(pb::upload_file_request::Part::Header(pb::UploadHeader {
            file_name: file_name.to_string(),
            size,
        })),
    };
    let parts = futures::stream::iter([header]).chain(chunks.map(|chunk| pb::UploadFileRequest {
        part: Some(pb::upload_file_request::Part::Chunk(chunk)),
    }));
    let reply = client.upload_file(parts).await?.into_inner();
    reply
        .file
        .ok_or_else(|| Status::internal("the upload was answered without its file"))
}
