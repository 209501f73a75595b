//! The console tests' own authenticator app (RFC 4648 Base32, RFC 6238 TOTP, written here from
//! the RFCs, not from the production code), shared by the console test files.
#![allow(dead_code)]

use std::collections::HashMap;

/// The text of `body` between `start` and the next `end`.
pub fn between(body: &str, start: &str, end: &str) -> String {
    let i = body
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {body}"))
        + start.len();
    let j = body[i..].find(end).unwrap() + i;
    body[i..j].to_string()
}

/// The tests' own authenticator app: per server and account, the TOTP secret read off the
/// enrolment page and the last time step used (the server accepts each step once).
pub type Authenticators = std::sync::Mutex<HashMap<String, (Vec<u8>, u64)>>;
pub static AUTHENTICATORS: std::sync::LazyLock<Authenticators> =
    std::sync::LazyLock::new(Default::default);

/// RFC 4648 Base32, written here from the RFC.
pub fn base32(text: &str) -> Vec<u8> {
    let (mut out, mut buf, mut bits) = (Vec::new(), 0u64, 0);
    for c in text.trim().bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not Base32: {text}"),
        };
        buf = (buf << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// RFC 6238 TOTP (HMAC-SHA1, 6 digits) of one 30-second step, written here from the RFC.
pub fn totp(secret: &[u8], step: u64) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0xf) as usize;
    let n = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!("{:06}", n % 1_000_000)
}

pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The next code a person would type: a step not used yet, no older than the previous step
/// and no later than the next (the server's tolerance); waits when this window is spent.
pub async fn next_code(base: &str, user: &str) -> String {
    let key = format!("{base}/{user}");
    loop {
        let secs = unix_secs();
        let now = secs / 30;
        // The previous step only early in a window, so it is still valid when it arrives.
        let lowest = if secs % 30 < 25 { now - 1 } else { now };
        let code = {
            let mut map = AUTHENTICATORS.lock().unwrap();
            let entry = map.get_mut(&key).expect("account enrolled by this test");
            let step = (entry.1 + 1).max(lowest);
            (step <= now + 1).then(|| {
                entry.1 = step;
                totp(&entry.0, step)
            })
        };
        if let Some(code) = code {
            return code;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
