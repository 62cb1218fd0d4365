//! Certificates made by [`certs::generate`], loaded into configurations and tried in real
//! handshakes (tokio-rustls over loopback TCP).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::certs::{self, CertsRequest};
use super::*;

fn request(out: &Path, nodes: &[u64], clients: &[&str]) -> CertsRequest {
    CertsRequest {
        out: out.to_owned(),
        nodes: nodes.to_vec(),
        hosts: certs::DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect(),
        clients: clients.iter().map(|c| c.to_string()).collect(),
        days: 30,
        force: false,
    }
}

fn node_files(dir: &Path, id: u64) -> TlsFiles {
    TlsFiles {
        ca: dir.join(certs::CA_CERT),
        cert: certs::node_cert_path(dir, id),
        key: certs::node_key_path(dir, id),
    }
}

fn first_cert(path: &Path) -> CertificateDer<'static> {
    load_certs(path, "certificate").expect("load")[0].clone()
}

/// What each side of a handshake saw: the peer's certificate on success, the error otherwise.
struct Outcome {
    server: Result<Option<CertificateDer<'static>>, String>,
    client: Result<Option<CertificateDer<'static>>, String>,
}

/// Runs one TLS handshake over loopback and a ping/pong exchange on top of it (in TLS 1.3 a
/// server refusing the client's certificate shows on the client only when it reads).
async fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>, name: &str) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let server_side = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let mut ping = [0u8; 4];
        tls.read_exact(&mut ping).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c[0].clone().into_owned());
        Ok::<_, String>(peer)
    });
    let server_name = server_name_for(name).expect("server name");
    let connector = tokio_rustls::TlsConnector::from(client);
    let client_side = async move {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).await.map_err(|e| e.to_string())?;
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c[0].clone().into_owned());
        Ok::<_, String>(peer)
    };
    let limit = Duration::from_secs(10);
    let client = tokio::time::timeout(limit, client_side)
        .await
        .unwrap_or_else(|_| Err("client timed out".into()));
    let server = tokio::time::timeout(limit, server_side)
        .await
        .map_err(|_| "server timed out".to_string())
        .and_then(|joined| joined.map_err(|e| e.to_string()))
        .and_then(|r| r);
    Outcome { server, client }
}

#[tokio::test]
async fn peers_with_certificates_from_the_same_ca_authenticate_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs::generate(&request(dir.path(), &[1, 2], &[])).expect("generate");
    let server = peer_server_config(&node_files(dir.path(), 1)).expect("server config");
    let client = peer_client_config(&node_files(dir.path(), 2)).expect("client config");
    for name in ["127.0.0.1:7001", "localhost:7001", "[::1]:7001"] {
        let outcome = handshake(server.clone(), client.clone(), name).await;
        let seen_by_server = outcome.server.expect("server side").expect("client cert");
        let seen_by_client = outcome.client.expect("client side").expect("server cert");
        assert_eq!(node_id_of(&seen_by_server).expect("id"), 2, "{name}");
        assert_eq!(node_id_of(&seen_by_client).expect("id"), 1, "{name}");
    }
}

#[tokio::test]
async fn a_peer_with_a_certificate_of_another_ca_is_refused() {
    let (ours, theirs) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    certs::generate(&request(ours.path(), &[1, 2], &[])).expect("generate");
    certs::generate(&request(theirs.path(), &[2], &[])).expect("generate");
    let server = peer_server_config(&node_files(ours.path(), 1)).expect("server config");
    // Trusts our CA (so it accepts the server) but presents a certificate of another CA.
    let impostor = peer_client_config(&TlsFiles {
        ca: ours.path().join(certs::CA_CERT),
        ..node_files(theirs.path(), 2)
    })
    .expect("client config");
    let outcome = handshake(server.clone(), impostor, "127.0.0.1:7001").await;
    let err = outcome
        .server
        .expect_err("the server must refuse the client");
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown issuer"),
        "{err}"
    );
    assert!(outcome.client.is_err(), "the client must see the refusal");

    // A client trusting only the other CA refuses our server.
    let other = peer_client_config(&node_files(theirs.path(), 2)).expect("client config");
    let outcome = handshake(server, other, "127.0.0.1:7001").await;
    let err = outcome
        .client
        .expect_err("the client must refuse the server");
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown issuer"),
        "{err}"
    );
    assert!(outcome.server.is_err());
}

#[tokio::test]
async fn a_peer_without_a_client_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs::generate(&request(dir.path(), &[1], &[])).expect("generate");
    let server = peer_server_config(&node_files(dir.path(), 1)).expect("server config");
    let anonymous =
        http_client_config(Some(&dir.path().join(certs::CA_CERT)), None).expect("client");
    let outcome = handshake(server, anonymous, "127.0.0.1:7001").await;
    let err = outcome
        .server
        .expect_err("the server must require a certificate");
    assert!(
        err.contains("NoCertificatesPresented") || err.contains("certificate"),
        "{err}"
    );
    assert!(outcome.client.is_err());
}

#[tokio::test]
async fn a_server_certificate_must_name_the_host_dialled() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs::generate(&request(dir.path(), &[1, 2], &[])).expect("generate");
    let server = peer_server_config(&node_files(dir.path(), 1)).expect("server config");
    let client = peer_client_config(&node_files(dir.path(), 2)).expect("client config");
    let outcome = handshake(server, client, "10.9.8.7:7001").await;
    let err = outcome
        .client
        .expect_err("10.9.8.7 is not in the certificate");
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for name"),
        "{err}"
    );
}

#[tokio::test]
async fn gateway_client_auth_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs::generate(&request(dir.path(), &[1], &["admin"])).expect("generate");
    let other = tempfile::tempdir().expect("tempdir");
    certs::generate(&request(other.path(), &[], &["intruder"])).expect("generate");
    let ca = dir.path().join(certs::CA_CERT);
    let (cert, key) = (
        certs::node_cert_path(dir.path(), 1),
        certs::node_key_path(dir.path(), 1),
    );
    let server = |auth| {
        Arc::new(gateway_server_config(&cert, &key, Some(&ca), auth).expect("gateway config"))
    };
    let anonymous = http_client_config(Some(&ca), None).expect("client");
    let admin = http_client_config(
        Some(&ca),
        Some(&ClientIdentity {
            cert: certs::client_cert_path(dir.path(), "admin"),
            key: certs::client_key_path(dir.path(), "admin"),
        }),
    )
    .expect("client");
    let intruder = http_client_config(
        Some(&ca),
        Some(&ClientIdentity {
            cert: certs::client_cert_path(other.path(), "intruder"),
            key: certs::client_key_path(other.path(), "intruder"),
        }),
    )
    .expect("client");
    let name = "localhost:8001";

    let none = server(ClientAuth::None);
    assert!(handshake(none.clone(), anonymous.clone(), name)
        .await
        .server
        .expect("none, anonymous")
        .is_none());
    assert!(
        handshake(none, admin.clone(), name).await.client.is_ok(),
        "none, with a cert"
    );

    let optional = server(ClientAuth::Optional);
    assert!(handshake(optional.clone(), anonymous.clone(), name)
        .await
        .server
        .expect("optional, anonymous")
        .is_none());
    let seen = handshake(optional.clone(), admin.clone(), name)
        .await
        .server
        .expect("optional, admin");
    assert!(seen.is_some(), "the admin certificate is seen");
    assert!(
        handshake(optional, intruder.clone(), name)
            .await
            .server
            .is_err(),
        "optional refuses a cert of another CA"
    );

    let required = server(ClientAuth::Required);
    assert!(
        handshake(required.clone(), anonymous, name)
            .await
            .server
            .is_err(),
        "required refuses no cert"
    );
    assert!(handshake(required.clone(), admin, name)
        .await
        .server
        .expect("required, admin")
        .is_some());
    assert!(
        handshake(required, intruder, name).await.server.is_err(),
        "required refuses another CA"
    );

    let err = gateway_server_config(&cert, &key, None, ClientAuth::Required).expect_err("no CA");
    assert!(err.to_string().contains("--tls-client-ca"), "{err}");
}

#[test]
fn node_id_of_reads_the_node_uri_and_refuses_certificates_without_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs::generate(&request(dir.path(), &[7, 12345678901], &["ops"])).expect("generate");
    assert_eq!(
        node_id_of(&first_cert(&certs::node_cert_path(dir.path(), 7))).expect("id"),
        7
    );
    let big = first_cert(&certs::node_cert_path(dir.path(), 12345678901));
    assert_eq!(node_id_of(&big).expect("id"), 12345678901);
    assert_eq!(
        cert_file_node_id(&certs::node_cert_path(dir.path(), 7)).expect("id"),
        7
    );

    let client = first_cert(&certs::client_cert_path(dir.path(), "ops"));
    let err = node_id_of(&client).expect_err("a client certificate names no node");
    assert!(matches!(err, TlsError::NoNodeId(_)), "{err:?}");
    assert!(err.to_string().contains("raftix://node/<id>"), "{err}");
    let err = node_id_of(&first_cert(&dir.path().join(certs::CA_CERT)))
        .expect_err("the CA names no node");
    assert!(err.to_string().contains("raftix://node/<id>"), "{err}");
    let err = cert_file_node_id(&certs::client_cert_path(dir.path(), "ops")).expect_err("client");
    assert!(
        err.to_string().contains("client-ops.pem"),
        "the file is named: {err}"
    );

    let bad_uri = |uri: &str| {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::URI(uri.try_into().expect("ia5")));
        params.self_signed(&key).expect("self-signed").der().clone()
    };
    for uri in [
        "raftix://node/",
        "raftix://node/0",
        "raftix://node/x1",
        "raftix://node/+3",
        "raftix://node/99999999999999999999",
    ] {
        let err = node_id_of(&bad_uri(uri)).expect_err(uri);
        assert!(err.to_string().contains(uri), "{uri}: {err}");
    }
    assert!(matches!(
        node_id_of(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])),
        Err(TlsError::Certificate(_))
    ));
}

#[test]
fn server_names_of_peer_addresses() {
    use rustls::pki_types::ServerName;
    let ip = |s: &str| ServerName::IpAddress(s.parse::<std::net::IpAddr>().expect("ip").into());
    assert_eq!(
        server_name_for("127.0.0.1:7001").expect("v4"),
        ip("127.0.0.1")
    );
    assert_eq!(server_name_for("[::1]:7001").expect("v6"), ip("::1"));
    assert_eq!(server_name_for("::1").expect("bare v6"), ip("::1"));
    // Unbracketed, the whole is an IPv6 address (a port cannot be told apart).
    assert_eq!(server_name_for("::1:7001").expect("v6"), ip("::1:7001"));
    assert_eq!(
        server_name_for("node-1.example.com:7001").expect("dns"),
        ServerName::try_from("node-1.example.com").expect("dns")
    );
    assert_eq!(
        server_name_for("localhost").expect("bare"),
        ServerName::try_from("localhost").expect("dns")
    );
    for bad in ["", ":7001", "fe80::1:x:7001", "[::1", "bad_host!:1"] {
        let err = server_name_for(bad).expect_err(bad);
        assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
    }
}

#[test]
fn generated_files_keys_private_and_never_overwritten_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = certs::generate(&request(dir.path(), &[1, 2], &["admin"])).expect("generate");
    assert!(report.ca_created);
    assert_eq!(report.written.len(), 2 + 4 + 2);
    for path in &report.written {
        let mode = std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let expected = if name.ends_with("-key.pem") {
            0o600
        } else {
            0o644
        };
        assert_eq!(mode, expected, "{name}");
    }
    for id in [1, 2] {
        peer_server_config(&node_files(dir.path(), id)).expect("loads");
    }

    let ca_before = std::fs::read(dir.path().join(certs::CA_CERT)).expect("ca");
    let key_before = std::fs::read(certs::node_key_path(dir.path(), 2)).expect("key");
    let err = certs::generate(&request(dir.path(), &[2, 3], &[])).expect_err("node-2 exists");
    assert!(
        err.to_string().contains("node-2.pem") && err.to_string().contains("--force"),
        "{err}"
    );
    assert!(
        !certs::node_cert_path(dir.path(), 3).exists(),
        "nothing written on refusal"
    );
    assert_eq!(
        std::fs::read(certs::node_key_path(dir.path(), 2)).expect("key"),
        key_before
    );

    let mut forced = request(dir.path(), &[2], &[]);
    forced.force = true;
    certs::generate(&forced).expect("forced");
    assert_ne!(
        std::fs::read(certs::node_key_path(dir.path(), 2)).expect("key"),
        key_before
    );
    assert_eq!(
        std::fs::read(dir.path().join(certs::CA_CERT)).expect("ca"),
        ca_before,
        "CA kept"
    );
}

#[tokio::test]
async fn a_node_added_later_is_signed_by_the_existing_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs::generate(&request(dir.path(), &[1, 2, 3], &[])).expect("generate");
    let ca_before = std::fs::read(dir.path().join(certs::CA_CERT)).expect("ca");
    let report = certs::generate(&request(dir.path(), &[4], &[])).expect("add node 4");
    assert!(!report.ca_created, "the CA is reused");
    assert_eq!(report.written.len(), 2);
    assert_eq!(
        std::fs::read(dir.path().join(certs::CA_CERT)).expect("ca"),
        ca_before
    );
    // Node 1's configuration (loaded before node 4 existed) accepts node 4, and node 4 node 1.
    let server = peer_server_config(&node_files(dir.path(), 1)).expect("server");
    let client = peer_client_config(&node_files(dir.path(), 4)).expect("client");
    let outcome = handshake(server, client, "127.0.0.1:7001").await;
    let seen = outcome.server.expect("server").expect("client cert");
    assert_eq!(node_id_of(&seen).expect("id"), 4);

    std::fs::remove_file(dir.path().join(certs::CA_KEY)).expect("rm");
    let err = certs::generate(&request(dir.path(), &[5], &[])).expect_err("half a CA");
    assert!(err.to_string().contains("ca-key.pem"), "{err}");
}

#[test]
fn bad_requests_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("certs");
    let cases: Vec<(CertsRequest, &str)> = vec![
        (request(&out, &[0], &[]), "greater than 0"),
        (request(&out, &[1, 1], &[]), "listed twice"),
        (request(&out, &[], &["../x"]), "client name"),
        (request(&out, &[], &["a", "a"]), "listed twice"),
        (
            CertsRequest {
                hosts: vec!["bad host".into()],
                ..request(&out, &[1], &[])
            },
            "bad host",
        ),
        (
            CertsRequest {
                hosts: vec![],
                ..request(&out, &[1], &[])
            },
            "--hosts",
        ),
        (
            CertsRequest {
                days: 0,
                ..request(&out, &[1], &[])
            },
            "--days",
        ),
    ];
    for (req, expected) in cases {
        let err = certs::generate(&req).expect_err(expected);
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
    assert!(!out.exists(), "nothing was created");
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    certs::generate(&request(dir.path(), &[1], &[])).expect("generate");
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not pem at all").expect("write");
    let files = node_files(dir.path(), 1);

    let err = peer_server_config(&TlsFiles {
        ca: missing.clone(),
        ..files.clone()
    })
    .expect_err("missing CA");
    assert!(
        err.to_string().contains("CA certificate") && err.to_string().contains("missing.pem"),
        "{err}"
    );
    let err = peer_client_config(&TlsFiles {
        cert: garbage.clone(),
        ..files.clone()
    })
    .expect_err("garbage cert");
    assert!(
        err.to_string().contains("garbage.pem") && err.to_string().contains("no certificate"),
        "{err}"
    );
    let err = peer_client_config(&TlsFiles {
        key: garbage.clone(),
        ..files.clone()
    })
    .expect_err("garbage key");
    assert!(
        err.to_string().contains("garbage.pem") && err.to_string().contains("no private key"),
        "{err}"
    );
    // A key that is not the certificate's.
    certs::generate(&request(dir.path(), &[2], &[])).expect("node 2");
    let err = peer_server_config(&TlsFiles {
        key: certs::node_key_path(dir.path(), 2),
        ..files
    })
    .expect_err("mismatched key");
    assert!(
        err.to_string().contains("node-1.pem") && err.to_string().contains("node-2-key.pem"),
        "{err}"
    );
}
