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
        let html = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.to_str().unwrap().starts_with("text/html"));
        let policy = response
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .map(|p| p.to_str().unwrap().to_string());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        if html {
            // Every page: no style or script written into it, and a policy
            // that would refuse one.
            let policy = policy.expect("a page without a content security policy");
            assert!(!policy.contains("unsafe-inline"), "{policy}");
            assert!(
                !body.contains("<style") && !body.contains(" style=\""),
                "a style written into the page: {body}"
            );
        }
        Page {
            status,
            location,
            body,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A page asked for from this site's own pages, as a browser says.
    async fn get(&mut self, path: &str) -> Page {
        self.get_from(path, "same-origin").await
    }

    /// A page asked for by a link on `site` (`Sec-Fetch-Site`).
    async fn get_from(&mut self, path: &str, site: &str) -> Page {
        let request = Request::get(path)
            .header(header::COOKIE, self.cookie_header())
            .header("sec-fetch-site", site)
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

    async fn post_owned(&mut self, path: &str, fields: Vec<(String, String)>) -> Page {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.post(path, &pairs).await
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
        assert!(page.body.contains("Sign in to Careline"), "{}", page.body);
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
    // Her list's title counts what is unread (a tab behind others shows it),
    // never what it says.
    let listed = browser(&s, &org).sign_in(&org.patient, "/messages").await;
    assert!(
        listed
            .body
            .contains("<title>(1) Messages – Careline</title>"),
        "{}",
        listed.body
    );
    // Each conversation says whom it is with, not her own name.
    assert!(listed.body.contains("With Renal Unit"), "{}", listed.body);
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
    assert!(!page.body.contains("Staff note"));

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

/// A date field's value `days` from today.
fn in_days(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let format = time::macros::format_description!("[year]-[month]-[day]");
    t.format(&format).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_decides_who_may_act_for_her_and_which_teams_see_her_record() {
    let s = support::system("web_record").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    testkit::inbox_page(&mut s.inbox(&org.carer), s.head().await).await;

    // Chris acts for Pat: her messages are his to read.
    let mut chris = browser(&s, &org);
    let list = chris.sign_in(&org.carer, "/messages").await;
    assert!(list.body.contains("You are acting for"), "{}", list.body);
    assert!(list.body.contains("Fluid allowance before Monday"));

    let mut pat = browser(&s, &org);
    let carers = pat.sign_in(&org.patient, "/record/carers").await;
    assert_eq!(carers.status, StatusCode::OK, "{}", carers.body);
    assert!(carers.body.contains("Chris Jones") && carers.body.contains("Parent"));
    let csrf = carers.field("csrf");

    // She withdraws his consent: at his next page, nothing of hers.
    let chris_id = org.carer.person_id.to_string();
    // Asked first, with what will happen; asking changes nothing.
    let asked = pat
        .post(
            "/record/carers/withdraw",
            &[
                ("csrf", &csrf),
                ("carer_id", &chris_id),
                ("name", "Chris Jones"),
            ],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked.body.contains("Withdraw Chris Jones&#39;s consent?")
            || asked.body.contains("Withdraw Chris Jones's consent?"),
        "{}",
        asked.body
    );
    assert!(asked.body.contains("What will happen"), "{}", asked.body);
    assert!(
        asked.body.contains("nhsuk-button--warning"),
        "{}",
        asked.body
    );
    let still = chris.get(&format!("/threads/{thread}")).await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.body);
    let withdrawn = pat
        .post(
            "/record/carers/withdraw",
            &[
                ("csrf", &csrf),
                ("carer_id", &chris_id),
                ("confirmed", "yes"),
            ],
        )
        .await;
    let after = pat.follow(withdrawn).await;
    assert!(after.body.contains("Consent withdrawn"), "{}", after.body);
    assert!(after.body.contains("Nobody holds your consent"));
    let list = chris.get("/messages").await;
    assert!(list.body.contains("has ended"), "{}", list.body);
    assert!(!list.body.contains("Fluid allowance"), "{}", list.body);
    // Reopened, the thread says whose messages he may no longer read.
    let opened = chris.get(&format!("/threads/{thread}")).await;
    assert_eq!(opened.status, StatusCode::FORBIDDEN);
    assert!(
        opened
            .body
            .contains("Your access to Pat Jones&#39;s messages ended on")
            || opened
                .body
                .contains("Your access to Pat Jones's messages ended on"),
        "{}",
        opened.body
    );
    assert!(!opened.body.contains("Fluid allowance"), "{}", opened.body);

    // Consent to Alex: a date in the past, and an unknown address, are
    // refused keeping what she typed; then given until a date.
    let consent = |email: &'static str, until: String| {
        move |csrf: &str| -> Vec<(String, String)> {
            [("csrf", csrf), ("email", email), ("relationship", "friend")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("until".to_string(), until.clone())])
                .collect()
        }
    };
    let past = pat
        .post_owned(
            "/record/carers",
            consent("alex.green@example.org", in_days(-3))(&csrf),
        )
        .await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        past.body
            .contains("Choose a date from today onwards, at most a year from today"),
        "{}",
        past.body
    );
    assert!(past.body.contains("alex.green@example.org"), "kept");
    let unknown = pat
        .post_owned(
            "/record/carers",
            consent("nobody@example.org", String::new())(&csrf),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown.body.contains("no carer is registered"),
        "{}",
        unknown.body
    );
    let given = pat
        .post_owned(
            "/record/carers",
            consent("Alex.Green@example.org", in_days(30))(&csrf),
        )
        .await;
    let shown = pat.follow(given).await;
    assert!(shown.body.contains("Consent given"), "{}", shown.body);
    assert!(shown.body.contains("Alex Green") && shown.body.contains("Friend"));
    assert!(
        !shown.body.contains("Until you withdraw it"),
        "it has an end"
    );

    // Record access: PALS has it (the demo's grant); she ends it and gives
    // it again, and a date over a year ahead is refused.
    let access = pat.get("/record/access").await;
    assert!(
        access
            .body
            .contains("End Patient Advice and Liaison Service"),
        "{}",
        access.body
    );
    let ended = pat
        .post(
            "/record/access/end",
            &[
                ("csrf", &csrf),
                ("grant_id", &org.pals_grant),
                ("confirmed", "yes"),
            ],
        )
        .await;
    let access = pat.follow(ended).await;
    assert!(
        access.body.contains("No other team has access"),
        "{}",
        access.body
    );
    let far = in_days(400);
    let refused = pat
        .post(
            "/record/access",
            &[
                ("csrf", &csrf),
                ("team", &org.pals),
                ("until", &far),
                ("reason", "My complaint about parking"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("at most a year"), "{}", refused.body);
    assert!(refused.body.contains("My complaint about parking"), "kept");
    let soon = in_days(10);
    let given = pat
        .post(
            "/record/access",
            &[
                ("csrf", &csrf),
                ("team", &org.pals),
                ("until", &soon),
                ("reason", "My complaint about parking"),
            ],
        )
        .await;
    let access = pat.follow(given).await;
    assert!(access.body.contains("Access given"), "{}", access.body);
    assert!(
        access
            .body
            .contains("End Patient Advice and Liaison Service")
    );

    // Her account: verified. Sam's is not, and he asks for the link again;
    // the link's page confirms only by its button, and a bad link says so.
    let account = pat.get("/account").await;
    assert!(account.body.contains("Verified"), "{}", account.body);
    let mut sam = browser(&s, &org);
    let page = sam.sign_in(&org.other_patient, "/account").await;
    assert!(page.body.contains("Not verified yet"), "{}", page.body);
    let sam_csrf = page.field("csrf");
    let sent = sam.post("/account/verify", &[("csrf", &sam_csrf)]).await;
    let page = sam.follow(sent).await;
    assert!(
        page.body.contains("sent the verification email again"),
        "{}",
        page.body
    );
    let confirm = sam.get("/email/confirm?token=not-a-link").await;
    assert!(confirm.body.contains("Confirm my email address"));
    let bad = sam
        .post(
            "/email/confirm",
            &[("csrf", &sam_csrf), ("token", "not-a-link")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("new link"), "{}", bad.body);

    // Someone else's pages are not a professional's.
    let mut nina = browser(&s, &org);
    let refused = nina.sign_in(&org.nurse, "/record/carers").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

/// The next server-sent event of `body` within `wait`, if any.
async fn next_event(body: &mut Body, wait: std::time::Duration) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(wait, body.frame())
            .await
            .ok()??
            .unwrap();
        if let Some(data) = frame.data_ref() {
            let text = String::from_utf8_lossy(data).to_string();
            // Keep-alive comments are not events.
            if text.contains("event: change") {
                return Some(text);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_message_is_told_live_to_those_who_may_see_it_and_no_one_else() {
    let s = support::system("web_live").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    let web = support::web(&s, &org);
    let app = web::router(web);
    let mut pat = Browser {
        app: app.clone(),
        cookies: Vec::new(),
    };
    let mut sam = Browser {
        app: app.clone(),
        cookies: Vec::new(),
    };
    pat.sign_in(&org.patient, "/messages").await;
    sam.sign_in(&org.other_patient, "/messages").await;
    let stream = |b: &Browser| {
        Request::get("/live")
            .header(header::COOKIE, b.cookie_header())
            .body(Body::empty())
            .unwrap()
    };
    let response = app.clone().oneshot(stream(&pat)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut pat_events = response.into_body();
    let mut sam_events = app.clone().oneshot(stream(&sam)).await.unwrap().into_body();
    let anonymous = app
        .clone()
        .oneshot(Request::get("/live").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // (The watches have begun before the message.)
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    s.post(&org.nurse, &thread, "Your potassium is fine.").await;
    let event = next_event(&mut pat_events, std::time::Duration::from_secs(2))
        .await
        .expect("told within 2 seconds");
    assert!(event.contains(&thread), "{event}");
    assert!(!event.contains("potassium"), "no content in the signal");
    assert!(
        next_event(&mut sam_events, std::time::Duration::from_millis(500))
            .await
            .is_none(),
        "not Sam's thread"
    );
    // The page it reads then shows the message.
    let page = pat
        .get(&format!("/threads/{thread}?at={}", s.head().await))
        .await;
    assert!(page.body.contains("Your potassium is fine."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_joins_a_team_by_its_link_and_messages_it_by_its_other_link() {
    let s = support::system("web_join").await;
    let org = s.org().await;
    let code = {
        use careline_client::Steps;
        let mut admin = s.signer.client(&org.admin).unwrap();
        admin.issue_code(&org.nutrition).await.unwrap()
    };
    s.settled().await;
    let message_nutrition = format!("/teams/{}/message", org.nutrition);

    // Sam is not the dietitians' patient: their "message" link says how.
    let mut sam = browser(&s, &org);
    let refused = sam.sign_in(&org.other_patient, &message_nutrition).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("join it"), "{}", refused.body);

    // Its join link (the code in any case): which team, and a button.
    let join = format!("/join/{}", code.to_uppercase());
    let page = sam.get(&join).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Join Nutrition"), "{}", page.body);
    let csrf = page.field("csrf");
    let joined = sam.post(&join, &[("csrf", &csrf)]).await;
    assert_eq!(joined.location.as_deref(), Some(message_nutrition.as_str()));
    let new = sam.follow(joined).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.body);
    let renal = format!("value=\"team:{}\" checked", org.nutrition);
    assert!(
        new.body.contains(&renal),
        "the team is chosen: {}",
        new.body
    );

    // A code that is no team's, and staff following a join link.
    let bad = sam.get("/join/not-a-code").await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
    assert!(
        bad.body.contains("ask the team for its link"),
        "{}",
        bad.body
    );
    let mut nina = browser(&s, &org);
    let staff = nina.sign_in(&org.nurse, &join).await;
    assert_eq!(staff.status, StatusCode::FORBIDDEN);

    // An open team's link works for every patient.
    let mut pat = browser(&s, &org);
    let pals = pat
        .sign_in(&org.patient, &format!("/teams/{}/message", org.pals))
        .await;
    assert_eq!(pals.status, StatusCode::OK, "{}", pals.body);
    assert!(
        pals.body
            .contains(&format!("value=\"team:{}\" checked", org.pals))
    );
}

/// How the pages show a patient's date of birth and numbers: `parts`, each
/// whole.
fn identity(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| format!("<span class=\"careline-identity__part\">{p}</span>"))
        .collect::<Vec<_>>()
        .join(" · ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurse_works_the_renal_inbox_through_the_pages() {
    let s = support::system("web_staff").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    // Written outside the pages: the inbox has it once it has caught up.
    s.settled().await;
    let mut nina = browser(&s, &org);
    let teams = nina.sign_in(&org.nurse, "/teams").await;
    assert_eq!(teams.status, StatusCode::OK, "{}", teams.body);
    assert!(teams.body.contains("Renal Unit"), "{}", teams.body);
    let inbox = format!("/teams/{}/inbox", org.renal);
    assert!(teams.body.contains(&inbox), "{}", teams.body);
    // Each team with its inbox's counts: Pat's thread waits unassigned.
    assert!(
        teams
            .body
            .contains("<span class=\"unassigned\">1 unassigned</span>"),
        "{}",
        teams.body
    );

    // Unassigned: Pat's new thread, her name, nobody on it yet; found by
    // a part of her name in any case, not by another's.
    let unassigned = nina.get(&inbox).await;
    assert_eq!(unassigned.status, StatusCode::OK, "{}", unassigned.body);
    assert!(unassigned.body.contains("Fluid allowance before Monday"));
    assert!(unassigned.body.contains("Pat Jones"), "{}", unassigned.body);
    assert!(
        unassigned.body.contains("unassigned"),
        "{}",
        unassigned.body
    );
    assert!(unassigned.body.contains("Keyboard shortcuts"));
    let found = nina.get(&format!("{inbox}?show=active&q=pA")).await;
    assert!(found.body.contains("Fluid allowance before Monday"));
    // Told apart from any other Pat Jones, and found by her numbers too.
    let pats = identity(&[
        "born 23 April 1961",
        "hospital no. RX4409217",
        "NHS no. 943 476 5919",
    ]);
    assert!(unassigned.body.contains(&pats), "{}", unassigned.body);
    for q in ["rx4409217", "23%2F04%2F1961", "943+476+5919"] {
        let found = nina.get(&format!("{inbox}?show=active&q={q}")).await;
        assert!(
            found.body.contains("Fluid allowance before Monday"),
            "{q}: {}",
            found.body
        );
    }
    let page = nina.get(&format!("/threads/{thread}")).await;
    assert!(page.body.contains(&pats), "{}", page.body);
    // Opened from the team inbox: the inbox's list (as she last had it,
    // never her search) is named beside it, for a wide screen to fetch.
    let queue = format!(
        "/teams/{}/queue?show=active&amp;sort=waiting&amp;open={thread}",
        org.renal
    );
    assert!(
        page.body.contains(&format!("data-queue=\"{queue}\"")),
        "{}",
        page.body
    );
    // Its back link goes to that inbox, by name (a phone has no list beside).
    let back = format!(
        "href=\"/teams/{}/inbox?show=active&amp;sort=waiting\">← Renal Unit</a>",
        org.renal
    );
    assert!(page.body.contains(&back), "{}", page.body);
    let beside = nina.get(&queue.replace("&amp;", "&")).await;
    assert_eq!(beside.status, StatusCode::OK, "{}", beside.body);
    let current = beside
        .body
        .split("<li aria-current=\"page\">")
        .nth(1)
        .and_then(|rest| rest.split("</li>").next())
        .unwrap_or_default();
    assert!(current.contains("Pat Jones"), "{}", beside.body);
    assert!(current.contains(&pats), "{}", beside.body);
    let other = nina.get(&format!("{inbox}?show=active&q=Sam")).await;
    assert!(!other.body.contains("Fluid allowance before Monday"));
    assert!(other.body.contains("No conversations here."));

    // She takes it: assigned to her, gone from unassigned.
    let page = nina.get(&format!("/threads/{thread}")).await;
    assert!(
        page.body.contains("Nobody is handling it yet."),
        "{}",
        page.body
    );
    let csrf = page.field("csrf");
    let moved = nina
        .post(
            &format!("/threads/{thread}/move"),
            &[("csrf", &csrf), ("do", "assign-me")],
        )
        .await;
    let page = nina.follow(moved).await;
    assert!(page.body.contains("Assigned to you."), "{}", page.body);
    assert!(
        page.body.contains("assigned it to Nina Patel"),
        "{}",
        page.body
    );
    let mine = nina.get(&format!("{inbox}?show=mine")).await;
    assert!(mine.body.contains("Fluid allowance before Monday"));
    assert!(mine.body.contains("with Nina Patel"), "{}", mine.body);
    // Every filter has its count: hers one, the others' none.
    for count in [
        "Assigned to me <span class=\"count\">(1)</span>",
        "Assigned to others <span class=\"count\">(0)</span>",
        "Unassigned <span class=\"count\">(0)</span>",
    ] {
        assert!(mine.body.contains(count), "{count}: {}", mine.body);
    }
    let neds = browser(&s, &org)
        .sign_in(&org.nurse2, &format!("{inbox}?show=others"))
        .await;
    assert!(
        neds.body
            .contains("Assigned to others <span class=\"count\">(1)</span>"),
        "{}",
        neds.body
    );
    let unassigned = nina.get(&inbox).await;
    assert!(!unassigned.body.contains("Fluid allowance before Monday"));

    // A staff note: on her page, never on Pat's; an empty one is refused
    // with a page that says so.
    let noted = nina
        .post(
            &format!("/threads/{thread}/note"),
            &[("csrf", &csrf), ("body", "Check her potassium first.")],
        )
        .await;
    let page = nina.follow(noted).await;
    assert!(page.body.contains("Check her potassium first."));
    // The one box, switched to a note, adds one too: among the messages,
    // after the first, labelled as no message is.
    let noted = nina
        .post(
            &format!("/threads/{thread}/reply"),
            &[
                ("csrf", &csrf),
                ("kind", "note"),
                ("body", "Bloods due Friday."),
            ],
        )
        .await;
    let page = nina.follow(noted).await;
    let first = page.body.find("Fluid allowance").unwrap();
    let label = "Staff note — not visible to the patient";
    let note = page.body.find("Bloods due Friday.").expect("the note");
    assert!(
        page.body[..note].rfind(label).is_some_and(|at| at > first),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches(label).count(), 2, "{}", page.body);
    let empty = nina
        .post(
            &format!("/threads/{thread}/note"),
            &[("csrf", &csrf), ("body", "  ")],
        )
        .await;
    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.body
    );
    assert!(
        empty.body.contains("Your note was not added"),
        "{}",
        empty.body
    );
    let mut pat = browser(&s, &org);
    let hers = pat
        .sign_in(&org.patient, &format!("/threads/{thread}"))
        .await;
    assert!(hers.body.contains("Fluid allowance before Monday"));
    assert!(!hers.body.contains("potassium"), "{}", hers.body);
    assert!(!hers.body.contains("Bloods due"), "{}", hers.body);
    assert!(!hers.body.contains("Staff note"), "{}", hers.body);
    // Her box has no switch; told it is a note, it is refused, not added.
    assert!(!hers.body.contains("kind-note"), "{}", hers.body);
    let forged = pat
        .post(
            &format!("/threads/{thread}/reply"),
            &[
                ("csrf", &hers.field("csrf")),
                ("kind", "note"),
                ("body", "A note of mine"),
            ],
        )
        .await;
    assert_eq!(
        forged.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        forged.body
    );
    assert!(
        forged.body.contains("Your note was not added"),
        "{}",
        forged.body
    );
    let hers = pat.get(&format!("/threads/{thread}")).await;
    assert!(!hers.body.contains("A note of mine"), "{}", hers.body);
    assert!(!hers.body.contains("Handle this conversation"));
    // Presence is staff's: her page cannot say she is typing.
    let pat_csrf = hers.field("csrf");
    let typing = pat
        .post(&format!("/threads/{thread}/typing"), &[("csrf", &pat_csrf)])
        .await;
    assert_eq!(typing.status, StatusCode::FORBIDDEN);
    let typing = nina
        .post(&format!("/threads/{thread}/typing"), &[("csrf", &csrf)])
        .await;
    assert_eq!(typing.status, StatusCode::NO_CONTENT);
    // Staff pages are not hers.
    let refused = pat.get("/teams").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = pat.get(&inbox).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Nina answers; Pat has not read it: the team's "not read" list has it
    // (any age), and a bad number of days is refused on the page.
    let answered = nina
        .post(
            &format!("/threads/{thread}/reply"),
            &[("csrf", &csrf), ("body", "Up to one litre on Sunday.")],
        )
        .await;
    assert!(answered.status.is_redirection(), "{}", answered.body);
    let not_read = nina
        .get(&format!("/teams/{}/not-read?days=0", org.renal))
        .await;
    assert_eq!(not_read.status, StatusCode::OK, "{}", not_read.body);
    assert!(
        not_read.body.contains("Fluid allowance before Monday"),
        "{}",
        not_read.body
    );
    let week = nina.get(&format!("/teams/{}/not-read", org.renal)).await;
    assert!(!week.body.contains("Fluid allowance before Monday"));
    let bad = nina
        .get(&format!("/teams/{}/not-read?days=lots", org.renal))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Her page says whom the emails reached (Pat's is retrying: no mail
    // server listens in this test) and who is on which side.
    let page = nina.get(&format!("/threads/{thread}")).await;
    assert!(page.body.contains("Who was told"), "{}", page.body);
    assert!(page.body.contains("trying again"), "{}", page.body);
    // Each named as the patient sees them, never by an internal kind.
    assert!(
        page.body.contains("Pat Jones (the patient)"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("(professional)"), "{}", page.body);
    // Staff by their role label and the team that brought them.
    assert!(
        page.body
            .contains("Ned Brown (Renal Nurse), Renal Unit</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Patient&#39;s side") || page.body.contains("Patient's side"));

    // A specialist added to the staff side; nobody chosen is refused.
    let add = nina.get(&format!("/threads/{thread}/add")).await;
    assert_eq!(add.status, StatusCode::OK, "{}", add.body);
    let specialist = add
        .body
        .split("value=\"professional:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no professional offered: {}", add.body))
        .to_string();
    let none = nina
        .post(&format!("/threads/{thread}/add"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        none.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        none.body
    );
    assert!(none.body.contains("Nobody was added"), "{}", none.body);
    let to = format!("professional:{specialist}");
    let added = nina
        .post(
            &format!("/threads/{thread}/add"),
            &[("csrf", &csrf), ("to", &to), ("staff_side", "yes")],
        )
        .await;
    let page = nina.follow(added).await;
    assert!(page.body.contains("Staff side"), "{}", page.body);
    // With a colleague on it, only a lead of the renal team is offered to
    // hand it over (the command service refuses anyone else).
    assert!(
        !page.body.contains("Assign to a colleague"),
        "{}",
        page.body
    );
    let mut lead = browser(&s, &org);
    let page = lead.sign_in(&org.lead, &format!("/threads/{thread}")).await;
    assert!(page.body.contains("Assign to a colleague"), "{}", page.body);
    // Offered: the professionals on the patient side (Nina, who holds it,
    // is not); the specialist on the staff side is not (the rules refuse).
    let offered = page
        .body
        .split("id=\"assignee\"")
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .unwrap_or_else(|| panic!("no colleagues offered: {}", page.body));
    assert!(
        offered.contains(&org.nurse2.person_id.to_string()),
        "{offered}"
    );
    assert!(!offered.contains(&specialist), "{offered}");
    assert!(
        !offered.contains(&org.lead.person_id.to_string()),
        "{offered}"
    );

    // Archived (asked first: asking moves nothing), then reopened; a move
    // that is not one is refused.
    let asked = nina
        .post(
            &format!("/threads/{thread}/move"),
            &[("csrf", &csrf), ("do", "archive")],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked.body.contains("Archive this conversation?"),
        "{}",
        asked.body
    );
    assert!(asked.body.contains("Archive it"), "{}", asked.body);
    let list = nina.get(&format!("{inbox}?show=archived")).await;
    assert!(
        !list.body.contains("Fluid allowance before Monday"),
        "{}",
        list.body
    );
    let archived = nina
        .post(
            &format!("/threads/{thread}/move"),
            &[("csrf", &csrf), ("do", "archive"), ("confirmed", "yes")],
        )
        .await;
    let page = nina.follow(archived).await;
    assert!(page.body.contains("Reopen"), "{}", page.body);
    let list = nina.get(&format!("{inbox}?show=archived")).await;
    assert!(list.body.contains("Fluid allowance before Monday"));
    let reopened = nina
        .post(
            &format!("/threads/{thread}/move"),
            &[("csrf", &csrf), ("do", "reopen")],
        )
        .await;
    let page = nina.follow(reopened).await;
    assert!(page.body.contains("Archive"), "{}", page.body);
    let odd = nina
        .post(
            &format!("/threads/{thread}/move"),
            &[("csrf", &csrf), ("do", "explode")],
        )
        .await;
    assert_eq!(odd.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Without the form's token nothing moves.
    let forged = nina
        .post(
            &format!("/threads/{thread}/move"),
            &[("csrf", "forged"), ("do", "archive")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privacy_officer_finds_what_a_professional_read() {
    let s = support::system("web_privacy").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    // Nina reads Pat's thread through the pages.
    let mut nina = browser(&s, &org);
    let read = nina
        .sign_in(&org.nurse, &format!("/threads/{thread}"))
        .await;
    assert_eq!(read.status, StatusCode::OK);

    let mut priya = browser(&s, &org);
    let form = priya.sign_in(&org.auditor, "/audit").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("Whose trail"), "{}", form.body);
    // She finds Nina by a part of her name (no address shown to her), and
    // Pat, whose record's trail she may open from there.
    let nurse = org.nurse.person_id.to_string();
    let hers = format!("/audit?kind=person&id={nurse}");
    let found_nina = priya.get("/audit?find=PATEL").await;
    assert_eq!(found_nina.status, StatusCode::OK, "{}", found_nina.body);
    assert!(
        found_nina.body.contains("Nina Patel"),
        "{}",
        found_nina.body
    );
    assert!(
        found_nina.body.contains(&hers.replace('&', "&amp;")),
        "{}",
        found_nina.body
    );
    assert!(
        !found_nina.body.contains("@hospital.example"),
        "{}",
        found_nina.body
    );
    let found_pat = priya.get("/audit?find=jones").await;
    let pats = format!("/audit?kind=record&amp;id={}", org.patient.person_id);
    assert!(found_pat.body.contains(&pats), "{}", found_pat.body);
    assert!(
        !found_pat.body.contains("@example.org"),
        "{}",
        found_pat.body
    );
    // What Nina read: the audit trail has it once it has caught up.
    let mut found = String::new();
    for _ in 0..100 {
        let page = priya.get(&hers).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        if page.body.contains("Nina Patel opened the thread") {
            found = page.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        found.contains("the record&#39;s trail") || found.contains("the record's trail"),
        "{found}"
    );
    // Not in a time that comes later; days the wrong way round are refused.
    let later = priya.get(&format!("{hers}&from=2099-01-01")).await;
    assert!(
        later.body.contains("Nothing on this trail in that time."),
        "{}",
        later.body
    );
    let swapped = priya
        .get(&format!("{hers}&from=2026-12-02&to=2026-11-01"))
        .await;
    assert_eq!(swapped.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(swapped.body.contains("swap them"), "{}", swapped.body);
    assert!(swapped.body.contains(&nurse), "what she typed is kept");
    let bad = priya.get("/audit?kind=person&id=dr-cole").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Pat's record: its trail, checked intact, and downloaded.
    let pat = org.patient.person_id.to_string();
    let record = priya.get(&format!("/audit?kind=record&id={pat}")).await;
    assert!(record.body.contains("Check this record"), "{}", record.body);
    // Who: only what Nina did and read on it, from her entry's link.
    let only = format!("&amp;who={}", org.nurse.person_id);
    assert!(record.body.contains(&only), "{}", record.body);
    assert!(record.body.contains("Pat Jones started"), "{}", record.body);
    // Each entry of a conversation names which, by its own trail.
    assert!(
        record.body.contains("the conversation&#39;s trail")
            || record.body.contains("the conversation's trail"),
        "{}",
        record.body
    );
    let hers_here = priya
        .get(&format!(
            "/audit?kind=record&id={pat}&who={}",
            org.nurse.person_id
        ))
        .await;
    assert!(
        hers_here
            .body
            .contains("Only what <strong>Nina Patel</strong> did and read"),
        "{}",
        hers_here.body
    );
    assert!(
        hers_here.body.contains("Nina Patel opened the thread"),
        "{}",
        hers_here.body
    );
    assert!(
        !hers_here.body.contains("Pat Jones started"),
        "{}",
        hers_here.body
    );
    let checked = priya.get(&format!("/audit/verify?patient={pat}")).await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert!(checked.body.contains("Intact."), "{}", checked.body);
    assert!(
        checked.body.contains("anchored in the event log"),
        "{}",
        checked.body
    );
    let request = axum::http::Request::get(format!("/audit/export?format=jsonl&patient={pat}"))
        .header(header::COOKIE, priya.cookie_header())
        .body(Body::empty())
        .unwrap();
    let response = priya.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");

    // Nobody else reads trails here.
    let refused = nina.get(&hers).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

/// The text after `marker` in `body`, up to the next `end`.
fn after<'a>(body: &'a str, marker: &str, end: char) -> &'a str {
    body.split(marker)
        .nth(1)
        .and_then(|rest| rest.split(end).next())
        .unwrap_or_else(|| panic!("no {marker} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_a_team_and_the_patient_is_offered_what_the_rules_say() {
    let s = support::system("web_admin").await;
    let org = s.org().await;
    // Seeded outside the pages: the inbox has it once it has caught up.
    s.settled().await;
    let mut ada = browser(&s, &org);
    let teams = ada.sign_in(&org.admin, "/admin/teams").await;
    assert_eq!(teams.status, StatusCode::OK, "{}", teams.body);
    assert!(teams.body.contains("Renal Unit"), "{}", teams.body);
    let csrf = teams.field("csrf");

    // A new team, refused without a name (what was typed kept), then made.
    let unnamed = ada
        .post(
            "/admin/teams",
            &[
                ("csrf", &csrf),
                ("name", " "),
                ("description", "Stoma nurses"),
            ],
        )
        .await;
    assert_eq!(
        unnamed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unnamed.body
    );
    assert!(unnamed.body.contains("Stoma nurses"));
    let created = ada
        .post(
            "/admin/teams",
            &[
                ("csrf", &csrf),
                ("name", "Stoma Care"),
                ("description", "Stoma nurses"),
            ],
        )
        .await;
    let team_path = created.location.clone().unwrap();
    let team_id = team_path.trim_start_matches("/admin/teams/").to_string();
    let page = ada.follow(created).await;
    assert!(page.body.contains("Stoma Care"), "{}", page.body);
    assert!(page.body.contains("No members yet."));

    // Two nurses found by name and added; Ned the default contact.
    for (name, who) in [("nin", &org.nurse), ("NED", &org.nurse2)] {
        let found = ada.get(&format!("{team_path}?find={name}")).await;
        let id = who.person_id.to_string();
        assert!(found.body.contains(&id), "{}", found.body);
        let added = ada
            .post(
                &team_path,
                &[
                    ("csrf", &csrf),
                    ("do", "add"),
                    ("person", &id),
                    ("contactable", "yes"),
                ],
            )
            .await;
        assert!(added.status.is_redirection(), "{}", added.body);
    }
    let ned = org.nurse2.person_id.to_string();
    let set = ada
        .post(
            &team_path,
            &[("csrf", &csrf), ("do", "default"), ("person", &ned)],
        )
        .await;
    let page = ada.follow(set).await;
    assert!(page.body.contains("Saved."), "{}", page.body);
    assert!(
        page.body
            .contains("Default messaging contact: <strong>Ned Brown"),
        "{}",
        page.body
    );

    // Alerts: off for a new team, then on, as the page says.
    assert!(page.body.contains("Alerts are off"), "{}", page.body);
    let alerted = ada
        .post(
            &team_path,
            &[("csrf", &csrf), ("do", "alerts"), ("on", "yes")],
        )
        .await;
    let page = ada.follow(alerted).await;
    assert!(page.body.contains("Alerts are on"), "{}", page.body);
    assert!(page.body.contains("Turn alerts off"), "{}", page.body);

    // A join code, with the two links and the buttons to paste.
    let issued = ada
        .post(&team_path, &[("csrf", &csrf), ("do", "code")])
        .await;
    let page = ada.follow(issued).await;
    let join = after(&page.body, "/join/", '<').to_string();
    assert!(
        page.body.contains(&format!("/teams/{team_id}/message")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("&lt;a href="),
        "the button HTML is shown as text: {}",
        page.body
    );

    // Pat joins by the link; without automatic CC the team reaches Ned.
    let mut pat = browser(&s, &org);
    let join_page = pat.sign_in(&org.patient, &format!("/join/{join}")).await;
    assert!(
        join_page.body.contains("Join Stoma Care"),
        "{}",
        join_page.body
    );
    let pat_csrf = join_page.field("csrf");
    let joined = pat
        .post(&format!("/join/{join}"), &[("csrf", &pat_csrf)])
        .await;
    assert!(joined.status.is_redirection(), "{}", joined.body);
    let offer = pat.get("/messages/new").await;
    // The team's entry, up to the end of its label.
    let stoma = after(&offer.body, "Stoma Care</strong>", '\n');
    let stoma = &stoma[..stoma.find("</div>").unwrap_or(stoma.len())];
    assert!(
        stoma.contains("Stoma nurses. It reaches Ned Brown"),
        "{stoma}: {}",
        offer.body
    );

    // Automatic CC on: the team is one entry reaching everyone who answers.
    let on = ada
        .post(
            &team_path,
            &[("csrf", &csrf), ("do", "auto-cc"), ("on", "yes")],
        )
        .await;
    let page = ada.follow(on).await;
    assert!(page.body.contains("Automatic CC is on"), "{}", page.body);
    let offer = pat.get("/messages/new").await;
    let entry = after(&offer.body, "Stoma Care</strong>", '\n');
    let entry = &entry[..entry.find("</div>").unwrap_or(entry.len())];
    assert!(
        entry.contains("Everyone in the team who answers messages"),
        "{}",
        offer.body
    );

    // People: a professional registered, found, closed (after being told
    // what that does) and opened again.
    let people = ada.get("/admin/people").await;
    assert_eq!(people.status, StatusCode::OK, "{}", people.body);
    let registered = ada
        .post(
            "/admin/people",
            &[
                ("csrf", &csrf),
                ("kind", "professional"),
                ("name", "Olu Ade"),
                ("role_label", "Stoma Nurse"),
                ("email", "olu.ade@hospital.example"),
            ],
        )
        .await;
    let page = ada.follow(registered).await;
    assert!(page.body.contains("Registered."), "{}", page.body);
    assert!(page.body.contains("Olu Ade (Stoma Nurse)"), "{}", page.body);
    assert!(page.body.contains("not verified"), "{}", page.body);
    let olu = after(&page.body, "href=\"/admin/people/", '?').to_string();
    let close = ada
        .get(&format!("/admin/people/{olu}/close?name=Olu+Ade&find=Olu"))
        .await;
    assert!(
        close.body.contains("signs them out everywhere"),
        "{}",
        close.body
    );
    let closed = ada
        .post(
            &format!("/admin/people/{olu}"),
            &[("csrf", &csrf), ("do", "deactivate"), ("find", "Olu")],
        )
        .await;
    let page = ada.follow(closed).await;
    assert!(
        page.body.contains("The account is closed."),
        "{}",
        page.body
    );
    assert!(page.body.contains("Closed"), "{}", page.body);
    let opened = ada
        .post(
            &format!("/admin/people/{olu}"),
            &[("csrf", &csrf), ("do", "reactivate"), ("find", "Olu")],
        )
        .await;
    let page = ada.follow(opened).await;
    assert!(page.body.contains("open again"), "{}", page.body);

    // A staff role, seen and granted on the web, then taken away (asked
    // first: asking changes nothing).
    let granted = ada
        .post(
            &format!("/admin/people/{olu}"),
            &[
                ("csrf", &csrf),
                ("do", "grant"),
                ("role", "auditor"),
                ("name", "Olu Ade"),
                ("find", "Olu"),
            ],
        )
        .await;
    let page = ada.follow(granted).await;
    assert!(page.body.contains("The role is granted."), "{}", page.body);
    let tag = "<strong class=\"nhsuk-tag nhsuk-tag--purple\">Privacy officer</strong>";
    assert!(page.body.contains(tag), "{}", page.body);
    let revoke = [
        ("csrf", csrf.as_str()),
        ("do", "revoke"),
        ("role", "auditor"),
        ("name", "Olu Ade"),
        ("find", "Olu"),
    ];
    let asked = ada.post(&format!("/admin/people/{olu}"), &revoke).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked.body.contains("privacy officer role?"),
        "{}",
        asked.body
    );
    assert!(ada.get("/admin/people?find=Olu").await.body.contains(tag));
    let confirmed = [revoke.as_slice(), &[("confirmed", "yes")]].concat();
    let taken = ada.post(&format!("/admin/people/{olu}"), &confirmed).await;
    let page = ada.follow(taken).await;
    assert!(
        page.body.contains("The role is taken away."),
        "{}",
        page.body
    );
    assert!(!page.body.contains(tag), "{}", page.body);

    // A patient with a date of birth and a hospital number: shown beside
    // the name; a wrong NHS number is refused with the form again, what was
    // typed kept; a right one is saved, and finds her.
    let registered = ada
        .post(
            "/admin/people",
            &[
                ("csrf", &csrf),
                ("kind", "patient"),
                ("name", "Rhian Price"),
                ("email", ""),
                ("date_of_birth", "7/1/1958"),
                ("hospital_number", "rx9001"),
                ("nhs_number", ""),
            ],
        )
        .await;
    let page = ada.follow(registered).await;
    assert!(
        page.body.contains(&format!(
            "{}</span>",
            identity(&["born 7 January 1958", "hospital no. RX9001"])
        )),
        "{}",
        page.body
    );
    let rhian = after(&page.body, "href=\"/admin/people/", '?').to_string();
    let wrong = [
        ("csrf", csrf.as_str()),
        ("do", "details"),
        ("find", "Rhian"),
        ("date_of_birth", "07/01/1958"),
        ("hospital_number", "RX9001"),
        ("nhs_number", "401 023 2138"),
    ];
    let refused = ada.post(&format!("/admin/people/{rhian}"), &wrong).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("nhs_number"), "{}", refused.body);
    assert!(
        refused.body.contains("value=\"401 023 2138\""),
        "{}",
        refused.body
    );
    let right = [&wrong[..5], &[("nhs_number", "401 023 2137")]].concat();
    let saved = ada.post(&format!("/admin/people/{rhian}"), &right).await;
    let page = ada.follow(saved).await;
    assert!(
        page.body
            .contains("The date of birth and numbers are saved."),
        "{}",
        page.body
    );
    let found = ada.get("/admin/people?find=4010232137").await;
    assert!(
        found.body.contains("NHS no. 401 023 2137"),
        "{}",
        found.body
    );
    assert!(found.body.contains("Rhian Price"), "{}", found.body);

    // Nobody under an address that names no one.
    let nobody = ada.get("/admin/people/not-an-id").await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND, "{}", nobody.body);
    assert!(nobody.body.contains("Nobody here"), "{}", nobody.body);

    // Not for anyone else.
    assert_eq!(pat.get("/admin/teams").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        pat.get(&format!("/admin/people/{rhian}")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(pat.get("/admin/people").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurse_writes_first_to_a_patient_and_sees_who_has_waited() {
    use careline_client::Steps;
    let s = support::system("web_start").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    let mut nina = browser(&s, &org);
    let inbox = format!("/teams/{}/inbox", org.renal);
    // Pat's question is unanswered: her row says how long she has waited.
    let page = nina.sign_in(&org.nurse, &inbox).await;
    assert!(
        page.body.contains("waiting under a minute"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("/teams/{}/start", org.renal)));

    // She finds Sam among the team's patients by his surname, and writes
    // to him first.
    let start = format!("/teams/{}/start", org.renal);
    let found = nina.get(&format!("{start}?q=GREEN")).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert!(found.body.contains("Sam Green"), "{}", found.body);
    assert!(!found.body.contains("Pat Jones"), "{}", found.body);
    let sam = org.other_patient.person_id.to_string();
    let new = format!("/messages/new?patient={sam}&team={}", org.renal);
    assert!(
        found.body.contains(&new.replace('&', "&amp;")),
        "{}",
        found.body
    );
    let form = nina.get(&new).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(
        form.body.contains("New message to Sam Green"),
        "{}",
        form.body
    );
    // Whose record, told apart from any other Sam Green.
    assert!(
        form.body.contains(&identity(&[
            "born 2 November 1988",
            "hospital no. RX5520384",
            "NHS no. 485 777 3457"
        ])),
        "{}",
        form.body
    );
    let renal = format!("team:{}", org.renal);
    assert!(
        form.body.contains(&format!("value=\"{renal}\" checked")),
        "{}",
        form.body
    );
    let csrf = form.field("csrf");
    // No subject: refused, what she wrote kept.
    let refused = nina
        .post(
            "/messages/new",
            &[
                ("csrf", &csrf),
                ("patient", &sam),
                ("to", &renal),
                ("subject", ""),
                ("body", "Your new clinic time is 10:30."),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Your message was not sent"));
    assert!(refused.body.contains("Your new clinic time is 10:30."));
    let sent = nina
        .post(
            "/messages/new",
            &[
                ("csrf", &csrf),
                ("patient", &sam),
                ("to", &renal),
                ("subject", "Clinic time"),
                ("body", "Your new clinic time is 10:30."),
            ],
        )
        .await;
    let page = nina.follow(sent).await;
    assert!(page.body.contains("Your new clinic time is 10:30."));
    assert!(page.body.contains("Sam Green"), "{}", page.body);
    // In the team's inbox, and nobody is waiting on it.
    let all = nina.get(&format!("{inbox}?show=active")).await;
    let row = all.body.split("Clinic time").nth(1).unwrap();
    let row = row.split("</tr>").next().unwrap();
    assert!(row.contains("last activity"), "{row}");
    assert!(!row.contains("waiting"), "{row}");
    let mut sams = browser(&s, &org);
    let his = sams.sign_in(&org.other_patient, "/messages").await;
    assert!(his.body.contains("Clinic time"), "{}", his.body);

    // A dietitian outside the team cannot use its page; added by name to
    // Pat's conversation, she finds it under "Added by name".
    let mut sue = browser(&s, &org);
    let denied = sue.sign_in(&org.dietitian, &start).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    s.signer
        .client(&org.nurse)
        .unwrap()
        .add_professional(&thread, &org.dietitian)
        .await
        .unwrap();
    s.settled().await;
    let by_name = sue.get("/messages?view=by-name").await;
    assert!(by_name.body.contains("My inbox"), "{}", by_name.body);
    assert!(
        by_name.body.contains("Fluid allowance before Monday"),
        "{}",
        by_name.body
    );
    let ninas = nina.get("/messages?view=by-name").await;
    assert!(!ninas.body.contains("Fluid allowance before Monday"));
    assert!(ninas.body.contains("Clinic time"), "{}", ninas.body);
}

/// `/readyz` reflects what the pages need: ready while every service
/// answers; with the inbox service down, not ready, naming it (every page
/// would say "Careline is not reachable just now").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_a_service_the_pages_need_that_is_down() {
    use service_kit::Service;
    let mut s = support::system("web_ready").await;
    let url = |addr: Option<std::net::SocketAddr>| format!("http://{}", addr.unwrap());
    let pairs: [(String, String); 6] = [
        ("CARELINE_WEB_ADDR".into(), "127.0.0.1:0".into()),
        ("CARELINE_WEB_METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ("CARELINE_COMMAND_URL".into(), url(Some(s.addrs.command))),
        ("CARELINE_INBOX_URL".into(), url(s.addrs.inbox)),
        ("CARELINE_AUDIT_URL".into(), url(s.addrs.audit)),
        ("CARELINE_NOTIFY_URL".into(), url(s.addrs.notify)),
    ];
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let config =
        web::Config::from_settings(&careline_settings::Settings::from_pairs(&pairs)).unwrap();
    let app = web::Application::build(config).await.unwrap();
    let (_, readiness) = app.metrics().unwrap();
    let mut failed = readiness.not_ready().await;
    for _ in 0..50 {
        if failed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        failed = readiness.not_ready().await;
    }
    assert!(failed.is_empty(), "{failed:?}");

    s.stop_inbox();
    let mut failed = Vec::new();
    for _ in 0..50 {
        failed = readiness.not_ready().await;
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].starts_with("inbox service: "), "{failed:?}");
}

/// Nina has the conversation open, showing nobody handling it; Ned assigns
/// himself meanwhile. Her "Assign to me" does not take it from him
/// silently: she is told he has it, and takes it over only if she says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_from_a_stale_page_asks_before_taking_over() {
    use careline_client::Steps;
    let s = support::system("web_takeover").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    let mut nina = browser(&s, &org);
    let page = nina
        .sign_in(&org.nurse, &format!("/threads/{thread}"))
        .await;
    assert!(
        page.body.contains("Nobody is handling it yet"),
        "{}",
        page.body
    );
    let csrf = page.field("csrf");
    assert_eq!(page.field("assignee_was"), "nobody");

    s.signer
        .client(&org.nurse2)
        .unwrap()
        .assign(&thread, &org.nurse2)
        .await
        .unwrap();
    s.settled().await;
    let stale = nina
        .post(
            &format!("/threads/{thread}/move"),
            &[
                ("csrf", &csrf),
                ("do", "assign-me"),
                ("assignee_was", "nobody"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale
            .body
            .contains("Ned Brown (Renal Nurse) took this conversation at"),
        "{}",
        stale.body
    );
    assert!(
        stale.body.contains("Take it over from Ned Brown"),
        "{}",
        stale.body
    );
    assert!(
        stale.body.contains("Leave it with Ned Brown"),
        "{}",
        stale.body
    );
    assert!(
        stale.body.contains(&format!("href=\"/threads/{thread}\"")),
        "links back: {}",
        stale.body
    );

    // She takes it over, knowingly.
    let ned = org.nurse2.person_id.to_string();
    assert_eq!(stale.field("assignee_was"), ned);
    let taken = nina
        .post(
            &format!("/threads/{thread}/move"),
            &[("csrf", &csrf), ("do", "assign-me"), ("assignee_was", &ned)],
        )
        .await;
    let page = nina.follow(taken).await;
    assert!(page.body.contains("Assigned to you."), "{}", page.body);
}

/// Each person is offered only what the rules let them do: the
/// cardiologist on the staff side gets no reply box and no "Assign to me"
/// (he writes notes); Ned, not the assignee and not a lead, no "Unassign";
/// a refused move links back to the conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_the_rules_allow_is_offered_and_a_refusal_links_back() {
    use careline_client::Steps;
    use proto::command as cmd;
    let s = support::system("web_offered").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let mut nina = s.signer.client(&org.nurse).unwrap();
    nina.assign(&thread, &org.nurse).await.unwrap();
    nina.add_recipient(
        &thread,
        cmd::recipient::Recipient::ProfessionalId(org.cardiologist.person_id.to_string()),
        true,
    )
    .await
    .unwrap();
    s.settled().await;

    let mut cardiologist = browser(&s, &org);
    let page = cardiologist
        .sign_in(&org.cardiologist, &format!("/threads/{thread}"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("You are on the staff side"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Send reply"), "{}", page.body);
    assert!(!page.body.contains("Assign to me"), "{}", page.body);
    assert!(page.body.contains("Add note"), "{}", page.body);
    // What he is offered, the service accepts: he marks it complete, then
    // reopens it.
    let csrf = page.field("csrf");
    let was = org.nurse.person_id.to_string();
    assert!(page.body.contains("Mark complete"), "{}", page.body);
    for (what, then) in [("complete", "Reopen"), ("reopen", "Mark complete")] {
        let done = cardiologist
            .post(
                &format!("/threads/{thread}/move"),
                &[("csrf", &csrf), ("do", what), ("assignee_was", &was)],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{what}: {}", done.body);
        let after = cardiologist.follow(done).await;
        assert!(after.body.contains(then), "{what}: {}", after.body);
    }

    let mut ned = browser(&s, &org);
    let page = ned
        .sign_in(&org.nurse2, &format!("/threads/{thread}"))
        .await;
    assert!(page.body.contains("Assign to me"), "{}", page.body);
    assert!(!page.body.contains(">Unassign<"), "{}", page.body);
    assert!(page.body.contains("Send reply"), "{}", page.body);

    // A move the service refuses (Ned unassigning Nina, from a form of his
    // own making): the refusal links back to the conversation.
    let csrf = page.field("csrf");
    let refused = ned
        .post(
            &format!("/threads/{thread}/move"),
            &[("csrf", &csrf), ("do", "unassign")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains(&format!(
            "<a href=\"/threads/{thread}\">Back to the conversation</a>"
        )),
        "{}",
        refused.body
    );
}

/// A link from elsewhere cannot send a signed-in person off the site:
/// `next=/<TAB>/evil.example` (which a browser resolves to
/// `//evil.example`) goes to where their role starts (`/`) instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_never_sends_the_browser_to_another_site() {
    let s = support::system("web_next").await;
    let org = s.org().await;
    for next in [
        "%2F%09%2Fevil.example",
        "%2F%5Cevil.example",
        "%2F%2Fevil.example",
    ] {
        let mut pat = browser(&s, &org);
        let page = pat.get(&format!("/sign-in?next={next}")).await;
        assert_eq!(page.field("next"), "/", "{next}");
        let (csrf, id) = (page.field("csrf"), org.patient.person_id.to_string());
        let signed = pat
            .post(
                "/sign-in/demo",
                &[
                    ("csrf", &csrf),
                    ("next", "/\t/evil.example"),
                    ("person_id", &id),
                ],
            )
            .await;
        assert_eq!(signed.location.as_deref(), Some("/"), "{next}");
    }
}

/// A link on another site cannot forge a read receipt: opening Pat's
/// conversation from there shows it but marks nothing read (she stays in
/// "not read by the patient"); the page asks for it with its form token,
/// and a visit from Careline's own pages marks it as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_from_another_site_marks_nothing_read() {
    let s = support::system("web_readlink").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.post(&org.nurse, &thread, "Up to one litre on Sunday, Pat.")
        .await;
    s.settled().await;
    async fn unread_of(s: &System, who: &Caller, thread: &str) -> u32 {
        let at = s.settled().await;
        let page = testkit::inbox_page(&mut s.inbox(who), at).await;
        page.threads
            .iter()
            .find(|t| t.thread_id == thread)
            .unwrap()
            .unread_count
    }
    let mut pat = browser(&s, &org);
    pat.sign_in(&org.patient, "/messages").await;
    let page = pat
        .get_from(&format!("/threads/{thread}"), "cross-site")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Up to one litre"), "{}", page.body);
    assert!(page.body.contains("id=\"mark-read\""), "{}", page.body);
    assert_eq!(
        unread_of(&s, &org.patient, &thread).await,
        1,
        "a cross-site link marked nothing"
    );

    // The page's own request, with its token, marks it.
    let csrf = page.field("csrf");
    let forged = pat
        .post(&format!("/threads/{thread}/read"), &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(unread_of(&s, &org.patient, &thread).await, 1);
    let marked = pat
        .post(&format!("/threads/{thread}/read"), &[("csrf", &csrf)])
        .await;
    assert!(marked.status.is_redirection(), "{}", marked.body);
    assert_eq!(unread_of(&s, &org.patient, &thread).await, 0);
}

/// Pat's page while the inbox service is gone: the "not reachable" page
/// with a reference, never the text of the failed call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_gone_is_not_reachable_just_now_never_its_error_text() {
    let mut s = support::system("web_gone").await;
    let org = s.org().await;
    first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    let mut pat = browser(&s, &org);
    let page = pat.sign_in(&org.patient, "/messages").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);

    s.stop_inbox();
    // It stops gracefully: wait until it is gone.
    for _ in 0..100 {
        if pat.get("/messages").await.status != StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for path in ["/messages", "/record", "/messages/new"] {
        let gone = pat.get(path).await;
        assert_eq!(
            gone.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            gone.body
        );
        assert!(
            gone.body.contains("Careline is not reachable just now"),
            "{path}: {}",
            gone.body
        );
        assert!(gone.body.contains("Reference "), "{path}: {}", gone.body);
        let main = gone
            .body
            .split("<main")
            .nth(1)
            .and_then(|m| m.split("</main>").next())
            .unwrap_or_default()
            .to_lowercase();
        for raw in ["transport", "canceled", "cancelled", "connection", "error"] {
            assert!(!main.contains(raw), "{path} shows {raw:?}: {}", gone.body);
        }
    }
}

/// The look is a file of its own, named by its fingerprint and kept by the
/// browser for a year; the page names the file it is served as.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_style_sheet_is_a_file_named_by_its_content() {
    let s = support::system("web_style").await;
    let org = s.org().await;
    let mut b = browser(&s, &org);
    let page = b.sign_in(&org.patient, "/messages").await;
    let marker = "<link rel=\"stylesheet\" href=\"";
    let start = page.body.find(marker).expect("a style sheet") + marker.len();
    let href = &page.body[start..start + page.body[start..].find('"').unwrap()];
    assert!(href.starts_with("/static/careline.css?v="), "{href}");
    let response = b
        .app
        .clone()
        .oneshot(Request::get(href).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    assert!(
        response.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let css = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&css).contains(".message .body"));
}

/// The style sheet the web serves is the build of `services/web/design`:
/// the NHS design system at the version its lock file pins, with
/// Careline's own parts (`npm run build` there makes it; deploy/
/// ensure-services.sh installs what it needs). It loads nothing from
/// another site, so the pages' CSP holds.
#[test]
fn the_style_sheet_is_the_locked_design_systems_build() {
    let design = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("design");
    let sass = design.join("node_modules/.bin/sass");
    assert!(
        sass.exists(),
        "{} is missing: run deploy/ensure-services.sh (or 'npm ci' in {})",
        sass.display(),
        design.display()
    );
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(design.join("package-lock.json")).unwrap()).unwrap();
    let pinned = lock["packages"]["node_modules/nhsuk-frontend"]["version"]
        .as_str()
        .unwrap();
    let installed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(design.join("node_modules/nhsuk-frontend/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        installed["version"],
        pinned,
        "the installed nhsuk-frontend is not the one package-lock.json pins: run 'npm ci' in {}",
        design.display()
    );
    let built = std::env::temp_dir().join(format!("careline-{}.css", std::process::id()));
    let status = std::process::Command::new(&sass)
        .args([
            "--no-source-map",
            "--style=compressed",
            "--load-path=node_modules",
        ])
        .arg("careline.scss")
        .arg(&built)
        .current_dir(&design)
        .status()
        .unwrap();
    assert!(status.success());
    let fresh = std::fs::read_to_string(&built).unwrap();
    let _ = std::fs::remove_file(&built);
    let served = std::fs::read_to_string(design.join("../static/careline.css")).unwrap();
    assert!(
        fresh == served,
        "static/careline.css is not the build of design/careline.scss: run 'npm run build' in {}",
        design.display()
    );
    assert!(served.contains(&format!("--nhsuk-frontend-version: \"{pinned}\"")));
    assert!(served.contains(".nhsuk-button--warning"));
    assert!(!served.contains("@font-face") && !served.contains("https://"));
}

/// A multipart form: its text fields in order, then `files` (name, bytes).
fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----careline-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .bytes(),
        );
    }
    for (file_name, bytes) in files {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_sends_a_photo_with_a_reply_and_the_nurse_downloads_it() {
    tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let s = support::system("web_files").await;
        let org = s.org().await;
        let thread = first_thread(&s.signer, &org).await.unwrap();
        s.thread(&org.patient, &thread, s.head().await).await;
        let path = format!("/threads/{thread}");
        let mut pat = browser(&s, &org);
        let page = pat.sign_in(&org.patient, &path).await;
        assert!(
            page.body.contains("enctype=\"multipart/form-data\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("Attach files (optional)"));
        let csrf = page.field("csrf");
        let reply = format!("{path}/reply");
        let send = |csrf: &str, text: &str, files: &[(&str, &[u8])]| {
            let (kind, body) = multipart(&[("csrf", csrf), ("body", text)], files);
            Request::post(reply.clone())
                .header(header::CONTENT_TYPE, kind)
                .body(Body::from(body))
                .unwrap()
        };

        // A file that is not what its name says: refused, named with the
        // reason, her words kept, nothing sent.
        let mut request = send(
            &csrf,
            "Here is the rash today",
            &[("rash.pdf", b"\xFF\xD8\xFF\xE0 a jpeg")],
        );
        request
            .headers_mut()
            .insert(header::COOKIE, pat.cookie_header().parse().unwrap());
        let refused = pat.send(request).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("rash.pdf was not sent"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("a JPEG image"), "{}", refused.body);
        assert!(
            refused.body.contains("Here is the rash today"),
            "the text was kept"
        );

        // The photo itself goes.
        let photo: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
            .into_iter()
            .chain((0..50_000).map(|i| (i % 253) as u8))
            .collect();
        let mut request = send(&csrf, "Here is the rash today", &[("rash.jpg", &photo)]);
        request
            .headers_mut()
            .insert(header::COOKIE, pat.cookie_header().parse().unwrap());
        let sent = pat.send(request).await;
        let shown = pat.follow(sent).await;
        assert!(shown.body.contains("rash.jpg"), "{}", shown.body);
        assert!(shown.body.contains("(JPEG image, 49 KB)"), "{}", shown.body);

        // Without the form's token nothing is uploaded.
        let mut forged = send("not-the-token", "x", &[("rash.jpg", &photo)]);
        forged
            .headers_mut()
            .insert(header::COOKIE, pat.cookie_header().parse().unwrap());
        assert_eq!(pat.send(forged).await.status, StatusCode::FORBIDDEN);

        // The nurse downloads it: an attachment, its type never guessed.
        let mut nina = browser(&s, &org);
        let page = nina.sign_in(&org.nurse, &path).await;
        let start = page.body.find("/files/").expect("a link to the file");
        let link = page.body[..start].rsplit('"').next().unwrap().to_string()
            + &page.body[start..start + 7 + 64];
        let request = Request::get(&link)
            .header(header::COOKIE, nina.cookie_header())
            .body(Body::empty())
            .unwrap();
        let response = nina.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(
            headers[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .starts_with("attachment; filename=\"rash.jpg\"")
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            bytes.to_vec() == photo,
            "the download differs from what was sent"
        );

        // A new conversation may start with a file and no text.
        let new = pat.get("/messages/new").await;
        assert!(
            new.body.contains("enctype=\"multipart/form-data\""),
            "{}",
            new.body
        );
        let renal = format!("team:{}", org.renal);
        let (kind, body) = multipart(
            &[
                ("csrf", &csrf),
                ("to", &renal),
                ("subject", "Clinic letter"),
                ("body", ""),
            ],
            &[("letter.pdf", b"%PDF-1.7 the letter")],
        );
        let request = Request::post("/messages/new")
            .header(header::CONTENT_TYPE, kind)
            .header(header::COOKIE, pat.cookie_header())
            .body(Body::from(body))
            .unwrap();
        let started = pat.send(request).await;
        let started = pat.follow(started).await;
        assert!(started.body.contains("letter.pdf"), "{}", started.body);
        assert!(started.body.contains("(PDF, 19 bytes)"), "{}", started.body);

        // Someone who does not see the conversation gets no file.
        let mut other = browser(&s, &org);
        other.sign_in(&org.other_patient, "/messages").await;
        let request = Request::get(&link)
            .header(header::COOKIE, other.cookie_header())
            .body(Body::empty())
            .unwrap();
        let response = other.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    })
    .await
    .expect("the test took over two minutes");
}
