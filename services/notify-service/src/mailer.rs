//! SMTP connections kept open between sends, with TCP_NODELAY.
//!
//! lettre writes a message's body and its terminating dot as two writes;
//! without TCP_NODELAY the second waits for the server to acknowledge the
//! first (a delayed ACK, tens of milliseconds), on every email. lettre's own
//! transport does not set it, so plain and STARTTLS connections are opened
//! here (implicit TLS still goes through lettre's connector).

use std::sync::Mutex;
use std::time::Duration;

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{Smtp, TlsMode};

/// Connecting, and any one command, may take this long.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a send failed; `permanent` when the server refused the message for
/// good (a 5xx reply), so that trying again is pointless.
#[derive(Debug)]
pub struct Failure {
    pub permanent: bool,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<lettre::transport::smtp::Error> for Failure {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Self {
            permanent: e.is_permanent(),
            message: e.to_string(),
        }
    }
}

fn transient(message: String) -> Failure {
    Failure {
        permanent: false,
        message,
    }
}

/// Sends emails over a few reused connections (at most `keep` idle).
pub struct Mailer {
    host: String,
    port: u16,
    tls: TlsMode,
    credentials: Option<Credentials>,
    hello: ClientId,
    keep: usize,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({}:{})", self.host, self.port)
    }
}

impl Mailer {
    pub fn new(smtp: &Smtp, keep: usize) -> Self {
        Self {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: smtp.tls,
            credentials: smtp.credentials.as_ref().map(|(user, password)| {
                Credentials::new(user.clone(), password.expose().to_string())
            }),
            hello: ClientId::default(),
            keep,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn tls_parameters(&self) -> Result<TlsParameters, Failure> {
        TlsParameters::new(self.host.clone())
            .map_err(|e| transient(format!("SMTP TLS settings: {e}")))
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let server = (self.host.as_str(), self.port);
        let mut connection = match self.tls {
            TlsMode::Tls => {
                AsyncSmtpConnection::connect_tokio1(
                    server,
                    Some(TIMEOUT),
                    &self.hello,
                    Some(self.tls_parameters()?),
                    None,
                )
                .await?
            }
            TlsMode::None | TlsMode::StartTls => {
                let tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(server))
                    .await
                    .map_err(|_| {
                        transient(format!("connecting to {}:{} timed out", server.0, server.1))
                    })?
                    .map_err(|e| {
                        transient(format!("cannot connect to {}:{}: {e}", server.0, server.1))
                    })?;
                tcp.set_nodelay(true)
                    .map_err(|e| transient(format!("TCP_NODELAY: {e}")))?;
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
                if self.tls == TlsMode::StartTls {
                    connection
                        .starttls(self.tls_parameters()?, &self.hello)
                        .await?;
                }
                connection
            }
        };
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(connection)
    }

    /// An idle connection that still answers, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        loop {
            let idle = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
            let Some(mut connection) = idle else {
                return self.connect().await;
            };
            if tokio::time::timeout(TIMEOUT, connection.test_connected())
                .await
                .unwrap_or(false)
            {
                return Ok(connection);
            }
        }
    }

    /// Sends `message`; the connection is kept for the next send unless
    /// anything went wrong on it.
    pub async fn send(&self, message: &Message) -> Result<(), Failure> {
        let mut connection = self.checkout().await?;
        let sent = tokio::time::timeout(
            TIMEOUT * 3,
            connection.send(message.envelope(), &message.formatted()),
        )
        .await
        .map_err(|_| transient("the mail server did not answer in time".to_string()))?;
        sent?;
        if !connection.has_broken()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.keep
        {
            idle.push(connection);
        }
        Ok(())
    }
}
