//! A patient's own record trail: who looked at and changed their record,
//! on a page and as a download.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::audit::{self as audit_pb};
use tonic::Status;

use crate::session::Session;
use crate::{Page, SignedIn, Web, own_record, pages};

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct TrailQuery {
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    format: String,
    /// "1": the patient's own reads too.
    #[serde(default)]
    mine: String,
}

pub(crate) fn only_patients(web: &Web, session: &Session) -> Response {
    let body = pages::problem_page(
        "This page is for patients",
        "It shows a patient who has read or changed their record. Privacy officers see trails in their own pages.",
    );
    (
        StatusCode::FORBIDDEN,
        web.page("Record trail", Some(session), body),
    )
        .into_response()
}

/// Who has looked at, or changed, my record: the patient's own audit trail.
pub(crate) async fn trail(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<TrailQuery>,
) -> Page {
    let Some(patient) = own_record(&session) else {
        return Ok(only_patients(&web, &session));
    };
    let request = audit_pb::RecordTrailRequest {
        min_position: session.position,
        patient_id: patient,
        range: Some(audit_pb::Range {
            page_size: 100,
            cursor: q.cursor,
            newest_first: true,
            ..Default::default()
        }),
    };
    let page = web.audit(&session)?.record_trail(request).await?;
    let me = session.caller.person_id.to_string();
    let body = pages::trail(&page.into_inner(), &me, q.mine == "1");
    Ok(web.page("Who has looked at my record", Some(&session), body))
}

/// The patient's whole trail as a file: JSON lines, or a FHIR R4 Bundle.
pub(crate) async fn trail_download(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<TrailQuery>,
) -> Page {
    let Some(patient) = own_record(&session) else {
        return Ok(only_patients(&web, &session));
    };
    export_download(&web, &session, &patient, q.format == "fhir").await
}

/// A record's whole trail as a download: JSON lines, or a FHIR R4 Bundle.
pub(crate) async fn export_download(
    web: &Web,
    session: &Session,
    patient: &str,
    fhir: bool,
) -> Page {
    let (format, name) = if fhir {
        (
            audit_pb::ExportFormat::FhirBundle,
            "careline-record-trail.fhir.json",
        )
    } else {
        (
            audit_pb::ExportFormat::JsonLines,
            "careline-record-trail.jsonl",
        )
    };
    let exported = async {
        let mut stream = web
            .audit(session)?
            .export(audit_pb::ExportRequest {
                min_position: session.position,
                patient_id: patient.to_string(),
                format: format as i32,
            })
            .await?
            .into_inner();
        let (mut data, mut content_type) = (Vec::new(), String::new());
        while let Some(chunk) = stream.message().await? {
            data.extend_from_slice(&chunk.data);
            content_type = chunk.content_type;
        }
        Ok::<_, Status>((data, content_type))
    };
    let (data, content_type) = exported.await?;
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut response = data.into_response();
    let headers = response.headers_mut();
    for (key, value) in [
        (header::CONTENT_TYPE, content_type.as_str()),
        (header::CONTENT_DISPOSITION, disposition.as_str()),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(key, v);
        }
    }
    Ok(response)
}
