//! Personal data and secrets in text: payment card numbers (Luhn-checked), US social security
//! numbers, account numbers, API keys, bearer tokens and JWTs. Ingress refuses cards and SSNs
//! (`api::validate::no_sensitive_numbers`); egress and retrieval replace every kind with
//! `[REDACTED]`.

use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("pii pattern compiles: {e}"))
}

static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{3}-\d{2}-\d{4}\b"));
static ACCOUNT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:account|acct|iban|routing)\s*(?:number|no\.?|num|#)?\s*[:#]?\s*([A-Z]{2}\d{2}[A-Z0-9]{8,30}|\d[\d -]{5,}\d)",
    )
});
static SECRET: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}\b|\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}|(?i:bearer)\s+[\w.~+/-]{16,}=*",
    )
});

/// The kinds of value [`redact`] replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    CardNumber,
    Ssn,
    AccountNumber,
    Secret,
}

impl Kind {
    /// The name reported in `redacted_fields` and violation details.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CardNumber => "card_number",
            Kind::Ssn => "ssn",
            Kind::AccountNumber => "account_number",
            Kind::Secret => "secret",
        }
    }
}

/// The Luhn checksum of a card number's digits.
fn luhn_valid(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2 == 1, d * 2) {
            (true, x) if x > 9 => x - 9,
            (true, x) => x,
            (false, _) => d,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Byte ranges of runs of 13 to 19 digits (single spaces or dashes allowed between them) that pass
/// the Luhn check.
fn card_numbers(text: &str) -> Vec<Range<usize>> {
    let mut found = vec![];
    let mut run: Vec<u32> = Vec::new();
    let (mut start, mut end) = (0, 0);
    let mut last_sep = false;
    let mut close = |run: &mut Vec<u32>, start: usize, end: usize| {
        if (13..=19).contains(&run.len()) && luhn_valid(run) {
            found.push(start..end);
        }
        run.clear();
    };
    for (i, c) in text.char_indices() {
        if let Some(d) = c.to_digit(10) {
            if run.is_empty() {
                start = i;
            }
            run.push(d);
            end = i + 1;
            last_sep = false;
        } else if (c == ' ' || c == '-') && !run.is_empty() && !last_sep {
            last_sep = true;
        } else {
            close(&mut run, start, end);
            last_sep = false;
        }
    }
    close(&mut run, start, end);
    found
}

/// Whether the text carries a payment card number.
pub fn has_card_number(text: &str) -> bool {
    !card_numbers(text).is_empty()
}

/// Whether the text carries a US social security number (`123-45-6789`).
pub fn has_ssn(text: &str) -> bool {
    SSN.is_match(text)
}

/// `text` with every card number, SSN, account number and secret replaced by [`REDACTED`], and the
/// kinds that were found (sorted, each once).
pub fn redact(text: &str) -> (String, Vec<Kind>) {
    let mut spans: Vec<(Range<usize>, Kind)> = card_numbers(text)
        .into_iter()
        .map(|r| (r, Kind::CardNumber))
        .collect();
    spans.extend(SSN.find_iter(text).map(|m| (m.range(), Kind::Ssn)));
    spans.extend(
        ACCOUNT
            .captures_iter(text)
            .filter_map(|c| c.get(1))
            .map(|m| (m.range(), Kind::AccountNumber)),
    );
    spans.extend(SECRET.find_iter(text).map(|m| (m.range(), Kind::Secret)));
    if spans.is_empty() {
        return (text.to_string(), vec![]);
    }
    spans.sort_by_key(|(r, _)| (r.start, std::cmp::Reverse(r.end)));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut kinds = vec![];
    for (r, k) in spans {
        if r.start < at {
            continue;
        }
        out.push_str(&text[at..r.start]);
        out.push_str(REDACTED);
        at = r.end;
        kinds.push(k);
    }
    out.push_str(&text[at..]);
    kinds.sort();
    kinds.dedup();
    (out, kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_redacted_and_named() {
        let (text, kinds) = redact(
            "card 4111 1111 1111 1111, ssn 123-45-6789, account number: 00123456789, key sk-abcdefghijklmnop1234",
        );
        assert_eq!(
            text,
            "card [REDACTED], ssn [REDACTED], account number: [REDACTED], key [REDACTED]"
        );
        assert_eq!(
            kinds,
            vec![
                Kind::CardNumber,
                Kind::Ssn,
                Kind::AccountNumber,
                Kind::Secret
            ]
        );
    }

    #[test]
    fn ordinary_numbers_stay() {
        for text in [
            "ORD-1001 ships in 3 to 5 days",
            "call 555-0100",
            "4111 1111 1111 1112",
        ] {
            assert_eq!(redact(text), (text.to_string(), vec![]), "{text}");
        }
    }
}
