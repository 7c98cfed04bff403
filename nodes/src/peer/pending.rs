//! Messages for sessions this node has not opened yet, held until the session opens.
//!
//! A peer's first message of a session may arrive before this node opens the session; it is
//! kept here. Anything that gets frames onto a link can also name session ids that never open,
//! so the buffer is bounded **per link** (per peer: a flood from one peer cannot crowd out the
//! other peer's messages) in bytes and in distinct sessions, and a message is dropped once
//! `max_age` (the mux's session timeout) has passed since it arrived: by then the session it
//! was for has timed out at its sender anyway. A message beyond a link's bounds, after that
//! link's expired messages are dropped, is refused (the newest is refused, not the oldest
//! dropped: old messages expire on their own, and a flood cannot push out a real session's
//! first message).
//!
//! Pure bookkeeping: the caller passes the time, so there is no task, timer or IO here; expiry
//! is lazy (on each [`Pending::push`] for that link and on each [`Pending::take`]).

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;
use veil_runtime::transport::{RoundId, SessionId};

/// Default bytes buffered per link for sessions not open yet, counted as each message's payload
/// plus [`ENTRY_OVERHEAD_BYTES`]; a message beyond is refused. Also the largest single message
/// that can arrive before its session opens.
pub const MAX_PENDING_BYTES_PER_LINK: usize = 64 << 20;

/// Default distinct sessions with buffered messages per link (bounds the session map, so a
/// flood of tiny messages for many ids cannot bloat it); a message for one more is refused.
pub const MAX_PENDING_SESSIONS_PER_LINK: usize = 4096;

/// Bytes charged per buffered message on top of its payload (its bookkeeping), so that empty
/// messages count against [`MAX_PENDING_BYTES_PER_LINK`] too.
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Bounds of the buffer for unopened sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimits {
    /// Bytes per link (payloads plus [`ENTRY_OVERHEAD_BYTES`] per message).
    pub bytes_per_link: usize,
    /// Distinct sessions per link.
    pub sessions_per_link: usize,
    /// How long a message is kept (the mux's session timeout).
    pub max_age: Duration,
}

impl PendingLimits {
    /// The default bounds, with messages kept for `max_age`.
    pub fn new(max_age: Duration) -> PendingLimits {
        PendingLimits {
            bytes_per_link: MAX_PENDING_BYTES_PER_LINK,
            sessions_per_link: MAX_PENDING_SESSIONS_PER_LINK,
            max_age,
        }
    }
}

/// Why a message was not buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The link's byte bound would be exceeded.
    Bytes,
    /// The link already buffers messages for its bound of distinct sessions.
    Sessions,
}

impl Refusal {
    /// A short description for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Bytes => "byte bound",
            Refusal::Sessions => "session bound",
        }
    }
}

/// What [`Pending::push`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Buffered until its session opens (or it expires).
    Buffered,
    /// Dropped. `first`: the link's previous message was buffered (so a flood can be logged
    /// once as a warning, the rest more quietly).
    Refused {
        /// Which bound.
        why: Refusal,
        /// Whether this starts a run of refusals on the link.
        first: bool,
    },
}

struct Entry {
    seq: u64,
    round: RoundId,
    payload: Bytes,
}

fn cost(payload: &Bytes) -> usize {
    payload.len().saturating_add(ENTRY_OVERHEAD_BYTES)
}

/// One link's buffered messages.
#[derive(Default)]
struct LinkBuffer {
    sessions: HashMap<SessionId, VecDeque<Entry>>,
    /// Every buffered message in arrival order: (arrived, session, seq). A record whose message
    /// left with its whole session (taken or removed) is skipped when it reaches the front.
    arrivals: VecDeque<(Instant, SessionId, u64)>,
    /// Charged bytes of the messages in `sessions`.
    bytes: usize,
    /// Whether the link's last message was refused.
    refusing: bool,
}

impl LinkBuffer {
    /// Drop the messages that arrived at least `max_age` before `now`. Messages leave a session's
    /// queue only from its front (expiry) or all at once, so a live message whose record is at
    /// the front of `arrivals` is at the front of its session's queue.
    fn expire(&mut self, now: Instant, max_age: Duration) {
        while let Some(&(arrived, session, seq)) = self.arrivals.front() {
            if now.saturating_duration_since(arrived) < max_age {
                break;
            }
            self.arrivals.pop_front();
            let Some(queue) = self.sessions.get_mut(&session) else {
                continue;
            };
            if queue.front().is_some_and(|e| e.seq == seq) {
                let entry = queue.pop_front().expect("front checked");
                self.bytes -= cost(&entry.payload);
                if queue.is_empty() {
                    self.sessions.remove(&session);
                }
            }
        }
    }

    fn remove(&mut self, session: SessionId) -> VecDeque<Entry> {
        let queue = self.sessions.remove(&session).unwrap_or_default();
        self.bytes -= queue.iter().map(|e| cost(&e.payload)).sum::<usize>();
        queue
    }
}

/// Messages for unopened sessions, per link (indexed by the sending party).
pub struct Pending {
    limits: PendingLimits,
    links: [LinkBuffer; 3],
    next_seq: u64,
}

impl Pending {
    /// An empty buffer with the given bounds.
    pub fn new(limits: PendingLimits) -> Pending {
        Pending {
            limits,
            links: Default::default(),
            next_seq: 0,
        }
    }

    /// Buffer a message `from` a peer for `session`, arriving at `now`, unless that link's
    /// bounds (after dropping its expired messages) would be exceeded.
    pub fn push(
        &mut self,
        now: Instant,
        from: usize,
        session: SessionId,
        round: RoundId,
        payload: Bytes,
    ) -> Admit {
        let limits = self.limits;
        let link = &mut self.links[from];
        link.expire(now, limits.max_age);
        let c = cost(&payload);
        let refusal = if link.bytes.saturating_add(c) > limits.bytes_per_link {
            Some(Refusal::Bytes)
        } else if !link.sessions.contains_key(&session)
            && link.sessions.len() >= limits.sessions_per_link
        {
            Some(Refusal::Sessions)
        } else {
            None
        };
        if let Some(why) = refusal {
            let first = !link.refusing;
            link.refusing = true;
            return Admit::Refused { why, first };
        }
        link.refusing = false;
        let seq = self.next_seq;
        self.next_seq += 1;
        link.bytes += c;
        link.arrivals.push_back((now, session, seq));
        link.sessions.entry(session).or_default().push_back(Entry {
            seq,
            round,
            payload,
        });
        Admit::Buffered
    }

    /// The session opens at `now`: remove and return its unexpired messages as
    /// `(from, round, payload)`, each link's in arrival order. Drops every link's expired
    /// messages.
    pub fn take(&mut self, now: Instant, session: SessionId) -> Vec<(usize, RoundId, Bytes)> {
        self.expire(now);
        let mut out = Vec::new();
        for (from, link) in self.links.iter_mut().enumerate() {
            out.extend(
                link.remove(session)
                    .into_iter()
                    .map(|e| (from, e.round, e.payload)),
            );
        }
        out
    }

    /// Forget `session`'s messages (it was closed).
    pub fn remove(&mut self, session: SessionId) {
        for link in &mut self.links {
            link.remove(session);
        }
    }

    /// Forget everything buffered from `from` (its link went down).
    pub fn clear_link(&mut self, from: usize) {
        self.links[from] = LinkBuffer::default();
    }

    /// Drop every link's messages that arrived at least `max_age` before `now`.
    pub fn expire(&mut self, now: Instant) {
        for link in &mut self.links {
            link.expire(now, self.limits.max_age);
        }
    }

    /// Charged bytes buffered from `from`.
    pub fn bytes(&self, from: usize) -> usize {
        self.links[from].bytes
    }

    /// Distinct sessions with messages buffered from `from`.
    pub fn sessions(&self, from: usize) -> usize {
        self.links[from].sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: Duration = Duration::from_secs(10);

    fn limits(bytes_per_link: usize, sessions_per_link: usize) -> PendingLimits {
        PendingLimits {
            bytes_per_link,
            sessions_per_link,
            max_age: AGE,
        }
    }

    fn msg(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn take_returns_a_sessions_messages_per_link_in_order_and_frees_them() {
        let t0 = Instant::now();
        let mut p = Pending::new(limits(1 << 20, 16));
        for (from, round) in [(1, 0), (2, 0), (1, 1)] {
            let got = p.push(t0, from, SessionId(5), RoundId(round), msg(10));
            assert_eq!(got, Admit::Buffered);
        }
        p.push(t0, 1, SessionId(6), RoundId(0), msg(3));
        assert_eq!(p.bytes(1), 23 + 3 * ENTRY_OVERHEAD_BYTES);
        assert_eq!((p.sessions(1), p.sessions(2)), (2, 1));
        let got: Vec<_> = p
            .take(t0, SessionId(5))
            .into_iter()
            .map(|(from, r, b)| (from, r.0, b.len()))
            .collect();
        assert_eq!(got, [(1, 0, 10), (1, 1, 10), (2, 0, 10)]);
        assert_eq!((p.bytes(1), p.bytes(2)), (3 + ENTRY_OVERHEAD_BYTES, 0));
        assert_eq!((p.sessions(1), p.sessions(2)), (1, 0));
        assert!(p.take(t0, SessionId(5)).is_empty());
    }

    #[test]
    fn messages_expire_after_max_age() {
        let t0 = Instant::now();
        let mut p = Pending::new(limits(1 << 20, 16));
        p.push(t0, 1, SessionId(1), RoundId(0), msg(10));
        p.push(at(t0, 5), 1, SessionId(1), RoundId(1), msg(10));
        p.push(at(t0, 5), 1, SessionId(2), RoundId(0), msg(10));
        // Just under the age: everything is kept.
        p.expire(at(t0, 10) - Duration::from_millis(1));
        assert_eq!(p.sessions(1), 2);
        // At t0 + 10 s the first message is gone, the session's later one stays.
        let got = p.take(at(t0, 10), SessionId(1));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, RoundId(1));
        // At t0 + 15 s the rest has expired.
        assert!(p.take(at(t0, 15), SessionId(2)).is_empty());
        assert_eq!((p.bytes(1), p.sessions(1)), (0, 0));
    }

    #[test]
    fn a_full_link_refuses_until_its_messages_expire() {
        let t0 = Instant::now();
        let per = 100 + ENTRY_OVERHEAD_BYTES;
        let mut p = Pending::new(limits(3 * per, 16));
        for s in 0..3 {
            assert_eq!(
                p.push(t0, 1, SessionId(s), RoundId(0), msg(100)),
                Admit::Buffered
            );
        }
        let refused = |first| Admit::Refused {
            why: Refusal::Bytes,
            first,
        };
        assert_eq!(
            p.push(at(t0, 1), 1, SessionId(9), RoundId(0), msg(100)),
            refused(true)
        );
        assert_eq!(
            p.push(at(t0, 2), 1, SessionId(9), RoundId(0), msg(1)),
            refused(false)
        );
        // The other link is unaffected.
        assert_eq!(
            p.push(at(t0, 2), 2, SessionId(9), RoundId(0), msg(100)),
            Admit::Buffered
        );
        // Once the flood has expired, the link takes messages again.
        assert_eq!(
            p.push(at(t0, 10), 1, SessionId(9), RoundId(0), msg(100)),
            Admit::Buffered
        );
        assert_eq!(p.sessions(1), 1);
        assert_eq!(p.take(at(t0, 11), SessionId(9)).len(), 2);
    }

    #[test]
    fn a_link_bounds_its_distinct_sessions_and_empty_messages_cost_bytes() {
        let t0 = Instant::now();
        let mut p = Pending::new(limits(1 << 20, 2));
        for s in 0..2 {
            p.push(t0, 1, SessionId(s), RoundId(0), Bytes::new());
        }
        assert_eq!(
            p.push(t0, 1, SessionId(2), RoundId(0), Bytes::new()),
            Admit::Refused {
                why: Refusal::Sessions,
                first: true
            }
        );
        // More messages for a session already buffered are fine; each costs its overhead.
        assert_eq!(
            p.push(t0, 1, SessionId(1), RoundId(1), Bytes::new()),
            Admit::Buffered
        );
        assert_eq!(p.bytes(1), 3 * ENTRY_OVERHEAD_BYTES);
        let mut q = Pending::new(limits(2 * ENTRY_OVERHEAD_BYTES, 16));
        for round in 0..2 {
            q.push(t0, 2, SessionId(0), RoundId(round), Bytes::new());
        }
        assert!(matches!(
            q.push(t0, 2, SessionId(0), RoundId(2), Bytes::new()),
            Admit::Refused {
                why: Refusal::Bytes,
                ..
            }
        ));
    }

    #[test]
    fn a_message_larger_than_the_bound_is_refused() {
        let t0 = Instant::now();
        let mut p = Pending::new(limits(1000, 16));
        assert!(matches!(
            p.push(t0, 1, SessionId(0), RoundId(0), msg(1000)),
            Admit::Refused {
                why: Refusal::Bytes,
                ..
            }
        ));
        assert_eq!(p.bytes(1), 0);
    }

    #[test]
    fn removed_and_retaken_ids_do_not_confuse_expiry() {
        let t0 = Instant::now();
        let mut p = Pending::new(limits(1 << 20, 16));
        p.push(t0, 1, SessionId(1), RoundId(0), msg(10));
        p.remove(SessionId(1));
        assert_eq!(p.bytes(1), 0);
        // The id comes back (a new session after a re-key): the old arrival record must not
        // expire the new message early.
        p.push(at(t0, 8), 1, SessionId(1), RoundId(0), msg(20));
        p.expire(at(t0, 12));
        assert_eq!(p.bytes(1), 20 + ENTRY_OVERHEAD_BYTES);
        let got = p.take(at(t0, 12), SessionId(1));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2.len(), 20);
        // Clearing a link forgets only that link.
        p.push(at(t0, 12), 1, SessionId(2), RoundId(0), msg(1));
        p.push(at(t0, 12), 2, SessionId(2), RoundId(0), msg(1));
        p.clear_link(1);
        assert_eq!((p.sessions(1), p.sessions(2)), (0, 1));
        assert_eq!(p.bytes(1), 0);
    }
}
