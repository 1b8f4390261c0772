//! What an operator on call reads: every gRPC call counted by method and
//! status code, a read service's `/metrics` (its projection's checkpoint
//! and lag, the log's head, the notification queue) and `/readyz`, over
//! HTTP, against the real services, NATS and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use careline_client::bearer::command_id;
use careline_client::demo::{first_thread, seed};
use event_store::EventStore;
use proto::command as cmd;
use service_kit::Service;
use testkit::{Services, System};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on `addr`: the status line's code and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: careline\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let code = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The value of the one sample of `text` that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reads_calls_lag_and_the_queue_and_whether_each_service_is_ready() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let s = System::start("ops_metrics", Services::all()).await;
        let org = seed(&s.signer).await.unwrap();
        let thread = first_thread(&s.signer, &org).await.unwrap();
        // A refused call: counted under its code.
        let refused = s
            .signer
            .client(&org.patient)
            .unwrap()
            .post_message(cmd::PostMessageRequest {
                attachments: vec![],
                command_id: command_id(),
                thread_id: thread.clone(),
                body: String::new(),
                mention_ids: vec![],
            })
            .await;
        assert!(refused.is_err());
        s.settled().await;

        let calls = service_kit::metrics::global().render();
        let ok = "careline_grpc_requests_total{service=\"careline.command.v1.CommandService\",method=\"StartThread\",code=\"Ok\"}";
        assert!(sample(&calls, ok).unwrap_or(0.0) >= 1.0, "{calls}");
        let bad = "careline_grpc_requests_total{service=\"careline.command.v1.CommandService\",method=\"PostMessage\",code=\"InvalidArgument\"}";
        assert!(sample(&calls, bad).unwrap_or(0.0) >= 1.0, "{calls}");
        assert!(
            calls.contains("careline_grpc_request_duration_seconds_bucket{service=\"careline.command.v1.CommandService\",method=\"StartThread\",le=\"+Inf\"}"),
            "{calls}"
        );
        assert!(!calls.contains(&thread), "a metric names a thread: {calls}");

        // A notification service beside the running one, on the same
        // database and log, for its endpoint: its queue holds Pat's
        // first message for the renal nurses (no mail server listens).
        let wait = Duration::from_secs(5);
        let mut config = testkit::notify_config(&s.db, &s.stream, wait, testkit::smtp(9));
        config.read.metrics = Some("127.0.0.1:0".parse().unwrap());
        let notify = notify_service::Application::with_store(config, s.stream.store().clone())
            .await
            .unwrap();
        let (_, endpoint) = notify.metrics().expect("the endpoint is configured");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(endpoint.serve(listener, async {
            let _ = stopped.await;
        }));

        let (code, text) = get(addr, "/metrics").await;
        assert_eq!(code, 200, "{text}");
        let head = s.stream.store().last_position().await.unwrap();
        assert!(
            sample(&text, "careline_log_head ").unwrap_or(0.0) >= head as f64,
            "{text}"
        );
        assert!(
            text.contains("careline_projection_checkpoint{projection=\"notify\"}"),
            "{text}"
        );
        assert!(
            sample(&text, "careline_projection_lag{projection=\"notify\"}").is_some(),
            "{text}"
        );
        // Delivery is tried and retried against the closed port: the
        // message waits in the queue, due or retrying.
        let queued = |text: &str| {
            sample(text, "careline_notify_queue{state=\"due\"}").unwrap_or(0.0)
                + sample(text, "careline_notify_queue{state=\"retrying\"}").unwrap_or(0.0)
        };
        assert!(queued(&text) >= 1.0, "{text}");

        let (code, body) = get(addr, "/readyz").await;
        assert_eq!((code, body.as_str()), (200, "ready\n"));
        let (code, _) = get(addr, "/livez").await;
        assert_eq!(code, 200);
        let (code, _) = get(addr, "/nothing").await;
        assert_eq!(code, 404);
        let _ = stop.send(());
    })
    .await
    .expect("the test took over 4 minutes");
}
