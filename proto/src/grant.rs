//! The right to run one program on a stored value: what an owner hands out when storing it
//! (checked by the node's access policy).

use std::fmt;

/// The right to run one program (by content-hash id) on a value and receive its outputs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    /// The client allowed to invoke.
    pub client: String,
    /// The program's content-hash id (lowercase hex, as `StoreProgram` returns it).
    pub program: String,
}

impl Grant {
    /// `client` may run `program` (a content-hash id).
    pub fn new(client: impl Into<String>, program: impl Into<String>) -> Self {
        Grant {
            client: client.into(),
            program: program.into(),
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} may run {}", self.client, self.program)
    }
}
