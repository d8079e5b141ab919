//! Work notifications handed from a committing transaction to its database's engine
//! worker, which sends them.
//!
//! Why: a transaction that NOTIFYs holds PostgreSQL's one notification lock until its
//! commit record is flushed (up to PostgreSQL 15), so notifying commits cannot share an
//! fsync: on a 2-core machine, `INSERT` commits went from about 5,400 a second to 2,400
//! with a `pg_notify` each. Every `pub` notifies its first worker topic. Instead, the
//! transaction leaves `(database, its xid, topic)` here before it commits; the engine
//! worker sends the notifications of transactions that committed, coalesced, from a
//! transaction that writes nothing (no flush while it holds the lock), and drops those
//! of transactions that aborted. A full relay, or no engine worker, and the transaction
//! notifies itself, as before.

/// Entries the relay holds at once: a second's starts at most come through between two
/// drains on a busy machine; past that, transactions notify themselves.
pub const RELAY_CAPACITY: usize = 256;
/// The longest topic the relay carries (a longer one is notified directly).
pub const RELAY_TOPIC_BYTES: usize = 255;

/// What became of the transaction that left an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    InProgress,
    Committed,
    Aborted,
}

/// One work notification waiting for its transaction's end.
#[derive(Clone, Copy)]
pub struct Entry {
    /// 0: a free entry.
    pub dboid: u32,
    pub xid: u32,
    /// When it was left (unix ms): entries of a database whose engine worker does not
    /// come are taken back by [`Relay::stale`].
    pub at_ms: i64,
    len: u16,
    topic: [u8; RELAY_TOPIC_BYTES],
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            dboid: 0,
            xid: 0,
            at_ms: 0,
            len: 0,
            topic: [0; RELAY_TOPIC_BYTES],
        }
    }
}

impl Entry {
    pub fn topic(&self) -> &str {
        std::str::from_utf8(&self.topic[..self.len as usize]).unwrap_or("")
    }
}

/// The relay: plain data, so it can live in shared memory (under a lock the caller
/// holds).
#[derive(Clone, Copy)]
pub struct Relay {
    pub entries: [Entry; RELAY_CAPACITY],
    /// Entries in use (a hint for a quick "empty"; the entries say which).
    pub used: u32,
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            entries: [Entry::default(); RELAY_CAPACITY],
            used: 0,
        }
    }
}

impl Relay {
    /// Leaves `topic` for database `dboid`, to be sent once transaction `xid` commits.
    /// False when it cannot (full, a topic too long, no xid): notify directly then. The
    /// same topic left by the same transaction is kept once.
    pub fn leave(&mut self, dboid: u32, xid: u32, topic: &str, now_ms: i64) -> bool {
        if dboid == 0 || xid == 0 || topic.is_empty() || topic.len() > RELAY_TOPIC_BYTES {
            return false;
        }
        if self
            .entries
            .iter()
            .any(|e| e.dboid == dboid && e.xid == xid && e.topic() == topic)
        {
            return true;
        }
        let Some(free) = self.entries.iter_mut().find(|e| e.dboid == 0) else {
            return false;
        };
        free.dboid = dboid;
        free.xid = xid;
        free.at_ms = now_ms;
        free.len = topic.len() as u16;
        free.topic[..topic.len()].copy_from_slice(topic.as_bytes());
        self.used += 1;
        true
    }

    /// Takes database `dboid`'s entries whose transaction ended (`outcome` says how):
    /// returns the topics of those that committed, each once; those still in progress
    /// stay for a later drain.
    pub fn take(&mut self, dboid: u32, outcome: impl Fn(u32) -> Outcome) -> Vec<String> {
        let mut topics: Vec<String> = vec![];
        if self.used == 0 {
            return topics;
        }
        for e in self.entries.iter_mut().filter(|e| e.dboid == dboid) {
            match outcome(e.xid) {
                Outcome::InProgress => continue,
                Outcome::Committed => {
                    let t = e.topic();
                    if !topics.iter().any(|x| x == t) {
                        topics.push(t.to_string());
                    }
                }
                Outcome::Aborted => {}
            }
            *e = Entry::default();
            self.used -= 1;
        }
        topics
    }

    /// Whether database `dboid` has entries older than `max_age_ms`: its engine worker is
    /// not draining them (stopped, restarting, or gone with the extension).
    pub fn stale(&self, dboid: u32, now_ms: i64, max_age_ms: i64) -> bool {
        self.used > 0
            && self
                .entries
                .iter()
                .any(|e| e.dboid == dboid && now_ms - e.at_ms > max_age_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay() -> Box<Relay> {
        Box::default()
    }

    #[test]
    fn committed_topics_come_out_once_each() {
        let mut r = relay();
        assert!(r.leave(1, 10, "a.work", 0));
        assert!(r.leave(1, 10, "a.work", 0));
        assert!(r.leave(1, 11, "a.work", 0));
        assert!(r.leave(1, 11, "b.work", 0));
        assert_eq!(r.used, 3);
        assert_eq!(r.take(1, |_| Outcome::Committed), vec!["a.work", "b.work"]);
        assert_eq!(r.used, 0);
    }

    #[test]
    fn an_open_transaction_keeps_its_entries_and_an_aborted_one_loses_them() {
        let mut r = relay();
        r.leave(1, 10, "open", 0);
        r.leave(1, 11, "aborted", 0);
        let status = |x| {
            if x == 10 {
                Outcome::InProgress
            } else {
                Outcome::Aborted
            }
        };
        assert!(r.take(1, status).is_empty());
        assert_eq!(r.used, 1);
        assert_eq!(r.take(1, |_| Outcome::Committed), vec!["open"]);
    }

    #[test]
    fn a_database_takes_only_its_own() {
        let mut r = relay();
        r.leave(1, 10, "mine", 0);
        r.leave(2, 11, "theirs", 0);
        assert_eq!(r.take(1, |_| Outcome::Committed), vec!["mine"]);
        assert_eq!(r.used, 1);
        assert_eq!(r.take(2, |_| Outcome::Committed), vec!["theirs"]);
    }

    #[test]
    fn a_full_relay_or_an_unfit_entry_is_refused() {
        let mut r = relay();
        for i in 0..RELAY_CAPACITY as u32 {
            assert!(r.leave(1, 100 + i, "t", 0));
        }
        assert!(!r.leave(1, 9999, "t", 0));
        let mut r = relay();
        assert!(!r.leave(1, 0, "no xid", 0));
        assert!(!r.leave(0, 10, "no database", 0));
        assert!(!r.leave(1, 10, &"x".repeat(RELAY_TOPIC_BYTES + 1), 0));
        assert!(r.leave(1, 10, &"x".repeat(RELAY_TOPIC_BYTES), 0));
    }

    #[test]
    fn entries_nobody_drains_are_stale() {
        let mut r = relay();
        assert!(!r.stale(1, 10_000, 1_000));
        r.leave(1, 10, "t", 5_000);
        assert!(!r.stale(1, 5_500, 1_000));
        assert!(r.stale(1, 6_500, 1_000));
        assert!(!r.stale(2, 6_500, 1_000));
    }
}
