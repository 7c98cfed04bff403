//! Who may do what with a stored value: the access rules every node applies before a session
//! runs. Pure functions over a value's [`Access`], unit-tested rule by rule.
//!
//! A stored value has an **owner** (the client that stored it) and two kinds of rights the owner
//! hands out when storing it (Nillion-style per-program compute permissions):
//!
//! | right | grants | what the holder learns |
//! |---|---|---|
//! | owner | everything: run any program on it, receive anything derived from it, delete it | the value |
//! | `receive` | the raw value may flow to this client: it may run any program on the value whose outputs go to clients that may also receive it | the value |
//! | [`Grant`] (client, program) | this client may run this one program (content-hash id) on the value and receive that program's outputs itself | only what the owner-vetted program outputs |
//!
//! A grant names a program by its content hash, so the owner approves exactly the computation
//! (ops, shapes, recipients) it vetted; a different program — say one that outputs the value
//! itself — has a different id and is refused. Outputs of a granted program go to the invoker
//! only: the grant does not let the invoker route them to a third client.
//!
//! A value sent inline with a request acts as a value the caller owns with no rights for anyone
//! else ([`Access::inline`]), so only the caller may receive what is derived from it.

pub use veil_proto::Grant;
/// A value's access rights: its owner, per-program grants and raw-receive rights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The client that stored the value.
    pub owner: String,
    /// Who may run which program on it.
    pub grants: Vec<Grant>,
    /// Clients the raw value may flow to.
    pub receive: Vec<String>,
}

/// Why a use of a value is refused (the caller is told only that it is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The caller may not run this program on the value.
    Compute,
    /// The program's recipient may not receive outputs derived from the value.
    Receive,
}

impl Access {
    /// The rights of an input sent with the request: owned by `caller`, nobody else's.
    pub fn inline(caller: &str) -> Self {
        Access {
            owner: caller.to_string(),
            ..Access::default()
        }
    }

    /// Whether the raw value may flow to `client` (owner or `receive`).
    pub fn may_receive_raw(&self, client: &str) -> bool {
        self.owner == client || self.receive.iter().any(|r| r == client)
    }

    /// Whether `client` holds a grant for `program`.
    pub fn granted(&self, client: &str, program: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.client == client && g.program == program)
    }

    /// Whether `caller` may run `program` with this value as an input, its outputs going to
    /// `recipient`. Both checks must pass:
    /// - use: the caller owns the value, may receive it raw, or holds a grant for `program`;
    /// - delivery: the recipient owns the value or may receive it raw, or the recipient is the
    ///   caller itself and holds a grant for `program` (the owner vetted what it outputs).
    pub fn check(&self, caller: &str, program: &str, recipient: &str) -> Result<(), Refusal> {
        if !(self.may_receive_raw(caller) || self.granted(caller, program)) {
            return Err(Refusal::Compute);
        }
        if !(self.may_receive_raw(recipient)
            || (recipient == caller && self.granted(caller, program)))
        {
            return Err(Refusal::Receive);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "p-approved";
    const Q: &str = "q-other";

    fn corpus() -> Access {
        Access {
            owner: "owner".into(),
            grants: vec![Grant::new("asker", P)],
            receive: vec!["auditor".into()],
        }
    }

    #[test]
    fn the_owner_may_run_anything_and_receive_it() {
        let v = corpus();
        assert_eq!(v.check("owner", Q, "owner"), Ok(()));
        assert_eq!(v.check("owner", P, "owner"), Ok(()));
    }

    #[test]
    fn the_owner_may_send_derived_outputs_only_to_raw_receivers() {
        let v = corpus();
        assert_eq!(v.check("owner", Q, "auditor"), Ok(()));
        assert_eq!(v.check("owner", Q, "stranger"), Err(Refusal::Receive));
        // A grant does not make its holder a recipient of other callers' runs.
        assert_eq!(v.check("owner", P, "asker"), Err(Refusal::Receive));
    }

    #[test]
    fn a_grant_allows_exactly_its_program_with_outputs_to_the_invoker() {
        let v = corpus();
        assert_eq!(v.check("asker", P, "asker"), Ok(()));
        // The exfiltration attack: another program (e.g. one that outputs the value) is refused.
        assert_eq!(v.check("asker", Q, "asker"), Err(Refusal::Compute));
        // The approved program's outputs may not be routed to someone else.
        assert_eq!(v.check("asker", P, "stranger"), Err(Refusal::Receive));
        // A client that may receive the raw value may also receive what is derived from it.
        assert_eq!(v.check("asker", P, "auditor"), Ok(()));
    }

    #[test]
    fn receive_rights_allow_any_program_delivering_to_raw_receivers() {
        let v = corpus();
        assert_eq!(v.check("auditor", Q, "auditor"), Ok(()));
        assert_eq!(v.check("auditor", Q, "owner"), Ok(()));
        assert_eq!(v.check("auditor", Q, "asker"), Err(Refusal::Receive));
    }

    #[test]
    fn strangers_may_do_nothing() {
        let v = corpus();
        assert_eq!(v.check("stranger", P, "stranger"), Err(Refusal::Compute));
        assert_eq!(v.check("stranger", P, "owner"), Err(Refusal::Compute));
        // A grant for another client does not transfer.
        assert_eq!(v.check("stranger", P, "asker"), Err(Refusal::Compute));
    }

    #[test]
    fn inline_inputs_belong_to_the_caller_alone() {
        let v = Access::inline("alice");
        assert_eq!(v.check("alice", Q, "alice"), Ok(()));
        assert_eq!(v.check("alice", Q, "bob"), Err(Refusal::Receive));
        assert_eq!(v.check("bob", Q, "bob"), Err(Refusal::Compute));
    }
}
