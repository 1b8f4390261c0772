//! Exports: JSON lines, and an HL7 FHIR R4 Bundle of AuditEvent resources.

use careline_client::demo::first_thread;
use futures::StreamExt;
use proto::audit as pb;
use serde_json::Value;
use tonic::Code;

use crate::support::{System, system};

async fn export(
    s: &System,
    who: &service_kit::Caller,
    patient: &str,
    format: pb::ExportFormat,
) -> Result<(String, Vec<String>), Code> {
    let mut stream = s
        .audit(who)
        .export(pb::ExportRequest {
            min_position: 0,
            patient_id: patient.into(),
            format: format as i32,
        })
        .await
        .map_err(|e| e.code())?
        .into_inner();
    let mut data = Vec::new();
    let mut types = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.code())?;
        data.extend(chunk.data);
        types.push(chunk.content_type);
    }
    Ok((String::from_utf8(data).unwrap(), types))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_exports_as_json_lines_and_as_a_fhir_bundle() {
    let s = system("auditexport").await;
    let org = s.org().await;
    first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    let patient = org.patient.person_id.to_string();

    let (lines, types) = export(&s, &org.auditor, &patient, pb::ExportFormat::JsonLines)
        .await
        .unwrap();
    assert!(types.iter().all(|t| t == "application/x-ndjson"));
    let lines: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 5);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as u64 + 1);
        assert_eq!(line["hash"].as_str().unwrap().len(), 64);
        assert!(!line["actor"]["name"].as_str().unwrap().is_empty());
    }

    let (bundle, types) = export(&s, &org.patient, &patient, pb::ExportFormat::FhirBundle)
        .await
        .unwrap();
    assert!(types.iter().all(|t| t == "application/fhir+json"));
    let bundle: Value = serde_json::from_str(&bundle).expect("the bundle is valid JSON");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().unwrap();
    // The bundle is the same trail, entry for entry; it may end with the
    // first export's own read (each export is recorded as a read of the
    // record, and the second may see the first's).
    let detail = |entry: &Value, kind: &str| -> String {
        entry["resource"]["entity"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["detail"].as_array().cloned().unwrap_or_default())
            .find(|d| d["type"] == kind)
            .map(|d| d["valueString"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(
        entries.len() >= lines.len(),
        "{} < {}",
        entries.len(),
        lines.len()
    );
    for (line, entry) in lines.iter().zip(entries) {
        assert_eq!(line["hash"].as_str().unwrap(), detail(entry, "hash"));
    }
    for extra in &entries[lines.len()..] {
        assert_eq!(
            detail(extra, "call"),
            "careline.audit.v1.AuditService/Export",
            "only reads by an export come after"
        );
    }
    for entry in entries {
        assert!(entry["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
        let event = &entry["resource"];
        // The elements FHIR R4 requires of an AuditEvent: type, recorded,
        // agent (each with requestor), source (with observer).
        assert_eq!(event["resourceType"], "AuditEvent");
        assert!(event["type"]["code"].is_string() && event["type"]["system"].is_string());
        let recorded = event["recorded"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(recorded, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{recorded}"
        );
        let agents = event["agent"].as_array().unwrap();
        assert!(!agents.is_empty());
        assert!(agents.iter().all(|a| a["requestor"].is_boolean()));
        assert!(agents[0]["who"]["display"].is_string());
        assert!(event["source"]["observer"].is_object());
        assert!(["C", "R", "U", "D", "E"].contains(&event["action"].as_str().unwrap()));
        assert_eq!(
            event["entity"][0]["what"]["reference"],
            format!("Patient/{patient}")
        );
    }

    // Another patient's record, or a nurse: no export.
    assert_eq!(
        export(
            &s,
            &org.other_patient,
            &patient,
            pb::ExportFormat::FhirBundle
        )
        .await,
        Err(Code::PermissionDenied)
    );
    assert_eq!(
        export(&s, &org.nurse, &patient, pb::ExportFormat::JsonLines).await,
        Err(Code::PermissionDenied)
    );
}
