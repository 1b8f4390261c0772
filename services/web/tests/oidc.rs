//! Sign-in at a real OpenID Connect provider (the certified `oidc-provider`
//! of deploy/web-tools, on Node.js, with its development sign-in page): the
//! web service sends the browser there with a state, a nonce and a PKCE
//! challenge; back with a code, it exchanges it (with the verifier and its
//! client secret) for an ID token, which it checks. A way back that this
//! browser did not start, or a code used twice, signs no one in.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tokio::io::{AsyncBufReadExt, BufReader};
use tower::ServiceExt;

mod support;

use testkit::oidc::{Answer, Browser, answer};

const CLIENT: &str = "careline-web";
const SECRET: &str = "a-test-secret";
const CALLBACK: &str = "http://web.test/sign-in/callback";

/// The provider on a free port, until dropped.
struct Provider {
    issuer: String,
    _process: tokio::process::Child,
}

async fn provider() -> Provider {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/web-tools");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut process = tokio::process::Command::new("node")
        .arg(root.join("oidc-provider.mjs"))
        .args([&port.to_string(), CLIENT, SECRET, CALLBACK])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node (deploy/ensure-services.sh installs deploy/web-tools)");
    let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the provider starts within 20 s")
        .unwrap()
        .unwrap();
    let issuer = ready.strip_prefix("ready ").unwrap().to_string();
    Provider {
        issuer,
        _process: process,
    }
}

/// A browser at the web service: its cookies.
struct AtWeb {
    app: axum::Router,
    cookies: HashMap<String, String>,
}

impl AtWeb {
    async fn get(&mut self, path: &str) -> Answer {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let request = Request::get(path)
            .header(header::COOKIE, cookies.join("; "))
            .body(Body::empty())
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        answer(response, &mut self.cookies).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = Request::post(path)
            .header(header::COOKIE, cookies.join("; "))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        answer(response, &mut self.cookies).await
    }

    fn new(app: &axum::Router) -> Self {
        Self {
            app: app.clone(),
            cookies: HashMap::new(),
        }
    }

    /// Signs in at the provider as `login`, starting from
    /// `/sign-in/oidc?next=<next>`: where the web service then sends the
    /// browser.
    async fn through_provider(&mut self, idp: &Provider, next: &str, login: &str) -> Answer {
        let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let away = self.get(&format!("/sign-in/oidc?next={next}")).await;
        let back = Browser::default()
            .sign_in_at_provider(&idp.issuer, &away.location, login, CALLBACK)
            .await;
        self.get(back.strip_prefix("http://web.test").unwrap())
            .await
    }
}

/// The provider, and the web service signing in at it, on new services.
async fn signing_in(
    label: &str,
) -> (
    Provider,
    testkit::System,
    careline_client::demo::DemoOrg,
    axum::Router,
) {
    let idp = provider().await;
    let s = support::system_trusting(label, Some((idp.issuer.clone(), CLIENT.into()))).await;
    let org = s.org().await;
    let settings = web::oidc::OidcSettings {
        issuer: idp.issuer.clone(),
        client_id: CLIENT.into(),
        client_secret: service_kit::secret::Secret::new(SECRET),
        redirect_uri: CALLBACK.into(),
        label: "Sign in with the test provider".into(),
    };
    let oidc = web::oidc::Oidc::discover(settings).await.unwrap();
    let app = web::router(support::web_signing_in_at(&s, &org, oidc));
    (idp, s, org, app)
}

/// Every event in the log.
async fn log_of(s: &testkit::System) -> Vec<event_store::RecordedEvent> {
    use event_store::EventStore;
    use futures::StreamExt;
    let store = s.stream.store();
    let head = store.last_position().await.unwrap();
    store
        .subscribe(1)
        .await
        .unwrap()
        .take(head as usize)
        .map(|e| e.unwrap())
        .collect()
        .await
}

/// A hidden field's value in a page.
fn hidden(body: &str, name: &str) -> String {
    body.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_patient_signs_up_with_a_join_code_and_afterwards_just_signs_in() {
    let (idp, s, org, app) = signing_in("web_oidc_sign_up").await;
    let mut browser = AtWeb::new(&app);

    // Signed in at the provider, linked to no one: told how to link.
    let landed = browser.through_provider(&idp, "/messages", "nia.new").await;
    assert_eq!(landed.status, StatusCode::OK, "{}", landed.body);
    assert!(landed.body.contains("Link your account"), "{}", landed.body);
    assert!(landed.body.contains("Nia New"), "{}", landed.body);
    assert!(!browser.cookies.contains_key("careline_session"));

    // The join code form, then the team's sign-up button.
    let to_join = browser
        .get(&format!("/join?code=+{}+", org.renal_join_code))
        .await;
    assert_eq!(to_join.location, format!("/join/{}", org.renal_join_code));
    let join = browser.get(&to_join.location).await;
    assert_eq!(join.status, StatusCode::OK, "{}", join.body);
    assert!(join.body.contains("Sign up and join"), "{}", join.body);
    assert!(join.body.contains("nia.new@idp.example"), "{}", join.body);
    let csrf = hidden(&join.body, "csrf");
    let action = format!("/join/{}/sign-up", org.renal_join_code);

    // Another browser cannot use this one's held sign-in; a wrong token
    // is refused.
    let mut stranger = AtWeb::new(&app);
    let stolen = stranger.post(&action, &[("csrf", &csrf)]).await;
    assert!(stolen.status.is_redirection());
    assert!(!stranger.cookies.contains_key("careline_session"));
    let forged = browser.post(&action, &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let signed_up = browser.post(&action, &[("csrf", &csrf)]).await;
    assert!(signed_up.status.is_redirection(), "{}", signed_up.body);
    assert_eq!(signed_up.location, format!("/teams/{}/message", org.renal));
    let writing = browser.get(&signed_up.location).await;
    assert_eq!(writing.status, StatusCode::OK, "{}", writing.body);
    assert!(writing.body.contains("Nia New"), "{}", writing.body);

    // In the log: her record, under the id her account derives, and the link.
    let patient = service_kit::ids::identity::sign_up_patient(&idp.issuer, "nia.new");
    let account = service_kit::ids::identity::account(&idp.issuer, "nia.new");
    let events = log_of(&s).await;
    let linked: Vec<_> = events
        .iter()
        .filter(|e| e.envelope.event_type == "IdentityLinked")
        .collect();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].envelope.aggregate_id, account.to_string());
    assert!(
        events
            .iter()
            .any(|e| e.envelope.event_type == "PatientRegistered"
                && e.envelope.aggregate_id == patient.to_string())
    );

    // Another day, another browser: signing in is all she does.
    let mut later = AtWeb::new(&app);
    let back = later.through_provider(&idp, "/messages", "nia.new").await;
    assert!(back.status.is_redirection(), "{}", back.body);
    assert_eq!(back.location, "/messages");
    let messages = later.get("/messages").await;
    assert_eq!(messages.status, StatusCode::OK);
    assert!(messages.body.contains("Nia New"), "{}", messages.body);
    // Still one link.
    let events = log_of(&s).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.envelope.event_type == "IdentityLinked")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_person_links_by_the_invitation_their_email_carried() {
    let (idp, s, org, app) = signing_in("web_oidc_invitation").await;
    // The nurse's verification email, as the notification service signs it.
    let email = format!(
        "{}@hospital.example",
        org.nurse.name.to_lowercase().replace([' ', '.'], "")
    );
    let token = service_kit::test_link_issuer().mint(&service_kit::EmailLink {
        person_id: org.nurse.person_id,
        addressee: service_kit::Addressee::Person,
        email,
        request_id: careline_client::bearer::command_id(),
        expires_at: std::time::SystemTime::now() + Duration::from_secs(3600),
    });
    let link = format!("/email/confirm?token={token}");

    // Not signed in: the link sends her to sign in, and back to it.
    let mut browser = AtWeb::new(&app);
    let first = browser.get(&link).await;
    assert!(
        first.location.starts_with("/sign-in?next="),
        "{}",
        first.location
    );
    let back = browser.through_provider(&idp, &link, "nina.at.work").await;
    assert_eq!(back.location, link, "{}", back.body);
    let offer = browser.get(&link).await;
    assert_eq!(offer.status, StatusCode::OK, "{}", offer.body);
    assert!(offer.body.contains("Link my account"), "{}", offer.body);

    // A forged token links no one and signs no one in.
    let csrf = hidden(&offer.body, "csrf");
    let forged = browser
        .post(
            "/email/confirm/link",
            &[("csrf", &csrf), ("token", "eyJhbGciOiJFZERTQSJ9.e30.x")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(forged.body.contains("was not linked"), "{}", forged.body);
    assert!(!browser.cookies.contains_key("careline_session"));

    let linked = browser
        .post("/email/confirm/link", &[("csrf", &csrf), ("token", &token)])
        .await;
    assert_eq!(linked.location, "/account?done=linked", "{}", linked.body);
    let account = browser.get(&linked.location).await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.body);
    assert!(account.body.contains(&org.nurse.name), "{}", account.body);
    assert!(account.body.contains("now linked"), "{}", account.body);

    // The link is spent: someone else who gets hold of it (a forwarded
    // email) cannot link their account to her with it.
    let mut other = AtWeb::new(&app);
    other.get(&link).await;
    other.through_provider(&idp, &link, "someone.else").await;
    let offer = other.get(&link).await;
    assert_eq!(offer.status, StatusCode::OK, "{}", offer.body);
    let csrf_other = hidden(&offer.body, "csrf");
    let reused = other
        .post(
            "/email/confirm/link",
            &[("csrf", &csrf_other), ("token", &token)],
        )
        .await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reused.body
    );
    assert!(
        reused.body.contains("this link has been used already"),
        "{}",
        reused.body
    );
    assert!(!other.cookies.contains_key("careline_session"));

    // From now on the provider's sign-in is hers. She is also the unit's
    // privacy officer: the same sign-in may work in either role.
    s.signer
        .client(&org.admin)
        .unwrap()
        .grant_staff_role(proto::command::GrantStaffRoleRequest {
            command_id: careline_client::bearer::command_id(),
            person_id: org.nurse.person_id.to_string(),
            role: "auditor".into(),
            name: org.nurse.name.clone(),
        })
        .await
        .unwrap();
    let mut later = AtWeb::new(&app);
    let again = later
        .through_provider(&idp, "/messages", "nina.at.work")
        .await;
    assert_eq!(again.location, "/messages");
    let messages = later.get("/messages").await;
    assert!(messages.body.contains(&org.nurse.name), "{}", messages.body);
    assert!(messages.body.contains("Working as"), "{}", messages.body);
    assert!(
        messages.body.contains("Privacy officer"),
        "{}",
        messages.body
    );
    assert!(messages.body.contains("Team inboxes"), "{}", messages.body);
    let csrf = hidden(&messages.body, "csrf");
    // A role not granted to her is refused.
    let admin = later
        .post("/session/role", &[("csrf", &csrf), ("role", "admin")])
        .await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN, "{}", admin.body);
    let switched = later
        .post("/session/role", &[("csrf", &csrf), ("role", "auditor")])
        .await;
    assert_eq!(switched.location, "/audit", "{}", switched.body);
    let audit = later.get("/audit").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    assert!(audit.body.contains("Audit trails"), "{}", audit.body);
    assert!(!audit.body.contains("Team inboxes"), "{}", audit.body);
    // And back.
    let back = later
        .post(
            "/session/role",
            &[("csrf", &csrf), ("role", "professional")],
        )
        .await;
    assert_eq!(back.location, "/teams", "{}", back.body);
    let teams = later.get("/teams").await;
    assert_eq!(teams.status, StatusCode::OK, "{}", teams.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_at_a_real_openid_provider_and_a_forged_way_back_signs_no_one_in() {
    let (idp, _s, _org, app) = signing_in("web_oidc").await;
    let mut browser = AtWeb::new(&app);

    // The sign-in page offers the provider; off to it, with PKCE.
    let page = browser.get("/sign-in?next=%2Fmessages").await;
    assert!(
        page.body.contains("Sign in with the test provider"),
        "{}",
        page.body
    );
    let away = browser.get("/sign-in/oidc?next=%2Fmessages").await;
    assert!(away.status.is_redirection());
    assert!(away.location.starts_with(&idp.issuer), "{}", away.location);
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "state=",
        "client_id=careline-web",
    ] {
        assert!(away.location.contains(part), "{part} in {}", away.location);
    }

    // Signed in there, back with a code: the ID token names her.
    let mut at_idp = Browser::default();
    let back = at_idp
        .sign_in_at_provider(&idp.issuer, &away.location, "pat.jones", CALLBACK)
        .await;
    let path = back.strip_prefix("http://web.test").unwrap().to_string();
    let landed = browser.get(&path).await;
    assert!(landed.body.contains("Pat Jones"), "{}", landed.body);
    assert!(
        landed.body.contains("not linked to a Careline account yet"),
        "{}",
        landed.body
    );
    assert!(
        !landed.body.contains("You were not signed in"),
        "{}",
        landed.body
    );

    // The same way back again (a code used twice), a state this browser
    // never got, and a refusal at the provider: no one is signed in.
    let again = browser.get(&path).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(
        again.body.contains("You were not signed in"),
        "{}",
        again.body
    );
    let away = browser.get("/sign-in/oidc?next=%2Fmessages").await;
    let back = at_idp
        .sign_in_at_provider(&idp.issuer, &away.location, "pat.jones", CALLBACK)
        .await;
    let forged = back.replace("state=", "state=forged");
    let forged = browser
        .get(forged.strip_prefix("http://web.test").unwrap())
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("start again"), "{}", forged.body);
    let refused = browser
        .get("/sign-in/callback?error=access_denied&state=x")
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Another browser, coming back with this one's code: not its sign-in.
    let mut other = AtWeb {
        app: browser.app.clone(),
        cookies: HashMap::new(),
    };
    let away = browser.get("/sign-in/oidc?next=%2Fmessages").await;
    let back = at_idp
        .sign_in_at_provider(&idp.issuer, &away.location, "pat.jones", CALLBACK)
        .await;
    let stolen = other
        .get(back.strip_prefix("http://web.test").unwrap())
        .await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN);
    assert!(stolen.body.contains("not started here"), "{}", stolen.body);
}

/// Sign-ins started from one network address are limited (each keeps a
/// pending sign-in): the 61st in a minute is refused with a page that says
/// when to try again, and keeps nothing; another address goes on. The
/// address is the proxy's `X-Forwarded-For` only when the proxy is
/// trusted: a client straight from outside cannot pick a new one per try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_starts_from_one_address_are_limited_and_others_go_on() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    let (_idp, _s, _org, app) = signing_in("oidcflood").await;
    let start = |peer: &str, forwarded: &str| {
        let peer: SocketAddr = peer.parse().unwrap();
        let request = Request::get("/sign-in/oidc?next=/messages")
            .header("x-forwarded-for", forwarded)
            .extension(ConnectInfo(peer))
            .body(Body::empty())
            .unwrap();
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).to_string())
        }
    };
    for _ in 0..60 {
        let (status, _) = start("127.0.0.1:41000", "203.0.113.9").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    let (status, body) = start("127.0.0.1:41000", "203.0.113.9").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body.contains("Too many sign-ins from your network just now")
            && body.contains("Please try again in"),
        "{body}"
    );
    // Another client behind the same proxy is not held up.
    let (status, _) = start("127.0.0.1:41001", "203.0.113.10").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // From outside, the header is not believed: every try counts against
    // the address it came from.
    for i in 0..60 {
        let (status, _) = start("198.51.100.7:40000", &format!("10.0.0.{i}")).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    let (status, _) = start("198.51.100.7:40000", "10.0.0.200").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
