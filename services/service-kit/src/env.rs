//! Reading settings from the environment, the same way in every service.

/// The database of a local deployment, shared by every read service.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/careline";

/// A setting that cannot be used, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSetting(String);

/// `key` as a whole number, or `default` when it is not set; a value that
/// is not a number is an error naming the variable.
pub fn number(key: &str, default: u64) -> Result<u64, BadSetting> {
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .map_err(|_| BadSetting(format!("{key}={v:?} is not a whole number"))),
        Err(_) => Ok(default),
    }
}

/// `DATABASE_URL`, or the local default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into())
}
