//! Files on the web: a reply sent with files (a multipart form, each file
//! streamed on to the command service as it arrives, never held whole), and
//! a file downloaded (streamed from the inbox service, which records the
//! read).

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use careline_client::bearer::command_id;
use futures::StreamExt as _;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use tonic::{Code, Status};

use crate::messages::thread_with_problem;
use crate::{Fields, Page, SignedIn, Web};

/// The most a form with files may carry: ten files of the largest size and
/// the form around them.
pub const FILES_FORM_MAX: usize = 10 * 100 * 1024 * 1024 + 1024 * 1024;

/// Whether a request is a form with files.
pub fn is_multipart(request: &axum::extract::Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

/// A reply with files: the form's fields in order (its token first), each
/// file uploaded as it arrives, then the message with them. A refused file
/// is named with the reason, and what was typed is kept.
pub async fn reply(web: Web, id: String, request: axum::extract::Request) -> Page {
    let (parts, body) = request.into_parts();
    let request = axum::extract::Request::from_parts(parts.clone(), body);
    let Ok(mut form) = Multipart::from_request(request, &()).await else {
        return Ok(StatusCode::BAD_REQUEST.into_response());
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut session = None;
    let mut attachments = Vec::new();
    let mut refused: Option<Status> = None;
    while let Ok(Some(mut field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        match (name.as_str(), file_name) {
            ("files", Some(file_name)) => {
                // The form's token comes before any file: no token, no upload.
                let Some(session) = &session else {
                    return Ok(web.forbidden(None));
                };
                if file_name.is_empty() || refused.is_some() {
                    continue;
                }
                let mut command = web.command(session)?;
                let (send, chunks) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
                let header = cmd::UploadFileRequest {
                    part: Some(cmd::upload_file_request::Part::Header(cmd::UploadHeader {
                        file_name: file_name.clone(),
                        size: 0,
                    })),
                };
                let mut chunks = chunks;
                let parts = futures::stream::iter([header]).chain(
                    futures::stream::poll_fn(move |cx| chunks.poll_recv(cx)).map(|chunk| {
                        cmd::UploadFileRequest {
                            part: Some(cmd::upload_file_request::Part::Chunk(chunk)),
                        }
                    }),
                );
                let upload = command.upload_file(parts);
                let pump = async move {
                    while let Ok(Some(chunk)) = field.chunk().await {
                        if send.send(chunk.to_vec()).await.is_err() {
                            break;
                        }
                    }
                };
                let (uploaded, ()) = tokio::join!(upload, pump);
                match uploaded.map(|r| r.into_inner().file) {
                    Ok(Some(file)) => attachments.push(file),
                    Ok(None) => refused = Some(Status::internal("the upload was not answered")),
                    Err(e) if e.code() == Code::InvalidArgument => {
                        refused = Some(Status::invalid_argument(format!(
                            "{file_name} was not sent: {} Choose it again, or another.",
                            sentence(e.message())
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            _ => {
                let Ok(value) = field.text().await else {
                    return Ok(StatusCode::BAD_REQUEST.into_response());
                };
                if name == "csrf" {
                    let token = Fields(vec![("csrf".into(), value.clone())]);
                    match web.posted(&parts.headers, &parts.uri, &token).await {
                        Ok(signed_in) => session = Some(signed_in),
                        Err(refused) => return Ok(*refused),
                    }
                }
                fields.push((name, value));
            }
        }
    }
    let Some(session) = session else {
        return Ok(web.forbidden(None));
    };
    let form = Fields(fields);
    let text = form.one("body").to_string();
    if form.one("kind") == "note" && !attachments.is_empty() {
        let e = Status::invalid_argument(
            "Files go with a reply to the patient, not with a staff note: switch to \"Reply to patient\", or add the note without them.",
        );
        return thread_with_problem(
            &web,
            &session,
            &id,
            "",
            &text,
            "Your note was not added",
            &e,
        )
        .await;
    }
    if form.one("kind") == "note" {
        return crate::staff::add_note(&web, &session, &id, &text).await;
    }
    if let Some(e) = refused {
        return thread_with_problem(
            &web,
            &session,
            &id,
            &text,
            "",
            "Your reply was not sent",
            &e,
        )
        .await;
    }
    let sent = web
        .command(&session)?
        .post_message(cmd::PostMessageRequest {
            command_id: command_id(),
            thread_id: id.clone(),
            body: text.clone(),
            mention_ids: vec![],
            attachments,
        })
        .await;
    match sent {
        Ok(reply) => Ok(web
            .changed(&session, reply, &format!("/threads/{id}#reply"))
            .await),
        Err(e) if matches!(e.code(), Code::InvalidArgument | Code::FailedPrecondition) => {
            thread_with_problem(
                &web,
                &session,
                &id,
                &text,
                "",
                "Your reply was not sent",
                &e,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// A refusal's words as a sentence: a capital first, a full stop last.
fn sentence(words: &str) -> String {
    let words = words
        .rsplit_once(": ")
        .filter(|(field, _)| !field.contains(' '))
        .map_or(words, |(_, rest)| rest);
    let mut out: String = words.chars().take(1).flat_map(char::to_uppercase).collect();
    out.extend(words.chars().skip(1));
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// A file sent on a conversation, as a download (never shown in the page:
/// `Content-Disposition: attachment`, and its type never guessed).
pub async fn download(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path((id, digest)): Path<(String, String)>,
) -> Page {
    let mut parts = web
        .inbox(&session)?
        .get_file(inbox_pb::GetFileRequest {
            thread_id: id,
            digest,
        })
        .await?
        .into_inner();
    let file = match parts.next().await {
        Some(Ok(inbox_pb::FilePart {
            part: Some(inbox_pb::file_part::Part::File(file)),
        })) => file,
        Some(Err(e)) => return Err(e.into()),
        _ => return Err(Status::internal("the file came without its description").into()),
    };
    let bytes = parts.map(|part| match part {
        Ok(inbox_pb::FilePart {
            part: Some(inbox_pb::file_part::Part::Chunk(chunk)),
        }) => Ok(bytes::Bytes::from(chunk)),
        Ok(_) => Ok(bytes::Bytes::new()),
        Err(e) => Err(std::io::Error::other(e.message().to_string())),
    });
    let mut response = Body::from_stream(bytes).into_response();
    let headers = response.headers_mut();
    let media_type = HeaderValue::from_str(&file.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, media_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition(&file.file_name))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}

/// `attachment` with the file's name, in ASCII and as UTF-8 (RFC 6266).
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_is_named_safely() {
        assert_eq!(
            disposition("scan \"1\".pdf"),
            "attachment; filename=\"scan _1_.pdf\"; filename*=UTF-8''scan%20%221%22.pdf"
        );
        assert_eq!(
            sentence("file: the name ends .pdf but the file is a JPEG image"),
            "The name ends .pdf but the file is a JPEG image."
        );
    }
}
