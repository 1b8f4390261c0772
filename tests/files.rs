//! Files in a conversation, through the real services as each production
//! NATS user: uploaded to the bucket of files (checked first: refused files
//! store nothing), sent with a message, handed only to those who see the
//! thread, every download recorded as a read naming the file.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use careline_client::bearer::command_id;
use careline_client::demo::first_thread;
use careline_client::files::upload;
use futures::StreamExt as _;
use proto::command as cmd;
use proto::events::envelope::Payload;
use proto::inbox as inbox_pb;
use testkit::{Services, System};
use tonic::Code;

/// A small JPEG's first bytes and some more.
fn jpeg(len: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..len).map(|i| (i * 7 % 256) as u8));
    bytes
}

async fn download(
    inbox: &mut testkit::Inbox,
    thread: &str,
    digest: &str,
) -> Result<(inbox_pb::Attachment, Vec<u8>), tonic::Status> {
    let mut parts = inbox
        .get_file(inbox_pb::GetFileRequest {
            thread_id: thread.into(),
            digest: digest.into(),
            preview: false,
        })
        .await?
        .into_inner();
    let mut file = None;
    let mut bytes = Vec::new();
    while let Some(part) = parts.next().await {
        match part?.part {
            Some(inbox_pb::file_part::Part::File(f)) => file = Some(f),
            Some(inbox_pb::file_part::Part::Chunk(c)) => bytes.extend(c),
            None => {}
        }
    }
    Ok((file.unwrap(), bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_on_a_thread_reaches_only_those_who_see_it_and_every_download_is_recorded() {
    tokio::time::timeout(Duration::from_secs(180), run())
        .await
        .expect("the test took over 3 minutes");
}

async fn run() {
    use event_store::testing::{NatsServer, dev_certs};
    let certs = dev_certs();
    let server = NatsServer::start_with_users(Some(&certs)).await;
    let s = System::start(
        "files",
        Services {
            wait: Some(Duration::from_secs(10)),
            nats_users: Some(testkit::NatsUsers {
                url: server.url(),
                ca: certs.join("ca.pem"),
            }),
            max_file_bytes: Some(1024 * 1024),
            ..Services::all()
        },
    )
    .await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut pat = s.signer.client(&org.patient).unwrap();

    // Refused uploads say why and store nothing.
    let before = s.head().await;
    for (name, bytes, why) in [
        ("rash.jpg", Vec::new(), "empty"),
        ("rash.pdf", jpeg(100), "a JPEG image"),
        ("setup.exe", b"MZ\x90\x00rest".to_vec(), ".exe"),
        ("huge.jpg", jpeg(1024 * 1024 + 1), "over 1.0 MB"),
        ("../rash.jpg", jpeg(10), "folder"),
    ] {
        let refused = upload(&mut pat, name, bytes).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{name}: {refused:?}");
        assert!(
            refused.message().contains(why),
            "{name}: {}",
            refused.message()
        );
    }
    assert_eq!(s.head().await, before, "a refused upload wrote nothing");

    // Pat sends a photo of her rash, without text.
    let photo = jpeg(300 * 1024);
    let file = upload(&mut pat, "rash.jpg", photo.clone()).await.unwrap();
    assert_eq!(file.media_type, "image/jpeg");
    assert_eq!(file.size, photo.len() as u64);
    // The same bytes again are the same file.
    let again = upload(&mut pat, "rash-again.jpg", photo.clone())
        .await
        .unwrap();
    assert_eq!(again.digest, file.digest);

    // A message may not pass the photo off as another kind, or name a file
    // never uploaded.
    for (attachment, why) in [
        (
            cmd::Attachment {
                file_name: "rash.exe".into(),
                ..file.clone()
            },
            ".exe",
        ),
        (
            cmd::Attachment {
                digest: "0".repeat(64),
                ..file.clone()
            },
            "upload it first",
        ),
    ] {
        let refused = pat
            .post_message(cmd::PostMessageRequest {
                command_id: command_id(),
                thread_id: thread.clone(),
                attachments: vec![attachment],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains(why), "{}", refused.message());
    }
    // Without a file, a message still needs its text.
    let empty = pat
        .post_message(cmd::PostMessageRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);

    let at = pat
        .post_message(cmd::PostMessageRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            body: String::new(),
            // Whatever type and size are sent, the stored file's are recorded.
            attachments: vec![cmd::Attachment {
                media_type: "application/pdf".into(),
                size: 1,
                ..file.clone()
            }],
            mention_ids: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .version;

    // The nurse sees it on the message, and downloads it whole.
    let detail = s.thread(&org.nurse, &thread, at).await;
    let sent = detail.messages.last().unwrap();
    assert_eq!(sent.body, "");
    assert_eq!(
        sent.attachments,
        vec![inbox_pb::Attachment {
            digest: file.digest.clone(),
            file_name: "rash.jpg".into(),
            media_type: "image/jpeg".into(),
            size: photo.len() as u64,
        }]
    );
    let mut nurse = s.inbox(&org.nurse);
    let (described, bytes) = download(&mut nurse, &thread, &file.digest).await.unwrap();
    assert_eq!(described.file_name, "rash.jpg");
    assert!(
        bytes == photo,
        "the bytes downloaded differ from those sent"
    );

    // The cardiologist does not see the thread: nothing says it exists.
    let mut cardiologist = s.inbox(&org.cardiologist);
    let hidden = download(&mut cardiologist, &thread, &file.digest)
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    // Nor is a file on another thread handed over through this one.
    let mut other = s.signer.client(&org.other_patient).unwrap();
    let elsewhere = upload(&mut other, "x.txt", b"another patient's notes".to_vec())
        .await
        .unwrap();
    let not_here = download(&mut nurse, &thread, &elsewhere.digest)
        .await
        .unwrap_err();
    assert_eq!(not_here.code(), Code::NotFound);

    // The nurse's download is in the log as a read naming the file, and in
    // the record's trail in words.
    let store = s.stream.store();
    let head = s.head().await;
    let mut feed = event_store::EventStore::subscribe(store, 0).await.unwrap();
    let mut recorded = false;
    while let Some(event) = feed.next().await {
        let event = event.unwrap();
        if let Some(Payload::RecordsViewed(v)) = &event.envelope.payload
            && v.call.ends_with("/GetFile")
            && event.envelope.actor.as_ref().unwrap().person_id == org.nurse.person_id.to_string()
        {
            assert_eq!(v.records.len(), 1);
            assert_eq!(v.records[0].thread_ids, vec![thread.clone()]);
            assert_eq!(v.records[0].file_digests, vec![file.digest.clone()]);
            recorded = true;
        }
        if event.position >= head {
            break;
        }
    }
    assert!(recorded, "the download was not recorded");
    let trail = s
        .audit(&org.patient)
        .record_trail(proto::audit::RecordTrailRequest {
            patient_id: org.patient.person_id.to_string(),
            min_position: head,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let words: Vec<&str> = trail.entries.iter().map(|e| e.action.as_str()).collect();
    assert!(
        words
            .iter()
            .any(|w| w.contains("downloaded a file sent on the thread")),
        "{words:#?}"
    );
    assert!(
        words
            .iter()
            .any(|w| w.contains("posted a message with a file")),
        "{words:#?}"
    );
}
