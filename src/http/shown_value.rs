//! Values as views show them: as text when UTF-8, else base64, and, when a view asks for it,
//! cut to a number of bytes with the full size alongside, so one large value cannot make a
//! log page or a listing megabytes long. The whole value stays a request away
//! (`GET /v1/kv/{key}`, or `GET /v1/log` without `max_value_bytes`).

use super::text_and_base64;

/// A value to show.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shown {
    /// The (possibly cut) value as text, when it is UTF-8.
    pub text: Option<String>,
    /// The (possibly cut) value in base64, when it is not UTF-8.
    pub base64: Option<String>,
    /// The value's whole size in bytes, when what is shown is cut.
    pub size: Option<usize>,
}

/// `value` (absent: `None`) shown whole, or cut to at most `limit` bytes (at a character
/// boundary when it is text).
pub fn shown(value: Option<&[u8]>, limit: Option<usize>) -> Shown {
    let Some(value) = value else {
        return Shown::default();
    };
    let cut = match limit {
        Some(limit) if value.len() > limit => limit,
        _ => {
            let (text, base64) = text_and_base64(Some(value));
            return Shown {
                text,
                base64,
                size: None,
            };
        }
    };
    let head = match std::str::from_utf8(value) {
        Ok(text) => {
            let mut end = cut;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            &value[..end]
        }
        Err(_) => &value[..cut],
    };
    let (text, base64) = text_and_base64(Some(head));
    Shown {
        text,
        base64,
        size: Some(value.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_with_their_size_and_short_ones_are_whole() {
        assert_eq!(shown(None, Some(4)), Shown::default());
        assert_eq!(
            shown(Some(b"abc"), Some(4)),
            Shown {
                text: Some("abc".into()),
                base64: None,
                size: None
            }
        );
        let cut = shown(Some("héllo".as_bytes()), Some(2));
        assert_eq!(cut.text.as_deref(), Some("h"), "never inside a character");
        assert_eq!(cut.size, Some(6));
        let binary = shown(Some(&[0xff; 10]), Some(3));
        assert_eq!(
            (binary.text, binary.base64.as_deref()),
            (None, Some("////"))
        );
        assert_eq!(binary.size, Some(10));
        assert_eq!(shown(Some(&[0u8; 100]), None).size, None);
    }
}
