//! The service manager's notification protocol (`sd_notify(3)`), as a `Type=notify` unit with
//! `WatchdogSec=` needs it: `READY=1` once the listeners and the control socket are up,
//! `STOPPING=1` when shutdown begins, `WATCHDOG=1` while the server is healthy. One datagram
//! of `KEY=value` lines to the socket named by `$NOTIFY_SOCKET` (a path, or an abstract name
//! written with a leading `@`); without the variable nothing is sent.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where notifications go.
pub struct Notifier {
    socket: UnixDatagram,
    target: Target,
}

enum Target {
    Path(std::path::PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names, if any.
    pub fn from_env() -> Option<Self> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        Self::to(&name.to_string_lossy())
    }

    /// A notifier for the socket `name` (`@name` for an abstract one).
    pub fn to(name: &str) -> Option<Self> {
        let target = match name.strip_prefix('@') {
            Some(abs) => Target::Abstract(abs.as_bytes().to_vec()),
            None if name.starts_with('/') => Target::Path(name.into()),
            None => {
                tracing::warn!(
                    socket = name,
                    "NOTIFY_SOCKET is neither a path nor an abstract name: not notifying"
                );
                return None;
            }
        };
        match UnixDatagram::unbound() {
            Ok(socket) => Some(Self { socket, target }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot create the notification socket");
                None
            }
        }
    }

    /// Sends `state` (e.g. `READY=1`); a failure is logged, never fatal: the service manager
    /// is the judge of a missing notification.
    pub fn notify(&self, state: &str) {
        let sent = match &self.target {
            Target::Path(p) => self.socket.send_to(state.as_bytes(), p),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|addr| self.socket.send_to_addr(state.as_bytes(), &addr))
            }
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, state, "service manager notification not sent");
        }
    }
}

/// How often to feed the watchdog: half of `$WATCHDOG_USEC`, when it is meant for this
/// process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        Notifier::to(path.to_str().unwrap())
            .unwrap()
            .notify("READY=1");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("hutong-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::to(&format!("@{name}"))
            .unwrap()
            .notify("STOPPING=1");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        assert!(Notifier::to("relative/name").is_none());
    }
}
