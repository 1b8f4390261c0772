//! The privacy officer's pages (role auditor): the trail of a record, a
//! thread or a person ("what did Dr Cole read last week"), between two
//! days; a record's chain verified, with the result in plain words; a
//! record's trail downloaded (JSON lines, FHIR). The audit service checks
//! the role on every call; these pages only ask it.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use proto::audit as audit_pb;
use service_kit::Role;
use tonic::{Code, Status};

use crate::pages::privacy::{Asked, Kind};
use crate::session::Session;
use crate::{Page, SignedIn, Web, pages};

fn auditors_only(web: &Web, session: &Session) -> Response {
    let body = pages::problem_page(
        "This page is for privacy officers",
        "Audit trails are read by the organisation's privacy officers (the auditor role).",
    );
    (
        StatusCode::FORBIDDEN,
        web.page("Audit trails", Some(session), body),
    )
        .into_response()
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct TrailQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
    /// A part of a name: whose trail to read.
    #[serde(default)]
    find: String,
    /// "reads" or "changes" only; else both.
    #[serde(default)]
    show: String,
    /// "oldest" first; else newest first.
    #[serde(default)]
    order: String,
    /// Only what this person did and read (their id).
    #[serde(default)]
    who: String,
}

/// The range the two days give: from the start of `from` to the end of
/// `to` (both optional), or what to fix.
fn range(q: &TrailQuery) -> Result<audit_pb::Range, String> {
    let from = crate::record::day(&q.from)?
        .map(crate::record::midnight)
        .transpose()?;
    let to = crate::record::end_of_day(&q.to)?;
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        return Err("The last day comes before the first: swap them.".into());
    }
    Ok(audit_pb::Range {
        from: from.map(Into::into),
        to: to.map(Into::into),
        page_size: 100,
        cursor: q.cursor.clone(),
        newest_first: q.order != "oldest",
        kind: match q.show.as_str() {
            "reads" => audit_pb::EntryKind::View,
            "changes" => audit_pb::EntryKind::Action,
            _ => audit_pb::EntryKind::Unspecified,
        } as i32,
        actor_id: q.who.trim().to_string(),
    })
}

/// `/audit`: the form, and the trail it asks for.
pub(crate) async fn trails(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<TrailQuery>,
) -> Page {
    if session.caller.role != Role::Auditor {
        return Ok(auditors_only(&web, &session));
    }
    let kind = Kind::parse(&q.kind);
    let asked = Asked {
        kind,
        id: q.id.trim(),
        from: q.from.trim(),
        to: q.to.trim(),
        show: match q.show.as_str() {
            "reads" => "reads",
            "changes" => "changes",
            _ => "",
        },
        oldest: q.order == "oldest",
        who: q.who.trim(),
    };
    if asked.id.is_empty() {
        // Finding whose trail by name (a recorded read of each patient
        // listed).
        let find = q.find.trim();
        let found = if find.is_empty() {
            None
        } else {
            let people = crate::admin::find_people(
                &web,
                &session,
                find,
                proto::inbox::PersonKind::Unspecified,
            );
            match people.await {
                Ok(people) => Some(people),
                Err(e) if e.code() == tonic::Code::InvalidArgument => {
                    let problem = pages::error_box("Check the name", e.message());
                    let body = pages::privacy::trails(&asked, None, Some(problem), find, None);
                    return Ok(web.form_page("Audit trails", &session, body, true));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let body = pages::privacy::trails(&asked, None, None, find, found.as_deref());
        return Ok(web.page("Audit trails", Some(&session), body));
    }
    let range = match range(&q) {
        Ok(range) => range,
        Err(problem) => {
            let problem = pages::error_box("Check the days", &problem);
            let body = pages::privacy::trails(&asked, None, Some(problem), "", None);
            return Ok(web.form_page("Audit trails", &session, body, true));
        }
    };
    let answer = async {
        let mut audit = web.audit(&session)?;
        let min_position = session.position;
        let id = asked.id.to_string();
        let page = match kind {
            Kind::Record => {
                audit
                    .record_trail(audit_pb::RecordTrailRequest {
                        min_position,
                        patient_id: id,
                        range: Some(range),
                    })
                    .await?
            }
            Kind::Thread => {
                audit
                    .thread_trail(audit_pb::ThreadTrailRequest {
                        min_position,
                        thread_id: id,
                        range: Some(range),
                    })
                    .await?
            }
            Kind::Person => {
                audit
                    .person_trail(audit_pb::PersonTrailRequest {
                        min_position,
                        person_id: id,
                        range: Some(range),
                    })
                    .await?
            }
        };
        Ok::<_, Status>(page.into_inner())
    };
    match answer.await {
        Ok(page) => {
            let body = pages::privacy::trails(&asked, Some(&page), None, "", None);
            Ok(web.page("Audit trails", Some(&session), body))
        }
        Err(e) if e.code() == Code::InvalidArgument => {
            let problem = pages::error_box(
                "Check what you asked for",
                "Give the id of a record, a thread or a person as Careline shows it (a UUID), and days as day, month and year.",
            );
            let body = pages::privacy::trails(&asked, None, Some(problem), "", None);
            Ok(web.form_page("Audit trails", &session, body, true))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize, Debug, Default)]
pub(crate) struct RecordQuery {
    #[serde(default)]
    patient: String,
    #[serde(default)]
    format: String,
}

/// `/audit/verify?patient=`: one record's chain checked (every chain when
/// none is named), against the event stream too.
pub(crate) async fn verify(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<RecordQuery>,
) -> Page {
    if session.caller.role != Role::Auditor {
        return Ok(auditors_only(&web, &session));
    }
    let patient = q.patient.trim().to_string();
    let checked = async {
        let mut audit = web.audit(&session)?;
        let request = audit_pb::VerifyRequest {
            min_position: session.position,
            patient_id: patient.clone(),
            against_stream: true,
        };
        // Every chain may take a while: more than a page's usual wait.
        let mut request = tonic::Request::new(request);
        request.set_timeout(Duration::from_secs(60));
        Ok::<_, Status>(audit.verify(request).await?.into_inner())
    };
    match checked.await {
        Ok(reply) => {
            let body = pages::privacy::verified(&patient, &reply);
            Ok(web.page("Audit trail checked", Some(&session), body))
        }
        Err(e) if e.code() == Code::InvalidArgument => {
            let body = pages::problem_page("That is not a record's id", e.message());
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                web.page("Audit trails", Some(&session), body),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `/audit/export?patient=&format=`: a record's trail as a download.
pub(crate) async fn export(
    State(web): State<Web>,
    SignedIn(session): SignedIn,
    Query(q): Query<RecordQuery>,
) -> Page {
    if session.caller.role != Role::Auditor {
        return Ok(auditors_only(&web, &session));
    }
    crate::export_download(&web, &session, q.patient.trim(), q.format == "fhir").await
}
