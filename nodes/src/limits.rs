//! Resource limits a node checks before it allocates anything a request asks for.
//!
//! A program's memory and traffic follow from its types, which validation has computed before
//! anything runs: every op defines one value of a known shape, and the cost model gives the
//! bytes each party sends. So a node refuses, from the program alone, one whose largest value,
//! total elements or traffic exceed its configured limits — before expanding an inline input's
//! seed to the declared length or building any intermediate. Stored values and inline inputs
//! are bounded by the per-value limit too.

use serde::{Deserialize, Serialize};
use veil_circuits::ValidatedProgram;
use veil_circuits::cost::ProgramCost;

/// Default largest value (stored, inline, or any input, intermediate or output of a program),
/// in elements: 2^27 (1 GiB per share component).
pub const DEFAULT_MAX_VALUE_ELEMENTS: u64 = 1 << 27;
/// Default largest program, as the sum of the elements of all its values: 2^30.
pub const DEFAULT_MAX_PROGRAM_ELEMENTS: u64 = 1 << 30;
/// Default most bytes one party may send in one session (cost model): 16 GiB.
pub const DEFAULT_MAX_SESSION_BYTES: u64 = 16 << 30;

/// Per-node limits (`[limits]` in `node-<i>.toml`); every field has a default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest value, in elements: a stored value, an inline input, or any value a program
    /// defines (inputs, intermediates, outputs).
    pub max_value_elements: u64,
    /// Largest program: the elements of all the values it defines, summed.
    pub max_program_elements: u64,
    /// Most bytes one party sends in one session, from the cost model.
    pub max_session_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_elements: DEFAULT_MAX_VALUE_ELEMENTS,
            max_program_elements: DEFAULT_MAX_PROGRAM_ELEMENTS,
            max_session_bytes: DEFAULT_MAX_SESSION_BYTES,
        }
    }
}

/// A request exceeds a limit; the message names the limit and the sizes (never values).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// One value is larger than `max_value_elements`.
    #[error("{what} has {elements} elements; this node's max_value_elements is {limit}")]
    Value {
        /// Which value (an input name or an op index).
        what: String,
        /// Its element count.
        elements: u64,
        /// The limit.
        limit: u64,
    },
    /// The program's values together exceed `max_program_elements`.
    #[error(
        "the program defines {elements} elements in all; this node's max_program_elements is {limit}"
    )]
    Program {
        /// Total elements.
        elements: u64,
        /// The limit.
        limit: u64,
    },
    /// A party would send more than `max_session_bytes`.
    #[error(
        "the program makes a node send {bytes} bytes; this node's max_session_bytes is {limit}"
    )]
    SessionBytes {
        /// Bytes of the busiest party.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

impl Limits {
    /// Checks one value of `elements` elements.
    pub fn check_value(&self, what: impl Into<String>, elements: u64) -> Result<(), LimitError> {
        if elements > self.max_value_elements {
            return Err(LimitError::Value {
                what: what.into(),
                elements,
                limit: self.max_value_elements,
            });
        }
        Ok(())
    }

    /// Checks every value `p` defines, their sum, and the bytes each party would send by `cost`
    /// (the cost model of the protocols the node runs: its security mode's suite).
    pub fn check_program(
        &self,
        p: &ValidatedProgram,
        cost: &ProgramCost,
    ) -> Result<(), LimitError> {
        let mut total: u64 = 0;
        for (i, ty) in p.types().iter().enumerate() {
            let n = ty.shape.checked_len().map_or(u64::MAX, |n| n as u64);
            self.check_value(format!("op {i} ({})", ty.shape), n)?;
            total = total.saturating_add(n);
        }
        if total > self.max_program_elements {
            return Err(LimitError::Program {
                elements: total,
                limit: self.max_program_elements,
            });
        }
        let bytes = cost.bytes_sent.into_iter().max().unwrap_or(0);
        if bytes > self.max_session_bytes {
            return Err(LimitError::SessionBytes {
                bytes,
                limit: self.max_session_bytes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_circuits::cost::program_cost;
    use veil_circuits::{Builder, ElemType, Owner, Recipient, Shape, ValueType, Visibility};

    /// x (n elements) · broadcast to an m×n matrix via a public ones column, output to alice.
    fn outer(n: usize, m: usize) -> ValidatedProgram {
        let mut b = Builder::new();
        let x = b.input(
            "x",
            Owner::Client("alice".into()),
            ValueType {
                vis: Visibility::Secret,
                elem: ElemType::Ring,
                shape: Shape::Matrix(1, n),
            },
        );
        let ones = b.constant(ElemType::Ring, Shape::Matrix(m, 1), vec![1; m]);
        let big = b.matmul(ones, x);
        let y = b.mul(big, big);
        b.output("y", y, Recipient::Client("alice".into()));
        b.finish().unwrap()
    }

    #[test]
    fn a_small_program_passes() {
        let p = outer(8, 4);
        Limits::default()
            .check_program(&p, &program_cost(&p))
            .unwrap();
    }

    #[test]
    fn each_limit_refuses_by_name() {
        let p = outer(64, 64); // values of 64 + 64 + 4096 + 4096 elements
        let tight = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            l.check_program(&p, &program_cost(&p)).unwrap_err()
        };
        assert!(matches!(
            tight(|l| l.max_value_elements = 4095),
            LimitError::Value {
                elements: 4096,
                limit: 4095,
                ..
            }
        ));
        assert!(matches!(
            tight(|l| l.max_program_elements = 8000),
            LimitError::Program {
                elements: 8320,
                limit: 8000
            }
        ));
        let e = tight(|l| l.max_session_bytes = 1000);
        assert!(
            matches!(
                e,
                LimitError::SessionBytes {
                    bytes: 32768,
                    limit: 1000
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("max_session_bytes"));
    }

    #[test]
    fn a_huge_intermediate_from_small_inputs_is_refused_before_it_runs() {
        // 2^16 · 2^16 = 2^32 elements from a 2^16-element input.
        let p = outer(1 << 16, 1 << 16);
        let e = Limits::default()
            .check_program(&p, &program_cost(&p))
            .unwrap_err();
        assert!(
            matches!(e, LimitError::Value { elements, .. } if elements == 1 << 32),
            "{e}"
        );
    }
}
