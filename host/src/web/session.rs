//! Signed-in operators: a random session token in a cookie (HttpOnly,
//! SameSite=Strict, Secure over TLS), held in memory only, with an idle
//! and an absolute expiry; a CSRF token per session that every POST must
//! carry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::accounts::Role;
use super::i18n::Lang;

#[derive(Debug, Clone)]
pub struct Session {
    pub operator: String,
    pub role: Role,
    pub lang: Lang,
    pub csrf: String,
    created: Instant,
    last: Instant,
}

pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    pub idle: Duration,
    pub absolute: Duration,
}

/// 32 random bytes, hex.
pub fn token() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 32];
    // A failing system generator leaves no usable token: refuse sign-ins
    // rather than hand out a guessable one.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return String::new();
    }
    crate::hex::compact(&b)
}

/// Equal without an early exit (tokens).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    pub fn new(idle: Duration, absolute: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
            absolute,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session; its token (for the cookie), or None when the
    /// system's random generator failed.
    pub fn open(&self, operator: &str, role: Role, lang: Lang) -> Option<String> {
        let (id, csrf) = (token(), token());
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let now = Instant::now();
        let mut m = self.lock();
        m.retain(|_, s| !self.expired(s, now));
        m.insert(
            id.clone(),
            Session {
                operator: operator.to_string(),
                role,
                lang,
                csrf,
                created: now,
                last: now,
            },
        );
        Some(id)
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last) > self.idle || now.duration_since(s.created) > self.absolute
    }

    /// The live session of `id`, touched (`touch`: the request is the
    /// operator's, not the page's background poll).
    pub fn get(&self, id: &str, touch: bool) -> Option<Session> {
        let now = Instant::now();
        let mut m = self.lock();
        let s = m.get_mut(id)?;
        if self.expired(s, now) {
            m.remove(id);
            return None;
        }
        if touch {
            s.last = now;
        }
        Some(s.clone())
    }

    pub fn set_lang(&self, id: &str, lang: Lang) {
        if let Some(s) = self.lock().get_mut(id) {
            s.lang = lang;
        }
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Whether any live session is this operator's.
    pub fn signed_in(&self, operator: &str) -> bool {
        let now = Instant::now();
        self.lock()
            .values()
            .any(|s| s.operator == operator && !self.expired(s, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_absolutely() {
        let s = Sessions::new(Duration::from_millis(200), Duration::from_secs(60));
        let id = s.open("clerk7", Role::Clerk, Lang::Fa).expect("open");
        assert_eq!(id.len(), 64);
        let got = s.get(&id, true).expect("live");
        assert_eq!(got.operator, "clerk7");
        assert_ne!(got.csrf, id);
        std::thread::sleep(Duration::from_millis(300));
        assert!(s.get(&id, true).is_none(), "idle session still live");

        let s = Sessions::new(Duration::from_secs(60), Duration::from_millis(200));
        let id = s.open("clerk7", Role::Clerk, Lang::En).expect("open");
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            let _ = s.get(&id, true);
        }
        assert!(
            s.get(&id, true).is_none(),
            "session outlived its absolute limit"
        );
        assert!(!s.signed_in("clerk7"));
        assert!(s.get("not a session", true).is_none());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", ""));
    }
}
