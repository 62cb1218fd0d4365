//! Endpoint URLs and request paths: `host:port` or `http://host:port` in, a normalized base URL
//! out; keys percent-encoded for `/v1/kv/{key}`.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but the unreserved characters of RFC 3986 (`A-Z a-z 0-9 - . _ ~`) is encoded,
/// including `/`, so a key is always exactly one path segment.
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Parses one `--endpoints` entry: `http://host:port`, `https://host:port` or `host:port` (then
/// `http://` is assumed), with any trailing `/` removed. Other schemes, paths and empty entries
/// are refused.
pub fn parse_endpoint(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an endpoint is empty".to_string());
    }
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
        Some((scheme, _)) => return Err(format!("{text}: unsupported scheme {scheme:?}")),
        None => ("http", text),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "{text}: expected http://HOST:PORT, https://HOST:PORT or HOST:PORT"
        ));
    }
    Ok(format!("{scheme}://{authority}"))
}

/// The base URL (`scheme://authority`) of an absolute URL, such as a redirect's `Location`.
pub fn base_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// The path of a key: `/v1/kv/{key}` with the key percent-encoded.
pub fn key_path(key: &str) -> String {
    format!("/v1/kv/{}", utf8_percent_encode(key, KEY_SET))
}

/// A query parameter value, percent-encoded like a key.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, KEY_SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_with_and_without_scheme_normalize_alike() {
        assert_eq!(
            parse_endpoint("127.0.0.1:8001"),
            Ok("http://127.0.0.1:8001".into())
        );
        assert_eq!(
            parse_endpoint(" http://localhost:8002/ "),
            Ok("http://localhost:8002".into())
        );
        assert_eq!(parse_endpoint("https://x:1/"), Ok("https://x:1".into()));
        assert!(parse_endpoint("ftp://x:1").is_err());
        assert!(parse_endpoint("").is_err());
        assert!(parse_endpoint("http://x:1/v1").is_err());
    }

    #[test]
    fn keys_are_one_encoded_segment() {
        assert_eq!(key_path("a/b c"), "/v1/kv/a%2Fb%20c");
        assert_eq!(key_path("x-y.z_~"), "/v1/kv/x-y.z_~");
        assert_eq!(key_path("é"), "/v1/kv/%C3%A9");
    }

    #[test]
    fn base_of_keeps_scheme_and_authority() {
        assert_eq!(
            base_of("http://127.0.0.1:8002/v1/kv/a?redirect=true"),
            Some("http://127.0.0.1:8002".into())
        );
        assert_eq!(base_of("nonsense"), None);
    }
}
