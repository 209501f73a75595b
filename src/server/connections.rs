//! Admission of connections on the public listener: at most `server.max_connections_per_ip`
//! open at once from one client address, so one client (or one slow-loris script) cannot
//! take every connection slot and file descriptor from the others. A connection over the
//! limit is shut down as soon as it is accepted; the count of refused ones is a metric.

use actix_web::dev::Extensions;
use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The open connections per client address, shared by every worker of the listener.
#[derive(Clone)]
pub struct ConnectionLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
    metrics: Arc<crate::app::metrics::Metrics>,
}

/// One admitted connection; kept in the connection's data, so its slot is given back when
/// actix drops the connection, however it ends.
pub struct Admitted {
    inner: Arc<Inner>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The TCP stream under the public listener's TLS, as actix hands it to `on_connect`.
type TlsTcp = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;

impl ConnectionLimiter {
    pub fn new(max_per_ip: u32, metrics: Arc<crate::app::metrics::Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                max: max_per_ip,
                open: Mutex::new(HashMap::new()),
                metrics,
            }),
        }
    }

    /// A slot for a connection from `ip`, or `None` when it already has the maximum open.
    pub fn admit(&self, ip: IpAddr) -> Option<Admitted> {
        // An IPv4 client seen through an IPv6 socket is the same client.
        let ip = ip.to_canonical();
        let mut open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.inner.max {
            drop(open);
            self.inner.metrics.connection_refused();
            return None;
        }
        *n += 1;
        Some(Admitted {
            inner: self.inner.clone(),
            ip,
        })
    }

    /// Connections open now (all addresses).
    pub fn open(&self) -> u64 {
        let open = self.inner.open.lock().unwrap_or_else(|p| p.into_inner());
        open.values().map(|n| u64::from(*n)).sum()
    }

    /// actix's `on_connect` hook: admits the connection (its slot lives in `ext`) or shuts
    /// its socket down, which ends it before a request is read.
    pub fn on_connect(&self, conn: &dyn Any, ext: &mut Extensions) {
        let Some(tls) = conn.downcast_ref::<TlsTcp>() else {
            return;
        };
        let tcp = tls.get_ref().0;
        let Ok(peer) = tcp.peer_addr() else {
            return;
        };
        match self.admit(peer.ip()) {
            Some(slot) => {
                ext.insert(slot);
            }
            None => {
                tracing::debug!(client = %peer.ip(), "connection refused: too many open from this address");
                shut_down(tcp);
            }
        }
    }
}

/// Shuts both directions of `tcp` (the descriptor itself is closed by actix when the
/// connection it now sees as ended is dropped).
fn shut_down(tcp: &actix_web::rt::net::TcpStream) {
    use std::os::fd::AsFd;
    if let Ok(fd) = tcp.as_fd().try_clone_to_owned() {
        let _ = std::net::TcpStream::from(fd).shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_maximum_and_slots_come_back_when_connections_end() {
        let metrics = Arc::new(crate::app::metrics::Metrics::default());
        let l = ConnectionLimiter::new(2, metrics.clone());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = l.admit(a).unwrap();
        let _s2 = l.admit(a).unwrap();
        assert!(l.admit(a).is_none());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(l.admit(mapped).is_none(), "the same client over IPv6");
        assert!(l.admit(b).is_some());
        assert!(
            metrics
                .render()
                .contains("hutong_connections_refused_total 2\n")
        );
        drop(s1);
        assert!(l.admit(a).is_some());
    }
}
