//! Prometheus metrics: request counts by interface and code, latency histograms by interface.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS_MS: [f64; 11] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 3000.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS_MS.len()],
    sum_ms: f64,
    total: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Calls and errors per UTC hour (hour index → counts), the last 24 hours for the console.
    hourly: Mutex<BTreeMap<i64, (u64, u64)>>,
    /// Connections shut at accept because their address had the maximum open.
    connections_refused: std::sync::atomic::AtomicU64,
    /// UTC ms of the serving TLS certificate's notAfter (0: not known).
    tls_expiry_ms: std::sync::atomic::AtomicI64,
}

const HOUR_MS: i64 = 3_600_000;

impl Metrics {
    pub fn observe(&self, interface: &str, code: &str, elapsed_ms: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((interface.to_string(), code.to_string()))
                .or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(interface.to_string()).or_default();
            for (i, b) in BUCKETS_MS.iter().enumerate() {
                if elapsed_ms <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum_ms += elapsed_ms;
            h.total += 1;
        }
        if let Ok(mut m) = self.hourly.lock() {
            let hour = crate::time::now_ms() / HOUR_MS;
            let e = m.entry(hour).or_default();
            e.0 += 1;
            if code != "0" {
                e.1 += 1;
            }
            // Bounded memory: only the window the console draws is kept.
            m.retain(|h, _| *h > hour - 24);
        }
    }

    pub fn set_tls_expiry_ms(&self, not_after_ms: i64) {
        self.tls_expiry_ms
            .store(not_after_ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The serving certificate's notAfter (UTC ms), once known.
    pub fn tls_expiry_ms(&self) -> Option<i64> {
        Some(
            self.tls_expiry_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
        .filter(|ms| *ms != 0)
    }

    pub fn connection_refused(&self) {
        self.connections_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// (hour start in ms, calls, errors) for the 24 hours ending with the current one, oldest first.
    pub fn last_24_hours(&self, now_ms: i64) -> Vec<(i64, u64, u64)> {
        let current = now_ms / HOUR_MS;
        let m = self.hourly.lock().map(|m| m.clone()).unwrap_or_default();
        (current - 23..=current)
            .map(|h| {
                let (calls, errors) = m.get(&h).copied().unwrap_or_default();
                (h * HOUR_MS, calls, errors)
            })
            .collect()
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP hutong_api_requests_total API requests by interface and result code.\n",
        );
        out.push_str("# TYPE hutong_api_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((iface, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "hutong_api_requests_total{{interface=\"{iface}\",code=\"{code}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP hutong_api_latency_seconds API processing time at the server.\n");
        out.push_str("# TYPE hutong_api_latency_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (iface, h) in m.iter() {
                for (i, b) in BUCKETS_MS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "hutong_api_latency_seconds_bucket{{interface=\"{iface}\",le=\"{}\"}} {}",
                        b / 1000.0,
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "hutong_api_latency_seconds_bucket{{interface=\"{iface}\",le=\"+Inf\"}} {}",
                    h.total
                );
                let _ = writeln!(
                    out,
                    "hutong_api_latency_seconds_sum{{interface=\"{iface}\"}} {}",
                    h.sum_ms / 1000.0
                );
                let _ = writeln!(
                    out,
                    "hutong_api_latency_seconds_count{{interface=\"{iface}\"}} {}",
                    h.total
                );
            }
        }
        let expiry = self
            .tls_expiry_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if expiry != 0 {
            out.push_str("# HELP hutong_tls_certificate_expiry_seconds The serving TLS certificate's notAfter, Unix time.\n");
            out.push_str("# TYPE hutong_tls_certificate_expiry_seconds gauge\n");
            let _ = writeln!(
                out,
                "hutong_tls_certificate_expiry_seconds {}",
                expiry.div_euclid(1000)
            );
        }
        out.push_str("# HELP hutong_connections_refused_total Connections closed at accept: too many open from one client address.\n");
        out.push_str("# TYPE hutong_connections_refused_total counter\n");
        let _ = writeln!(
            out,
            "hutong_connections_refused_total {}",
            self.connections_refused
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        out
    }
}

/// The members whose circuit breaker is open now: a count, and one series per member so an
/// alert can name it. Rendered at scrape time from the outbound client's state.
pub fn render_breakers(open: &[String]) -> String {
    let mut out = String::new();
    out.push_str("# HELP hutong_member_breakers_open Members whose circuit breaker is open (calls to them fail at once).\n");
    out.push_str("# TYPE hutong_member_breakers_open gauge\n");
    let _ = writeln!(out, "hutong_member_breakers_open {}", open.len());
    out.push_str(
        "# HELP hutong_member_breaker_open 1 while this member's circuit breaker is open.\n",
    );
    out.push_str("# TYPE hutong_member_breaker_open gauge\n");
    for app_id in open {
        let label: String = app_id
            .chars()
            .flat_map(|c| match c {
                '\\' | '"' => vec!['\\', c],
                '\n' => vec!['\\', 'n'],
                c => vec![c],
            })
            .collect();
        let _ = writeln!(out, "hutong_member_breaker_open{{app_id=\"{label}\"}} 1");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn open_breakers_are_counted_and_named_with_escaped_labels() {
        let text = super::render_breakers(&["APP1".into(), "A\"B".into()]);
        assert!(text.contains("hutong_member_breakers_open 2\n"), "{text}");
        assert!(text.contains("hutong_member_breaker_open{app_id=\"APP1\"} 1\n"));
        assert!(text.contains("hutong_member_breaker_open{app_id=\"A\\\"B\"} 1\n"));
        let none = super::render_breakers(&[]);
        assert!(none.contains("hutong_member_breakers_open 0\n"));
        assert!(!none.contains("app_id="));
    }
}
