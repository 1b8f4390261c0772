//! What tells a patient apart from another of the same name: date of birth,
//! hospital number, NHS number. One reading of each, shared by the command
//! service (which refuses what is wrong), the inbox (which searches them)
//! and the web (which shows them, and reads what staff type).

use time::{Date, Month, OffsetDateTime, macros::format_description};

/// The earliest date of birth accepted.
const EARLIEST_YEAR: i32 = 1880;
/// Hospital numbers are short codes: letters, digits, `-` and `/`.
pub const HOSPITAL_NUMBER_MAX: usize = 20;

/// A date of birth as written on forms: `YYYY-MM-DD`, or the way people in
/// the UK write it (`12/03/1950`, `12-3-1950`, `12.03.1950`). A real date,
/// not in the future (after `today`), not before 1880. Empty: `None`.
pub fn date_of_birth(value: &str, today: Date) -> Result<Option<Date>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let date = parse_date(value).ok_or_else(|| {
        format!("{value:?} is not a date: write it as day/month/year (12/03/1950) or 1950-03-12")
    })?;
    if date > today {
        return Err("is in the future".into());
    }
    if date.year() < EARLIEST_YEAR {
        return Err(format!("is before {EARLIEST_YEAR}"));
    }
    Ok(Some(date))
}

/// `YYYY-MM-DD`, or day, month and four-digit year separated by `/`, `-`
/// or `.`.
pub fn parse_date(value: &str) -> Option<Date> {
    let parts: Vec<&str> = value.trim().split(['/', '-', '.']).map(str::trim).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let number = |s: &str| -> Option<i32> {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year, month, day) = if a.len() == 4 {
        (number(a)?, number(b)?, number(c)?)
    } else if c.len() == 4 {
        (number(c)?, number(b)?, number(a)?)
    } else {
        return None;
    };
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()
}

/// `1950-03-12`: how the log and the read models hold a date of birth.
pub fn iso(date: Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// `12 March 1950`: how a page shows one (`value` as [`iso`] writes it);
/// empty when it is empty or not a date.
pub fn spoken(value: &str) -> String {
    parse_date(value)
        .and_then(|d| {
            d.format(format_description!(
                "[day padding:none] [month repr:long] [year]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// `23/04/1961`: how a form shows a date of birth held as [`iso`] writes
/// it (as people in the UK write it); `value` itself when it is not one.
pub fn written(value: &str) -> String {
    parse_date(value).map_or_else(
        || value.to_string(),
        |d| format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year()),
    )
}

/// Today, in UTC: the latest date of birth.
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// An NHS number: ten digits (spaces and dashes between them allowed), the
/// last a modulus 11 check digit. Returned as ten digits. Empty: empty.
pub fn nhs_number(value: &str) -> Result<String, String> {
    let digits: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if digits.is_empty() {
        return Ok(String::new());
    }
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be 10 digits, like 943 476 5919".into());
    }
    let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = d[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| digit * weight)
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return Err("is not an NHS number: check the digits".into()),
        c => c,
    };
    if check != d[9] {
        return Err("is not an NHS number: check the digits".into());
    }
    Ok(digits)
}

/// `943 476 5919`: how a page shows an NHS number (ten digits), grouped.
pub fn nhs_spaced(digits: &str) -> String {
    if digits.len() == 10 && digits.is_ascii() {
        format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..])
    } else {
        digits.to_string()
    }
}

/// A hospital number: up to 20 letters, digits, `-` or `/`, stored in
/// capitals. Empty: empty.
pub fn hospital_number(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.chars().count() > HOSPITAL_NUMBER_MAX {
        return Err(format!("is at most {HOSPITAL_NUMBER_MAX} characters"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/')
    {
        return Err("may hold only letters, digits, - and /".into());
    }
    Ok(value.to_ascii_uppercase())
}

/// What a search for part of a patient's identity matches (lowercase): the
/// date of birth as stored and as people write it, the hospital number, and
/// the NHS number with and without its spaces.
pub fn search_text(date_of_birth: &str, hospital_number: &str, nhs_number: &str) -> String {
    let mut words = Vec::new();
    if let Some(d) = parse_date(date_of_birth) {
        words.push(iso(d));
        words.push(written(date_of_birth));
    }
    if !hospital_number.is_empty() {
        words.push(hospital_number.to_lowercase());
    }
    if !nhs_number.is_empty() {
        words.push(nhs_number.to_string());
        words.push(nhs_spaced(nhs_number));
    }
    words.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn dates_of_birth_are_read_as_people_write_them() {
        let today = date!(2026 - 12 - 07);
        for written in [
            "1950-03-12",
            "12/03/1950",
            "12/3/1950",
            "12.03.1950",
            " 12-03-1950 ",
        ] {
            assert_eq!(
                date_of_birth(written, today).unwrap(),
                Some(date!(1950 - 03 - 12)),
                "{written}"
            );
        }
        assert_eq!(date_of_birth("", today).unwrap(), None);
        for wrong in [
            "31/02/1950",
            "1950",
            "12/03/50",
            "tomorrow",
            "2027-01-01",
            "1879-12-31",
        ] {
            assert!(date_of_birth(wrong, today).is_err(), "{wrong}");
        }
        assert_eq!(spoken("1950-03-12"), "12 March 1950");
        assert_eq!(written("1950-03-12"), "12/03/1950");
        assert_eq!(spoken(""), "");
    }

    #[test]
    fn nhs_numbers_need_their_check_digit() {
        assert_eq!(nhs_number("943 476 5919").unwrap(), "9434765919");
        assert_eq!(nhs_number("").unwrap(), "");
        assert!(nhs_number("943 476 5918").is_err());
        assert!(nhs_number("94347659").is_err());
        assert!(nhs_number("94347659ab").is_err());
        assert_eq!(nhs_spaced("9434765919"), "943 476 5919");
    }

    #[test]
    fn hospital_numbers_are_short_codes_in_capitals() {
        assert_eq!(hospital_number(" rx-1234/5 ").unwrap(), "RX-1234/5");
        assert!(hospital_number("RX 1234").is_err());
        assert!(hospital_number(&"1".repeat(21)).is_err());
        assert_eq!(
            search_text("1950-03-12", "RX1234", "9434765919"),
            "1950-03-12 | 12/03/1950 | rx1234 | 9434765919 | 943 476 5919"
        );
    }
}
