//! `hutong serve` as a `Type=notify` service: the notifications a real process sends to the
//! socket named by `$NOTIFY_SOCKET` (a path, or an abstract name with a leading `@`), read
//! here as systemd would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

mod common;

use common::daemon::{hutong, spawn};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The next notification, or `None` when none came within a generous bound.
fn next(rx: &UnixDatagram) -> Option<String> {
    rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    let n = rx.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn ready_after_the_listeners_and_control_socket_then_watchdog_then_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let socket = tmp.path().join("notify");
    let rx = UnixDatagram::bind(&socket).unwrap();
    let mut cmd = hutong(&data);
    cmd.env("NOTIFY_SOCKET", &socket)
        .env("WATCHDOG_USEC", "400000");
    let mut d = spawn(cmd).unwrap_or_else(|e| panic!("server did not start: {e}"));

    let ready = next(&rx).expect("READY is sent");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(
        ready.contains(&format!(
            "STATUS=hutong API 与控制台 https://127.0.0.1:{}",
            d.port
        )),
        "{ready}"
    );
    // What READY promises: management commands reach the server at once.
    let status = common::daemon::run_ok(hutong(&data).arg("status"));
    assert!(status.contains(&d.port.to_string()), "{status}");

    // Fed at half the watchdog interval, again and again.
    for _ in 0..3 {
        assert_eq!(next(&rx).as_deref(), Some("WATCHDOG=1"));
    }

    d.signal(libc::SIGTERM);
    let stopping = std::iter::from_fn(|| next(&rx))
        .find(|m| m != "WATCHDOG=1")
        .expect("STOPPING is sent");
    assert_eq!(stopping, "STOPPING=1");
    assert!(d.child.wait().unwrap().success());
}

#[test]
fn an_abstract_notify_socket_gets_ready_and_no_watchdog_is_fed_unasked() {
    use std::os::linux::net::SocketAddrExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let name = format!(
        "hutong-notify-{}",
        hex::encode(hutong::crypto::sm::random_bytes::<6>())
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let rx = UnixDatagram::bind_addr(&addr).unwrap();
    let mut cmd = hutong(&data);
    // A watchdog meant for another process (as after a fork) is not this one's to feed.
    cmd.env("NOTIFY_SOCKET", format!("@{name}"))
        .env("WATCHDOG_USEC", "200000")
        .env("WATCHDOG_PID", "1");
    let mut d = spawn(cmd).unwrap_or_else(|e| panic!("server did not start: {e}"));
    let ready = next(&rx).expect("READY is sent");
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    d.signal(libc::SIGTERM);
    assert_eq!(next(&rx).as_deref(), Some("STOPPING=1"));
    assert!(d.child.wait().unwrap().success());
}
