//! A real SMTP server (aiosmtpd) for tests that check what was mailed.

use std::path::PathBuf;
use std::time::Duration;

/// A real SMTP server (aiosmtpd) on a loopback port, storing each message
/// it accepts as one file. Stopped on drop.
#[derive(Debug)]
pub struct Sink {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<tokio::process::Child>,
}

impl Sink {
    /// A free port and a fresh maildir, with no server yet.
    pub fn reserve(label: &str) -> Self {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("careline-{label}-{}", uuid::Uuid::now_v7()));
        Self {
            port,
            dir,
            child: None,
        }
    }

    pub async fn start(&mut self) {
        let child = tokio::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.dir)
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd, or Debian python3-aiosmtpd)");
        self.child = Some(child);
        event_store::testing::listening(self.port, "aiosmtpd").await;
    }

    /// Every message received so far, as text: folded header lines and
    /// quoted-printable soft line breaks joined (so nothing hides across a
    /// break).
    pub fn received(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else {
            return Vec::new();
        };
        entries
            .map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .replace("\r\n", "\n")
                    .replace("=\n", "")
                    .replace("\n ", " ")
            })
            .map(|m| quoted_printable(&m))
            .collect()
    }

    /// Waits until `n` messages have arrived, then a little longer to see
    /// that no more come.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..300 {
            if self.received().len() >= n {
                tokio::time::sleep(Duration::from_millis(700)).await;
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} of {n} messages arrived in 15 s", self.received().len());
    }
}

/// Decodes quoted-printable escapes (`=3D` is `=`): a link reads as sent.
fn quoted_printable(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
            })
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A header of a raw message (unfolded).
pub fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}
