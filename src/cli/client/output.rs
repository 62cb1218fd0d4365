//! Shared answer handling and printing: status codes to errors, JSON decoding, value display,
//! aligned tables.

use std::io::Write;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ClientError;
use super::session::Answer;

/// Turns a non-2xx answer into its error: 404 `key_not_found` is [`ClientError::NotFound`] (for
/// `key`), any other 4xx [`ClientError::Invalid`] with the server's message, anything else
/// [`ClientError::Server`].
pub fn check(answer: Answer, key: Option<&str>) -> Result<Answer, ClientError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(answer);
    }
    let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let code = body.as_ref().and_then(|b| b["error"].as_str());
    let message = body
        .as_ref()
        .and_then(|b| b["message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned());
    let hint = match status.as_u16() {
        401 => " (pass a token with --token or the RAFTIX_TOKEN variable)",
        403 => " (this token's role or key prefix does not cover the request: use another one)",
        _ => "",
    };
    let detail = format!("{} answered {status}: {message}{hint}", answer.from);
    match (status.as_u16(), code, key) {
        (404, Some("key_not_found"), Some(key)) => Err(ClientError::NotFound(key.to_string())),
        (400..=499, _, _) => Err(ClientError::Invalid(detail)),
        _ => Err(ClientError::Server(detail)),
    }
}

/// Decodes a JSON answer both as a raw value (for `--json`) and as `T` (for human output).
pub fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<(Value, T), ClientError> {
    let bad = |e: serde_json::Error| ClientError::BadAnswer {
        from: answer.from.clone(),
        detail: e.to_string(),
    };
    let raw: Value = serde_json::from_slice(&answer.body).map_err(bad)?;
    let typed = T::deserialize(&raw).map_err(bad)?;
    Ok((raw, typed))
}

/// Prints `text` and a newline on stdout.
pub fn line(text: &str) -> Result<(), ClientError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Prints `value` as one line of JSON on stdout.
pub fn json_line(value: &Value) -> Result<(), ClientError> {
    line(&value.to_string())
}

/// Writes `bytes` exactly as they are on stdout.
pub fn raw(bytes: &[u8]) -> Result<(), ClientError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// Text for human output: as is unless empty, padded or holding control characters (then quoted).
pub fn show_text(text: &str) -> String {
    let plain = !text.is_empty() && !text.contains(char::is_control) && text.trim() == text;
    if plain {
        text.to_string()
    } else {
        format!("{text:?}")
    }
}

/// The value of an item or answer that carries `field` as text or `field_base64`, for human
/// output; `None` when both are absent or null.
pub fn show_field(object: &Value, field: &str) -> Option<String> {
    if let Some(text) = object[field].as_str() {
        return Some(show_text(text));
    }
    object[format!("{field}_base64")]
        .as_str()
        .map(|b64| format!("base64:{b64}"))
}

/// Rows as left-aligned columns separated by two spaces (trailing spaces trimmed).
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_show_plainly_unless_ambiguous() {
        assert_eq!(show_text("hello world"), "hello world");
        assert_eq!(show_text("two\nlines"), "\"two\\nlines\"");
        assert_eq!(show_text(""), "\"\"");
        assert_eq!(show_text(" padded"), "\" padded\"");
    }

    #[test]
    fn fields_come_as_text_or_base64() {
        let item = json!({"key": "k", "value": null, "value_base64": "/wA="});
        assert_eq!(show_field(&item, "value"), Some("base64:/wA=".into()));
        assert_eq!(
            show_field(&json!({"value": "v"}), "value"),
            Some("v".into())
        );
        assert_eq!(show_field(&json!({"value": null}), "value"), None);
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["ID".to_string(), "HTTP".to_string()],
            vec!["10".to_string(), "x".to_string()],
        ];
        assert_eq!(table(&rows), "ID  HTTP\n10  x");
    }
}
