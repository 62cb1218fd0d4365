//! A blocking TCP proxy standing for one direction of a link between two regions: the region
//! that uses it reaches one gateway of the other region through it. The test can cut the link
//! (open connections are shut down and new ones are closed at once, as a network that resets
//! them), heal it, and delay what it forwards (a slow link). Threads only, no runtime, so the
//! blocking process tests can use it directly.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

struct Shared {
    /// Where connections go (`127.0.0.1:PORT`).
    target: String,
    /// The link is cut: refuse to forward.
    cut: AtomicBool,
    /// Delay before forwarding each chunk towards the target (ms).
    delay_ms: AtomicU64,
    /// The proxy is dropped: the accept loop ends.
    stopped: AtomicBool,
    /// Both ends of every open connection, to shut them down on a cut.
    open: Mutex<Vec<TcpStream>>,
}

/// The proxy; it stops (and closes its connections) when dropped.
pub struct LinkProxy {
    /// The `127.0.0.1:PORT` address to give the region that uses it.
    pub addr: String,
    shared: Arc<Shared>,
}

impl LinkProxy {
    /// Listens on a fresh loopback port and forwards to `target` (`127.0.0.1:PORT`).
    pub fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind link proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let shared = Arc::new(Shared {
            target,
            cut: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let accept_shared = shared.clone();
        thread::spawn(move || accept_loop(listener, accept_shared));
        LinkProxy { addr, shared }
    }

    /// Cuts the link: shuts down every open connection; new ones are closed at once.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.close_all();
    }

    /// Heals the link.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Delays every chunk forwarded towards the target by `delay` (zero: no delay).
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    fn close_all(&self) {
        let mut open = self.shared.open.lock().expect("open connections");
        for stream in open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.close_all();
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for inbound in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(inbound) = inbound else { continue };
        if shared.cut.load(Ordering::SeqCst) {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(outbound) = TcpStream::connect(&shared.target) else {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let clones = (inbound.try_clone(), outbound.try_clone());
        let (Ok(in_read), Ok(out_read)) = clones else {
            continue;
        };
        {
            let mut open = shared.open.lock().expect("open connections");
            open.retain(|s| s.peer_addr().is_ok());
            if let (Ok(a), Ok(b)) = (inbound.try_clone(), outbound.try_clone()) {
                open.push(a);
                open.push(b);
            }
        }
        let towards = shared.clone();
        thread::spawn(move || pump(in_read, outbound, Some(towards)));
        thread::spawn(move || pump(out_read, inbound, None));
    }
}

/// Copies `from` to `to` until either end closes; `delayed` applies the proxy's delay.
fn pump(mut from: TcpStream, mut to: TcpStream, delayed: Option<Arc<Shared>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(shared) = &delayed {
            let delay = shared.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                thread::sleep(Duration::from_millis(delay));
            }
            if shared.cut.load(Ordering::SeqCst) {
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
