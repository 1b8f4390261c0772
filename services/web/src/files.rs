//! Files on the web: a reply sent with files (a multipart form, each file
//! streamed on to the command service as it arrives, never held whole), and
//! a file downloaded (streamed from the inbox service, which records the
//! read).

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use proto::command as cmd;
use proto::inbox as inbox_pb;
use tonic::{Code, Status};

use crate::error::AppError;
use crate::session::Session;
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

/// A posted form, with the files it carried uploaded (or the first
/// refused, with the reason).
pub struct Posted {
    pub session: Session,
    pub form: Fields,
    pub attachments: Vec<cmd::Attachment>,
    pub refused: Option<Status>,
}

/// A posted form, either kind: a plain one (its token checked, no files) or
/// a multipart one read field by field, in order (its token first: no
/// token, no upload), each file uploaded as it arrives and never held
/// whole. `Ok(Err(page))`: the page to answer instead (an expired form).
pub async fn posted(
    web: &Web,
    request: axum::extract::Request,
) -> Result<Result<Posted, Response>, AppError> {
    if !is_multipart(&request) {
        return Ok(
            match <crate::Posted as FromRequest<Web>>::from_request(request, web).await {
                Ok(crate::Posted(session, form)) => Ok(Posted {
                    session,
                    form,
                    attachments: Vec::new(),
                    refused: None,
                }),
                Err(page) => Err(page),
            },
        );
    }
    let (parts, body) = request.into_parts();
    let request = axum::extract::Request::from_parts(parts.clone(), body);
    let Ok(mut multipart) = Multipart::from_request(request, &()).await else {
        return Ok(Err(StatusCode::BAD_REQUEST.into_response()));
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut session = None;
    let mut attachments = Vec::new();
    let mut refused: Option<Status> = None;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        if let ("files", Some(file_name)) = (name.as_str(), file_name) {
            let Some(session) = &session else {
                return Ok(Err(web.forbidden(None)));
            };
            if file_name.is_empty() || refused.is_some() {
                continue;
            }
            let mut command = web.command(session)?;
            let (send, mut chunks) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
            let header = cmd::UploadFileRequest {
                part: Some(cmd::upload_file_request::Part::Header(cmd::UploadHeader {
                    file_name: file_name.clone(),
                    size: 0,
                })),
            };
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
                Ok(None) => return Err(Status::internal("the upload was not answered").into()),
                Err(e) if matches!(e.code(), Code::InvalidArgument | Code::ResourceExhausted) => {
                    refused = Some(Status::invalid_argument(format!(
                        "{file_name} was not sent: {}",
                        sentence(e.message())
                    )));
                }
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        let Ok(value) = field.text().await else {
            return Ok(Err(StatusCode::BAD_REQUEST.into_response()));
        };
        if name == "csrf" {
            let token = Fields(vec![("csrf".into(), value.clone())]);
            match web.posted(&parts.headers, &parts.uri, &token).await {
                Ok(signed_in) => session = Some(signed_in),
                Err(page) => return Ok(Err(*page)),
            }
        }
        fields.push((name, value));
    }
    let Some(session) = session else {
        return Ok(Err(web.forbidden(None)));
    };
    Ok(Ok(Posted {
        session,
        form: Fields(fields),
        attachments,
        refused,
    }))
}

/// A refusal's words without the field they name, ending a sentence.
fn sentence(words: &str) -> String {
    let words = words
        .split_once(": ")
        .filter(|(field, _)| !field.contains(' '))
        .map_or(words, |(_, rest)| rest);
    let mut out = words.to_string();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// A file's parts from the inbox (which checks the caller may see it and
/// records the read): its description, then its bytes.
async fn file_parts(
    web: &Web,
    session: &Session,
    thread_id: String,
    digest: String,
    preview: bool,
) -> Result<tonic::Streaming<inbox_pb::FilePart>, Status> {
    Ok(web
        .inbox(session)?
        .get_file(inbox_pb::GetFileRequest {
            thread_id,
            digest,
            preview,
        })
        .await?
        .into_inner())
}

/// A file sent on a conversation, as a download (never shown in the page:
/// `Content-Disposition: attachment`, and its type never guessed).
pub async fn download(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path((id, digest)): Path<(String, String)>,
) -> Page {
    let mut parts = file_parts(&web, &session, id, digest, false).await?;
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

/// The largest image previewed (a larger one is offered as a download
/// only): the preview is made from the whole image, in memory.
pub const PREVIEW_MAX: u64 = 20 * 1024 * 1024;

/// Whether a file is an image the page previews.
pub fn previewed(media_type: &str, size: u64) -> bool {
    matches!(media_type, "image/jpeg" | "image/png") && size <= PREVIEW_MAX
}

/// A small copy of an image sent on a conversation, made here: decoded,
/// turned upright, scaled to at most 480 px and encoded anew, so it carries
/// nothing of the original's metadata (an EXIF location, the camera).
/// Recorded by the inbox as a preview seen, not a download.
pub async fn preview(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Path((id, digest)): Path<(String, String)>,
) -> Page {
    let mut parts = file_parts(&web, &session, id, digest, true).await?;
    let mut bytes = Vec::new();
    while let Some(part) = parts.next().await {
        match part?.part {
            Some(inbox_pb::file_part::Part::File(file))
                if !previewed(&file.media_type, file.size) =>
            {
                return Ok(StatusCode::NOT_FOUND.into_response());
            }
            Some(inbox_pb::file_part::Part::Chunk(chunk)) => bytes.extend(chunk),
            _ => {}
        }
    }
    let made = tokio::task::spawn_blocking(move || small_copy(&bytes)).await;
    let Ok(Ok(jpeg)) = made else {
        // Not an image after all, or one too large to decode: no preview.
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let mut response = Body::from(jpeg).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// The preview of an image's bytes: upright, at most 480 px, as a JPEG of
/// its pixels only.
pub fn small_copy(bytes: &[u8]) -> image::ImageResult<Vec<u8>> {
    use image::ImageDecoder as _;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut picture = image::DynamicImage::from_decoder(decoder)?;
    picture.apply_orientation(orientation);
    let small = picture.thumbnail(480, 480).into_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&small)?;
    Ok(out)
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

    /// A JPEG with an EXIF block naming a place: its preview has no EXIF.
    #[test]
    fn a_preview_carries_none_of_the_originals_metadata() {
        let mut original = Vec::new();
        let picture = image::RgbImage::from_pixel(900, 600, image::Rgb([200, 120, 90]));
        image::codecs::jpeg::JpegEncoder::new(&mut original)
            .encode_image(&picture)
            .unwrap();
        // An APP1 "Exif" segment right after the start of image.
        let exif = b"Exif\0\0MM\0*GPS 51.5074 N 0.1278 W";
        let mut with_exif = original[..2].to_vec();
        with_exif.extend([0xFF, 0xE1]);
        with_exif.extend(((exif.len() + 2) as u16).to_be_bytes());
        with_exif.extend(exif);
        with_exif.extend(&original[2..]);
        let preview = small_copy(&with_exif).unwrap();
        let found = |needle: &[u8]| preview.windows(needle.len()).any(|w| w == needle);
        assert!(
            !found(b"Exif") && !found(b"GPS"),
            "the preview kept the metadata"
        );
        let shown = image::load_from_memory(&preview).unwrap();
        assert_eq!((shown.width(), shown.height()), (480, 320));
        assert!(small_copy(b"not an image").is_err());
    }

    #[test]
    fn a_download_is_named_safely() {
        assert_eq!(
            disposition("scan \"1\".pdf"),
            "attachment; filename=\"scan _1_.pdf\"; filename*=UTF-8''scan%20%221%22.pdf"
        );
        assert_eq!(
            sentence("file: the name ends .pdf but the file is a JPEG image"),
            "the name ends .pdf but the file is a JPEG image."
        );
    }
}
