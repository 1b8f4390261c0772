//! Which files Careline accepts, and what a file is: its media type is read
//! from its first bytes, never taken from what the sender says, and its
//! name's extension must agree with it.

/// How many of a file's first bytes [`sniff`] looks at (DICOM's mark is at
/// 128).
pub const SNIFF_LEN: usize = 512;

/// The largest file accepted when nothing else is configured: 100 MB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// The kinds accepted, in words for a person choosing a file.
pub const ACCEPTED: &str = "PDF, JPEG, PNG, plain text, DICOM, ZIP, or an office document (Word, Excel, PowerPoint, OpenDocument)";

/// The extensions accepted, for a file picker's `accept`.
pub const ACCEPT_ATTRIBUTE: &str =
    ".pdf,.jpg,.jpeg,.png,.txt,.dcm,.zip,.docx,.xlsx,.pptx,.doc,.xls,.ppt,.odt,.ods,.odp";

/// Why a file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the first bytes say a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pdf,
    Jpeg,
    Png,
    Dicom,
    Zip,
    Ole,
    Text,
}

impl Kind {
    fn of(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"%PDF-") {
            Some(Kind::Pdf)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(Kind::Png)
        } else if head.len() >= 132 && &head[128..132] == b"DICM" {
            Some(Kind::Dicom)
        } else if head.starts_with(b"PK\x03\x04") {
            Some(Kind::Zip)
        } else if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
            Some(Kind::Ole)
        } else if is_text(head) {
            Some(Kind::Text)
        } else {
            None
        }
    }

    fn words(self) -> &'static str {
        match self {
            Kind::Pdf => "a PDF",
            Kind::Jpeg => "a JPEG image",
            Kind::Png => "a PNG image",
            Kind::Dicom => "a DICOM image",
            Kind::Zip => "a ZIP archive",
            Kind::Ole => "an older office document",
            Kind::Text => "plain text",
        }
    }
}

/// UTF-8 without control characters other than tab, line ends and form
/// feed (a sequence cut at the end of the sample is fine).
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
}

/// The media type for a name's extension (lowercase), and the kind of bytes
/// it must hold.
fn by_extension(extension: &str) -> Option<(&'static str, Kind)> {
    Some(match extension {
        "pdf" => ("application/pdf", Kind::Pdf),
        "jpg" | "jpeg" => ("image/jpeg", Kind::Jpeg),
        "png" => ("image/png", Kind::Png),
        "txt" | "text" => ("text/plain", Kind::Text),
        "dcm" | "dicom" => ("application/dicom", Kind::Dicom),
        "zip" => ("application/zip", Kind::Zip),
        "docx" => (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Kind::Zip,
        ),
        "xlsx" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Kind::Zip,
        ),
        "pptx" => (
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            Kind::Zip,
        ),
        "odt" => ("application/vnd.oasis.opendocument.text", Kind::Zip),
        "ods" => ("application/vnd.oasis.opendocument.spreadsheet", Kind::Zip),
        "odp" => ("application/vnd.oasis.opendocument.presentation", Kind::Zip),
        "doc" => ("application/msword", Kind::Ole),
        "xls" => ("application/vnd.ms-excel", Kind::Ole),
        "ppt" => ("application/vnd.ms-powerpoint", Kind::Ole),
        _ => return None,
    })
}

/// The media type of a file named `file_name` whose first bytes are `head`
/// (up to [`SNIFF_LEN`]), or why it is refused: a kind not accepted, or a
/// name that says one kind and bytes that are another. A name without an
/// extension takes the kind of its bytes (DICOM files often have none).
pub fn sniff(file_name: &str, head: &[u8]) -> Result<&'static str, Refused> {
    if head.is_empty() {
        return Err(Refused("the file is empty".into()));
    }
    let found = Kind::of(head);
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| !e.is_empty());
    match (extension, found) {
        (Some(extension), found) => {
            let Some((media_type, wanted)) = by_extension(&extension) else {
                return Err(Refused(format!(
                    "files ending .{extension} are not accepted: send {ACCEPTED}"
                )));
            };
            match found {
                Some(kind) if kind == wanted => Ok(media_type),
                Some(kind) => Err(Refused(format!(
                    "the name ends .{extension} but the file is {}: rename it, or choose the file you meant",
                    kind.words()
                ))),
                None => Err(Refused(format!(
                    "the name ends .{extension} but the file is not {}: choose the file you meant",
                    wanted.words()
                ))),
            }
        }
        (None, Some(Kind::Ole)) => Err(Refused(
            "an office document needs its extension (.doc, .xls, .ppt) in its name".into(),
        )),
        (None, Some(kind)) => Ok(match kind {
            Kind::Pdf => "application/pdf",
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Dicom => "application/dicom",
            Kind::Zip => "application/zip",
            Kind::Text | Kind::Ole => "text/plain",
        }),
        (None, None) => Err(Refused(format!(
            "this kind of file is not accepted: send {ACCEPTED}"
        ))),
    }
}

/// Whether a stored file of `media_type` may be shown as `file_name`: its
/// extension (if it has one) must be one of that type's. So a file stored
/// as a PDF is never offered as `letter.exe`.
pub fn agrees(file_name: &str, media_type: &str) -> Result<(), Refused> {
    let Some((_, extension)) = file_name.rsplit_once('.') else {
        return Ok(());
    };
    match by_extension(&extension.to_ascii_lowercase()) {
        Some((wanted, _)) if wanted == media_type => Ok(()),
        _ => Err(Refused(format!(
            "the name ends .{extension}, which does not fit the file ({media_type}): keep its own extension"
        ))),
    }
}

/// A file's name as given, checked: 1 to 200 characters, no folder, no
/// control characters.
pub fn file_name(name: &str) -> Result<String, Refused> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Refused("give the file's name".into()));
    }
    if name.chars().count() > 200 {
        return Err(Refused("the file's name is over 200 characters".into()));
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) || name.starts_with('.') {
        return Err(Refused(
            "the file's name may not name a folder, start with a dot, or hold control characters"
                .into(),
        ));
    }
    Ok(name.to_string())
}

/// A size in words: "312 KB".
pub fn size_words(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KB {
        format!("{bytes} bytes")
    } else if b < KB * KB {
        format!("{:.0} KB", b / KB)
    } else if b < KB * KB * KB {
        format!("{:.1} MB", b / (KB * KB))
    } else {
        format!("{:.1} GB", b / (KB * KB * KB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_decide_and_the_name_must_agree() {
        assert_eq!(sniff("scan.PDF", b"%PDF-1.7\n..."), Ok("application/pdf"));
        assert_eq!(
            sniff("rash.jpg", &[0xFF, 0xD8, 0xFF, 0xE0]),
            Ok("image/jpeg")
        );
        assert_eq!(
            sniff("letter.docx", b"PK\x03\x04rest"),
            Ok("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        );
        assert_eq!(
            sniff("notes.txt", "Température 38,2".as_bytes()),
            Ok("text/plain")
        );
        let mut dicom = vec![0u8; 132];
        dicom[128..132].copy_from_slice(b"DICM");
        assert_eq!(sniff("IM000001", &dicom), Ok("application/dicom"));

        let png_named_pdf = sniff("scan.pdf", b"\x89PNG\r\n\x1a\n....");
        assert!(png_named_pdf.unwrap_err().0.contains("a PNG image"));
        assert!(
            sniff("run.exe", b"MZ\x90\x00")
                .unwrap_err()
                .0
                .contains(".exe")
        );
        assert!(sniff("noext", b"MZ\x90\x00\x00\x01").is_err());
        assert!(sniff("notes.txt", b"\x00\x01\x02binary").is_err());
        assert_eq!(
            sniff("a.pdf", b""),
            Err(Refused("the file is empty".into()))
        );
        // A sample cut inside a character is still text.
        assert_eq!(
            sniff("a.txt", &"é".as_bytes()[..1]),
            Err(Refused(
                "the name ends .txt but the file is not plain text: choose the file you meant"
                    .into()
            ))
        );
        assert_eq!(
            sniff("a.txt", "abcé".as_bytes().split_at(4).0),
            Ok("text/plain")
        );
    }

    #[test]
    fn a_stored_file_keeps_an_extension_of_its_type() {
        assert!(agrees("scan.pdf", "application/pdf").is_ok());
        assert!(agrees("SCAN.PDF", "application/pdf").is_ok());
        assert!(agrees("IM0001", "application/dicom").is_ok());
        assert!(agrees("scan.exe", "application/pdf").is_err());
        assert!(agrees("scan.png", "application/pdf").is_err());
    }

    #[test]
    fn names_are_names_not_paths() {
        assert_eq!(file_name(" scan.pdf "), Ok("scan.pdf".into()));
        assert!(file_name("../etc/passwd").is_err());
        assert!(file_name("a\\b.pdf").is_err());
        assert!(file_name("").is_err());
        assert!(file_name(".hidden").is_err());
        assert_eq!(size_words(312 * 1024), "312 KB");
        assert_eq!(size_words(5 * 1024 * 1024 + 1), "5.0 MB");
    }
}
