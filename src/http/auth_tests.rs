//! Tests of access control: what each route needs.
use super::*;

#[test]
fn constant_time_eq_compares() {
    assert!(constant_time_eq(b"abcdefgh", b"abcdefgh"));
    assert!(!constant_time_eq(b"abcdefgh", b"abcdefgi"));
    assert!(!constant_time_eq(b"abcdefgh", b"abcdefg"));
    assert!(!constant_time_eq(b"", b"a"));
    assert!(constant_time_eq(b"", b""));
}

#[test]
fn routes_need_the_documented_roles() {
    use TokenRole::*;
    let cases = [
        (Method::GET, "/healthz", "", None),
        (Method::GET, "/assets/dashboard.js", "", None),
        (
            Method::GET,
            "/v1/kv/a%2Fb",
            "",
            Some((Read, Keys::Key("a/b".into()))),
        ),
        (
            Method::PUT,
            "/v1/kv/a",
            "",
            Some((Write, Keys::Key("a".into()))),
        ),
        (
            Method::POST,
            "/v1/kv/a/cas",
            "",
            Some((Write, Keys::Key("a".into()))),
        ),
        (
            Method::POST,
            "/v1/kv/user/1/cas",
            "",
            Some((Write, Keys::Key("user/1".into()))),
        ),
        (
            Method::PUT,
            "/v1/kv/a/cas",
            "",
            Some((Write, Keys::Key("a/cas".into()))),
        ),
        (
            Method::GET,
            "/v1/kv",
            "prefix=x%2F",
            Some((Read, Keys::ListPrefix("x/".into()))),
        ),
        (Method::POST, "/v1/txn", "", Some((Write, Keys::TxnBody))),
        (Method::GET, "/v1/log", "", Some((Read, Keys::All))),
        (Method::GET, "/metrics", "", Some((Read, Keys::None))),
        (
            Method::POST,
            "/v1/admin/snapshot",
            "",
            Some((Admin, Keys::All)),
        ),
        (
            Method::POST,
            "/v1/cluster/learners",
            "",
            Some((Admin, Keys::All)),
        ),
        (Method::POST, "/healthz", "", Some((Admin, Keys::All))),
        (
            Method::GET,
            "/v1/auth/tokens",
            "",
            Some((Admin, Keys::None)),
        ),
        (
            Method::POST,
            "/v1/auth/tokens",
            "",
            Some((Admin, Keys::None)),
        ),
        (
            Method::DELETE,
            "/v1/auth/tokens/ci",
            "",
            Some((Admin, Keys::None)),
        ),
    ];
    for (method, path, query, want) in cases {
        let want = want.map_or(Need::Open, |(r, k)| Need::Role(r, k));
        assert_eq!(need_of(&method, path, query), want, "{method} {path}");
    }
}

#[test]
fn prefixes_cover_keys_lists_and_transactions() {
    let token = Principal {
        name: "app".into(),
        role: TokenRole::Write,
        prefix: Some("app/".into()),
        replicated: false,
    };
    let w = TokenRole::Write;
    assert!(allowed(&token, w, &Keys::Key("app/x".into()), b"").is_ok());
    assert!(allowed(&token, w, &Keys::Key("other".into()), b"").is_err());
    assert!(allowed(&token, w, &Keys::ListPrefix("".into()), b"").is_err());
    assert!(allowed(&token, w, &Keys::All, b"").is_err());
    assert!(allowed(&token, TokenRole::Admin, &Keys::None, b"").is_err());
    let ok = br#"{"guards":[{"key":"app/a","expect":"absent"}],"ops":[{"op":"put","key":"app/b","value":"1"}]}"#;
    let bad = br#"{"ops":[{"op":"put","key":"app/b","value":"1"},{"op":"delete","key":"x"}]}"#;
    assert!(allowed(&token, w, &Keys::TxnBody, ok).is_ok());
    assert!(allowed(&token, w, &Keys::TxnBody, bad).is_err());
    assert!(allowed(
        &token,
        w,
        &Keys::CommandBody,
        br#"{"command":"SET app/k v"}"#
    )
    .is_ok());
    assert!(allowed(&token, w, &Keys::CommandBody, br#"{"command":"SET k v"}"#).is_err());
}
