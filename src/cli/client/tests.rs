//! Unit tests of the client flags and the idempotency key.

use clap::Parser;

use super::session::new_idempotency_key;
use super::*;
use crate::cli::{Cli, Command};

fn client(args: &[&str]) -> Result<ClientCommand, clap::Error> {
    match Cli::try_parse_from(std::iter::once("raftix").chain(args.iter().copied()))?.command {
        Command::Client(c) => Ok(c),
        other => panic!("not a client command: {other:?}"),
    }
}

#[test]
fn default_endpoints_are_those_of_raftix_up() {
    let Ok(ClientCommand::Status(args)) = client(&["status"]) else {
        panic!("status did not parse");
    };
    assert_eq!(
        args.opts.endpoints,
        [
            "http://127.0.0.1:8001",
            "http://127.0.0.1:8002",
            "http://127.0.0.1:8003"
        ]
    );
    assert_eq!(args.opts.timeout_ms, 5000);
    assert!(!args.opts.json);
}

#[test]
fn endpoints_accept_host_port_and_are_comma_separated() {
    let Ok(ClientCommand::Get(args)) = client(&["get", "k", "--endpoints", "a:1,http://b:2/"])
    else {
        panic!("get did not parse");
    };
    assert_eq!(args.key, "k");
    assert_eq!(args.opts.endpoints, ["http://a:1", "http://b:2"]);
    let Ok(ClientCommand::Get(args)) = client(&["get", "k", "--endpoints", "https://a:1"]) else {
        panic!("https endpoints parse");
    };
    assert_eq!(args.opts.endpoints, ["https://a:1"]);
    assert!(client(&["get", "k", "--timeout-ms", "0"]).is_err());
}

#[test]
fn cas_needs_exactly_one_expectation_and_one_outcome() {
    let ok = client(&["cas", "k", "--expect-absent", "--value", "v"]);
    assert!(
        matches!(ok, Ok(ClientCommand::Cas(ref a)) if a.expected.is_none() && a.value.as_deref() == Some("v"))
    );
    assert!(client(&["cas", "k", "--value", "v"]).is_err());
    assert!(client(&["cas", "k", "--expected", "a"]).is_err());
    assert!(client(&["cas", "k", "--expected", "a", "--expect-absent", "--delete"]).is_err());
    assert!(client(&["cas", "k", "--expected", "a", "--value", "b", "--delete"]).is_err());
}

#[test]
fn idempotency_keys_are_128_bit_hex_and_fresh() {
    let (a, b) = (new_idempotency_key(), new_idempotency_key());
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[test]
fn member_subcommands_take_positive_ids_and_add_needs_an_address() {
    let Ok(ClientCommand::Member(MemberCommand::Add(add))) =
        client(&["member", "add", "--id", "4", "--peer-addr", "h:7004"])
    else {
        panic!("member add did not parse");
    };
    assert_eq!((add.id, add.peer_addr.as_str()), (4, "h:7004"));
    assert!(matches!(
        client(&["member", "promote", "4"]),
        Ok(ClientCommand::Member(MemberCommand::Promote(ref a))) if a.id == 4
    ));
    assert!(client(&["member", "add", "--id", "4"]).is_err());
    assert!(client(&["member", "add", "--id", "0", "--peer-addr", "h:1"]).is_err());
    assert!(client(&["member", "remove", "0"]).is_err());
    assert!(client(&["member", "demote"]).is_err());
    assert!(matches!(
        client(&["backup", "--out", "f.snap"]),
        Ok(ClientCommand::Backup(ref b)) if b.out == std::path::Path::new("f.snap")
    ));
    assert!(client(&["backup"]).is_err());
}

#[test]
fn tls_flags_parse_and_a_client_certificate_needs_its_key() {
    let Ok(ClientCommand::Put(args)) = client(&[
        "put",
        "k",
        "v",
        "--cacert",
        "ca.pem",
        "--cert",
        "c.pem",
        "--key",
        "c-key.pem",
    ]) else {
        panic!("put with TLS flags did not parse");
    };
    assert_eq!(args.key, "k", "the positional KEY is not the --key flag");
    assert_eq!(
        args.opts.tls.cacert.as_deref(),
        Some(std::path::Path::new("ca.pem"))
    );
    assert_eq!(
        args.opts.tls.cert.as_deref(),
        Some(std::path::Path::new("c.pem"))
    );
    assert_eq!(
        args.opts.tls.key.as_deref(),
        Some(std::path::Path::new("c-key.pem"))
    );
    let err = client(&["get", "k", "--cert", "c.pem"]).expect_err("--cert needs --key");
    assert!(err.to_string().contains("--key"), "{err}");
    let err = client(&["get", "k", "--key", "k.pem"]).expect_err("--key needs --cert");
    assert!(err.to_string().contains("--cert"), "{err}");
}

/// A server on loopback answering each connection with the next of `statuses` (one request per
/// connection); returns its base URL.
fn scripted_server(statuses: &'static [&'static str]) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = std::thread::spawn(move || {
        for status in statuses {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = r#"{"error":"too_many_requests","message":"busy"}"#;
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    (base, server)
}

#[test]
fn a_429_is_retried_and_only_429s_are_reported_as_busy() {
    use super::session::{Request, Session};
    use std::time::Duration;
    let (base, server) = scripted_server(&["429 Too Many Requests", "200 OK"]);
    let mut session = Session::new(vec![base], Duration::from_secs(5)).expect("session");
    let answer = session
        .send(&Request::get("/v1/status".into()))
        .expect("answered after a retry");
    assert_eq!(answer.status.as_u16(), 200);
    server.join().expect("server");

    let (base, server) = scripted_server(&["429 Too Many Requests", "429 Too Many Requests"]);
    let mut session = Session::new(vec![base], Duration::from_secs(5)).expect("session");
    let err = session
        .send(&Request::get("/v1/status".into()))
        .expect_err("busy every time");
    assert!(matches!(err, ClientError::Busy(_)), "{err}");
    assert_eq!(err.exit_code(), error::EXIT_UNAVAILABLE);
    server.join().expect("server");
}
