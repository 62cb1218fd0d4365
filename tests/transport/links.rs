//! Integration tests of the peer transport over real loopback sockets, inside an actix System.

use crate::harness::{heartbeat, link_config};
use crate::support::msg;
use crate::support::rng::xorshift_bytes;
use crate::support::wait::{check, wait_until_async};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use raftix::core::types::{Entry, EntryPayload, Envelope, LogId, Message, NodeId};
use raftix::messages::peer_link::{GetLinkStats, SendToPeer};
use raftix::transport::{
    decode_frame, encode_frame, peer_codec, serve_peers, Frame, Inbound, LinkStatsSnapshot,
    PeerLink, PeerLinkConfig, PeerListenerConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::timeout;
use tokio_util::codec::{Framed, FramedRead, LengthDelimitedCodec};

const CLUSTER: &str = "test-cluster";
const MAX_FRAME: usize = 64 * 1024;
const WAIT: Duration = Duration::from_secs(5);

fn append(from: NodeId, to: NodeId, prev: u64, payload_bytes: usize) -> Envelope {
    Envelope {
        from,
        to,
        msg: msg::append_request(
            1,
            LogId::new(1, prev),
            vec![Entry {
                term: 1,
                index: prev + 1,
                payload: EntryPayload::Command(Bytes::from(vec![7u8; payload_bytes])),
            }],
            0,
        ),
    }
}

fn link_cfg(local: NodeId, peer: NodeId, addr: SocketAddr, queue: usize) -> PeerLinkConfig {
    link_config(CLUSTER, local, peer, addr, MAX_FRAME, queue)
}

/// Starts `serve_peers` for node `id` on `listener`; returns what its sink receives.
fn serve(listener: TcpListener, id: NodeId) -> UnboundedReceiver<Inbound> {
    let (tx, rx) = unbounded_channel();
    let cfg = PeerListenerConfig::new(id, CLUSTER.into(), MAX_FRAME);
    // Refusals are reported for metrics; these tests look at what is delivered.
    let sink = Arc::new(move |inbound| {
        if !matches!(inbound, Inbound::Refused { .. }) {
            let _ = tx.send(inbound);
        }
        None
    });
    actix_rt::spawn(serve_peers(listener, cfg, sink));
    rx
}

async fn start_listener(id: NodeId) -> (SocketAddr, UnboundedReceiver<Inbound>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, serve(listener, id))
}

async fn next(rx: &mut UnboundedReceiver<Inbound>) -> Inbound {
    timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for inbound")
        .expect("listener gone")
}

async fn next_message(rx: &mut UnboundedReceiver<Inbound>) -> Envelope {
    match next(rx).await {
        Inbound::Message(env) => env,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn stats(link: &Addr<PeerLink>) -> LinkStatsSnapshot {
    link.send(GetLinkStats).await.unwrap()
}

/// Polls the link's counters until `pred` holds, or fails after [`WAIT`].
async fn wait_stats(link: &Addr<PeerLink>, pred: impl Fn(&LinkStatsSnapshot) -> bool) {
    let pred = &pred;
    wait_until_async(WAIT, "the link's stats to match", || async move {
        let s = stats(link).await;
        check(pred(&s), s)
    })
    .await
}

/// Asserts that the server closes `stream` (EOF or reset) within [`WAIT`].
async fn assert_closed(mut stream: TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    match timeout(WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0)) => {}
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => {}
        Ok(Ok(n)) => panic!("{what}: server sent {n} bytes instead of closing"),
        Ok(Err(e)) => panic!("{what}: unexpected error {e}"),
        Err(_) => panic!("{what}: server did not close the connection"),
    }
}

fn assert_nothing_delivered(rx: &mut UnboundedReceiver<Inbound>, what: &str) {
    if let Ok(inbound) = rx.try_recv() {
        panic!("{what}: listener delivered {inbound:?}");
    }
}

fn hello(cluster: &str, from: NodeId, to: NodeId) -> Bytes {
    encode_frame(&Frame::Hello {
        cluster: cluster.into(),
        from,
        to,
        http_addr: "h".into(),
        peer_addr: "p".into(),
        nonce: None,
    })
    .unwrap()
}

/// Connects a raw client speaking the length-delimited framing.
async fn raw_client(addr: SocketAddr) -> Framed<TcpStream, LengthDelimitedCodec> {
    Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        peer_codec(MAX_FRAME),
    )
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    xorshift_bytes(len, seed)
}

#[actix_rt::test]
async fn link_delivers_envelopes_in_order() {
    let (addr, mut rx) = start_listener(2).await;
    let link = PeerLink::start(link_cfg(1, 2, addr, 1024));
    assert_eq!(
        next(&mut rx).await,
        Inbound::Hello {
            from: 1,
            http_addr: "http-of-1".into(),
            peer_addr: "peer-of-1".into(),
        }
    );
    let total = 400u64;
    for i in 0..total {
        let env = if i % 4 == 0 {
            heartbeat(1, 2, i)
        } else {
            append(1, 2, i, 100)
        };
        link.do_send(SendToPeer(env));
    }
    let (mut last_commit, mut last_prev) = (None, None);
    for _ in 0..total {
        let env = next_message(&mut rx).await;
        assert_eq!((env.from, env.to), (1, 2));
        match env.msg {
            Message::Heartbeat { commit, .. } => {
                assert!(last_commit < Some(commit), "heartbeats out of order");
                last_commit = Some(commit);
            }
            Message::AppendRequest { prev, .. } => {
                assert!(last_prev < Some(prev.index), "appends out of order");
                last_prev = Some(prev.index);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((last_commit, last_prev), (Some(396), Some(399)));
    let s = stats(&link).await;
    assert!(s.connected);
    assert_eq!(
        (s.sent, s.dropped, s.connects, s.encoded),
        (total, 0, 1, total)
    );
}

#[actix_rt::test]
async fn oversized_message_is_dropped_without_killing_the_link() {
    let (addr, mut rx) = start_listener(2).await;
    let link = PeerLink::start(link_cfg(1, 2, addr, 16));
    assert!(matches!(
        next(&mut rx).await,
        Inbound::Hello { from: 1, .. }
    ));
    link.do_send(SendToPeer(append(1, 2, 0, MAX_FRAME)));
    link.do_send(SendToPeer(heartbeat(1, 3, 0))); // misaddressed
    link.do_send(SendToPeer(heartbeat(1, 2, 5)));
    let env = next_message(&mut rx).await;
    assert_eq!(env.msg, msg::heartbeat(1, 5, 0, 0));
    let s = stats(&link).await;
    assert_eq!((s.oversized, s.dropped, s.sent, s.connects), (1, 2, 1, 1));
}

#[actix_rt::test]
async fn listener_closes_bad_connections_and_keeps_serving() {
    let (addr, mut rx) = start_listener(2).await;

    // A complete frame of random bytes.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut bytes = 100u32.to_be_bytes().to_vec();
    bytes.extend(pseudo_random(100, 42));
    stream.write_all(&bytes).await.unwrap();
    assert_closed(stream, "random frame").await;

    // Raw random bytes whose first four read as a huge length.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut bytes = pseudo_random(256, 7);
    bytes[0] = 0xA5;
    stream.write_all(&bytes).await.unwrap();
    assert_closed(stream, "random bytes").await;

    // A length prefix just over the limit.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let len = u32::try_from(MAX_FRAME + 1).unwrap();
    stream.write_all(&len.to_be_bytes()).await.unwrap();
    assert_closed(stream, "oversized prefix").await;

    // A Hello with a wrong version byte.
    let mut client = raw_client(addr).await;
    let mut bad = hello(CLUSTER, 1, 2).to_vec();
    bad[0] = 9;
    client.send(Bytes::from(bad)).await.unwrap();
    assert_closed(client.into_inner(), "wrong version").await;

    assert_nothing_delivered(&mut rx, "garbage");

    let link = PeerLink::start(link_cfg(1, 2, addr, 16));
    link.do_send(SendToPeer(heartbeat(1, 2, 9)));
    assert!(matches!(
        next(&mut rx).await,
        Inbound::Hello { from: 1, .. }
    ));
    assert_eq!(next_message(&mut rx).await, heartbeat(1, 2, 9));
}

#[actix_rt::test]
async fn listener_refuses_mismatched_hello_and_envelopes() {
    let (addr, mut rx) = start_listener(2).await;

    for (frame, what) in [
        (hello("other-cluster", 1, 2), "wrong cluster"),
        (hello(CLUSTER, 1, 3), "wrong destination"),
        (
            encode_frame(&Frame::Raft(heartbeat(1, 2, 0))).unwrap(),
            "no Hello",
        ),
    ] {
        let mut client = raw_client(addr).await;
        client.send(frame).await.unwrap();
        assert_closed(client.into_inner(), what).await;
        assert_nothing_delivered(&mut rx, what);
    }

    for (env, what) in [
        (heartbeat(3, 2, 0), "envelope from another node"),
        (heartbeat(1, 4, 0), "envelope to another node"),
    ] {
        let mut client = raw_client(addr).await;
        client.send(hello(CLUSTER, 1, 2)).await.unwrap();
        client
            .send(encode_frame(&Frame::Raft(env)).unwrap())
            .await
            .unwrap();
        assert_closed(client.into_inner(), what).await;
        assert!(matches!(
            next(&mut rx).await,
            Inbound::Hello { from: 1, .. }
        ));
        assert_nothing_delivered(&mut rx, what);
    }

    let mut client = raw_client(addr).await;
    client.send(hello(CLUSTER, 1, 2)).await.unwrap();
    client.send(hello(CLUSTER, 1, 2)).await.unwrap();
    assert_closed(client.into_inner(), "second Hello").await;
    assert!(matches!(
        next(&mut rx).await,
        Inbound::Hello { from: 1, .. }
    ));
    assert_nothing_delivered(&mut rx, "second Hello");
}

#[actix_rt::test]
async fn link_drops_while_peer_is_down_then_reconnects() {
    // Reserve a port, then free it so that connecting is refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let link = PeerLink::start(link_cfg(1, 2, addr, 16));
    let s = wait_until_async(WAIT, "5 drops and 2 failed connects", || async {
        link.do_send(SendToPeer(heartbeat(1, 2, 0)));
        let s = stats(&link).await;
        check(s.dropped >= 5 && s.connect_failures >= 2, s).map(|()| s)
    })
    .await;
    assert!(!s.connected);
    assert_eq!((s.sent, s.connects), (0, 0));

    let mut rx = serve(TcpListener::bind(addr).await.unwrap(), 2);
    assert!(matches!(
        next(&mut rx).await,
        Inbound::Hello { from: 1, .. }
    ));
    wait_stats(&link, |s| s.connected).await;
    link.do_send(SendToPeer(heartbeat(1, 2, 77)));
    assert_eq!(next_message(&mut rx).await, heartbeat(1, 2, 77));
    let s = stats(&link).await;
    assert_eq!((s.connects, s.reconnects), (1, 1));
}

#[actix_rt::test]
async fn control_messages_overtake_queued_appends() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let link = PeerLink::start(link_cfg(1, 2, addr, 64));
    // All sent before the actor first runs: they are queued while the link is still connecting.
    for i in 0..20 {
        link.do_send(SendToPeer(append(1, 2, i, 32 * 1024)));
    }
    link.do_send(SendToPeer(heartbeat(1, 2, 3)));
    let vote = Envelope {
        from: 1,
        to: 2,
        msg: msg::vote_response(1, true, false),
    };
    link.do_send(SendToPeer(vote.clone()));

    let (stream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut frames = FramedRead::new(stream, peer_codec(MAX_FRAME));
    let mut received = Vec::new();
    while received.len() < 23 {
        let bytes = timeout(WAIT, frames.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        received.push(decode_frame(&bytes, MAX_FRAME).unwrap());
    }
    assert!(matches!(received[0], Frame::Hello { from: 1, to: 2, .. }));
    assert_eq!(received[1], Frame::Raft(heartbeat(1, 2, 3)));
    assert_eq!(received[2], Frame::Raft(vote));
    for (i, frame) in received[3..].iter().enumerate() {
        assert_eq!(*frame, Frame::Raft(append(1, 2, i as u64, 32 * 1024)));
    }
    assert_eq!(stats(&link).await.dropped, 0);
}

#[actix_rt::test]
async fn stopping_the_link_closes_its_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let link = PeerLink::start(link_cfg(1, 2, addr, 4));
    let (stream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut frames = FramedRead::new(stream, peer_codec(MAX_FRAME));
    let first = timeout(WAIT, frames.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(
        decode_frame(&first, MAX_FRAME).unwrap(),
        Frame::Hello { .. }
    ));
    drop(link);
    let end = timeout(WAIT, frames.next())
        .await
        .expect("link kept the connection open");
    assert!(end.is_none() || end.is_some_and(|r| r.is_err()));
}

#[actix_rt::test]
async fn a_peer_that_is_back_ends_the_reconnect_backoff() {
    // Reserve a port, then leave it closed: the link fails until its backoff reaches about a
    // second (20 ms doubling: after 6 failures the next wait is drawn from [0.5 s, 1 s]).
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let link = PeerLink::start(link_cfg(1, 2, addr, 16));
    wait_stats(&link, |s| s.connect_failures >= 6).await;
    let (_, mut rx) = {
        let listener = TcpListener::bind(addr).await.unwrap();
        ((), serve(listener, 2))
    };
    let told = tokio::time::Instant::now();
    link.do_send(raftix::messages::peer_link::PeerIsBack);
    let hello = next(&mut rx).await;
    assert!(matches!(hello, Inbound::Hello { from: 1, .. }), "{hello:?}");
    let took = told.elapsed();
    assert!(
        took < Duration::from_millis(300),
        "reconnected {took:?} after being told the peer is back (the backoff alone is at least 500 ms)"
    );
}
