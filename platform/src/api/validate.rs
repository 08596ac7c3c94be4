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

/// Data loss prevention on ingress: refuses text that carries a payment card number or a social
/// security number, which must not enter chat transcripts, model prompts or logs (400
/// `DLP_VIOLATION`, the detail saying `credit_card_detected` or `ssn_detected`).
pub fn no_sensitive_numbers(field: &str, v: &str) -> Result<(), ApiError> {
    if crate::guard::pii::has_card_number(v) {
        return Err(ApiError::new(
            Code::DlpViolation,
            "the message contains a payment card number; never send card numbers in chat",
        )
        .with_detail(field, "credit_card_detected"));
    }
    if crate::guard::pii::has_ssn(v) {
        return Err(ApiError::new(
            Code::DlpViolation,
            "the message contains a social security number; never send it in chat",
        )
        .with_detail(field, "ssn_detected"));
    }
    Ok(())
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

    #[test]
    fn card_numbers_are_found_by_luhn_only() {
        use crate::guard::pii::has_card_number;
        assert!(has_card_number("my card is 4111 1111 1111 1111 thanks"));
        assert!(has_card_number("4111-1111-1111-1111"));
        assert!(!has_card_number("4111 1111 1111 1112"));
        assert!(!has_card_number("order ORD-1001 and phone 555 0100"));
        assert_eq!(
            no_sensitive_numbers("m", "4111111111111111")
                .unwrap_err()
                .code,
            Code::DlpViolation
        );
    }
}
