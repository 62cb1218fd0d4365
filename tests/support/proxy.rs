//! A TCP proxy in front of one node's peer port, so a test can throttle what other nodes send it:
//! it forwards at most `limit` bytes towards the node (counted over every connection), then
//! holds the rest until the limit is raised. Peer links only write (the answers travel on the
//! node's own outbound links), so this throttles everything the other nodes send the node.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

struct Shared {
    /// Where connections are forwarded (set once the node's address is known).
    target: Mutex<Option<String>>,
    /// Bytes forwarded towards the target, over all connections.
    forwarded: AtomicU64,
    /// Most bytes forwarded towards the target (`u64::MAX`: no limit).
    limit: AtomicU64,
    /// Woken when the limit changes.
    raised: Notify,
    /// Forwarding tasks of the open connections.
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// The proxy; it stops when dropped.
pub struct Proxy {
    /// The address to give the other nodes.
    pub addr: String,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a fresh loopback port; forwards nothing until `set_target`.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let shared = Arc::new(Shared {
            target: Mutex::new(None),
            forwarded: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
            raised: Notify::new(),
            connections: Mutex::new(Vec::new()),
        });
        let accept = actix_rt::spawn({
            let shared = shared.clone();
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let conn = actix_rt::spawn(forward(inbound, shared.clone()));
                    let mut conns = shared.connections.lock().expect("connections");
                    conns.retain(|c| !c.is_finished());
                    conns.push(conn);
                }
            }
        });
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// A handle for the target setter (the cluster's `tune` closure needs a `'static` one).
    pub fn target_setter(&self) -> impl Fn(&str) + Clone + 'static {
        let shared = self.shared.clone();
        move |target: &str| *shared.target.lock().expect("target") = Some(target.to_string())
    }

    /// Bytes forwarded towards the target so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Forwards at most `limit` bytes in all (counting what was already forwarded).
    pub fn set_limit(&self, limit: u64) {
        self.shared.limit.store(limit, Ordering::SeqCst);
        self.shared.raised.notify_waiters();
    }

    /// Forwards everything again.
    pub fn unlimit(&self) {
        self.set_limit(u64::MAX);
    }

    /// Closes every open connection (senders reconnect).
    pub fn cut(&self) {
        for conn in self
            .shared
            .connections
            .lock()
            .expect("connections")
            .drain(..)
        {
            conn.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Forwards one connection: towards the target within the limit, back without one.
async fn forward(inbound: TcpStream, shared: Arc<Shared>) {
    let Some(target) = shared.target.lock().expect("target").clone() else {
        return;
    };
    let Ok(outbound) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let towards = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let allowed = loop {
                let raised = shared.raised.notified();
                let allowed = shared
                    .limit
                    .load(Ordering::SeqCst)
                    .saturating_sub(shared.forwarded.load(Ordering::SeqCst));
                if allowed > 0 {
                    break allowed;
                }
                raised.await;
            };
            let want = buf.len().min(allowed.min(usize::MAX as u64) as usize);
            let n = match in_read.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            shared.forwarded.fetch_add(n as u64, Ordering::SeqCst);
            if out_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let back = async {
        let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
    };
    // Either direction ending (or the target closing) ends the connection.
    tokio::select! {
        _ = towards => {}
        _ = back => {}
    }
}
