//! A fault-injecting TCP proxy, so a test can take PostgreSQL, Redis or inference away from one
//! service without disturbing the other tests that share them.
//!
//! [`FaultProxy::start`] listens on a free loopback port and forwards every connection to the
//! target. [`FaultProxy::cut`] closes every live connection and, until [`FaultProxy::restore`],
//! closes each new one as soon as it is accepted (the port stays bound, so nothing else can
//! take it, and clients fail fast instead of hanging).
//!
//! [`FaultProxy::black_hole`] is the other way a dependency goes away: a network partition or
//! a frozen host, where nothing is closed and nothing answers. Live connections stay open but
//! stop carrying bytes either way, and new ones are accepted and held without a reply, so only
//! a client's own timeouts get it out. [`FaultProxy::restore`] lets the held bytes through, as
//! TCP retransmission does when a partition heals.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
    task::{AbortHandle, JoinHandle},
};

#[derive(Debug)]
struct Shared {
    cut: AtomicBool,
    /// True while black-holed; every forwarding task watches it.
    hole: watch::Sender<bool>,
    /// The forwarding tasks of live connections.
    live: Mutex<Vec<AbortHandle>>,
    accepted: AtomicU64,
    refused: AtomicU64,
    held: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            cut: AtomicBool::default(),
            hole: watch::Sender::new(false),
            live: Mutex::default(),
            accepted: AtomicU64::default(),
            refused: AtomicU64::default(),
            held: AtomicU64::default(),
        }
    }
}

/// A proxy in front of one target; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    target: String,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `target` ("host:port").
    pub async fn start(target: impl Into<String>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let target = target.into();
        let shared = Arc::new(Shared::default());
        let acceptor = tokio::spawn(accept(listener, target.clone(), Arc::clone(&shared)));
        Ok(Self {
            addr,
            target,
            shared,
            acceptor,
        })
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes every live connection and refuses new ones until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        let live = std::mem::take(
            &mut *self
                .shared
                .live
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for connection in live {
            connection.abort();
        }
    }

    /// Stops carrying bytes without closing anything until [`FaultProxy::restore`]: live
    /// connections hang mid-conversation, new ones are accepted and never answered.
    pub fn black_hole(&self) {
        self.shared.hole.send_replace(true);
    }

    /// Forwards new connections again, and after a black hole the bytes it held.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
        self.shared.hole.send_replace(false);
    }

    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }

    pub fn is_black_hole(&self) -> bool {
        *self.shared.hole.borrow()
    }

    /// Connections forwarded so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections closed on arrival because the proxy was cut.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Connections accepted during a black hole (held without an answer); also counted in
    /// [`FaultProxy::accepted`].
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut();
    }
}

async fn accept(listener: TcpListener, target: String, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if shared.cut.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if *shared.hole.borrow() {
            shared.held.fetch_add(1, Ordering::SeqCst);
        }
        let task = tokio::spawn(forward(client, target.clone(), shared.hole.subscribe()));
        let mut live = shared.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|t| !t.is_finished());
        // A cut that raced with this accept must not miss the new connection.
        if shared.cut.load(Ordering::SeqCst) {
            task.abort();
        } else {
            live.push(task.abort_handle());
        }
    }
}

/// Waits while the proxy is black-holed; false when the proxy is gone.
async fn passable(hole: &mut watch::Receiver<bool>) -> bool {
    hole.wait_for(|black| !*black).await.is_ok()
}

/// Connects to the target (once no black hole holds the connection) and carries bytes both
/// ways until either side closes.
async fn forward(client: TcpStream, target: String, mut hole: watch::Receiver<bool>) {
    if !passable(&mut hole).await {
        return;
    }
    let Ok(upstream) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::join!(
        pump(client_read, upstream_write, hole.clone()),
        pump(upstream_read, client_write, hole),
    );
}

/// Copies one direction; while black-holed it neither reads nor writes, so the bytes wait in
/// the sockets' buffers and the peer hears nothing.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut hole: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !passable(&mut hole).await {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            // Stop reading the moment a black hole starts (reads are cancel-safe).
            _ = hole.wait_for(|black| *black) => continue,
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !passable(&mut hole).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn echo_server() -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(addr)
    }

    async fn round_trip(stream: &mut TcpStream) -> std::io::Result<bool> {
        stream.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        match stream.read(&mut buf).await? {
            4 => Ok(&buf == b"ping"),
            _ => Ok(false),
        }
    }

    #[tokio::test]
    async fn cut_closes_live_connections_and_refuses_new_ones_until_restored() -> anyhow::Result<()>
    {
        let proxy = FaultProxy::start(echo_server().await?.to_string()).await?;
        let mut live = TcpStream::connect(proxy.addr()).await?;
        assert!(round_trip(&mut live).await?);

        proxy.cut();
        assert!(!round_trip(&mut live).await.unwrap_or(false));
        let mut refused = TcpStream::connect(proxy.addr()).await?;
        assert!(!round_trip(&mut refused).await.unwrap_or(false));
        assert!(proxy.refused() >= 1);

        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr()).await?;
        assert!(round_trip(&mut again).await?);
        Ok(())
    }

    /// True when nothing (no byte, no close) arrives within `wait`.
    async fn silent(stream: &mut TcpStream, wait: Duration) -> bool {
        let mut buf = [0u8; 4];
        tokio::time::timeout(wait, stream.read(&mut buf))
            .await
            .is_err()
    }

    #[tokio::test]
    async fn black_hole_holds_connections_open_without_an_answer_until_restored()
    -> anyhow::Result<()> {
        let proxy = FaultProxy::start(echo_server().await?.to_string()).await?;
        let mut live = TcpStream::connect(proxy.addr()).await?;
        assert!(round_trip(&mut live).await?);

        proxy.black_hole();
        assert!(proxy.is_black_hole());
        // The live connection is neither answered nor closed.
        live.write_all(b"ping").await?;
        assert!(silent(&mut live, Duration::from_millis(300)).await);
        // A new one is accepted (connect succeeds, bytes can be sent) and never answered.
        let mut held = TcpStream::connect(proxy.addr()).await?;
        held.write_all(b"ping").await?;
        assert!(silent(&mut held, Duration::from_millis(300)).await);
        assert_eq!(proxy.held(), 1);
        assert_eq!(proxy.refused(), 0);

        // Restored, what was held goes through on the same connections.
        proxy.restore();
        let mut buf = [0u8; 4];
        for stream in [&mut live, &mut held] {
            tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf)).await??;
            assert_eq!(&buf, b"ping");
            assert!(round_trip(stream).await?);
        }
        Ok(())
    }
}
