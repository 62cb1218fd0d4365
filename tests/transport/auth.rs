//! Peer authentication and the listener's limits, over real loopback sockets: the cluster-secret
//! handshake, frame HMACs (forged and replayed frames), mismatched configurations, the
//! connection limits and per-connection back-pressure.

use crate::harness::{assert_quiet, heartbeat, link_config, next, serve as listen, WAIT};
use crate::support::wait::{check, wait_until_async};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use raftix::core::types::{Envelope, Message, NodeId};
use raftix::messages::peer_link::{GetLinkStats, SendToPeer};
use raftix::transport::auth::{fresh_nonce, Handshake};
use raftix::transport::{
    decode_frame, encode_frame, peer_codec, serve_peers, ClusterSecret, Frame, Inbound, PeerLink,
    PeerLinkConfig, PeerListenerConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::timeout;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

const CLUSTER: &str = "auth-cluster";
const MAX_FRAME: usize = 64 * 1024;

fn secret(byte: u8) -> ClusterSecret {
    ClusterSecret::new(vec![byte; 32]).expect("long enough")
}

fn link_cfg(
    local: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    s: Option<ClusterSecret>,
) -> PeerLinkConfig {
    PeerLinkConfig {
        secret: s,
        ..link_config(CLUSTER, local, peer, addr, MAX_FRAME, 256)
    }
}

fn listener_cfg(id: NodeId, s: Option<ClusterSecret>) -> PeerListenerConfig {
    PeerListenerConfig {
        secret: s,
        ..PeerListenerConfig::new(id, CLUSTER.into(), MAX_FRAME)
    }
}

async fn next_message(rx: &mut UnboundedReceiver<Inbound>) -> Envelope {
    loop {
        match next(rx).await {
            Inbound::Message(env) => return env,
            Inbound::Hello { .. } => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

async fn wait_connect_failures(link: &Addr<PeerLink>) {
    wait_until_async(WAIT, "the link to fail to connect", || async {
        let s = link.send(GetLinkStats).await.expect("link alive");
        check(s.connect_failures > 0, s)
    })
    .await
}

/// A raw peer that speaks the protocol by hand, to send what a real link never would.
struct RawPeer {
    io: Framed<TcpStream, LengthDelimitedCodec>,
}

impl RawPeer {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self {
            io: Framed::new(stream, peer_codec(MAX_FRAME + 32)),
        }
    }

    fn hello(from: NodeId, to: NodeId, with_nonce: bool) -> Bytes {
        encode_frame(&Frame::Hello {
            cluster: CLUSTER.into(),
            from,
            to,
            http_addr: "h".into(),
            peer_addr: "p".into(),
            nonce: with_nonce.then(fresh_nonce),
        })
        .expect("encode")
    }

    /// Sends a Hello and completes the handshake with `s`; returns the handshake.
    async fn handshake(&mut self, from: NodeId, to: NodeId, s: &ClusterSecret) -> Handshake {
        let hello = Self::hello(from, to, true);
        self.io.send(hello.clone()).await.expect("send hello");
        let challenge = timeout(WAIT, self.io.next())
            .await
            .expect("challenge in time")
            .expect("challenge")
            .expect("read");
        let Frame::Challenge { nonce, proof } =
            decode_frame(&challenge, MAX_FRAME).expect("decode")
        else {
            panic!("expected a Challenge");
        };
        let handshake = Handshake::new(&hello, &nonce);
        assert!(
            Handshake::proof_matches(&handshake.listener_proof(s), &proof),
            "the listener proved the secret"
        );
        let auth = encode_frame(&Frame::Auth {
            proof: handshake.connector_proof(s),
        })
        .expect("encode");
        self.io.send(auth).await.expect("send auth");
        handshake
    }

    async fn send(&mut self, bytes: Bytes) {
        // The listener may already have closed the connection: a failed send is fine.
        let _ = self.io.send(bytes).await;
    }

    async fn assert_closed(self, what: &str) {
        let mut stream = self.io.into_inner();
        let mut buf = [0u8; 256];
        loop {
            match timeout(WAIT, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => continue, // e.g. the Challenge
                Err(_) => panic!("{what}: the listener did not close the connection"),
            }
        }
    }
}

fn raft_frame(from: NodeId, to: NodeId, commit: u64) -> Bytes {
    encode_frame(&Frame::Raft(heartbeat(from, to, commit))).expect("encode")
}

#[actix_rt::test]
async fn peers_with_the_same_secret_talk() {
    let mut served = listen(listener_cfg(2, Some(secret(1)))).await;
    let link = PeerLink::start(link_cfg(1, 2, served.addr, Some(secret(1))));
    for commit in 0..50 {
        link.do_send(SendToPeer(heartbeat(1, 2, commit)));
    }
    match next(&mut served.delivered).await {
        Inbound::Hello { from, .. } => assert_eq!(from, 1),
        other => panic!("expected the Hello first, got {other:?}"),
    }
    for commit in 0..50 {
        let env = next_message(&mut served.delivered).await;
        assert!(matches!(env.msg, Message::Heartbeat { commit: c, .. } if c == commit));
    }
    assert!(served.refused.try_recv().is_err(), "nothing refused");
}

#[actix_rt::test]
async fn a_wrong_missing_or_unexpected_secret_gets_nothing_through() {
    let cases: [(Option<u8>, Option<u8>, &str); 3] = [
        (Some(1), Some(2), "wrong secret"),
        (Some(1), None, "link without a secret"),
        (None, Some(2), "listener without a secret"),
    ];
    for (listener_secret, link_secret, what) in cases {
        let mut served = listen(listener_cfg(2, listener_secret.map(secret))).await;
        let link = PeerLink::start(link_cfg(1, 2, served.addr, link_secret.map(secret)));
        for commit in 0..5 {
            link.do_send(SendToPeer(heartbeat(1, 2, commit)));
        }
        if listener_secret.is_some() {
            assert_eq!(next(&mut served.refused).await, "auth", "{what}");
        } else {
            // The link refuses a listener that cannot prove the secret: it never sends.
            wait_connect_failures(&link).await;
        }
        assert_quiet(&mut served.delivered, what).await;
    }
}

#[actix_rt::test]
async fn a_raw_peer_with_the_wrong_secret_is_refused_at_its_proof() {
    let mut served = listen(listener_cfg(2, Some(secret(1)))).await;
    let mut rogue = RawPeer::connect(served.addr).await;
    let hello = RawPeer::hello(1, 2, true);
    rogue.send(hello.clone()).await;
    let challenge = timeout(WAIT, rogue.io.next())
        .await
        .expect("challenge in time")
        .expect("challenge")
        .expect("read");
    let Frame::Challenge { nonce, proof } = decode_frame(&challenge, MAX_FRAME).expect("decode")
    else {
        panic!("expected a Challenge");
    };
    let handshake = Handshake::new(&hello, &nonce);
    assert!(
        !Handshake::proof_matches(&handshake.listener_proof(&secret(9)), &proof),
        "the proof depends on the secret"
    );
    rogue
        .send(
            encode_frame(&Frame::Auth {
                proof: handshake.connector_proof(&secret(9)),
            })
            .expect("encode"),
        )
        .await;
    rogue.send(raft_frame(1, 2, 1)).await;
    assert_eq!(next(&mut served.refused).await, "auth");
    rogue.assert_closed("wrong proof").await;
    assert_quiet(&mut served.delivered, "wrong proof").await;
}

#[actix_rt::test]
async fn forged_and_replayed_frames_close_the_connection_and_are_not_delivered() {
    let s = secret(1);
    let mut served = listen(listener_cfg(2, Some(s.clone()))).await;

    // Replay within a connection: frame 0 is delivered, the same bytes again are refused.
    let mut peer = RawPeer::connect(served.addr).await;
    let handshake = peer.handshake(1, 2, &s).await;
    let mut sealer = handshake.sealer(&s);
    let first = sealer.seal(&raft_frame(1, 2, 7));
    peer.send(first.clone()).await;
    assert!(matches!(
        next(&mut served.delivered).await,
        Inbound::Hello { from: 1, .. }
    ));
    let env = next_message(&mut served.delivered).await;
    assert!(matches!(env.msg, Message::Heartbeat { commit: 7, .. }));
    peer.send(first.clone()).await;
    assert_eq!(next(&mut served.refused).await, "forged_frame");
    peer.assert_closed("replayed frame").await;
    assert_quiet(&mut served.delivered, "replayed frame").await;

    // A frame without a tag, and a frame with one flipped bit.
    for (what, tamper) in [("untagged frame", 0usize), ("flipped bit", 1usize)] {
        let mut peer = RawPeer::connect(served.addr).await;
        let handshake = peer.handshake(1, 2, &s).await;
        let frame = raft_frame(1, 2, 8);
        let bytes = if tamper == 0 {
            frame
        } else {
            let mut sealed = handshake.sealer(&s).seal(&frame).to_vec();
            sealed[3] ^= 0x10;
            Bytes::from(sealed)
        };
        peer.send(bytes).await;
        assert!(
            matches!(next(&mut served.delivered).await, Inbound::Hello { .. }),
            "{what}"
        );
        assert_eq!(next(&mut served.refused).await, "forged_frame", "{what}");
        peer.assert_closed(what).await;
        assert_quiet(&mut served.delivered, what).await;
    }
}

/// A TCP relay between a link and the listener that records what the link sends.
async fn recording_relay(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let relay = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
    let addr = relay.local_addr().expect("addr");
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let tape = recorded.clone();
    actix_rt::spawn(async move {
        let Ok((inbound, _)) = relay.accept().await else {
            return;
        };
        let Ok(outbound) = TcpStream::connect(target).await else {
            return;
        };
        let (mut in_read, mut in_write) = inbound.into_split();
        let (mut out_read, mut out_write) = outbound.into_split();
        let back = actix_rt::spawn(async move {
            let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
        });
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = in_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Ok(mut tape) = tape.lock() {
                tape.extend_from_slice(&buf[..n]);
            }
            if out_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        back.abort();
    });
    (addr, recorded)
}

#[actix_rt::test]
async fn a_captured_connection_replayed_on_a_new_connection_is_refused() {
    let s = secret(1);
    let mut served = listen(listener_cfg(2, Some(s.clone()))).await;
    let (relay, tape) = recording_relay(served.addr).await;
    let link = PeerLink::start(link_cfg(1, 2, relay, Some(s)));
    for commit in 0..3 {
        link.do_send(SendToPeer(heartbeat(1, 2, commit)));
    }
    assert!(matches!(
        next(&mut served.delivered).await,
        Inbound::Hello { .. }
    ));
    for _ in 0..3 {
        next_message(&mut served.delivered).await;
    }
    let captured = tape.lock().expect("tape").clone();
    assert!(!captured.is_empty());
    // Replay everything the real node sent (Hello, Auth, three sealed frames) on a new
    // connection: the listener's fresh nonce makes the recorded Auth proof wrong.
    let mut replay = TcpStream::connect(served.addr).await.expect("connect");
    replay.write_all(&captured).await.expect("replay");
    assert_eq!(next(&mut served.refused).await, "auth");
    RawPeer {
        io: Framed::new(replay, peer_codec(MAX_FRAME + 32)),
    }
    .assert_closed("replayed connection")
    .await;
    assert_quiet(&mut served.delivered, "replayed connection").await;
}

#[actix_rt::test]
async fn strangers_cannot_hold_more_than_the_handshake_slots() {
    let cfg = PeerListenerConfig {
        max_handshakes: 2,
        ..listener_cfg(2, Some(secret(1)))
    };
    let mut served = listen(cfg).await;
    // Two strangers connect and say nothing: they hold both handshake slots.
    let idle_a = TcpStream::connect(served.addr).await.expect("connect");
    let idle_b = TcpStream::connect(served.addr).await.expect("connect");
    // A third connection is closed at once, and reported.
    let third = RawPeer::connect(served.addr).await;
    assert_eq!(next(&mut served.refused).await, "connection_limit");
    third.assert_closed("third connection").await;
    // Once the strangers leave, a real peer gets in (the listener notices their EOF
    // asynchronously: a peer refused meanwhile retries, as a real link does).
    drop((idle_a, idle_b));
    let s = secret(1);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut peer = RawPeer::connect(served.addr).await;
        peer.send(RawPeer::hello(1, 2, true)).await;
        if let Ok(Some(Ok(challenge))) = timeout(Duration::from_millis(500), peer.io.next()).await {
            assert!(matches!(
                decode_frame(&challenge, MAX_FRAME),
                Ok(Frame::Challenge { .. })
            ));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no slot was freed");
    }
    let mut peer = RawPeer::connect(served.addr).await;
    peer.handshake(1, 2, &s).await;
}

#[actix_rt::test]
async fn a_connection_stops_reading_while_its_messages_are_unprocessed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, mut delivered) = unbounded_channel();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let sink_gate = gate.clone();
    let sink = Arc::new(move |inbound| {
        let message = matches!(inbound, Inbound::Message(_));
        let _ = tx.send(inbound);
        let gate = sink_gate.clone();
        // Each message counts as processed only once the test opens the gate for it.
        message.then(|| {
            async move {
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
            }
            .boxed()
        })
    });
    let cfg = PeerListenerConfig {
        max_pending_per_connection: 4,
        ..listener_cfg(2, None)
    };
    actix_rt::spawn(serve_peers(listener, cfg, sink));
    let link = PeerLink::start(link_cfg(1, 2, addr, None));
    for commit in 0..10 {
        link.do_send(SendToPeer(heartbeat(1, 2, commit)));
    }
    assert!(matches!(next(&mut delivered).await, Inbound::Hello { .. }));
    for _ in 0..4 {
        next_message(&mut delivered).await;
    }
    assert_quiet(&mut delivered, "a fifth message while four are unprocessed").await;
    gate.add_permits(100);
    for _ in 4..10 {
        next_message(&mut delivered).await;
    }
}
