//! The web pages against the real services (command, inbox, NATS,
//! PostgreSQL): Pat signs in with the demo sign-in, finds her thread, reads
//! it, replies, starts a new one; a deep link survives sign-in; a form
//! without its token, a session signed out, and an empty reply are refused
//! with a page that says what to do, keeping what she typed.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use careline_client::demo::{DemoOrg, first_thread};
use http_body_util::BodyExt;
use service_kit::Caller;
use testkit::System;
use tower::ServiceExt;

mod support;

struct Browser {
    app: axum::Router,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    /// The value of the first hidden field `name`.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap();
        self.body[start..start + end].to_string()
    }
}

impl Browser {
    async fn send(&mut self, request: Request<Body>) -> Page {
        let response = self.app.clone().oneshot(request).await.unwrap();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, _) = set.split_once(';').unwrap_or((set, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.into(), v.into()));
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_string());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = Request::get(path)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = Request::post(path)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// Follows a redirect.
    async fn follow(&mut self, page: Page) -> Page {
        assert!(
            page.status.is_redirection(),
            "{} {}",
            page.status,
            page.body
        );
        self.get(&page.location.unwrap()).await
    }

    /// Signs in as `who` on the demo sign-in page, from `path`.
    async fn sign_in(&mut self, who: &Caller, path: &str) -> Page {
        let page = self.get(path).await;
        let page = self.follow(page).await;
        assert!(page.body.contains("Sign in as"), "{}", page.body);
        let (csrf, next) = (page.field("csrf"), page.field("next"));
        let id = who.person_id.to_string();
        let signed = self
            .post(
                "/sign-in/demo",
                &[("csrf", &csrf), ("next", &next), ("person_id", &id)],
            )
            .await;
        self.follow(signed).await
    }
}

fn browser(s: &System, org: &DemoOrg) -> Browser {
    Browser {
        app: web::router(support::web(s, org)),
        cookies: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_reads_replies_and_writes_through_the_pages() {
    let s = support::system("web_pages").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let reply = s
        .post(&org.nurse, &thread, "Up to one litre on Sunday.")
        .await;

    // A link from an email survives signing in, and lands on the thread.
    let mut pat = browser(&s, &org);
    // (Nina's reply is in the inbox before Pat follows the link.)
    testkit::inbox_page(&mut s.inbox(&org.patient), reply).await;
    let deep = format!("/threads/{thread}");
    let page = pat.sign_in(&org.patient, &deep).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Up to one litre on Sunday."));
    assert!(page.body.contains("Nina Patel"), "the sender is named");
    assert!(page.body.contains("Demo sign-in is on"));
    assert!(
        page.body.contains("<title>Conversation – Careline</title>"),
        "no subject in the title"
    );
    assert!(!page.body.contains("Staff notes"));

    // Her messages: the thread, read now (she opened it).
    let list = pat.get("/messages").await;
    assert!(
        list.body.contains("Fluid allowance before Monday"),
        "{}",
        list.body
    );
    assert!(
        !list.body.contains(" new</span>"),
        "opened, so read: {}",
        list.body
    );

    // A reply; an empty one is refused, saying what to do, nothing sent.
    let csrf = page.field("csrf");
    let path = format!("/threads/{thread}/reply");
    let empty = pat.post(&path, &[("csrf", &csrf), ("body", "   ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty.body.contains("Write a message before sending it"),
        "{}",
        empty.body
    );
    let sent = pat
        .post(&path, &[("csrf", &csrf), ("body", "Thank you, I will.")])
        .await;
    let shown = pat.follow(sent).await;
    assert!(shown.body.contains("Thank you, I will."));
    // Without the session's token a form does nothing.
    let forged = pat
        .post(&path, &[("csrf", "forged"), ("body", "Forged")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // A new message: the choices the inbox offers; a missing subject is
    // refused keeping what she wrote.
    let new = pat.get("/messages/new").await;
    assert!(new.body.contains("not for emergencies"));
    assert!(new.body.contains("Renal Unit"), "{}", new.body);
    let renal = format!("team:{}", org.renal);
    let missing = pat
        .post(
            "/messages/new",
            &[
                ("csrf", &csrf),
                ("to", &renal),
                ("subject", ""),
                ("body", "My new results"),
            ],
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        missing.body.contains("Give your message a subject"),
        "{}",
        missing.body
    );
    assert!(
        missing.body.contains("My new results"),
        "what she typed is kept"
    );
    let started = pat
        .post(
            "/messages/new",
            &[
                ("csrf", &csrf),
                ("to", &renal),
                ("subject", "Blood test"),
                ("body", "My new results"),
            ],
        )
        .await;
    let opened = pat.follow(started).await;
    assert!(opened.body.contains("My new results"), "{}", opened.body);

    // Nina sees Pat's reply; someone else's thread is not Pat's to see.
    testkit::inbox_page(&mut s.inbox(&org.nurse), s.head().await).await;
    let mut nina = browser(&s, &org);
    let nina_page = nina
        .sign_in(&org.nurse, &format!("/threads/{thread}"))
        .await;
    assert!(nina_page.body.contains("Thank you, I will."));
    let mut other = browser(&s, &org);
    let refused = other
        .sign_in(&org.other_patient, &format!("/threads/{thread}"))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert!(!refused.body.contains("Thank you"));

    // Who has looked at her record: Nina's reads among them; a download of it.
    let trail = pat.get("/record/trail").await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.body);
    assert!(trail.body.contains("Nina Patel"), "{}", trail.body);
    let file = pat.get("/record/trail/download?format=jsonl").await;
    assert_eq!(file.status, StatusCode::OK);
    assert!(file.body.lines().count() > 3 && file.body.lines().all(|l| l.starts_with('{')));
    let fhir = pat.get("/record/trail/download?format=fhir").await;
    assert!(fhir.body.contains("\"resourceType\""), "{}", fhir.body);
    assert_eq!(
        nina.get("/record/trail").await.status,
        StatusCode::FORBIDDEN
    );

    // Signed out, the pages ask her to sign in again.
    let out = pat.post("/sign-out", &[("csrf", &csrf)]).await;
    assert!(out.status.is_redirection());
    let again = pat.get("/messages").await;
    assert_eq!(again.location.as_deref(), Some("/sign-in?next=%2Fmessages"));
}
