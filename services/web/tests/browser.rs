//! The web pages in a real browser: headless Chromium (Debian's chromium
//! and chromium-driver, which deploy/ensure-services.sh installs) against
//! the web service on a real port and the real services. Pat follows the
//! link of an email to her thread, signs in, reads Nina's answer, replies,
//! writes a new message to the renal unit with her father copied in, sees
//! Nina's answer arrive live, replies by keyboard alone; her father, on his
//! computer, reads both threads, then loses them the moment she withdraws
//! his consent; she ends PALS's access and gives it again until a day, opens
//! a team's join link, her account and who looked at her record. Every page
//! is checked with axe-core and photographed (`target/screenshots/`, and
//! `docs/screenshots/` with `CARELINE_UPDATE_SCREENSHOTS=1`).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use careline_client::demo::{DemoOrg, first_thread};
use fantoccini::{Client, ClientBuilder, Locator};
use testkit::System;

mod support;

/// A chromedriver of this test's own, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = testkit::free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver (Debian package chromium-driver; deploy/ensure-services.sh installs it)",
        );
    // Stopped on drop, even when it does not start.
    let driver = Driver { child, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

/// A headless Chromium window of `width` × `height`.
async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            // A phone's width (a headless window is never narrower than 500).
            "mobileEmulation": {
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0 },
            },
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                format!("--window-size={width},{height}"),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap()
}

/// The web service on a loopback port, in front of `s`: its base URL.
async fn serve(s: &System, org: &DemoOrg) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = web::router(support::web(s, org));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Saves a screenshot of the page as `name`.png.
async fn photograph(client: &Client, name: &str) {
    // From the top of the page, whatever the test last scrolled to.
    client
        .execute("window.scrollTo(0, 0)", vec![])
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("target/screenshots");
    let file = dir.join(format!("{name}.png"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, &png).unwrap();
    if std::env::var("CARELINE_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = root.join("docs/screenshots");
        let file = docs.join(format!("{name}.png"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, &png).unwrap();
    }
}

/// axe-core's serious and critical accessibility violations on the page
/// (deploy/web-tools, which deploy/ensure-services.sh installs).
async fn violations(client: &Client) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("deploy/web-tools/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (deploy/ensure-services.sh installs it)",
            path.display()
        )
    });
    client.execute(&axe, vec![]).await.unwrap();
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
               .catch(e => done(['axe did not run: ' + e]));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

/// Photographs the page as `name` and checks it with axe-core: no serious
/// or critical accessibility violation.
async fn seen(client: &Client, name: &str) {
    photograph(client, name).await;
    let found = violations(client).await;
    assert!(found.is_empty(), "{name}: {found:#?}");
}

/// The page's main text once it shows `needle` (a page loads after a
/// click; waits up to 10 s).
async fn shows(client: &Client, needle: &str) -> String {
    shows_within(client, needle, Duration::from_secs(10)).await
}

/// The page's main text once it shows `needle`, within `wait`.
async fn shows_within(client: &Client, needle: &str, wait: Duration) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        if let Ok(main) = client.find(Locator::Css("main")).await {
            text = main.text().await.unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page did not show {needle:?} within {wait:?}; it shows: {text}");
}

/// Clicks the element at `xpath` once the page shows it (up to 10 s).
async fn click(client: &Client, xpath: &str) -> Result<(), fantoccini::error::CmdError> {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(xpath))
        .await?
        .click()
        .await
}

/// Signs in on the demo sign-in page as `who`, going on to `to`.
async fn sign_in_as(client: &Client, base: &str, who: &service_kit::Caller, to: &str) {
    let next: String = form_urlencoded::byte_serialize(to.as_bytes()).collect();
    client
        .goto(&format!("{base}/sign-in?next={next}"))
        .await
        .unwrap();
    let button = format!(
        "//form[input[@name='person_id'][@value='{}']]//button",
        who.person_id
    );
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&button))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    at(client, to.split('?').next().unwrap_or(to)).await;
}

/// What has the keyboard's focus: its id, or else its text.
async fn focused(client: &Client) -> String {
    client
        .execute(
            "const e = document.activeElement; return e ? (e.id || e.textContent.trim()) : '';",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Presses `key` (a character, or a WebDriver key code) on the keyboard,
/// whatever has the focus.
async fn press(client: &Client, key: char) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    client.perform_actions(keys).await.unwrap();
}

/// WebDriver's key codes.
const TAB: char = '\u{E004}';
const ENTER: char = '\u{E007}';

/// Types `text` on the keyboard, into whatever has the focus.
async fn type_keys(client: &Client, text: &str) {
    for c in text.chars() {
        press(client, c).await;
    }
}

/// Presses Tab until the focus is on `target` (an id, or a button's text):
/// reachable by keyboard alone, in at most 60 presses.
async fn tab_to(client: &Client, target: &str) {
    for _ in 0..60 {
        if focused(client).await == target {
            return;
        }
        press(client, TAB).await;
    }
    panic!("{target} cannot be reached with the Tab key");
}

/// The page's path once it starts with `prefix` (waits up to 10 s).
async fn at(client: &Client, prefix: &str) -> String {
    let mut path = String::new();
    for _ in 0..100 {
        path = client.current_url().await.unwrap().path().to_string();
        if path.starts_with(prefix) {
            return path;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {prefix}; it is at {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_uses_careline_in_a_real_browser_on_a_phone() {
    let s = support::system("web_browser").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let reply = s
        .post(&org.nurse, &thread, "Up to one litre on Sunday, Pat.")
        .await;
    testkit::inbox_page(&mut s.inbox(&org.patient), reply).await;

    let base = serve(&s, &org).await;

    let driver = driver().await;
    let phone = browser(&driver, 375, 812).await;
    let outcome = async {
        // The checker finds what it is there to find: an image without
        // words, and a button without a name.
        phone
            .goto("data:text/html,<html lang=en><title>t</title><img src=x.png><button></button></html>")
            .await?;
        let found = violations(&phone).await;
        assert!(
            found.iter().any(|v| v.starts_with("image-alt"))
                && found.iter().any(|v| v.starts_with("button-name")),
            "{found:?}"
        );

        // The email's link: sign-in first, then the thread itself.
        phone.goto(&format!("{base}/threads/{thread}")).await?;
        at(&phone, "/sign-in").await;
        seen(&phone, "sign-in").await;
        let pat = format!(
            "//form[input[@name='person_id'][@value='{}']]//button",
            org.patient.person_id
        );
        click(&phone, &pat).await?;
        at(&phone, &format!("/threads/{thread}")).await;
        let shown = shows(&phone, "Up to one litre on Sunday, Pat.").await;
        assert_eq!(phone.title().await?, "Conversation – Careline");
        assert!(shown.contains("Nina Patel"), "{shown}");
        seen(&phone, "thread").await;

        // A reply, typed and sent with the keyboard's form.
        let body = phone
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("body"))
            .await?;
        body.send_keys("Thank you, I will keep to that.").await?;
        click(&phone, "//button[text()='Send reply']").await?;
        shows(&phone, "Thank you, I will keep to that.").await;

        // Her messages, then a new one to the renal unit.
        phone.goto(&format!("{base}/messages")).await?;
        shows(&phone, "Fluid allowance before Monday").await;
        seen(&phone, "messages").await;
        phone
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::LinkText("Create new message"))
            .await?
            .click()
            .await?;
        let renal = format!("//input[@name='to'][@value='team:{}']", org.renal);
        click(&phone, &renal).await?;
        // Her father, who holds her consent, copied in.
        let chris = format!("//input[@name='carer'][@value='{}']", org.carer.person_id);
        click(&phone, &chris).await?;
        phone
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("subject"))
            .await?
            .send_keys("Blood test results")
            .await?;
        phone
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("body"))
            .await?
            .send_keys("Have my results from Tuesday come back?")
            .await?;
        seen(&phone, "new-message").await;
        click(&phone, "//button[text()='Send message']").await?;
        let path = at(&phone, "/threads/").await;
        shows(&phone, "Have my results from Tuesday come back?").await;

        // Nina answers: the open page shows it within 2 seconds, without a
        // reload; what she wrote is text, and no script in it runs.
        let started = path.trim_start_matches("/threads/").to_string();
        let answer = "Yes: they are fine. <script>document.title='pwned'</script>\
                      <img src=x onerror=\"document.title='pwned'\">";
        s.post(&org.nurse, &started, answer).await;
        let live = shows_within(&phone, "Yes: they are fine.", Duration::from_secs(2)).await;
        assert!(
            live.contains("<script>document.title='pwned'</script>"),
            "{live}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(phone.title().await?, "Conversation – Careline");
        assert_eq!(
            phone.current_url().await?.path(),
            path,
            "the page was not reloaded"
        );

        // By keyboard alone: Tab to the reply box, type, Tab to the button,
        // Enter.
        phone.goto(&format!("{base}{path}")).await?;
        shows(&phone, "Yes: they are fine.").await;
        tab_to(&phone, "body").await;
        type_keys(&phone, "Thank you, that is a relief.").await;
        tab_to(&phone, "Send reply").await;
        press(&phone, ENTER).await;
        shows(&phone, "Thank you, that is a relief.").await;

        // Chris, her father, on his computer: the thread she copied him
        // into, and her first one, while her consent holds.
        let desk = browser(&driver, 1280, 900).await;
        sign_in_as(&desk, &base, &org.carer, "/messages").await;
        let list = shows(&desk, "Blood test results").await;
        assert!(list.contains("Fluid allowance before Monday"), "{list}");
        seen(&desk, "carer-messages").await;
        desk.goto(&format!("{base}{path}")).await?;
        shows(&desk, "Thank you, that is a relief.").await;
        // And on his phone, the same conversation open.
        let pocket = browser(&driver, 375, 800).await;
        sign_in_as(&pocket, &base, &org.carer, &path).await;
        shows(&pocket, "Thank you, that is a relief.").await;

        // Who may act for her: she withdraws Chris's consent.
        phone.goto(&format!("{base}/record/carers")).await?;
        shows(&phone, "Chris Jones").await;
        seen(&phone, "record-carers").await;
        click(&phone, "//button[starts-with(text(),'Withdraw consent')]").await?;
        // Asked first, what will happen spelled out.
        shows(&phone, "What will happen").await;
        seen(&phone, "confirm-withdraw").await;
        click(&phone, "//button[starts-with(text(),'Withdraw Chris Jones')]").await?;
        shows(&phone, "Nobody holds your consent").await;

        // Chris's open page of her conversation says so at once, without a
        // reload, in place of her messages.
        let ended = shows_within(
            &desk,
            "Your access to Pat Jones's messages ended on",
            Duration::from_secs(5),
        )
        .await;
        assert!(!ended.contains("Thank you, that is a relief."), "{ended}");
        assert!(ended.contains("Your access has ended"), "{ended}");
        assert_eq!(desk.current_url().await?.path(), path);
        seen(&desk, "carer-access-ended").await;
        let ended = shows_within(
            &pocket,
            "Your access to Pat Jones's messages ended on",
            Duration::from_secs(5),
        )
        .await;
        assert!(!ended.contains("Thank you, that is a relief."), "{ended}");
        seen(&pocket, "carer-access-ended-phone").await;
        pocket.close().await?;

        // Chris loses access at once: the list says so and shows nothing
        // of hers; the thread says whose messages he may no longer read.
        desk.goto(&format!("{base}/messages")).await?;
        let gone = shows(&desk, "Nobody has given you consent").await;
        assert!(!gone.contains("Blood test results"), "{gone}");
        desk.goto(&format!("{base}{path}")).await?;
        let gone = shows(&desk, "Your access to Pat Jones's messages ended on").await;
        assert!(!gone.contains("Thank you, that is a relief."), "{gone}");
        desk.close().await?;

        // PALS sees her record (the demo's grant): she ends that, then
        // lets PALS see it again until a day she picks.
        phone.goto(&format!("{base}/record/access")).await?;
        shows(&phone, "Patient Advice and Liaison Service").await;
        seen(&phone, "record-access").await;
        click(&phone, "//button[starts-with(text(),'End Patient Advice')]").await?;
        shows(&phone, "What will happen").await;
        click(&phone, "//button[starts-with(text(),'End Patient Advice')]").await?;
        shows(&phone, "Access ended").await;
        let until = phone
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("until"))
            .await?;
        phone
            .execute(
                "const d = new Date(Date.now() + 30 * 86400e3); arguments[0].value = d.toISOString().slice(0, 10);",
                vec![serde_json::to_value(&until).unwrap()],
            )
            .await?;
        phone
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("reason"))
            .await?
            .send_keys("A second opinion")
            .await?;
        click(&phone, "//button[text()='Give access']").await?;
        shows(&phone, "Access given").await;
        phone.goto(&format!("{base}/record")).await?;
        shows(&phone, "Who may act for me").await;
        seen(&phone, "record").await;
        phone
            .goto(&format!("{base}/join/{}", org.renal_join_code))
            .await?;
        // She is one of its patients already: nothing to join.
        shows(&phone, "You are already one of Renal Unit's patients").await;
        seen(&phone, "join").await;
        phone.goto(&format!("{base}/account")).await?;
        shows(&phone, "Verified").await;
        seen(&phone, "account").await;

        // Who has looked at her record.
        phone.goto(&format!("{base}/record/trail")).await?;
        shows(&phone, "Nina Patel").await;
        seen(&phone, "record-trail").await;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    if outcome.is_err() {
        // Where it stopped, to say what was missing.
        let url = phone.current_url().await.map(|u| u.to_string());
        let text = phone.source().await.unwrap_or_default();
        eprintln!("stopped at {url:?}:\n{text}");
    }
    phone.close().await.unwrap();
    outcome.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurse_works_the_renal_inbox_in_a_real_browser() {
    let s = support::system("web_browser_staff").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    let base = serve(&s, &org).await;

    let driver = driver().await;
    let nina = browser(&driver, 1280, 900).await;
    let ned = browser(&driver, 1280, 900).await;
    let outcome = async {
        // Her teams, then the renal inbox: Pat's thread, unassigned.
        sign_in_as(&nina, &base, &org.nurse, "/teams").await;
        shows(&nina, "Renal Unit").await;
        seen(&nina, "teams").await;
        nina.goto(&format!("{base}/teams/{}/inbox", org.renal))
            .await?;
        shows(&nina, "Fluid allowance before Monday").await;
        seen(&nina, "team-inbox").await;

        // By keyboard: j to the first conversation, Enter opens it, a
        // assigns it to her; ? lists the keys.
        press(&nina, 'j').await;
        press(&nina, ENTER).await;
        at(&nina, &format!("/threads/{thread}")).await;
        shows(&nina, "Nobody is handling it yet.").await;
        // The inbox's list beside it, this conversation marked, her patient
        // told apart by date of birth.
        let beside = nina
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(".careline-split.is-open li[aria-current='page']"))
            .await?;
        let row = beside.text().await?;
        assert!(row.contains("Pat Jones") && row.contains("born 23 April 1961"), "{row}");
        assert!(row.contains("Fluid allowance before Monday"), "{row}");
        // On a phone, the conversation alone: the list is not even read.
        let phone = browser(&driver, 375, 812).await;
        sign_in_as(&phone, &base, &org.nurse, &format!("/teams/{}/inbox", org.renal)).await;
        shows(&phone, "Fluid allowance before Monday").await;
        phone.goto(&format!("{base}/threads/{thread}")).await?;
        shows(&phone, "Nobody is handling it yet.").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let fetched = phone
            .execute(
                "return performance.getEntriesByType('resource').some(function (e) { return e.name.indexOf('/queue') >= 0; }) \
                 || !document.querySelector('aside[data-queue]').hidden;",
                vec![],
            )
            .await?
            .as_bool()
            .unwrap_or(true);
        assert!(!fetched, "a phone neither fetches nor shows the list");
        phone.close().await?;
        press(&nina, 'a').await;
        shows(&nina, "Assigned to you.").await;
        press(&nina, '?').await;
        let open: bool = nina
            .execute("return document.getElementById('shortcuts').open;", vec![])
            .await?
            .as_bool()
            .unwrap_or(false);
        assert!(open, "the help overlay opens with ?");
        press(&nina, '?').await;

        // A staff note, typed after n.
        // The one box switches to a note: its button says so.
        press(&nina, 'n').await;
        assert_eq!(focused(&nina).await, "body");
        let button = nina
            .find(Locator::Css("form.composer button[type=submit]"))
            .await?;
        assert_eq!(button.text().await?, "Add note");
        type_keys(&nina, "Check her potassium first.").await;
        button.click().await?;
        shows(&nina, "Check her potassium first.").await;
        // Among the messages, labelled and tinted apart from them.
        let note = nina.find(Locator::Css("article.message.note")).await?;
        assert!(note.text().await?.contains("Staff note — not visible to the patient"));
        let tint: String = nina
            .execute(
                "return getComputedStyle(document.querySelector('article.message.note')).backgroundColor;",
                vec![],
            )
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(tint, "rgb(255, 249, 196)", "a note is tinted pale yellow");
        // The box is back to a reply after the note is added.
        let button = nina
            .find(Locator::Css("form.composer button[type=submit]"))
            .await?;
        assert_eq!(button.text().await?, "Send reply");
        // Zoomed out, to show the note below the moves and the messages.
        nina.execute("document.body.style.zoom = '0.6'", vec![])
            .await?;
        seen(&nina, "thread-staff").await;
        nina.execute("document.body.style.zoom = ''", vec![])
            .await?;

        // Ned opens the same conversation and starts a reply: Nina's page
        // says so within 2 seconds.
        sign_in_as(&ned, &base, &org.nurse2, &format!("/threads/{thread}")).await;
        shows(&ned, "Assigned to Nina Patel").await;
        let box_ = ned
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id("body"))
            .await?;
        box_.send_keys("Pat, about Sunday").await?;
        shows_within(&nina, "Ned Brown is replying", Duration::from_secs(2)).await;

        // The lead nurse hands it to Ned.
        let lead = browser(&driver, 1280, 900).await;
        sign_in_as(&lead, &base, &org.lead, &format!("/threads/{thread}")).await;
        shows(&lead, "Assigned to Nina Patel").await;
        let ned_option = format!(
            "//select[@id='assignee']/option[@value='{}']",
            org.nurse2.person_id
        );
        click(&lead, &ned_option).await?;
        click(&lead, "//button[text()='Assign']").await?;
        shows(&lead, "Assigned to Ned Brown").await;
        lead.close().await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    if outcome.is_err() {
        let url = nina.current_url().await.map(|u| u.to_string());
        let text = nina.source().await.unwrap_or_default();
        eprintln!("stopped at {url:?}:\n{text}");
    }
    nina.close().await.unwrap();
    ned.close().await.unwrap();
    outcome.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_and_a_privacy_officer_use_their_pages_in_a_real_browser() {
    let s = support::system("web_browser_admin").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.post(&org.nurse, &thread, "Up to one litre on Sunday, Pat.")
        .await;
    let base = serve(&s, &org).await;

    let driver = driver().await;
    let desk = browser(&driver, 1280, 900).await;
    let outcome = async {
        // The renal unit's settings: automatic CC, members, the website
        // buttons; a new join code.
        sign_in_as(&desk, &base, &org.admin, "/admin/teams").await;
        shows(&desk, "Create a team").await;
        seen(&desk, "admin-teams").await;
        desk.goto(&format!("{base}/admin/teams/{}", org.renal))
            .await?;
        shows(&desk, "Automatic CC is on").await;
        click(
            &desk,
            "//button[starts-with(text(),'Issue a new join code')]",
        )
        .await?;
        shows(&desk, "What will happen").await;
        seen(&desk, "confirm-join-code").await;
        click(&desk, "//button[text()='Issue a new code']").await?;
        shows(&desk, "Saved.").await;
        seen(&desk, "admin-team").await;
        desk.goto(&format!("{base}/admin/people?find=Pat")).await?;
        shows(&desk, "pat.jones@example.org").await;
        seen(&desk, "admin-people").await;
        desk.goto(&format!("{base}/sign-in")).await?;

        // The privacy officer: what Nina did, by her trail.
        sign_in_as(
            &desk,
            &base,
            &org.auditor,
            &format!("/audit?kind=person&id={}", org.nurse.person_id),
        )
        .await;
        shows(&desk, "Nina Patel posted a message").await;
        seen(&desk, "audit").await;
        desk.goto(&format!(
            "{base}/audit/verify?patient={}",
            org.patient.person_id
        ))
        .await?;
        shows(&desk, "Intact.").await;
        seen(&desk, "audit-verify").await;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    if outcome.is_err() {
        let url = desk.current_url().await.map(|u| u.to_string());
        let text = desk.source().await.unwrap_or_default();
        eprintln!("stopped at {url:?}:\n{text}");
    }
    desk.close().await.unwrap();
    outcome.unwrap();
}

/// Nina answers and archives at once: Pat's list still shows the answer,
/// unread. Pat writes a reply, but her session has ended: sending it takes
/// her to sign in, saying so; signed in, she is back on the conversation
/// with her words in the box; sent, they are gone from the browser. A reply
/// that is too long is counted as she types and refused with the numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_loses_neither_an_archived_answer_nor_a_reply_when_her_session_ends() {
    let s = support::system("web_browser_draft").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.post(&org.nurse, &thread, "Up to one litre on Sunday, Pat.")
        .await;
    let archived = {
        use careline_client::Steps;
        s.signer
            .client(&org.nurse)
            .unwrap()
            .archive(&thread)
            .await
            .unwrap()
    };
    testkit::inbox_page(&mut s.inbox(&org.patient), archived).await;

    let base = serve(&s, &org).await;
    let driver = driver().await;
    let phone = browser(&driver, 375, 812).await;
    let outcome = async {
        sign_in_as(&phone, &base, &org.patient, "/messages").await;
        let list = shows(&phone, "Fluid allowance before Monday").await;
        assert!(list.contains("1 new"), "the answer is unread: {list}");
        assert!(!list.contains("Archived"), "{list}");

        phone.goto(&format!("{base}/threads/{thread}")).await?;
        shows(&phone, "Up to one litre on Sunday, Pat.").await;
        let reply = "Thank you, I will keep to one litre.";
        let body = phone.find(Locator::Id("body")).await?;
        body.send_keys(reply).await?;
        let count = phone.find(Locator::Id("body-count")).await?.text().await?;
        assert_eq!(count, "36 of 20,000 characters.");

        // The session ends (another sign-in elsewhere ended it, or 30
        // minutes went by): the browser's cookie names no session now.
        phone.delete_cookie("careline_session").await?;
        phone
            .execute(
                "document.cookie = 'careline_session=ended-long-ago; path=/';",
                vec![],
            )
            .await?;
        phone
            .find(Locator::XPath("//button[text()='Send reply']"))
            .await?
            .click()
            .await?;
        at(&phone, "/sign-in").await;
        shows(&phone, "Your session ended, so nothing was sent").await;
        seen(&phone, "session-ended").await;

        // Signed in again: back on the conversation, the reply in the box.
        let pat = format!(
            "//form[input[@name='person_id'][@value='{}']]//button",
            org.patient.person_id
        );
        phone.find(Locator::XPath(&pat)).await?.click().await?;
        at(&phone, &format!("/threads/{thread}")).await;
        shows(&phone, "What you had written is back").await;
        let kept = phone
            .find(Locator::Id("body"))
            .await?
            .prop("value")
            .await?
            .unwrap_or_default();
        assert_eq!(kept, reply);
        seen(&phone, "draft-kept").await;
        phone
            .find(Locator::XPath("//button[text()='Send reply']"))
            .await?
            .click()
            .await?;
        shows(&phone, reply).await;
        phone.refresh().await?;
        shows(&phone, reply).await;
        let left = phone
            .find(Locator::Id("body"))
            .await?
            .prop("value")
            .await?
            .unwrap_or_default();
        assert_eq!(left, "", "sent: the draft is gone");

        // One character over the limit: counted, then refused with numbers.
        let body = phone.find(Locator::Id("body")).await?;
        phone
            .execute(
                "arguments[0].value = 'a'.repeat(20001); arguments[0].dispatchEvent(new Event('input'));",
                vec![serde_json::to_value(&body).unwrap()],
            )
            .await?;
        let count = phone.find(Locator::Id("body-count")).await?.text().await?;
        assert_eq!(count, "1 character too many: at most 20,000.");
        phone
            .find(Locator::XPath("//button[text()='Send reply']"))
            .await?
            .click()
            .await?;
        let refused = shows(&phone, "Your reply was not sent").await;
        assert!(
            refused.contains("Your message is 20,001 characters long, 1 more than the 20,000"),
            "{refused}"
        );
        seen(&phone, "reply-too-long").await;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    if outcome.is_err() {
        let url = phone.current_url().await.map(|u| u.to_string());
        let text = phone.source().await.unwrap_or_default();
        eprintln!("stopped at {url:?}:\n{text}");
    }
    phone.close().await.unwrap();
    outcome.unwrap();
}

/// Nina has a conversation open on her desktop when Ned takes it: her
/// panel says so without a reload, so she never takes it over unknowingly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_of_who_handles_a_conversation_follows_live() {
    use careline_client::Steps;
    let s = support::system("web_browser_panel").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    let base = serve(&s, &org).await;
    let driver = driver().await;
    let desk = browser(&driver, 1280, 900).await;
    let outcome = async {
        sign_in_as(&desk, &base, &org.nurse, &format!("/threads/{thread}")).await;
        shows(&desk, "Nobody is handling it yet").await;
        s.signer
            .client(&org.nurse2)
            .unwrap()
            .assign(&thread, &org.nurse2)
            .await
            .unwrap();
        shows(&desk, "Assigned to Ned Brown").await;
        // Read again while a live update may still be replacing the panel
        // (an element read as it is replaced is stale).
        let ned = org.nurse2.person_id.to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut shown = String::new();
        while shown != ned && tokio::time::Instant::now() < deadline {
            if let Ok(input) = desk
                .find(Locator::Css("#moves input[name='assignee_was']"))
                .await
            {
                shown = input.prop("value").await.ok().flatten().unwrap_or_default();
            }
            if shown != ned {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert_eq!(shown, ned);
        seen(&desk, "panel-live").await;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    if outcome.is_err() {
        let text = desk.source().await.unwrap_or_default();
        eprintln!("stopped:\n{text}");
    }
    desk.close().await.unwrap();
    outcome.unwrap();
}

/// Pat leaves her messages open: before her idle session ends the page
/// says so and offers to stay signed in; staying keeps her signed in.
/// (Sessions here end after one idle minute: the warning comes 15 s
/// before.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_warned_before_it_ends_and_staying_keeps_it() {
    let s = support::system("browser_idle").await;
    let org = s.org().await;
    first_thread(&s.signer, &org).await.unwrap();
    s.settled().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = web::router(support::web_idle_after(&s, &org, 1));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{addr}");
    let driver = driver().await;
    let phone = browser(&driver, 375, 812).await;
    let outcome = async {
        sign_in_as(&phone, &base, &org.patient, "/messages").await;
        let started = tokio::time::Instant::now();
        let text = shows_within(&phone, "Your session ends", Duration::from_secs(70)).await;
        let after = started.elapsed();
        assert!(
            text.contains("in less than a minute unless you carry on"),
            "{text}"
        );
        assert!(
            after > Duration::from_secs(30),
            "warned after {after:?}, not near the end"
        );
        seen(&phone, "session-ending-phone").await;
        phone
            .find(Locator::XPath("//button[text()='Stay signed in']"))
            .await?
            .click()
            .await?;
        // The warning goes, and the session goes on past its first end.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let main = phone.find(Locator::Css("main")).await?.text().await?;
            if !main.contains("Your session ends") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{main}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(20)).await;
        phone.goto(&format!("{base}/messages")).await?;
        at(&phone, "/messages").await;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    if outcome.is_err() {
        let url = phone.current_url().await.map(|u| u.to_string());
        let text = phone.source().await.unwrap_or_default();
        eprintln!("stopped at {url:?}:\n{text}");
    }
    phone.close().await.unwrap();
    outcome.unwrap();
}

/// Real content never breaks a page: a 10,000-character unbroken line, a
/// long link, a subject of long words, at a small phone's width, a
/// phone's, a tablet's and a desktop's, on the patient's and the nurse's
/// pages: nothing is wider than the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_words_and_links_never_make_a_page_wider_than_the_window() {
    use careline_client::Steps;
    use careline_client::bearer::command_id;
    use proto::command as cmd;
    let s = support::system("browser_overflow").await;
    let org = s.org().await;
    let subject = format!("Results {} before Monday", "Haemodiafiltration".repeat(8));
    let thread = s
        .signer
        .client(&org.patient)
        .unwrap()
        .start_thread(cmd::StartThreadRequest {
            attachments: vec![],
            command_id: command_id(),
            thread_id: String::new(),
            patient_id: org.patient.person_id.to_string(),
            subject: subject.chars().take(200).collect(),
            body: "x".repeat(10_000),
            recipients: vec![cmd::Recipient {
                recipient: Some(cmd::recipient::Recipient::TeamId(org.renal.clone())),
            }],
            carer_ids: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .aggregate_id;
    let link = format!(
        "https://www.example.nhs.uk/conditions/kidney-disease/{}?ref={}",
        "dialysis-fluid-allowance-".repeat(8),
        "a".repeat(40)
    );
    s.signer
        .client(&org.nurse)
        .unwrap()
        .post(&thread, &format!("Please read {link} before Sunday."))
        .await
        .unwrap();
    // A staff note of one long word too.
    s.signer
        .client(&org.nurse)
        .unwrap()
        .post_staff_note(cmd::PostStaffNoteRequest {
            command_id: command_id(),
            thread_id: thread.clone(),
            body: "Potassium".repeat(500),
        })
        .await
        .unwrap();
    s.settled().await;
    let base = serve(&s, &org).await;
    let driver = driver().await;
    // Every main page, named for its photographs.
    let pages = [
        ("patient-thread", &org.patient, format!("/threads/{thread}")),
        ("patient-messages", &org.patient, "/messages".to_string()),
        ("staff-thread", &org.nurse, format!("/threads/{thread}")),
        (
            "team-inbox",
            &org.nurse,
            format!("/teams/{}/inbox", org.renal),
        ),
        // The team's join links, and people found by name.
        (
            "admin-team",
            &org.admin,
            format!("/admin/teams/{}", org.renal),
        ),
        (
            "admin-people",
            &org.admin,
            "/admin/people?find=P".to_string(),
        ),
        ("admin-teams", &org.admin, "/admin/teams".to_string()),
        (
            "admin-person",
            &org.admin,
            format!("/admin/people/{}", org.patient.person_id),
        ),
        (
            "staff-queue",
            &org.nurse,
            format!("/teams/{}/queue?show=active&open={thread}", org.renal),
        ),
        // Every other page of each kind of person.
        (
            "patient-new-message",
            &org.patient,
            "/messages/new".to_string(),
        ),
        ("patient-record", &org.patient, "/record".to_string()),
        ("patient-carers", &org.patient, "/record/carers".to_string()),
        ("patient-access", &org.patient, "/record/access".to_string()),
        ("patient-trail", &org.patient, "/record/trail".to_string()),
        ("patient-account", &org.patient, "/account".to_string()),
        ("staff-inbox", &org.nurse, "/messages".to_string()),
        ("staff-teams", &org.nurse, "/teams".to_string()),
        (
            "staff-start",
            &org.nurse,
            format!("/teams/{}/start?q=a", org.renal),
        ),
        (
            "staff-not-read",
            &org.nurse,
            format!("/teams/{}/not-read", org.renal),
        ),
        ("staff-add", &org.nurse, format!("/threads/{thread}/add")),
        ("carer-messages", &org.carer, "/messages".to_string()),
        ("carer-acting-for", &org.carer, "/acting-for".to_string()),
        (
            "privacy-trail",
            &org.auditor,
            format!("/audit?kind=person&id={}", org.nurse.person_id),
        ),
        (
            "privacy-verify",
            &org.auditor,
            format!("/audit/verify?patient={}", org.patient.person_id),
        ),
    ];
    let mut wide = Vec::new();
    let mut inaccessible = Vec::new();
    for width in [320, 375, 768, 1280] {
        let window = browser(&driver, width, 800).await;
        let mut signed_in = None;
        for (name, who, path) in &pages {
            if signed_in != Some(who.person_id) {
                window.delete_all_cookies().await.unwrap();
                sign_in_as(&window, &base, who, path).await;
                signed_in = Some(who.person_id);
            } else {
                window.goto(&format!("{base}{path}")).await.unwrap();
            }
            let sizes = window
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth]",
                    vec![],
                )
                .await
                .unwrap();
            let (page, inner) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
            if page > inner {
                wide.push(format!(
                    "{path} as {} at {width} px: {page} px wide",
                    who.name
                ));
            }
            if path.starts_with("/threads/") && who.person_id == org.patient.person_id {
                // The address in the message is a link, shown in full, that
                // tells the other site nothing.
                let anchor = window.find(Locator::Css(".message .body a")).await.unwrap();
                assert_eq!(
                    anchor.attr("href").await.unwrap().as_deref(),
                    Some(link.as_str())
                );
                assert_eq!(anchor.text().await.unwrap(), link);
                assert_eq!(
                    anchor.attr("rel").await.unwrap().as_deref(),
                    Some("noopener noreferrer")
                );
                if width == 375 {
                    let message = window
                        .find(Locator::Css("article.message:has(.body a)"))
                        .await
                        .unwrap();
                    let png = message.screenshot().await.unwrap();
                    let dir =
                        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(dir.join("long-link-phone.png"), png).unwrap();
                }
                match width {
                    375 => photograph(&window, "long-content-phone").await,
                    1280 => photograph(&window, "long-content").await,
                    _ => {}
                }
            }
            if width == 1280 && path.ends_with("/inbox") {
                photograph(&window, "long-content-team-inbox").await;
            }
            // Each page at a phone's width and a desktop's, checked with
            // axe-core at both.
            if width == 375 || width == 1280 {
                let shot = format!("pages/{name}-{width}");
                photograph(&window, &shot).await;
                // The composer: reply or staff note, and files to attach.
                if *name == "staff-thread" {
                    photograph_at(&window, &format!("pages/staff-composer-{width}"), "#reply")
                        .await;
                }
                let found = violations(&window).await;
                if !found.is_empty() {
                    inaccessible.push(format!("{shot}: {found:#?}"));
                }
            }
        }
        window.close().await.unwrap();
    }
    assert!(
        wide.is_empty(),
        "pages wider than the window:\n{}",
        wide.join("\n")
    );
    assert!(
        inaccessible.is_empty(),
        "serious or critical accessibility violations:\n{}",
        inaccessible.join("\n")
    );
}

/// Ends a browser session: where it stopped when `outcome` is an error
/// (to say what was missing), then the window closed and the outcome
/// unwrapped.
async fn finish(client: Client, outcome: Result<(), fantoccini::error::CmdError>) {
    if outcome.is_err() {
        let url = client.current_url().await.map(|u| u.to_string());
        let text = client.source().await.unwrap_or_default();
        eprintln!("stopped at {url:?}:\n{text}");
    }
    client.close().await.unwrap();
    outcome.unwrap();
}

/// Saves a screenshot as `name`.png with the element `css` scrolled into
/// view (the middle of the window).
async fn photograph_at(client: &Client, name: &str, css: &str) {
    client
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
            vec![serde_json::json!(css)],
        )
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for dir in ["target/screenshots", "docs/screenshots"] {
        if dir.starts_with("docs")
            && std::env::var("CARELINE_UPDATE_SCREENSHOTS").as_deref() != Ok("1")
        {
            continue;
        }
        let file = root.join(dir).join(format!("{name}.png"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, &png).unwrap();
    }
}

/// Sends a reply with `file` chosen, on the open conversation.
async fn reply_with_file(
    client: &Client,
    text: &str,
    file: &std::path::Path,
) -> Result<(), fantoccini::error::CmdError> {
    let body = client.find(Locator::Css("textarea#body")).await?;
    body.clear().await?;
    body.send_keys(text).await?;
    client
        .find(Locator::Css("input#files"))
        .await?
        .send_keys(file.to_str().unwrap())
        .await?;
    click(client, "//button[normalize-space()='Send reply']").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_sends_a_photo_in_a_real_browser_on_a_phone_and_a_computer() {
    let s = support::system("web_browser_files").await;
    let org = s.org().await;
    let thread = first_thread(&s.signer, &org).await.unwrap();
    s.thread(&org.patient, &thread, s.head().await).await;
    let base = serve(&s, &org).await;
    let dir = std::env::temp_dir().join(format!("careline-files-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    // A photo (a real PNG, 900 × 600), and a "PDF" that is a photo.
    let picture = image::RgbImage::from_fn(900, 600, |x, y| {
        image::Rgb([(180 + x % 60) as u8, (90 + y % 80) as u8, 80])
    });
    let mut photo = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_to(
            &mut std::io::Cursor::new(&mut photo),
            image::ImageFormat::Png,
        )
        .unwrap();
    let size = service_kit::media::size_words(photo.len() as u64);
    std::fs::write(dir.join("rash on arm.png"), &photo).unwrap();
    std::fs::write(dir.join("letter.pdf"), &photo).unwrap();

    let driver = driver().await;
    for (width, height) in [(375, 812), (1280, 900)] {
        let client = browser(&driver, width, height).await;
        let outcome = async {
            sign_in_as(&client, &base, &org.patient, &format!("/threads/{thread}")).await;
            // A file that is not what its name says: the reason, and her
            // words kept.
            reply_with_file(
                &client,
                "And the letter from my GP",
                &dir.join("letter.pdf"),
            )
            .await?;
            shows(&client, "letter.pdf was not sent").await;
            let kept = client
                .find(Locator::Css("textarea#body"))
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            assert_eq!(kept, "And the letter from my GP");
            assert!(violations(&client).await.is_empty());
            photograph_at(
                &client,
                &format!("pages/file-refused-{width}"),
                ".nhsuk-error-summary",
            )
            .await;

            // The photo goes, with a bar saying how far it has got, and is
            // shown with its kind and size.
            client
                .execute(
                    "new MutationObserver(function () { var t = document.querySelector('.careline-progress-text'); if (t && document.querySelector('progress.careline-progress')) { sessionStorage.setItem('careline-test-progress', t.textContent); } }).observe(document.body, {childList: true, subtree: true, characterData: true});",
                    vec![],
                )
                .await?;
            reply_with_file(
                &client,
                &format!("The rash this morning ({width})"),
                &dir.join("rash on arm.png"),
            )
            .await?;
            shows(&client, &format!("The rash this morning ({width})")).await;
            shows(&client, "rash on arm.png").await;
            shows(&client, &format!("(PNG image, {size})")).await;
            let progress = client
                .execute(
                    "var p = sessionStorage.getItem('careline-test-progress'); sessionStorage.removeItem('careline-test-progress'); return p;",
                    vec![],
                )
                .await?;
            assert!(
                progress.as_str().is_some_and(|p| p.starts_with("Sen")),
                "no progress was shown: {progress:?}"
            );
            // Its preview is shown, made by the server.
            let mut loaded = false;
            for _ in 0..50 {
                let width = client
                    .execute(
                        "const i = document.querySelector('.careline-preview img'); return i && i.complete ? i.naturalWidth : 0;",
                        vec![],
                    )
                    .await?;
                if width.as_u64() == Some(480) {
                    loaded = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(loaded, "the preview was not shown");
            let link = client
                .find(Locator::XPath("(//a[normalize-space()='rash on arm.png'])[last()]"))
                .await?;
            let href = link.attr("href").await?.unwrap_or_default();
            assert!(href.contains("/files/"), "{href}");
            assert!(!href.contains("rash"), "no file name in a URL: {href}");
            assert!(violations(&client).await.is_empty());
            photograph_at(
                &client,
                &format!("pages/file-sent-{width}"),
                ".careline-files",
            )
            .await;
            Ok::<_, fantoccini::error::CmdError>(())
        }
        .await;
        finish(client, outcome).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_reads_a_notice_from_the_appointments_system_on_a_phone_and_a_computer() {
    let s = support::system("web_browser_notices").await;
    let org = s.org().await;
    // An admin registers the appointments system for the Renal Unit; an
    // operator issued its credential; it books and tells Pat.
    let system_id = careline_client::command_id();
    s.signer
        .client(&org.admin)
        .unwrap()
        .register_system(proto::command::RegisterSystemRequest {
            command_id: system_id.clone(),
            system_id: String::new(),
            name: "Appointments".into(),
            team_ids: vec![org.renal.clone()],
        })
        .await
        .unwrap();
    let credential = testkit::system_issuer().mint_system(
        system_id.parse().unwrap(),
        "Appointments",
        Duration::from_secs(3600),
    );
    let appointment = careline_client::appointments::Appointment::book(
        &org.patient.person_id.to_string(),
        &org.renal,
        "Tuesday 12 January, 10:30",
        "Renal clinic, Outpatients B, ground floor",
    );
    let told = careline_client::appointments::notify(s.signer.channel(), &credential, &appointment)
        .await
        .unwrap();
    let thread = told.aggregate_id;
    s.thread(&org.patient, &thread, told.position).await;
    let base = serve(&s, &org).await;

    let driver = driver().await;
    for (width, height) in [(375, 812), (1280, 900)] {
        let client = browser(&driver, width, height).await;
        let outcome = async {
            sign_in_as(&client, &base, &org.patient, "/messages").await;
            let list = shows(&client, "Your appointment").await;
            assert!(list.contains("Renal Unit"), "{list}");
            photograph(&client, &format!("pages/notice-list-{width}")).await;
            client.goto(&format!("{base}/threads/{thread}")).await?;
            let text = shows(&client, "Renal Unit (via Appointments)").await;
            assert!(text.contains("sent automatically"), "{text}");
            assert!(text.contains("Tuesday 12 January, 10:30"), "{text}");
            assert!(violations(&client).await.is_empty());
            photograph(&client, &format!("pages/notice-{width}")).await;
            Ok::<_, fantoccini::error::CmdError>(())
        }
        .await;
        finish(client, outcome).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_the_appointments_system_in_a_real_browser() {
    let s = support::system("web_browser_systems").await;
    let org = s.org().await;
    let base = serve(&s, &org).await;
    let driver = driver().await;
    for (width, height) in [(375, 812), (1280, 900)] {
        let client = browser(&driver, width, height).await;
        let outcome = async {
            sign_in_as(&client, &base, &org.admin, "/admin/systems").await;
            shows(&client, "Register a system").await;
            // No team ticked: the reason, and the name kept.
            let name = format!("Appointments ({width})");
            client
                .find(Locator::Css("input#name"))
                .await?
                .send_keys(&name)
                .await?;
            click(&client, "//button[normalize-space()='Register the system']").await?;
            shows(&client, "The system was not registered").await;
            let kept = client
                .find(Locator::Css("input#name"))
                .await?
                .prop("value")
                .await?
                .unwrap_or_default();
            assert_eq!(kept, name);
            assert!(violations(&client).await.is_empty());
            photograph_at(
                &client,
                &format!("pages/systems-refused-{width}"),
                ".nhsuk-error-summary",
            )
            .await;
            // The Renal Unit ticked: registered, with what comes next.
            click(&client, "//label[normalize-space()='Renal Unit']").await?;
            click(&client, "//button[normalize-space()='Register the system']").await?;
            let text = shows(&client, "An operator now issues its credential").await;
            assert!(text.contains(&name), "{text}");
            assert!(text.contains("Posts notices for Renal Unit"), "{text}");
            assert!(text.contains("careline system-token --system"), "{text}");
            assert!(violations(&client).await.is_empty());
            photograph(&client, &format!("pages/systems-{width}")).await;
            Ok::<_, fantoccini::error::CmdError>(())
        }
        .await;
        finish(client, outcome).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dietitian_records_her_leave_and_pat_sees_who_stands_in() {
    let s = support::system("web_browser_absences").await;
    let org = s.org().await;
    let base = serve(&s, &org).await;
    let back = time::OffsetDateTime::now_utc().date() + time::Duration::days(10);
    let back_field = format!(
        "{}-{:02}-{:02}",
        back.year(),
        u8::from(back.month()),
        back.day()
    );
    let driver = driver().await;
    for (width, height) in [(375, 812), (1280, 900)] {
        let client = browser(&driver, width, height).await;
        let outcome = async {
            sign_in_as(&client, &base, &org.dietitian, "/account").await;
            shows(&client, "When you are away").await;
            // No day back: the reason, nothing recorded.
            client
                .execute(
                    "document.getElementById('until').removeAttribute('required')",
                    vec![],
                )
                .await?;
            click(&client, "//button[normalize-space()='Record my absence']").await?;
            shows(&client, "Your absence was not recorded").await;
            assert!(violations(&client).await.is_empty());
            // Back in ten days; Ned Brown stands in.
            client
                .execute(
                    "document.getElementById('until').value = arguments[0]",
                    vec![serde_json::json!(back_field)],
                )
                .await?;
            client
                .find(Locator::Css("select#deputy"))
                .await?
                .select_by_value(&org.nurse2.person_id.to_string())
                .await?;
            click(&client, "//button[normalize-space()='Record my absence']").await?;
            let text = shows(&client, "Your absence is recorded").await;
            assert!(
                text.contains(&org.nurse2.name) && text.contains("stands in"),
                "{text}"
            );
            assert!(violations(&client).await.is_empty());
            photograph_at(&client, &format!("pages/away-{width}"), "#away").await;

            // Pat, writing a new message, sees it beside Susan's name.
            sign_in_as(&client, &base, &org.patient, "/messages/new").await;
            let text = shows(&client, "your message also goes to").await;
            assert!(text.contains(&org.nurse2.name), "{text}");
            assert!(violations(&client).await.is_empty());
            photograph_at(
                &client,
                &format!("pages/away-new-message-{width}"),
                ".careline-choices",
            )
            .await;

            // Back early: she ends it, and Pat sees her as before.
            sign_in_as(&client, &base, &org.dietitian, "/account").await;
            click(&client, "//button[normalize-space()='I am back: end it']").await?;
            shows(&client, "Welcome back").await;
            Ok::<_, fantoccini::error::CmdError>(())
        }
        .await;
        finish(client, outcome).await;
    }
}
