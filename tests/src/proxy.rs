//! A fault-injecting TCP proxy, so a test can take PostgreSQL, Redis or inference away from one
//! service without disturbing the other tests that share them.
//!
//! [`FaultProxy::start`] listens on a free loopback port and forwards every connection to the
//! target. [`FaultProxy::cut`] closes every live connection and, until [`FaultProxy::restore`],
//! closes each new one as soon as it is accepted (the port stays bound, so nothing else can
//! take it, and clients fail fast instead of hanging).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::{AbortHandle, JoinHandle},
};

#[derive(Debug, Default)]
struct Shared {
    cut: AtomicBool,
    /// The forwarding tasks of live connections.
    live: Mutex<Vec<AbortHandle>>,
    accepted: AtomicU64,
    refused: AtomicU64,
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

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }

    /// Connections forwarded so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections closed on arrival because the proxy was cut.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
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
        let task = tokio::spawn(forward(client, target.clone()));
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

async fn forward(mut client: TcpStream, target: String) {
    let Ok(mut upstream) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
}
