//! The proxy mechanism, for machines without network namespaces (not root, no `ip`/`tc`):
//! nodes listen on loopback, and node `a` reaches node `b` through a TCP proxy of its own for
//! the ordered pair `(a, b)` (every node gets its own `--cluster` flag naming its proxies).
//!
//! A proxy copies bytes both ways. Cutting the directed link `a -> b` *stalls* every byte `a`
//! sends to `b`: on the connections `a` opened to `b` (client-to-server direction of proxy
//! `(a, b)`) and on the ones `b` opened to `a` (server-to-client direction of proxy `(b, a)`).
//! A stalled direction stops reading, so TCP flow control backs up to the sender as it would
//! behind a link that drops packets; on heal the bytes flow again. One-way cuts are therefore
//! possible; delay and loss are not (a byte stream cannot lose a message and stay framed).
//!
//! Limits: only the Raft peer traffic goes through the proxies. HTTP forwarding from a follower
//! to the leader is direct, and a membership change that records new peer addresses in the log
//! would bypass the proxies.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

use super::net::{cluster_flag, free_ports, Blocked, NodeAddrs, NodeId};

/// Pause of a polling loop (accept, stalled direction).
const POLL: Duration = Duration::from_millis(5);

/// Cut state of one proxy: `up` is client-to-server (`a -> b` for proxy `(a, b)`), `down` the
/// answers.
#[derive(Debug, Default)]
struct Cuts {
    up: AtomicBool,
    down: AtomicBool,
}

/// One proxied connection: both sockets, so that teardown can shut them down.
struct Conn {
    client: TcpStream,
    server: TcpStream,
}

impl Conn {
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

/// The proxies of one run; stopped (every connection closed) on drop.
pub struct ProxyNet {
    peer_ports: BTreeMap<NodeId, u16>,
    http_ports: BTreeMap<NodeId, u16>,
    /// Listening port of proxy `(a, b)`.
    proxy_ports: BTreeMap<(NodeId, NodeId), u16>,
    cuts: BTreeMap<(NodeId, NodeId), Arc<Cuts>>,
    conns: Arc<Mutex<Vec<Weak<Conn>>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl ProxyNet {
    /// Picks the nodes' ports and starts one proxy per ordered pair of nodes.
    pub fn start(ids: &[NodeId]) -> Result<ProxyNet, String> {
        let ports = free_ports(2 * ids.len())?;
        let mut net = ProxyNet {
            peer_ports: ids
                .iter()
                .zip(ports.iter().step_by(2))
                .map(|(&i, &p)| (i, p))
                .collect(),
            http_ports: ids
                .iter()
                .zip(ports.iter().skip(1).step_by(2))
                .map(|(&i, &p)| (i, p))
                .collect(),
            proxy_ports: BTreeMap::new(),
            cuts: BTreeMap::new(),
            conns: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        for &a in ids {
            for &b in ids {
                if a == b {
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0")
                    .map_err(|e| format!("proxy bind 127.0.0.1:0: {e}"))?;
                listener
                    .set_nonblocking(true)
                    .map_err(|e| format!("proxy nonblocking: {e}"))?;
                let port = listener
                    .local_addr()
                    .map_err(|e| format!("proxy address: {e}"))?
                    .port();
                let target = SocketAddr::from(([127, 0, 0, 1], net.peer_ports[&b]));
                let cuts = Arc::new(Cuts::default());
                net.proxy_ports.insert((a, b), port);
                net.cuts.insert((a, b), cuts.clone());
                let (conns, stop) = (net.conns.clone(), net.stop.clone());
                let handle = thread::Builder::new()
                    .name(format!("proxy-{a}-{b}"))
                    .spawn(move || accept_loop(listener, target, cuts, conns, stop))
                    .map_err(|e| format!("spawn proxy thread: {e}"))?;
                net.threads.push(handle);
            }
        }
        Ok(net)
    }

    /// One line on the mechanism.
    pub fn describe(&self) -> String {
        format!(
            "proxy: nodes on 127.0.0.1, {} per-link TCP proxies that stall a direction to cut it; \
             no delay or loss faults",
            self.proxy_ports.len()
        )
    }

    /// Node `id`'s addresses: its own listeners, and its proxies as the other nodes' addresses.
    pub fn addrs(&self, id: NodeId) -> NodeAddrs {
        let peers: BTreeMap<NodeId, String> = self
            .peer_ports
            .iter()
            .map(|(&other, &port)| {
                let port = if other == id {
                    port
                } else {
                    self.proxy_ports[&(id, other)]
                };
                (other, format!("127.0.0.1:{port}"))
            })
            .collect();
        let http = self.http_ports[&id];
        NodeAddrs {
            listen_peer: format!("127.0.0.1:{}", self.peer_ports[&id]),
            listen_http: format!("127.0.0.1:{http}"),
            http_base: format!("http://127.0.0.1:{http}"),
            cluster: cluster_flag(&peers),
            netns: None,
        }
    }

    /// Stalls exactly the directions that carry a blocked link's bytes.
    pub fn set_blocked(&mut self, blocked: &Blocked) {
        for (&(a, b), cuts) in &self.cuts {
            // Proxy (a, b): up carries a -> b, down carries b -> a.
            cuts.up.store(blocked.contains(&(a, b)), Ordering::SeqCst);
            cuts.down.store(blocked.contains(&(b, a)), Ordering::SeqCst);
        }
    }

    /// Stops every proxy and closes every connection.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(conns) = self.conns.lock() {
            for conn in conns.iter().filter_map(Weak::upgrade) {
                conn.close();
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for ProxyNet {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    cuts: Arc<Cuts>,
    conns: Arc<Mutex<Vec<Weak<Conn>>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(POLL);
                continue;
            }
            Err(_) => {
                thread::sleep(POLL);
                continue;
            }
        };
        // The node behind may be down: then the connection just closes, like a refused one.
        let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nonblocking(false);
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        let conn = Arc::new(Conn { client, server });
        if let Ok(mut all) = conns.lock() {
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&conn));
        }
        let up = {
            let (conn, cuts, stop) = (conn.clone(), cuts.clone(), stop.clone());
            move || {
                pump(
                    c2,
                    &conn.server,
                    || cuts.up.load(Ordering::SeqCst),
                    &stop,
                    &conn,
                )
            }
        };
        let down = {
            let (conn, cuts, stop) = (conn.clone(), cuts.clone(), stop.clone());
            move || {
                pump(
                    s2,
                    &conn.client,
                    || cuts.down.load(Ordering::SeqCst),
                    &stop,
                    &conn,
                )
            }
        };
        let _ = thread::Builder::new().name("proxy-up".into()).spawn(up);
        let _ = thread::Builder::new().name("proxy-down".into()).spawn(down);
    }
}

/// Copies `from` to `to`, holding every chunk while `cut()` is true; on EOF or error closes
/// the whole connection.
fn pump(
    mut from: TcpStream,
    mut to: &TcpStream,
    cut: impl Fn() -> bool,
    stop: &AtomicBool,
    conn: &Conn,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let _ = from.set_read_timeout(Some(Duration::from_millis(200)));
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // While cut, read nothing: the sender's TCP window fills as behind a dead link.
        if cut() {
            thread::sleep(POLL);
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        // A chunk read just before a cut is held too.
        while cut() && !stop.load(Ordering::SeqCst) {
            thread::sleep(POLL);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    conn.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback; returns its port.
    fn echo_server() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn roundtrip(port: u16, timeout: Duration) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(timeout));
        if s.write_all(b"ping").is_err() {
            return false;
        }
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).is_ok() && &buf == b"ping"
    }

    #[test]
    fn cut_directions_stall_and_heal() {
        let mut net = ProxyNet::start(&[1, 2]).expect("start proxies");
        // Point node 2's "peer port" at an echo server: node 1 reaches it through proxy (1, 2).
        let echo = echo_server();
        let port = net.proxy_ports[&(1, 2)];
        // Replace the target by restarting that proxy's accept loop on the echo server.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let via = listener.local_addr().expect("addr").port();
        let cuts = net.cuts[&(1, 2)].clone();
        let (conns, stop) = (net.conns.clone(), net.stop.clone());
        let target = SocketAddr::from(([127, 0, 0, 1], echo));
        net.threads.push(thread::spawn(move || {
            accept_loop(listener, target, cuts, conns, stop)
        }));
        assert_ne!(port, via);

        let quick = Duration::from_millis(300);
        assert!(roundtrip(via, Duration::from_secs(2)), "open link passes");
        net.set_blocked(&Blocked::from([(1, 2)]));
        assert!(!roundtrip(via, quick), "1 -> 2 cut: the request stalls");
        net.set_blocked(&Blocked::from([(2, 1)]));
        assert!(!roundtrip(via, quick), "2 -> 1 cut: the answer stalls");
        net.set_blocked(&Blocked::new());
        assert!(roundtrip(via, Duration::from_secs(2)), "healed link passes");

        // A stalled connection delivers once healed.
        let mut s = TcpStream::connect(("127.0.0.1", via)).expect("connect");
        net.set_blocked(&Blocked::from([(1, 2)]));
        s.write_all(b"late").expect("write");
        s.set_read_timeout(Some(quick)).expect("timeout");
        let mut buf = [0u8; 4];
        assert!(s.read_exact(&mut buf).is_err(), "nothing while cut");
        net.set_blocked(&Blocked::new());
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        s.read_exact(&mut buf).expect("delivered after heal");
        assert_eq!(&buf, b"late");
    }

    #[test]
    fn every_node_names_its_own_proxies() {
        let net = ProxyNet::start(&[1, 2, 3]).expect("start proxies");
        let a1 = net.addrs(1);
        assert!(a1.cluster.contains(&format!("1={}", a1.listen_peer)));
        assert!(a1
            .cluster
            .contains(&format!("2=127.0.0.1:{}", net.proxy_ports[&(1, 2)])));
        assert!(a1
            .cluster
            .contains(&format!("3=127.0.0.1:{}", net.proxy_ports[&(1, 3)])));
        assert_eq!(net.proxy_ports.len(), 6);
    }
}
