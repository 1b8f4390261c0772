//! The operator's terminal: log lines and one progress line that stays at
//! the bottom. A log line written while a bar is shown clears the bar's
//! line, prints itself, and draws the bar again below it, so the two never
//! share a line.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bar on screen now (empty when none).
static BAR: Mutex<String> = Mutex::new(String::new());

/// Erases the current line (carriage return, clear to end of line).
const CLEAR: &str = "\r\x1b[2K";

/// When the progress line was last written to a file or pipe.
static LAST_LINE: Mutex<Option<Instant>> = Mutex::new(None);

/// The latest progress not yet written to a file or pipe.
static UNWRITTEN: Mutex<String> = Mutex::new(String::new());

/// Not on a terminal, progress goes out as plain lines, this often.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Draws (or redraws) the progress line. Written to a file or a pipe,
/// it is a line of its own every few seconds instead.
pub(crate) fn show(bar: &str) {
    if !std::io::stderr().is_terminal() {
        let mut last = LAST_LINE.lock().unwrap_or_else(|p| p.into_inner());
        let mut unwritten = UNWRITTEN.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| at.elapsed() >= LINE_EVERY) {
            *last = Some(Instant::now());
            unwritten.clear();
            let _ = writeln!(std::io::stderr(), "{}", bar.trim_end());
        } else {
            *unwritten = bar.trim_end().to_string();
        }
        return;
    }
    let mut shown = BAR.lock().unwrap_or_else(|p| p.into_inner());
    *shown = bar.to_string();
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{CLEAR}{bar}");
    let _ = err.flush();
}

/// Ends the progress line where it is: what follows starts below it.
pub(crate) fn finish() {
    *LAST_LINE.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let unwritten = std::mem::take(&mut *UNWRITTEN.lock().unwrap_or_else(|p| p.into_inner()));
    if !unwritten.is_empty() {
        let _ = writeln!(std::io::stderr(), "{unwritten}");
    }
    let mut shown = BAR.lock().unwrap_or_else(|p| p.into_inner());
    if !shown.is_empty() {
        shown.clear();
        let _ = writeln!(std::io::stderr());
    }
}

/// Writes one log record above the bar, if one is shown.
fn above_bar(out: &mut impl Write, bar: &str, record: &[u8]) -> std::io::Result<()> {
    if bar.is_empty() {
        out.write_all(record)?;
    } else {
        write!(out, "{CLEAR}")?;
        out.write_all(record)?;
        write!(out, "{bar}")?;
    }
    out.flush()
}

/// A `tracing` writer: each record goes out whole, above the bar.
pub(crate) struct Logs;

/// One record, collected, then written on drop.
pub(crate) struct Record(Vec<u8>);

impl Write for Record {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let bar = BAR.lock().unwrap_or_else(|p| p.into_inner());
        let _ = above_bar(&mut std::io::stderr().lock(), &bar, &self.0);
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Record;
    fn make_writer(&'a self) -> Record {
        Record(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_clears_the_bar_and_draws_it_again_below() {
        let mut out = Vec::new();
        above_bar(&mut out, "[###---] 50%", b"INFO something\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\r\x1b[2KINFO something\n[###---] 50%"
        );
    }

    #[test]
    fn without_a_bar_a_log_line_is_written_as_it_is() {
        let mut out = Vec::new();
        above_bar(&mut out, "", b"WARN x\n").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "WARN x\n");
    }
}
