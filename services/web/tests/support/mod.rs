//! What the web tests share: the services, and the web service on them.

use std::sync::Arc;
use std::time::Duration;

use careline_client::demo::DemoOrg;
use testkit::{Services, System};
use web::{Backends, Config, DemoPerson, Web};

/// The command, inbox and audit services on a new stream and database.
#[allow(dead_code)]
pub async fn system(label: &str) -> System {
    system_trusting(label, None).await
}

/// As [`system`], the command service accepting the ID tokens of
/// `provider` (its issuer URL, and the web's client id there).
pub async fn system_trusting(label: &str, provider: Option<(String, String)>) -> System {
    System::start(
        label,
        Services {
            provider,
            inbox: true,
            audit: true,
            // Mailing to a port where nothing listens: deliveries retry.
            notify: Some(testkit::smtp(9)),
            wait: Some(Duration::from_secs(10)),
            ..Services::default()
        },
    )
    .await
}

/// The web service on `s`, with the demo sign-in of `org`'s people.
#[allow(dead_code)]
pub fn web(s: &System, org: &DemoOrg) -> Web {
    build(s, org, None)
}

/// The web service on `s`, signing in at `oidc` (and with the demo's).
#[allow(dead_code)]
pub fn web_signing_in_at(s: &System, org: &DemoOrg, oidc: Arc<web::oidc::Oidc>) -> Web {
    build(s, org, Some(oidc))
}

/// The web service on `s`, its sessions ending after `minutes` unused.
#[allow(dead_code)]
pub fn web_idle_after(s: &System, org: &DemoOrg, minutes: u32) -> Web {
    build_with(
        s,
        org,
        None,
        &[("CARELINE_WEB_IDLE_MINUTES", &minutes.to_string())],
    )
}

fn build(s: &System, org: &DemoOrg, oidc: Option<Arc<web::oidc::Oidc>>) -> Web {
    build_with(s, org, oidc, &[])
}

fn build_with(
    s: &System,
    org: &DemoOrg,
    oidc: Option<Arc<web::oidc::Oidc>>,
    more: &[(&str, &str)],
) -> Web {
    let settings = careline_settings::Settings::from_pairs(more);
    let config = Config::from_settings(&settings).unwrap();
    let demo = org
        .people()
        .into_iter()
        .map(|(what, who)| DemoPerson {
            what: what.into(),
            caller: who.clone(),
        })
        .collect();
    let backends = Backends {
        command: s.signer.channel(),
        inbox: s.inbox_channel(),
        audit: s.audit_channel(),
        notify: s.notify_channel(),
    };
    Web::signing_in_at(backends, &config, Some(demo), oidc)
}
