//! Text as the guards read it. `clean` is what the platform keeps (NFC, no control, invisible or
//! direction-override characters); `fold` is a detection-only form that undoes the usual disguises
//! (homoglyphs, leetspeak, case, spacing), so one pattern catches "ignore", "IGNORE", "1gn0re" and
//! "ignоre" with a Cyrillic o.

use unicode_normalization::UnicodeNormalization;

/// A message after cleaning, with what was taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub text: String,
    /// C0 controls other than tab, newline and carriage return, DEL and C1 controls.
    pub controls: usize,
    /// Zero-width, word-joiner, byte-order-mark, soft-hyphen and bidirectional-override characters.
    pub invisible: usize,
}

/// Characters that render as nothing (or reorder what renders) and so can hide words from a
/// reader while the model still sees them.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
}

fn control(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || ('\u{80}'..='\u{9F}').contains(&c)
}

/// NFC-normalizes `input` and removes control and invisible characters, counting each kind.
pub fn clean(input: &str) -> Cleaned {
    let mut out = Cleaned {
        text: String::with_capacity(input.len()),
        controls: 0,
        invisible: 0,
    };
    for c in input.nfc() {
        if invisible(c) {
            out.invisible += 1;
        } else if control(c) {
            out.controls += 1;
        } else {
            out.text.push(c);
        }
    }
    out
}

/// The detection form of already-cleaned text: non-ASCII lookalikes replaced by their ASCII
/// form (NFKC, then Unicode TR39 skeletons: fullwidth letters, Cyrillic and Greek homoglyphs fold),
/// leetspeak digits inside words read as letters, lowercase, runs of whitespace as one space.
pub fn fold(text: &str) -> String {
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
            continue;
        }
        // Compatibility forms first (fullwidth, ligatures, circled letters), then TR39 prototypes.
        let compat: String = std::iter::once(c).nfkc().collect();
        if compat.is_ascii() {
            ascii.push_str(&compat);
            continue;
        }
        let proto: String = unicode_security::confusable_detection::skeleton(&c.to_string())
            .filter(|p| p.is_ascii() && !p.is_ascii_control())
            .collect();
        if proto.is_empty() {
            ascii.push(c);
        } else {
            ascii.push_str(&proto);
        }
    }
    let chars: Vec<char> = ascii.chars().collect();
    let mut out = String::with_capacity(ascii.len());
    let mut space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() {
            if !space {
                out.push(if c == '\n' { '\n' } else { ' ' });
            }
            space = true;
            continue;
        }
        space = false;
        let wordy =
            |j: Option<&char>| j.is_some_and(|p| p.is_ascii_alphabetic() || "@$".contains(*p));
        let in_word = wordy(i.checked_sub(1).and_then(|j| chars.get(j))) || wordy(chars.get(i + 1));
        let letter = match c {
            '0' if in_word => 'o',
            '1' if in_word => 'i',
            '3' if in_word => 'e',
            '4' if in_word => 'a',
            '5' if in_word => 's',
            '7' if in_word => 't',
            '@' if in_word => 'a',
            '$' if in_word => 's',
            other => other.to_ascii_lowercase(),
        };
        out.push(letter);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_normalizes_to_nfc_and_counts_what_it_removes() {
        let c = clean("cafe\u{0301} ig\u{200B}nore\u{0000}\u{202E} \u{1F600}\ttab");
        assert_eq!(c.text, "caf\u{e9} ignore \u{1F600}\ttab");
        assert_eq!((c.controls, c.invisible), (1, 2));
        let c1 = clean("a\u{0085}b\u{007F}c");
        assert_eq!((c1.text.as_str(), c1.controls), ("abc", 2));
    }

    #[test]
    fn fold_undoes_homoglyphs_leetspeak_case_and_spacing() {
        // Cyrillic о and е, a fullwidth I.
        assert_eq!(
            fold("\u{FF29}gn\u{043E}r\u{0435}   PREVIOUS"),
            "ignore previous"
        );
        assert_eq!(
            fold("1gn0r3 pr3v10us 1nstruct10ns"),
            "ignore previous instructions"
        );
        // Digits standing alone stay digits.
        assert_eq!(fold("ORD 1001 costs 5 dollars"), "ord 1001 costs 5 dollars");
    }
}
