//! Reassembly of a link's inbound frames into messages: sans-IO, so the rules a peer's frames
//! must follow are unit-tested and fuzzed without a socket.
//!
//! A link's first frame is the peer's hello (an X25519 public key) and only the first. Every
//! later frame carries `(session, round, payload, last)`; a message is the payloads of its
//! frames up to the one marked `last`, all of one round (a frame of another round for the same
//! session drops the partial message and starts a new one). A message longer than
//! `max_message` bytes, or partial messages totalling more than `max_partial` bytes across
//! sessions, break the link: a peer cannot make this node hold unbounded memory.

use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use veil_proto::pb;

/// What one frame completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer's hello: its link public key.
    Hello(Bytes),
    /// A whole message of `session` in `round`.
    Message {
        /// Session id.
        session: u64,
        /// Round in the session.
        round: u64,
        /// The joined payload.
        payload: Bytes,
    },
}

/// A frame broke the link's rules; the link must close.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A session frame came before the hello.
    #[error("a session frame before the hello")]
    NoHello,
    /// A second hello on one link.
    #[error("a second hello on one link")]
    SecondHello,
    /// One message exceeded the size limit.
    #[error("a message of session {session} exceeds {limit} bytes")]
    MessageTooLarge {
        /// The session.
        session: u64,
        /// The limit.
        limit: usize,
    },
    /// Partial messages of all sessions together exceeded the limit.
    #[error("partial messages exceed {limit} bytes in all")]
    PartialsTooLarge {
        /// The limit.
        limit: usize,
    },
}

/// The frames of a message received so far.
struct Partial {
    round: u64,
    frames: Vec<Bytes>,
    len: usize,
}

impl Partial {
    /// The whole message, copied once into a buffer of its exact size (growing a buffer frame
    /// by frame would copy a large message again at every reallocation).
    fn join(self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.len);
        for f in &self.frames {
            buf.extend_from_slice(f);
        }
        buf.freeze()
    }
}

/// One link's reassembly state.
pub struct Reassembler {
    keyed: bool,
    partial: HashMap<u64, Partial>,
    partial_bytes: usize,
    max_message: usize,
    max_partial: usize,
}

impl Reassembler {
    /// A link expecting its hello, with messages of at most `max_message` bytes and partial
    /// messages of at most `max_partial` bytes in all.
    pub fn new(max_message: usize, max_partial: usize) -> Self {
        Reassembler {
            keyed: false,
            partial: HashMap::new(),
            partial_bytes: 0,
            max_message,
            max_partial,
        }
    }

    /// Bytes held in partial messages.
    pub fn partial_bytes(&self) -> usize {
        self.partial_bytes
    }

    /// Takes one frame; returns what it completed, if anything.
    pub fn push(&mut self, frame: pb::Frame) -> Result<Option<Event>, FrameError> {
        if !frame.hello.is_empty() {
            if self.keyed {
                return Err(FrameError::SecondHello);
            }
            self.keyed = true;
            return Ok(Some(Event::Hello(frame.hello)));
        }
        if !self.keyed {
            return Err(FrameError::NoHello);
        }
        let (session, round) = (frame.session, frame.round);
        let mut part = match self.partial.remove(&session) {
            Some(p) => {
                self.partial_bytes -= p.len;
                p
            }
            None if frame.last => {
                if frame.payload.len() > self.max_message {
                    return Err(self.too_large(session));
                }
                return Ok(Some(Event::Message {
                    session,
                    round,
                    payload: frame.payload,
                }));
            }
            None => Partial {
                round,
                frames: Vec::new(),
                len: 0,
            },
        };
        if part.round != round {
            // Interleaved rounds in one message: the partial one is dropped.
            part = Partial {
                round,
                frames: Vec::new(),
                len: 0,
            };
        }
        if part.len + frame.payload.len() > self.max_message {
            return Err(self.too_large(session));
        }
        part.len += frame.payload.len();
        part.frames.push(frame.payload);
        if frame.last {
            return Ok(Some(Event::Message {
                session,
                round,
                payload: part.join(),
            }));
        }
        if self.partial_bytes + part.len > self.max_partial {
            return Err(FrameError::PartialsTooLarge {
                limit: self.max_partial,
            });
        }
        self.partial_bytes += part.len;
        self.partial.insert(session, part);
        Ok(None)
    }

    fn too_large(&self, session: u64) -> FrameError {
        FrameError::MessageTooLarge {
            session,
            limit: self.max_message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> pb::Frame {
        pb::Frame {
            hello: Bytes::from_static(&[7; 32]),
            ..Default::default()
        }
    }

    fn frame(session: u64, round: u64, payload: &'static [u8], last: bool) -> pb::Frame {
        pb::Frame {
            session,
            round,
            payload: Bytes::from_static(payload),
            last,
            ..Default::default()
        }
    }

    fn msg(session: u64, round: u64, payload: &[u8]) -> Option<Event> {
        Some(Event::Message {
            session,
            round,
            payload: Bytes::copy_from_slice(payload),
        })
    }

    #[test]
    fn the_hello_comes_first_and_once() {
        let mut r = Reassembler::new(100, 100);
        assert_eq!(r.push(frame(1, 1, b"x", true)), Err(FrameError::NoHello));
        assert!(matches!(r.push(hello()), Ok(Some(Event::Hello(_)))));
        assert_eq!(r.push(hello()), Err(FrameError::SecondHello));
    }

    #[test]
    fn chunks_join_per_session_and_round() {
        let mut r = Reassembler::new(100, 100);
        r.push(hello()).unwrap();
        assert_eq!(r.push(frame(1, 3, b"ab", false)), Ok(None));
        assert_eq!(r.push(frame(2, 5, b"xy", false)), Ok(None));
        assert_eq!(r.partial_bytes(), 4);
        assert_eq!(r.push(frame(1, 3, b"cd", true)), Ok(msg(1, 3, b"abcd")));
        assert_eq!(r.push(frame(2, 5, b"", true)), Ok(msg(2, 5, b"xy")));
        assert_eq!(r.partial_bytes(), 0);
        // A frame of another round drops the partial message.
        r.push(frame(1, 4, b"old", false)).unwrap();
        assert_eq!(r.push(frame(1, 5, b"new", true)), Ok(msg(1, 5, b"new")));
        assert_eq!(r.partial_bytes(), 0);
    }

    #[test]
    fn sizes_are_bounded_per_message_and_in_all() {
        let mut r = Reassembler::new(4, 6);
        r.push(hello()).unwrap();
        assert_eq!(
            r.push(frame(1, 1, b"12345", true)),
            Err(FrameError::MessageTooLarge {
                session: 1,
                limit: 4
            })
        );
        r.push(frame(2, 1, b"123", false)).unwrap();
        assert!(matches!(
            r.push(frame(2, 1, b"45", false)),
            Err(FrameError::MessageTooLarge { .. })
        ));
        let mut r = Reassembler::new(4, 6);
        r.push(hello()).unwrap();
        r.push(frame(1, 1, b"123", false)).unwrap();
        r.push(frame(2, 1, b"123", false)).unwrap();
        assert_eq!(
            r.push(frame(3, 1, b"1", false)),
            Err(FrameError::PartialsTooLarge { limit: 6 })
        );
    }
}
