//! Mutual TLS on the peer transport, over real loopback sockets, with certificates made by
//! `raftix certs`' generator: peers of one CA talk (with and without a cluster secret on top); a
//! certificate from another CA, a certificate naming another node than the Hello, a listener
//! whose certificate names another node than the one the link meant to reach, and a plain-TCP
//! peer all get nothing through.

use crate::harness::{assert_quiet, heartbeat, link_config, next, serve, Served, WAIT};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use actix::Addr;
use raftix::core::types::{Message, NodeId};
use raftix::messages::peer_link::{GetLinkStats, SendToPeer};
use raftix::tls::certs::{generate, node_cert_path, node_key_path, CertsRequest, CA_CERT};
use raftix::tls::{peer_client_config, peer_server_config, TlsFiles};
use raftix::transport::{
    ClusterSecret, Inbound, PeerLink, PeerLinkConfig, PeerListenerConfig, PeerTls,
};

const CLUSTER: &str = "tls-cluster";
const MAX_FRAME: usize = 64 * 1024;

fn make_ca(dir: &Path) {
    generate(&CertsRequest {
        out: dir.to_path_buf(),
        nodes: vec![1, 2, 3],
        hosts: vec!["localhost".into(), "127.0.0.1".into()],
        clients: vec![],
        days: 30,
        force: false,
    })
    .expect("generate certificates");
}

/// The peer TLS settings of a node presenting `cert_of`'s certificate from `dir`.
fn tls(dir: &Path, cert_of: NodeId) -> PeerTls {
    let files = TlsFiles {
        ca: dir.join(CA_CERT),
        cert: node_cert_path(dir, cert_of),
        key: node_key_path(dir, cert_of),
    };
    PeerTls {
        server: peer_server_config(&files).expect("server config"),
        client: peer_client_config(&files).expect("client config"),
    }
}

async fn listen(id: NodeId, tls: Option<PeerTls>, secret: Option<ClusterSecret>) -> Served {
    serve(PeerListenerConfig {
        tls,
        secret,
        ..PeerListenerConfig::new(id, CLUSTER.into(), MAX_FRAME)
    })
    .await
}

fn link(
    from: NodeId,
    to: NodeId,
    addr: SocketAddr,
    tls: Option<PeerTls>,
    secret: Option<ClusterSecret>,
) -> Addr<PeerLink> {
    let link = PeerLink::start(PeerLinkConfig {
        secret,
        tls,
        ..link_config(CLUSTER, from, to, addr, MAX_FRAME, 64)
    });
    for commit in 0..5 {
        link.do_send(SendToPeer(heartbeat(from, to, commit)));
    }
    link
}

async fn wait_connect_failures(link: &Addr<PeerLink>, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = link.send(GetLinkStats).await.expect("link alive");
        if s.connect_failures > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the link never failed: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn peers_of_one_ca_talk_with_and_without_a_secret_on_top() {
    let ca = tempfile::tempdir().expect("tempdir");
    make_ca(ca.path());
    for secret in [None, Some(ClusterSecret::new(vec![5; 32]).expect("long"))] {
        let mut served = listen(2, Some(tls(ca.path(), 2)), secret.clone()).await;
        let _link = link(1, 2, served.addr, Some(tls(ca.path(), 1)), secret);
        assert!(matches!(
            next(&mut served.delivered).await,
            Inbound::Hello { from: 1, .. }
        ));
        for commit in 0..5 {
            match next(&mut served.delivered).await {
                Inbound::Message(env) => {
                    assert!(matches!(env.msg, Message::Heartbeat { commit: c, .. } if c == commit))
                }
                other => panic!("expected a message, got {other:?}"),
            }
        }
        assert!(served.refused.try_recv().is_err());
    }
}

#[actix_rt::test]
async fn a_foreign_ca_a_borrowed_identity_or_plain_tcp_gets_nothing_through() {
    let ca = tempfile::tempdir().expect("tempdir");
    make_ca(ca.path());
    let other = tempfile::tempdir().expect("tempdir");
    make_ca(other.path());

    // Node 1 with a certificate from another CA.
    let mut served = listen(2, Some(tls(ca.path(), 2)), None).await;
    let _rogue = link(1, 2, served.addr, Some(tls(other.path(), 1)), None);
    assert_eq!(next(&mut served.refused).await, "auth", "foreign CA");
    assert_quiet(&mut served.delivered, "foreign CA").await;

    // A genuine certificate of node 3 used to speak as node 1.
    let mut served = listen(2, Some(tls(ca.path(), 2)), None).await;
    let _borrowed = link(1, 2, served.addr, Some(tls(ca.path(), 3)), None);
    assert_eq!(next(&mut served.refused).await, "auth", "borrowed identity");
    assert_quiet(&mut served.delivered, "borrowed identity").await;

    // Plain TCP to a TLS listener.
    let mut served = listen(2, Some(tls(ca.path(), 2)), None).await;
    let _plain = link(1, 2, served.addr, None, None);
    assert_eq!(next(&mut served.refused).await, "auth", "plain TCP");
    assert_quiet(&mut served.delivered, "plain TCP").await;

    // A listener presenting node 3's certificate where node 2 was meant: the link refuses it
    // before it sends anything.
    let mut served = listen(2, Some(tls(ca.path(), 3)), None).await;
    let wrong_target = link(1, 2, served.addr, Some(tls(ca.path(), 1)), None);
    wait_connect_failures(&wrong_target, "listener with another node's certificate").await;
    assert_quiet(
        &mut served.delivered,
        "listener with another node's certificate",
    )
    .await;
}
