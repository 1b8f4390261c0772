//! The bucket of files on the real NATS: stored once by digest, read back
//! whole and checked, never removed.

use event_store::testing::TestStream;
use event_store::{FileStore, files_bucket};
use sha2::Digest as _;
use tokio::io::AsyncReadExt as _;

fn hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_is_stored_once_by_its_digest_and_read_back_whole() {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let test = TestStream::new("files").await;
        let files = FileStore::open(test.store()).await.unwrap();
        // Several chunks and a part of one.
        let bytes: Vec<u8> = (0..(event_store::files::CHUNK * 3 + 1234))
            .map(|i| (i % 251) as u8)
            .collect();
        let digest = hex(&bytes);
        assert_eq!(files.stat(&digest).await.unwrap(), None);

        let stored = files
            .put(&digest, "application/pdf", bytes.len() as u64, &bytes[..])
            .await
            .unwrap();
        assert_eq!(stored.size, bytes.len() as u64);
        assert_eq!(files.stat(&digest).await.unwrap(), Some(stored.clone()));
        // The same bytes again: the first stands, nothing more is stored.
        let before = files.bytes().await.unwrap();
        let again = files
            .put(&digest, "application/pdf", bytes.len() as u64, &bytes[..])
            .await
            .unwrap();
        assert_eq!(again, stored);
        assert_eq!(files.bytes().await.unwrap(), before);

        let (_, mut object) = files.get(&digest).await.unwrap().unwrap();
        let mut read = Vec::new();
        object.read_to_end(&mut read).await.unwrap();
        assert!(read == bytes, "the bytes read back differ");
        // Chunk by chunk, nothing read ahead: the same bytes, checked.
        let (_, mut reader) = files.read(&digest).await.unwrap().unwrap();
        let mut chunked = Vec::new();
        while let Some(chunk) = reader.next_chunk().await.unwrap() {
            chunked.extend_from_slice(&chunk);
        }
        assert!(chunked == bytes, "the chunks read back differ");
        assert!(files.read(&"0".repeat(64)).await.unwrap().is_none());
        let (names, _) = files.list().await.unwrap();
        assert_eq!(names, vec![digest.clone()]);

        // A size that is not what was read stores no description.
        let other = b"other bytes".to_vec();
        let wrong = files.put(&hex(&other), "text/plain", 99, &other[..]).await;
        assert!(wrong.is_err());
        assert_eq!(files.stat(&hex(&other)).await.unwrap(), None);
        assert!(files.stat("not-a-digest").await.unwrap().is_none());
    })
    .await
    .expect("the test took over a minute");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_in_the_bucket_can_be_purged_deleted_or_rolled_up() {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let test = TestStream::new("files_kept").await;
        let files = FileStore::open(test.store()).await.unwrap();
        let bytes = b"a scanned letter".to_vec();
        let digest = hex(&bytes);
        files
            .put(&digest, "text/plain", bytes.len() as u64, &bytes[..])
            .await
            .unwrap();
        let js = test.store().jetstream();
        let stream_name = format!("OBJ_{}", files_bucket(&test.store().config().stream));
        let stream = js.get_stream(&stream_name).await.unwrap();
        assert!(stream.purge().await.is_err(), "the bucket was purged");
        assert!(
            stream.delete_message(1).await.is_err(),
            "a chunk was deleted"
        );
        // A rollup would replace everything on its subject (or the stream).
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Rollup", "all");
        let rolled = js
            .publish_with_headers(
                format!("$O.{}.M.x", files_bucket(&test.store().config().stream)),
                headers,
                "{}".into(),
            )
            .await
            .unwrap()
            .await;
        assert!(rolled.is_err(), "a rollup was accepted");
        let objects = js
            .get_object_store(files_bucket(&test.store().config().stream))
            .await
            .unwrap();
        assert!(objects.delete(&digest).await.is_err(), "a file was deleted");
        assert!(files.stat(&digest).await.unwrap().is_some());
    })
    .await
    .expect("the test took over a minute");
}
