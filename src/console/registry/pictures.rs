//! The seal pictures of each session's last verification report, so the report page can show
//! them from same-origin URLs. One instance per server (shared by every worker), bounded in
//! the number of sessions it remembers; a session sees only its own pictures.

use crate::crypto::sm;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Sessions whose last report's pictures are kept (the oldest is forgotten first).
const MAX_CACHED_REPORTS: usize = 32;

/// (SM3 of the session token, report id, pictures, the platform-signed report).
type Entry = ([u8; 32], String, Vec<Option<Vec<u8>>>, Option<Vec<u8>>);

/// The last report's pictures per session: (SM3 of the session token, report id, pictures).
#[derive(Default)]
pub struct ReportPictures {
    entries: Mutex<VecDeque<Entry>>,
}

impl ReportPictures {
    /// Keeps `pictures` (and the signed report to download) as the session's last report,
    /// replacing its previous one.
    pub fn keep(
        &self,
        token: &str,
        report_id: &str,
        pictures: Vec<Option<Vec<u8>>>,
        signed: Option<Vec<u8>>,
    ) {
        let key = sm::sm3(token.as_bytes());
        if let Ok(mut cache) = self.entries.lock() {
            cache.retain(|(k, _, _, _)| *k != key);
            while cache.len() >= MAX_CACHED_REPORTS {
                cache.pop_front();
            }
            cache.push_back((key, report_id.to_string(), pictures, signed));
        }
    }

    /// The platform-signed report of the session's report `report_id`, if still kept.
    pub fn signed(&self, token: &str, report_id: &str) -> Option<Vec<u8>> {
        let key = sm::sm3(token.as_bytes());
        let cache = self.entries.lock().ok()?;
        cache
            .iter()
            .find(|(k, r, _, _)| *k == key && r == report_id)
            .and_then(|(_, _, _, s)| s.clone())
    }

    /// Picture `index` of the session's report `report_id`, if it is still kept.
    pub fn get(&self, token: &str, report_id: &str, index: usize) -> Option<Vec<u8>> {
        let key = sm::sm3(token.as_bytes());
        let cache = self.entries.lock().ok()?;
        cache
            .iter()
            .find(|(k, r, _, _)| *k == key && r == report_id)
            .and_then(|(_, _, p, _)| p.get(index).cloned().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_sees_only_its_own_last_report() {
        let cache = ReportPictures::default();
        cache.keep(
            "tok-a",
            "r1",
            vec![Some(b"a1".to_vec()), None],
            Some(b"{}".to_vec()),
        );
        cache.keep("tok-b", "r2", vec![Some(b"b1".to_vec())], None);
        assert_eq!(cache.signed("tok-a", "r1"), Some(b"{}".to_vec()));
        assert_eq!(cache.signed("tok-b", "r1"), None);
        assert_eq!(cache.get("tok-a", "r1", 0), Some(b"a1".to_vec()));
        assert_eq!(cache.get("tok-a", "r1", 1), None);
        assert_eq!(cache.get("tok-b", "r1", 0), None);
        assert_eq!(cache.get("tok-a", "r2", 0), None);
        // A new report replaces the session's previous one.
        cache.keep("tok-a", "r3", vec![Some(b"a3".to_vec())], None);
        assert_eq!(cache.get("tok-a", "r1", 0), None);
        assert_eq!(cache.get("tok-a", "r3", 0), Some(b"a3".to_vec()));
    }

    #[test]
    fn the_oldest_sessions_are_forgotten_first() {
        let cache = ReportPictures::default();
        for i in 0..=MAX_CACHED_REPORTS {
            cache.keep(&format!("tok-{i}"), "r", vec![Some(vec![i as u8])], None);
        }
        assert_eq!(cache.get("tok-0", "r", 0), None);
        let last = MAX_CACHED_REPORTS;
        assert_eq!(
            cache.get(&format!("tok-{last}"), "r", 0),
            Some(vec![last as u8])
        );
    }
}
