//! TLS to PostgreSQL (`CARELINE_DATABASE_CA`): with the server's CA the
//! session is encrypted; a CA that did not sign the server's certificate,
//! or a host name the certificate does not name, connects to nothing.

#![allow(clippy::unwrap_used)]

use projections::{PgTls, connect_with};

const PLAIN: &str = "postgres://postgres@127.0.0.1:5432/test";

#[tokio::test]
async fn with_the_servers_ca_the_session_is_encrypted_and_verified() {
    let plain = connect_with(PLAIN, None).await.unwrap();
    let ssl: String = plain.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    if ssl != "on" {
        eprintln!("PostgreSQL on 127.0.0.1:5432 has ssl off: nothing to test TLS against here");
        return;
    }
    let cert: String = plain
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    let cert = std::path::PathBuf::from(cert);
    let tls = PgTls::from_ca_file(&cert).unwrap();
    // The certificate names the host it was made for (Debian's: localhost).
    let host = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "multiline", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let subject = String::from_utf8_lossy(&host.stdout).to_string();
    let host = subject
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("commonName")
                .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
        })
        .unwrap_or_else(|| "localhost".into());

    let secure = connect_with(&format!("postgres://postgres@{host}:5432/test"), Some(&tls))
        .await
        .unwrap();
    let encrypted: bool = secure
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted);

    // Another CA: refused. The right CA, the wrong name: refused.
    let other = event_store::testing::dev_certs();
    let stranger = PgTls::from_ca_file(&other.join("ca.pem")).unwrap();
    let refused = connect_with(
        &format!("postgres://postgres@{host}:5432/test"),
        Some(&stranger),
    )
    .await;
    assert!(
        refused.is_err(),
        "connected trusting a CA that signed nothing of the server's"
    );
    if host != "127.0.0.1" {
        let refused = connect_with(PLAIN, Some(&tls)).await;
        assert!(
            refused.is_err(),
            "connected to a name the certificate does not hold"
        );
    }
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn a_ca_file_that_holds_no_certificate_is_named() {
    let missing = PgTls::from_ca_file(std::path::Path::new("/no/such/ca.pem")).unwrap_err();
    assert!(
        missing.to_string().contains("CARELINE_DATABASE_CA"),
        "{missing}"
    );
    let empty = std::env::temp_dir().join(format!("careline-empty-{}.pem", uuid::Uuid::now_v7()));
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let refused = PgTls::from_ca_file(&empty).unwrap_err();
    assert!(refused.to_string().contains("no certificate"), "{refused}");
    let _ = std::fs::remove_file(&empty);
}
