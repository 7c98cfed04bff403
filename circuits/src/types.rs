//! Value types of the IR: visibility, element type and shape.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Number of fractional bits of a fixed-point value: `x` is stored as `round(x · 2^f)` in Z_2^64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FracBits(pub u32);

impl FracBits {
    /// The project default, f = 16 (resolution 2^-16 ≈ 1.5e-5).
    pub const DEFAULT: FracBits = FracBits(16);
}

impl Default for FracBits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One of the three computing parties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PartyId {
    /// Party 0.
    P0,
    /// Party 1.
    P1,
    /// Party 2.
    P2,
}

impl PartyId {
    /// All three parties in order.
    pub const ALL: [PartyId; 3] = [PartyId::P0, PartyId::P1, PartyId::P2];

    /// Index 0, 1 or 2.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The party with index `i mod 3`.
    pub fn from_index(i: usize) -> PartyId {
        Self::ALL[i % 3]
    }

    /// P_{i+1}: the party this one sends multiplication messages to receive from.
    pub fn next(self) -> PartyId {
        Self::from_index(self.index() + 1)
    }

    /// P_{i-1}.
    pub fn prev(self) -> PartyId {
        Self::from_index(self.index() + 2)
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.index())
    }
}

/// Who may see a value: everyone (public) or nobody in the clear (secret-shared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    /// Known in the clear to every party.
    Public,
    /// Held only as replicated shares.
    Secret,
}

/// Element type; every element is stored in one u64 word (of Z_2^64, or of Z_2^32 for
/// [`ElemType::Ring32`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ElemType {
    /// Integers of Z_2^64, read as signed two's complement.
    Ring,
    /// Compact integers of Z_2^32, read as signed two's complement (i32), one per word and kept
    /// reduced (every word < 2^32). Secret Ring32 values are shared mod 2^32. Only inputs,
    /// constants, `Add`, `Sub`, `Neg`, `MatMul` (both operands Ring32), data movement and
    /// outputs accept them; [`crate::Op::Widen`] and [`crate::Op::Narrow`] convert to and from
    /// [`ElemType::Ring`] locally.
    Ring32,
    /// Fixed point: the ring element `v` stands for `v / 2^f` (v signed).
    Fixed(FracBits),
    /// A single bit (boolean sharing arrives with the comparison protocols; arithmetic on bits is
    /// rejected by validation).
    Bit,
}

/// Fixed-point element type with `f` fractional bits; `Fixed::default()` has f = 16.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fixed(pub FracBits);

impl Fixed {
    /// Fixed point with `f` fractional bits.
    pub fn with_frac_bits(f: u32) -> Self {
        Fixed(FracBits(f))
    }
}

impl From<Fixed> for ElemType {
    fn from(f: Fixed) -> Self {
        ElemType::Fixed(f.0)
    }
}

/// Ring element type marker for the builder: `b.secret_vector("x", 8, Ring)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ring;

impl From<Ring> for ElemType {
    fn from(_: Ring) -> Self {
        ElemType::Ring
    }
}

/// Ring32 element type marker for the builder: `b.secret_vector("x", 8, Ring32)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ring32;

impl From<Ring32> for ElemType {
    fn from(_: Ring32) -> Self {
        ElemType::Ring32
    }
}

/// Mask of a reduced [`ElemType::Ring32`] word: the low 32 bits.
pub const RING32_MASK: u64 = 0xffff_ffff;

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElemType::Ring => write!(f, "ring"),
            ElemType::Ring32 => write!(f, "ring32"),
            ElemType::Fixed(b) => write!(f, "fixed<{}>", b.0),
            ElemType::Bit => write!(f, "bit"),
        }
    }
}

/// Shape of a value; matrices are row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shape {
    /// One element.
    Scalar,
    /// `n` elements.
    Vector(usize),
    /// `rows × cols` elements, row-major.
    Matrix(usize, usize),
}

impl Shape {
    /// Number of elements (saturating at `usize::MAX`; validated shapes never get near it).
    pub fn len(self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Number of elements, or `None` when `rows × cols` overflows `usize`.
    pub fn checked_len(self) -> Option<usize> {
        match self {
            Shape::Scalar => Some(1),
            Shape::Vector(n) => Some(n),
            Shape::Matrix(r, c) => r.checked_mul(c),
        }
    }

    /// True when the shape holds no element.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Scalar => write!(f, "scalar"),
            Shape::Vector(n) => write!(f, "vector[{n}]"),
            Shape::Matrix(r, c) => write!(f, "matrix[{r}×{c}]"),
        }
    }
}

/// Full type of an IR value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ValueType {
    /// Public or secret.
    pub vis: Visibility,
    /// Element type.
    pub elem: ElemType,
    /// Shape.
    pub shape: Shape,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vis = match self.vis {
            Visibility::Public => "public",
            Visibility::Secret => "secret",
        };
        write!(f, "{vis} {} {}", self.elem, self.shape)
    }
}
