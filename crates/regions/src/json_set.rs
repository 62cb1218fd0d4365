//! JSON arrays as sets (for the `union` resolver).

use serde_json::Value;

/// The union of two JSON arrays taken as sets: the distinct elements of both, each in canonical
/// JSON (object keys sorted, no whitespace), sorted by that text, written as a JSON array.
/// `None` if either is not a JSON array.
pub(super) fn union(a: &[u8], b: &[u8]) -> Option<String> {
    let mut elements = canonical_elements(a)?;
    elements.extend(canonical_elements(b)?);
    elements.sort();
    elements.dedup();
    Some(format!("[{}]", elements.join(",")))
}

/// The canonical JSON text of each element of the array `bytes` holds.
fn canonical_elements(bytes: &[u8]) -> Option<Vec<String>> {
    match serde_json::from_slice::<Value>(bytes).ok()? {
        Value::Array(elements) => Some(elements.iter().map(canonical).collect()),
        _ => None,
    }
}

/// Canonical JSON text: object keys sorted, no whitespace, scalars as serde_json writes them.
/// Recursion is bounded by serde_json's nesting limit on parsing.
fn canonical(value: &Value) -> String {
    match value {
        Value::Array(elements) => {
            let inner: Vec<String> = elements.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(key, value)| format!("{}:{}", Value::String(key.clone()), canonical(value)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_sorts_and_deduplicates_canonical_elements() {
        assert_eq!(
            union(br#"[3, "a", 1]"#, br#"[1, 2, "a"]"#).as_deref(),
            Some(r#"["a",1,2,3]"#)
        );
        assert_eq!(
            union(br#"[{"b": 1, "a": [2, 1]}]"#, br#"[{"a":[2,1],"b":1}]"#).as_deref(),
            Some(r#"[{"a":[2,1],"b":1}]"#),
            "objects equal up to key order and whitespace are one element; arrays keep order"
        );
        assert_eq!(union(b"[]", b"[]").as_deref(), Some("[]"));
    }

    #[test]
    fn union_is_commutative_and_associative() {
        let (a, b, c) = (&b"[1,5]"[..], &b"[5,\"x\"]"[..], &b"[null,1]"[..]);
        assert_eq!(union(a, b), union(b, a));
        let ab = union(a, b).expect("arrays");
        let bc = union(b, c).expect("arrays");
        assert_eq!(union(ab.as_bytes(), c), union(a, bc.as_bytes()));
    }

    #[test]
    fn union_refuses_what_is_not_an_array() {
        assert_eq!(union(b"[1]", br#"{"a":1}"#), None);
        assert_eq!(union(b"1", b"[1]"), None);
        assert_eq!(union(b"[1", b"[1]"), None);
        assert_eq!(union(b"", b"[1]"), None);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            union(deep.as_bytes(), b"[]"),
            None,
            "beyond the nesting limit"
        );
    }
}
