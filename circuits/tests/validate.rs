//! Type inference, structural validation, ids and JSON.

use veil_circuits::fixed::FixedError;
use veil_circuits::validate::ParseProgramIdError;
use veil_circuits::{
    Builder, ElemType, Fixed, FracBits, InputDecl, Op, OutputDecl, Owner, PROGRAM_VERSION, PartyId,
    Program, ProgramId, Recipient, Ring, Shape, SumAxis, ValidationError, ValueId, ValueType,
    Visibility,
};

const F16: ElemType = ElemType::Fixed(FracBits(16));

fn secret(elem: ElemType, shape: Shape) -> ValueType {
    ValueType {
        vis: Visibility::Secret,
        elem,
        shape,
    }
}

fn public(elem: ElemType, shape: Shape) -> ValueType {
    ValueType {
        vis: Visibility::Public,
        elem,
        shape,
    }
}

fn decl(name: &str, ty: ValueType) -> InputDecl {
    InputDecl {
        name: name.into(),
        owner: Owner::Client("c".into()),
        ty,
    }
}

/// Program with the given inputs (each read by op i), then `ops`, no outputs.
fn prog(inputs: Vec<ValueType>, ops: Vec<Op>) -> Program {
    let n = inputs.len();
    Program {
        version: PROGRAM_VERSION,
        inputs: inputs
            .into_iter()
            .enumerate()
            .map(|(i, t)| decl(&format!("in{i}"), t))
            .collect(),
        ops: (0..n).map(|input| Op::Input { input }).chain(ops).collect(),
        outputs: vec![],
    }
}

/// Type of the last op of `prog(inputs, ops)`.
fn infer(inputs: Vec<ValueType>, ops: Vec<Op>) -> Result<ValueType, ValidationError> {
    let p = prog(inputs, ops).validate()?;
    Ok(*p.types().last().unwrap())
}

const A: ValueId = ValueId(0);
const B: ValueId = ValueId(1);

#[test]
fn visibility_joins_and_reveal() {
    let s = secret(ElemType::Ring, Shape::Vector(3));
    let p = public(ElemType::Ring, Shape::Vector(3));
    assert_eq!(infer(vec![s, p], vec![Op::Add(A, B)]).unwrap(), s);
    assert_eq!(infer(vec![p, s], vec![Op::Sub(A, B)]).unwrap(), s);
    assert_eq!(infer(vec![p, p], vec![Op::Mul(A, B)]).unwrap(), p);
    assert_eq!(infer(vec![s], vec![Op::Reveal(A)]).unwrap(), p);
    assert_eq!(
        infer(vec![p], vec![Op::Reveal(A)]),
        Err(ValidationError::RevealPublic {
            op: 1,
            name: "reveal"
        })
    );
}

#[test]
fn add_sub_neg_elem_rules() {
    let f = secret(F16, Shape::Vector(2));
    let g = secret(ElemType::Fixed(FracBits(8)), Shape::Vector(2));
    let r = secret(ElemType::Ring, Shape::Vector(2));
    assert_eq!(infer(vec![f, f], vec![Op::Add(A, B)]).unwrap(), f);
    assert_eq!(
        infer(vec![f, g], vec![Op::Add(A, B)]),
        Err(ValidationError::ElemMismatch {
            op: 2,
            name: "add",
            left: F16,
            right: ElemType::Fixed(FracBits(8))
        })
    );
    assert!(matches!(
        infer(vec![r, f], vec![Op::Sub(A, B)]),
        Err(ValidationError::ElemMismatch { name: "sub", .. })
    ));
    assert_eq!(infer(vec![g], vec![Op::Neg(A)]).unwrap(), g);
}

#[test]
fn broadcast_rules() {
    let v = secret(ElemType::Ring, Shape::Vector(4));
    let s = public(ElemType::Ring, Shape::Scalar);
    let m = secret(ElemType::Ring, Shape::Matrix(2, 2));
    assert_eq!(infer(vec![v, s], vec![Op::Mul(A, B)]).unwrap(), v);
    assert_eq!(infer(vec![s, m], vec![Op::Add(A, B)]).unwrap(), m);
    assert_eq!(
        infer(vec![v, m], vec![Op::Add(A, B)]),
        Err(ValidationError::ShapeMismatch {
            op: 2,
            name: "add",
            left: Shape::Vector(4),
            right: Shape::Matrix(2, 2)
        })
    );
    let e = infer(
        vec![v, secret(ElemType::Ring, Shape::Vector(5))],
        vec![Op::Mul(A, B)],
    );
    assert!(matches!(
        e,
        Err(ValidationError::ShapeMismatch { name: "mul", .. })
    ));
}

#[test]
fn mul_elem_rules() {
    let sh = Shape::Scalar;
    let r = secret(ElemType::Ring, sh);
    let f = secret(F16, sh);
    let g = secret(ElemType::Fixed(FracBits(10)), sh);
    assert_eq!(
        infer(vec![r, r], vec![Op::Mul(A, B)]).unwrap().elem,
        ElemType::Ring
    );
    assert_eq!(
        infer(vec![f, g], vec![Op::Mul(A, B)]).unwrap().elem,
        ElemType::Fixed(FracBits(26))
    );
    assert_eq!(infer(vec![r, f], vec![Op::Mul(A, B)]).unwrap().elem, F16);
    assert_eq!(infer(vec![f, r], vec![Op::Mul(A, B)]).unwrap().elem, F16);
    let big = secret(ElemType::Fixed(FracBits(40)), sh);
    // 40 + 16 = 56 is fine; 40 + 40 = 80 is not.
    assert_eq!(
        infer(vec![big, f], vec![Op::Mul(A, B)]).unwrap().elem,
        ElemType::Fixed(FracBits(56))
    );
    assert_eq!(
        infer(vec![big, big], vec![Op::Mul(A, B)]),
        Err(ValidationError::FracBitsTooLarge {
            op: 2,
            name: "mul",
            frac_bits: 80
        })
    );
    let m = secret(ElemType::Fixed(FracBits(40)), Shape::Matrix(2, 2));
    assert!(matches!(
        infer(vec![m, m], vec![Op::MatMul(A, B)]),
        Err(ValidationError::FracBitsTooLarge {
            name: "matmul",
            frac_bits: 80,
            ..
        })
    ));
}

#[test]
fn bits_rejected_by_arithmetic() {
    let bit = public(ElemType::Bit, Shape::Vector(2));
    let r = public(ElemType::Ring, Shape::Vector(2));
    for (op, name) in [
        (Op::Add(A, B), "add"),
        (Op::Sub(B, A), "sub"),
        (Op::Neg(A), "neg"),
        (Op::Mul(A, B), "mul"),
        (Op::Dot(B, A), "dot"),
        (
            Op::Sum {
                a: A,
                axis: SumAxis::All,
            },
            "sum",
        ),
        (Op::Rescale { a: A, bits: 0 }, "rescale"),
    ] {
        let e = infer(vec![bit, r], vec![op]).unwrap_err();
        assert_eq!(e, ValidationError::BitUnsupported { op: 2, name });
        assert!(
            e.to_string().contains("boolean ops come with comparisons"),
            "{e}"
        );
    }
    let m = public(ElemType::Bit, Shape::Matrix(2, 2));
    assert_eq!(
        infer(vec![m, m], vec![Op::MatMul(A, B)]),
        Err(ValidationError::BitUnsupported {
            op: 2,
            name: "matmul"
        })
    );
    // Data movement on bits is fine.
    assert_eq!(infer(vec![m], vec![Op::Transpose(A)]).unwrap(), m);
    assert_eq!(
        infer(vec![bit, bit], vec![Op::Concat(vec![A, B])])
            .unwrap()
            .shape,
        Shape::Vector(4)
    );
    assert_eq!(
        infer(
            vec![bit],
            vec![Op::Slice {
                a: A,
                start: 1,
                end: 2
            }]
        )
        .unwrap()
        .shape,
        Shape::Vector(1)
    );
}

#[test]
fn secret_bit_input_rejected() {
    let e = infer(vec![secret(ElemType::Bit, Shape::Scalar)], vec![]).unwrap_err();
    assert_eq!(e, ValidationError::SecretBitInput { name: "in0".into() });
}

#[test]
fn dot_rules() {
    let v = secret(F16, Shape::Vector(5));
    let m = secret(ElemType::Ring, Shape::Matrix(3, 5));
    let t = infer(vec![v, v], vec![Op::Dot(A, B)]).unwrap();
    assert_eq!(t, secret(ElemType::Fixed(FracBits(32)), Shape::Scalar));
    assert_eq!(
        infer(vec![m, m], vec![Op::Dot(A, B)]).unwrap().shape,
        Shape::Vector(3)
    );
    let w = secret(F16, Shape::Vector(4));
    assert_eq!(
        infer(vec![v, w], vec![Op::Dot(A, B)]),
        Err(ValidationError::DotShape {
            op: 2,
            name: "dot",
            left: Shape::Vector(5),
            right: Shape::Vector(4)
        })
    );
    let m2 = secret(ElemType::Ring, Shape::Matrix(5, 3));
    assert!(matches!(
        infer(vec![m, m2], vec![Op::Dot(A, B)]),
        Err(ValidationError::DotShape { .. })
    ));
}

#[test]
fn matmul_rules() {
    let a = secret(ElemType::Ring, Shape::Matrix(2, 3));
    let b = public(F16, Shape::Matrix(3, 4));
    assert_eq!(
        infer(vec![a, b], vec![Op::MatMul(A, B)]).unwrap(),
        secret(F16, Shape::Matrix(2, 4))
    );
    let c = public(ElemType::Ring, Shape::Matrix(4, 5));
    let e = infer(vec![a, c], vec![Op::MatMul(A, B)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "op 2 (matmul): inner dimensions differ: matrix[2×3] · matrix[4×5]"
    );
    let v = public(ElemType::Ring, Shape::Vector(3));
    assert_eq!(
        infer(vec![a, v], vec![Op::MatMul(A, B)]),
        Err(ValidationError::NotMatrix {
            op: 2,
            name: "matmul",
            shape: Shape::Vector(3)
        })
    );
    assert_eq!(
        infer(vec![v, a], vec![Op::MatMul(A, B)]),
        Err(ValidationError::NotMatrix {
            op: 2,
            name: "matmul",
            shape: Shape::Vector(3)
        })
    );
    // k = 0 with a huge result overflows.
    let wide = public(ElemType::Ring, Shape::Matrix(usize::MAX / 2, 0));
    let tall = public(ElemType::Ring, Shape::Matrix(0, usize::MAX / 2));
    assert!(matches!(
        infer(vec![wide, tall], vec![Op::MatMul(A, B)]),
        Err(ValidationError::ShapeTooLarge {
            op: 2,
            name: "matmul",
            ..
        })
    ));
}

#[test]
fn sum_rules() {
    let m = secret(F16, Shape::Matrix(3, 4));
    let v = secret(F16, Shape::Vector(4));
    assert_eq!(
        infer(
            vec![m],
            vec![Op::Sum {
                a: A,
                axis: SumAxis::All
            }]
        )
        .unwrap(),
        secret(F16, Shape::Scalar)
    );
    assert_eq!(
        infer(
            vec![m],
            vec![Op::Sum {
                a: A,
                axis: SumAxis::Rows
            }]
        )
        .unwrap()
        .shape,
        Shape::Vector(3)
    );
    assert_eq!(
        infer(
            vec![v],
            vec![Op::Sum {
                a: A,
                axis: SumAxis::Rows
            }]
        ),
        Err(ValidationError::NotMatrix {
            op: 1,
            name: "sum",
            shape: Shape::Vector(4)
        })
    );
}

#[test]
fn rescale_rules() {
    let f = secret(F16, Shape::Vector(2));
    assert_eq!(
        infer(vec![f], vec![Op::Rescale { a: A, bits: 16 }])
            .unwrap()
            .elem,
        ElemType::Fixed(FracBits(0))
    );
    assert_eq!(
        infer(vec![f], vec![Op::Rescale { a: A, bits: 0 }]).unwrap(),
        f
    );
    assert_eq!(
        infer(vec![f], vec![Op::Rescale { a: A, bits: 17 }]),
        Err(ValidationError::RescaleTooMany {
            op: 1,
            name: "rescale",
            bits: 17,
            elem: F16
        })
    );
    let r = secret(ElemType::Ring, Shape::Vector(2));
    assert_eq!(
        infer(vec![r], vec![Op::Rescale { a: A, bits: 1 }]),
        Err(ValidationError::RescaleNotFixed {
            op: 1,
            name: "rescale",
            elem: ElemType::Ring
        })
    );
}

#[test]
fn reshape_slice_concat_transpose() {
    let v = secret(ElemType::Ring, Shape::Vector(6));
    let m = public(ElemType::Ring, Shape::Matrix(2, 3));
    assert_eq!(
        infer(
            vec![v],
            vec![Op::Reshape {
                a: A,
                shape: Shape::Matrix(3, 2)
            }]
        )
        .unwrap(),
        secret(ElemType::Ring, Shape::Matrix(3, 2))
    );
    assert_eq!(
        infer(
            vec![v],
            vec![Op::Reshape {
                a: A,
                shape: Shape::Vector(5)
            }]
        ),
        Err(ValidationError::ReshapeLen {
            op: 1,
            name: "reshape",
            from: Shape::Vector(6),
            to: Shape::Vector(5)
        })
    );
    assert!(matches!(
        infer(
            vec![v],
            vec![Op::Reshape {
                a: A,
                shape: Shape::Matrix(usize::MAX, 2)
            }]
        ),
        Err(ValidationError::ShapeTooLarge {
            name: "reshape",
            ..
        })
    ));
    assert_eq!(
        infer(
            vec![v],
            vec![Op::Slice {
                a: A,
                start: 2,
                end: 6
            }]
        )
        .unwrap()
        .shape,
        Shape::Vector(4)
    );
    assert_eq!(
        infer(
            vec![v],
            vec![Op::Slice {
                a: A,
                start: 3,
                end: 3
            }]
        )
        .unwrap()
        .shape,
        Shape::Vector(0)
    );
    assert_eq!(
        infer(
            vec![m],
            vec![Op::Slice {
                a: A,
                start: 1,
                end: 2
            }]
        )
        .unwrap()
        .shape,
        Shape::Matrix(1, 3)
    );
    for (start, end) in [(4, 3), (0, 7)] {
        assert_eq!(
            infer(vec![v], vec![Op::Slice { a: A, start, end }]),
            Err(ValidationError::SliceRange {
                op: 1,
                name: "slice",
                start,
                end,
                shape: Shape::Vector(6)
            })
        );
    }
    assert!(matches!(
        infer(
            vec![m],
            vec![Op::Slice {
                a: A,
                start: 0,
                end: 3
            }]
        ),
        Err(ValidationError::SliceRange { .. })
    ));
    let s = public(ElemType::Ring, Shape::Scalar);
    assert_eq!(
        infer(
            vec![s],
            vec![Op::Slice {
                a: A,
                start: 0,
                end: 1
            }]
        ),
        Err(ValidationError::SliceScalar {
            op: 1,
            name: "slice"
        })
    );
    // Concat: vectors, matrices with equal cols, secret if any part is.
    let w = public(ElemType::Ring, Shape::Vector(2));
    assert_eq!(
        infer(vec![v, w], vec![Op::Concat(vec![B, A, B])]).unwrap(),
        secret(ElemType::Ring, Shape::Vector(10))
    );
    let m2 = secret(ElemType::Ring, Shape::Matrix(4, 3));
    assert_eq!(
        infer(vec![m, m2], vec![Op::Concat(vec![A, B])]).unwrap(),
        secret(ElemType::Ring, Shape::Matrix(6, 3))
    );
    assert_eq!(infer(vec![m], vec![Op::Concat(vec![A])]).unwrap(), m);
    assert_eq!(
        infer(vec![], vec![Op::Concat(vec![])]),
        Err(ValidationError::ConcatEmpty {
            op: 0,
            name: "concat"
        })
    );
    assert_eq!(
        infer(vec![v, m], vec![Op::Concat(vec![A, B])]),
        Err(ValidationError::ConcatShape {
            op: 2,
            name: "concat",
            part: 1,
            first: Shape::Vector(6),
            found: Shape::Matrix(2, 3)
        })
    );
    let m3 = secret(ElemType::Ring, Shape::Matrix(2, 4));
    assert!(matches!(
        infer(vec![m, m3], vec![Op::Concat(vec![A, B])]),
        Err(ValidationError::ConcatShape { part: 1, .. })
    ));
    assert!(matches!(
        infer(vec![s], vec![Op::Concat(vec![A])]),
        Err(ValidationError::ConcatShape { part: 0, .. })
    ));
    let vf = secret(F16, Shape::Vector(2));
    assert!(matches!(
        infer(vec![v, vf], vec![Op::Concat(vec![A, B])]),
        Err(ValidationError::ElemMismatch { name: "concat", .. })
    ));
    let huge = public(ElemType::Ring, Shape::Vector(usize::MAX));
    // Overflowing input shapes are caught at the declaration.
    assert!(matches!(
        infer(vec![huge], vec![]),
        Err(ValidationError::InputShapeTooLarge { .. })
    ));
    // Concat overflow: 2^32 + 2^32 elements.
    let big = public(ElemType::Ring, Shape::Vector(1 << 32));
    assert!(matches!(
        infer(vec![big, big], vec![Op::Concat(vec![A, B])]),
        Err(ValidationError::ShapeTooLarge {
            op: 2,
            name: "concat",
            ..
        })
    ));
    assert_eq!(
        infer(vec![m], vec![Op::Transpose(A)]).unwrap().shape,
        Shape::Matrix(3, 2)
    );
    assert_eq!(
        infer(vec![v], vec![Op::Transpose(A)]),
        Err(ValidationError::NotMatrix {
            op: 1,
            name: "transpose",
            shape: Shape::Vector(6)
        })
    );
}

#[test]
fn constants() {
    let c = |elem, shape, values| Op::Constant {
        elem,
        shape,
        values,
    };
    assert_eq!(
        infer(vec![], vec![c(F16, Shape::Vector(2), vec![1, 2])]).unwrap(),
        public(F16, Shape::Vector(2))
    );
    assert_eq!(
        infer(
            vec![],
            vec![c(ElemType::Ring, Shape::Matrix(2, 2), vec![1, 2, 3])]
        ),
        Err(ValidationError::ConstantLength {
            op: 0,
            name: "constant",
            shape: Shape::Matrix(2, 2),
            expected: 4,
            found: 3
        })
    );
    assert_eq!(
        infer(
            vec![],
            vec![c(ElemType::Bit, Shape::Vector(3), vec![0, 1, 2])]
        ),
        Err(ValidationError::BitConstant {
            op: 0,
            name: "constant",
            position: 2
        })
    );
    assert!(infer(vec![], vec![c(ElemType::Bit, Shape::Vector(2), vec![0, 1])]).is_ok());
    assert_eq!(
        infer(
            vec![],
            vec![c(ElemType::Fixed(FracBits(63)), Shape::Scalar, vec![0])]
        ),
        Err(ValidationError::FracBitsTooLarge {
            op: 0,
            name: "constant",
            frac_bits: 63
        })
    );
    assert!(matches!(
        infer(
            vec![],
            vec![c(ElemType::Ring, Shape::Matrix(1 << 40, 1 << 40), vec![])]
        ),
        Err(ValidationError::ShapeTooLarge {
            op: 0,
            name: "constant",
            ..
        })
    ));
}

#[test]
fn structural_errors() {
    let v = secret(ElemType::Ring, Shape::Vector(2));
    // Forward reference and self reference.
    assert_eq!(
        infer(vec![v], vec![Op::Neg(ValueId(2))]),
        Err(ValidationError::UnknownValue {
            op: 1,
            name: "neg",
            value: ValueId(2)
        })
    );
    assert_eq!(
        infer(vec![v], vec![Op::Neg(ValueId(1))]),
        Err(ValidationError::UnknownValue {
            op: 1,
            name: "neg",
            value: ValueId(1)
        })
    );
    // Input index out of range.
    let mut p = prog(vec![v], vec![Op::Input { input: 5 }]);
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::InputIndex {
            op: 1,
            name: "input",
            input: 5,
            count: 1
        }
    );
    // Input read twice.
    p.ops[1] = Op::Input { input: 0 };
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::InputReadTwice {
            op: 1,
            name: "input",
            input: "in0".into(),
            first: 0
        }
    );
    // Input never read.
    p.ops.truncate(0);
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::InputUnused { name: "in0".into() }
    );
    // Duplicate and empty input names, empty owner.
    let mut p = prog(vec![v, v], vec![]);
    p.inputs[1].name = "in0".into();
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::DuplicateInput { name: "in0".into() }
    );
    p.inputs[1].name = String::new();
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::EmptyName {
            what: "input",
            index: 1
        }
    );
    p.inputs[1].name = "x".into();
    p.inputs[1].owner = Owner::Client(String::new());
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::EmptyName {
            what: "input owner",
            index: 1
        }
    );
    p.inputs[1].owner = Owner::Party(PartyId::P2);
    assert!(p.validate().is_ok());
    // Outputs.
    let out = |name: &str, value, recipient| OutputDecl {
        name: name.into(),
        value: ValueId(value),
        recipient,
    };
    p.outputs = vec![
        out("a", 0, Recipient::AllParties),
        out("a", 1, Recipient::Party(PartyId::P0)),
    ];
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::DuplicateOutput { name: "a".into() }
    );
    p.outputs[1].name = String::new();
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::EmptyName {
            what: "output",
            index: 1
        }
    );
    p.outputs[1] = out("b", 2, Recipient::Party(PartyId::P0));
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::OutputUndefined {
            output: "b".into(),
            value: ValueId(2)
        }
    );
    p.outputs[1] = out("b", 1, Recipient::Client(String::new()));
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::EmptyName {
            what: "output recipient",
            index: 1
        }
    );
    p.outputs[1].recipient = Recipient::Client("bob".into());
    assert!(p.validate().is_ok());
    // Input declarations.
    let p = prog(
        vec![secret(ElemType::Fixed(FracBits(70)), Shape::Scalar)],
        vec![],
    );
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::InputFracBits {
            name: "in0".into(),
            frac_bits: 70
        }
    );
    let p = prog(
        vec![secret(ElemType::Ring, Shape::Matrix(usize::MAX, 3))],
        vec![],
    );
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::InputShapeTooLarge {
            name: "in0".into(),
            shape: Shape::Matrix(usize::MAX, 3)
        }
    );
    // Zero-length values are fine.
    let z = secret(ElemType::Ring, Shape::Matrix(0, 5));
    assert!(infer(vec![z, z], vec![Op::Dot(A, B)]).is_ok());
    // Empty program.
    assert!(Program::new().validate().unwrap().types().is_empty());
}

#[test]
fn validated_program_accessors() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Ring);
    let y = b.public_vector("y", 3, Ring);
    let z = b.add(x, y);
    b.output_to_client("z", z);
    let p = b.finish().unwrap();
    assert_eq!(p.input_index("y"), Some(1));
    assert_eq!(p.input_index("nope"), None);
    assert_eq!(p.types().len(), 3);
    assert_eq!(p.types()[2], secret(ElemType::Ring, Shape::Vector(3)));
    assert_eq!(*p.id(), p.program().id());
    let id = *p.id();
    assert_eq!(p.into_program().id(), id);
}

#[test]
fn version_checked() {
    let mut p = Program::new();
    p.version = 2;
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::UnsupportedVersion {
            found: 2,
            expected: PROGRAM_VERSION
        }
    );
    // from_json rejects the version even when the rest is unknown to this build.
    let e =
        Program::from_json(r#"{"version": 7, "inputs": [], "ops": [{"Sort": 0}], "outputs": []}"#)
            .unwrap_err();
    assert_eq!(
        e,
        ValidationError::UnsupportedVersion {
            found: 7,
            expected: 1
        }
    );
    assert!(e.to_string().contains("unsupported program version 7"));
}

#[test]
fn json_round_trip_and_ids() {
    let build = |n| {
        let mut b = Builder::new();
        let q = b.secret_vector("query", n, Fixed::default());
        let d = b.secret_matrix("docs", 4, n, Fixed::default());
        let qm = b.reshape(q, Shape::Matrix(n, 1));
        let s = b.fixmatmul(d, qm);
        b.output("scores", s, Recipient::Party(PartyId::P1));
        b.finish().unwrap()
    };
    let p = build(8);
    let json = p.program().to_json();
    let back = Program::from_json(&json).unwrap();
    assert_eq!(&back, p.program());
    assert_eq!(back.id(), *p.id());
    assert_eq!(build(8).id(), p.id());
    assert_ne!(build(9).id(), p.id());
    // The id is the hex SHA-256 of domain ‖ compact JSON: 64 lowercase hex digits, parseable.
    let hex = p.id().to_string();
    assert_eq!(hex.len(), 64);
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(hex.parse::<ProgramId>().unwrap(), *p.id());
    assert_eq!("xyz".parse::<ProgramId>(), Err(ParseProgramIdError));
    assert_eq!(hex[..62].parse::<ProgramId>(), Err(ParseProgramIdError));
    // Serde of ids is the hex string.
    assert_eq!(serde_json::to_string(p.id()).unwrap(), format!("\"{hex}\""));
    let id: ProgramId = serde_json::from_str(&format!("\"{hex}\"")).unwrap();
    assert_eq!(id, *p.id());
    // A renamed output changes the id.
    let mut q = p.program().clone();
    q.outputs[0].name = "other".into();
    assert_ne!(q.id(), *p.id());
}

#[test]
fn garbage_json_rejected() {
    for s in [
        "",
        "nonsense",
        "{}",
        "[1,2]",
        r#"{"version": 1}"#,
        r#"{"version": "1"}"#,
        r#"{"version":1,"inputs":[],"ops":[{"Mul":[0]}],"outputs":[]}"#,
    ] {
        assert!(
            matches!(Program::from_json(s), Err(ValidationError::Json { .. })),
            "{s}"
        );
    }
    // Deep nesting hits serde_json's recursion limit rather than the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Program::from_json(&deep).is_err());
    // A syntactically fine but ill-typed program parses, then fails validation.
    let s = r#"{"version":1,"inputs":[],"ops":[{"Neg":0}],"outputs":[]}"#;
    let p = Program::from_json(s).unwrap();
    assert_eq!(
        p.validate().unwrap_err(),
        ValidationError::UnknownValue {
            op: 0,
            name: "neg",
            value: ValueId(0)
        }
    );
}

#[test]
fn builder_reports_first_error() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 3, Ring);
    let y = b.secret_vector("y", 4, Ring);
    let bad = b.add(x, y);
    assert_eq!(bad.ty(), public(ElemType::Ring, Shape::Scalar)); // placeholder
    let also_bad = b.rescale(x, 1);
    let _ = b.mul(bad, also_bad);
    assert!(matches!(
        b.finish(),
        Err(ValidationError::ShapeMismatch {
            op: 2,
            name: "add",
            ..
        })
    ));

    let mut b = Builder::new();
    let x = b.secret_scalar("x", Fixed::default());
    let c = b.const_fixed(f64::NAN, Fixed::default());
    let _ = b.add(x, c);
    assert_eq!(
        b.finish().unwrap_err(),
        ValidationError::FixedConstant {
            op: 1,
            source: FixedError::NotFinite
        }
    );
    let mut b = Builder::new();
    let _ = b.const_fixed_vector(&[1.0, 1e30], Fixed::default());
    let e = b.finish().unwrap_err();
    assert_eq!(
        e,
        ValidationError::FixedConstant {
            op: 0,
            source: FixedError::OutOfRange { frac_bits: 16 }
        }
    );
    assert!(!e.to_string().contains("1e30"));

    // Whole-program checks run at finish.
    let mut b = Builder::new();
    let x = b.secret_scalar("x", Ring);
    let _ = b.secret_scalar("x", Ring);
    b.output_to_client("o", x);
    assert_eq!(
        b.finish().unwrap_err(),
        ValidationError::DuplicateInput { name: "x".into() }
    );
    // Values from another builder are unknown here.
    let mut other = Builder::new();
    let _ = other.const_ring(1);
    let _ = other.const_ring(2);
    let foreign = other.const_ring(3);
    let mut b = Builder::new();
    let _ = b.neg(foreign);
    assert!(matches!(
        b.finish(),
        Err(ValidationError::UnknownValue { op: 0, .. })
    ));
}

#[test]
fn builder_rag_example() {
    let mut b = Builder::new();
    let q = b.secret_vector("query", 384, Fixed::default());
    let d = b.secret_matrix("docs", 100, 384, Fixed::default());
    let qm = b.reshape(q, Shape::Matrix(384, 1));
    let scores = b.fixmatmul(d, qm);
    assert_eq!(scores.ty(), secret(F16, Shape::Matrix(100, 1)));
    let scores = b.reshape(scores, Shape::Vector(100));
    let top = b.slice(scores, 0, 10);
    let bias = b.const_fixed(0.5, Fixed::default());
    let top = b.add(top, bias);
    let norm = b.fixdot(q, q);
    assert_eq!(norm.ty(), secret(F16, Shape::Scalar));
    let opened = b.reveal(norm);
    assert_eq!(opened.ty().vis, Visibility::Public);
    b.output_to_client("top", top);
    b.output("norm", opened, Recipient::AllParties);
    let p = b.finish().unwrap();
    assert_eq!(p.program().inputs.len(), 2);
    assert_eq!(
        p.program().outputs[0].recipient,
        Recipient::Client("client".into())
    );
    assert_eq!(p.types().last().unwrap(), &public(F16, Shape::Scalar));
}

#[test]
fn builder_fixmul_variants() {
    let mut b = Builder::new();
    let x = b.secret_vector("x", 2, Fixed::with_frac_bits(12));
    let y = b.secret_vector("y", 2, Fixed::with_frac_bits(20));
    let r = b.public_scalar("r", Ring);
    let xy = b.fixmul(x, y);
    assert_eq!(xy.ty().elem, ElemType::Fixed(FracBits(20)));
    let xr = b.fixmul(x, r);
    assert_eq!(xr.ty().elem, ElemType::Fixed(FracBits(12)));
    let n_ops = b.program().ops.len();
    assert_eq!(n_ops, 3 + 2 + 1); // inputs, mul + rescale, mul without rescale
    let m = b.secret_matrix("m", 2, 2, Fixed::default());
    let mm = b.fixmatmul(m, m);
    let t = b.transpose(mm);
    let s = b.sum_rows(t);
    let s2 = b.sum(s);
    let n = b.neg(s2);
    let k = b.const_ring(-3);
    let kv = b.const_ring_vector(&[1, -1]);
    let z = b.sub(n, n);
    let c = b.concat(&[xy, xy]);
    let e = b.constant(ElemType::Bit, Shape::Scalar, vec![1]);
    let ring = b.input(
        "p",
        Owner::Party(PartyId::P0),
        secret(ElemType::Ring, Shape::Vector(2)),
    );
    let dk = b.dot(ring, kv);
    let mk = b.mul(ring, k);
    for (name, v) in [
        ("z", z),
        ("c", c),
        ("e", e),
        ("dk", dk),
        ("mk", mk),
        ("xr", xr),
    ] {
        b.output_to_client(name, v);
    }
    let p = b.finish().unwrap();
    assert_eq!(p.types()[c.id().index()].shape, Shape::Vector(4));
    assert_eq!(
        p.types()[dk.id().index()],
        secret(ElemType::Ring, Shape::Scalar)
    );
}

/// `BestK`'s plan: absent groups are not serialised (old JSON and ids unchanged), present ones
/// round-trip, and groups that are no plan for the sizes are a typed validation error.
#[test]
fn best_k_groups_serialise_only_when_set_and_are_checked() {
    use veil_circuits::{Builder, Program, Ring, ValidationError};
    let build = |groups: Option<Vec<usize>>| {
        let mut b = Builder::new();
        let x = b.secret_vector("x", 100, Ring);
        let best = b.best_k_ranked(x, 3, true, groups);
        b.output_to_client("best", best);
        b.finish()
    };
    let network = build(None).unwrap();
    assert!(!network.program().to_json().contains("groups"));
    let ranked = build(Some(vec![10, 30])).unwrap();
    let json = ranked.program().to_json();
    assert!(json.contains("groups"));
    let back = Program::from_json(&json).unwrap().validate().unwrap();
    assert_eq!(back.id(), ranked.id());
    assert_ne!(ranked.id(), network.id());
    assert!(matches!(
        build(Some(vec![10])),
        Err(ValidationError::BestKGroups { .. })
    ));
    assert!(matches!(
        build(Some(vec![2, 100])),
        Err(ValidationError::BestKGroups { .. })
    ));
}
