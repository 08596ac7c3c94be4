//! Field checks shared by the handlers, each returning the error API.md gives for it.

use super::error::{ApiError, Code};
use regex::Regex;
use std::sync::LazyLock;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$").unwrap()
});

/// A required text field: not blank, at most `max` characters (400 when over).
pub fn text(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.trim().is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// An optional text field: when present, at most `max` characters.
pub fn opt_text(field: &str, v: Option<&str>, max: usize) -> Result<(), ApiError> {
    match v {
        Some(s) if s.chars().count() > max => Err(ApiError::field(
            field,
            format!("must be at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// Message content: not blank, and over the limit is 413 `PAYLOAD_TOO_LARGE` (DESIGN.md, "Limits").
pub fn content(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.trim().is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    let n = v.chars().count();
    if n > max {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            format!("{field} is {n} characters; the limit is {max}"),
        )
        .with_detail(field, format!("at most {max} characters")));
    }
    Ok(())
}

pub fn email(field: &str, v: &str) -> Result<(), ApiError> {
    if EMAIL.is_match(v) {
        Ok(())
    } else {
        Err(ApiError::field(field, "must be an email address"))
    }
}

/// A number within an inclusive range.
pub fn range(field: &str, v: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            format!("must be between {min} and {max}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_its_field_and_code() {
        assert_eq!(text("name", " ", 5).unwrap_err().details[0].field, "name");
        assert!(text("name", "abcdef", 5).is_err());
        assert!(text("name", "abcde", 5).is_ok());
        assert_eq!(
            content("message.content", &"x".repeat(11), 10)
                .unwrap_err()
                .code,
            Code::PayloadTooLarge
        );
        assert_eq!(
            content("message.content", "", 10).unwrap_err().code,
            Code::ValidationError
        );
        assert!(email("email", "a@b.co").is_ok());
        assert!(email("email", "a@b").is_err());
        assert!(range("q", 0, 1, 5).is_err());
        assert!(opt_text("x", Some("toolong"), 3).is_err());
    }
}
