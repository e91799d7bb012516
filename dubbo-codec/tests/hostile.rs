//! Hostile input: lengths that promise more than is there, nesting meant to blow the stack,
//! references to nothing. Each is an error that says what and where, found without allocating
//! what the input claims.

use dubbo_codec::hessian::{self, Decoder, Limits};
use dubbo_codec::Error;

fn err(bytes: &[u8]) -> Error {
    hessian::from_slice(bytes).expect_err("must be rejected")
}

#[test]
fn declared_lengths_are_checked_against_the_input() {
    // Typed fixed list of 2^31-1 items: `V`, type "x", int 0x7fffffff.
    assert!(matches!(
        err(b"V\x01xI\x7f\xff\xff\xff"),
        Error::LengthExceedsInput {
            what: "list",
            declared: 2147483647,
            ..
        }
    ));
    // Untyped fixed list with a negative length.
    assert!(matches!(
        err(b"XI\xff\xff\xff\xff"),
        Error::LengthExceedsInput { declared: -1, .. }
    ));
    // A 65535-unit string chunk with three bytes behind it.
    assert!(matches!(
        err(b"S\xff\xffabc"),
        Error::LengthExceedsInput {
            what: "string",
            declared: 65535,
            available: 3,
            ..
        }
    ));
    // A binary chunk longer than the input.
    assert!(matches!(
        err(b"B\x10\x00ab"),
        Error::LengthExceedsInput {
            what: "binary",
            declared: 4096,
            ..
        }
    ));
    // A class definition claiming 2^31-1 fields.
    assert!(matches!(
        err(b"C\x01AI\x7f\xff\xff\xff"),
        Error::LengthExceedsInput {
            what: "class definition",
            ..
        }
    ));
}

#[test]
fn endless_chunks_end_with_the_input() {
    let mut bytes = Vec::new();
    for _ in 0..1000 {
        bytes.extend_from_slice(b"A\x00\x01z");
    }
    assert!(matches!(
        err(&bytes),
        Error::UnexpectedEnd { offset: 4000, .. }
    ));
}

#[test]
fn nesting_is_bounded() {
    // 100k nested one-element untyped lists would overflow the stack if recursion were unbounded.
    let bytes = vec![0x79u8; 100_000];
    assert!(matches!(err(&bytes), Error::TooDeep { max: 256, .. }));
    let mut shallow = vec![0x79u8; 10];
    shallow.push(0x90);
    let mut dec = Decoder::with_limits(&shallow, Limits { max_depth: 5 });
    assert!(matches!(
        dec.read_value(),
        Err(Error::TooDeep { max: 5, offset: 5 })
    ));
}

#[test]
fn references_must_point_backwards() {
    assert!(matches!(
        err(b"Q\x90"),
        Error::UndefinedReference {
            what: "reference",
            index: 0,
            defined: 0,
            ..
        }
    ));
    // `[Q 1]`: the list itself is reference 0; 1 does not exist.
    assert!(matches!(
        err(b"\x79Q\x91"),
        Error::UndefinedReference {
            index: 1,
            defined: 1,
            ..
        }
    ));
    assert!(matches!(
        err(b"\x60"),
        Error::UndefinedReference {
            what: "class definition",
            ..
        }
    ));
    assert!(matches!(
        err(b"\x70\x91"),
        Error::UndefinedReference {
            what: "type",
            index: 1,
            ..
        }
    ));
}

#[test]
fn errors_name_the_offset() {
    assert_eq!(
        err(b"\x79\x40"),
        Error::UnexpectedCode {
            offset: 1,
            code: 0x40,
            expected: "a value"
        }
    );
    assert_eq!(
        err(b"\x02a"),
        Error::LengthExceedsInput {
            offset: 1,
            what: "string",
            declared: 2,
            available: 1
        }
    );
    assert_eq!(
        err(b"\x90\x90"),
        Error::TrailingBytes {
            offset: 1,
            count: 1
        }
    );
    assert_eq!(err(b"\x02\xff\xff"), Error::InvalidUtf8 { offset: 1 });
    assert_eq!(
        err(b""),
        Error::UnexpectedEnd {
            offset: 0,
            reading: "a value"
        }
    );
    let message = err(b"H\x90").to_string();
    assert!(message.contains("byte 2"), "{message}");
}

#[test]
fn foreign_utf8_forms_are_accepted() {
    // hessian.js and Go write 4-byte UTF-8, counting the character as two units.
    let mut bytes = vec![0x03];
    bytes.extend_from_slice("😀!".as_bytes());
    assert_eq!(hessian::from_slice(&bytes), Ok("😀!".into()));
    // A surrogate pair split across two chunks by a careless writer still joins up.
    let split = b"R\x00\x01\xed\xa0\xbd\x01\xed\xb8\x80";
    assert_eq!(hessian::from_slice(split), Ok("😀".into()));
}

#[test]
fn maximum_depth_fits_a_small_stack_in_debug_builds() {
    // 255 levels alternating maps and objects (the decoder's largest frames), then a leaf, on a
    // 2 MiB stack like a tokio worker's: accepted without overflowing; one level more is refused.
    let nested = |levels: usize| {
        let mut bytes = b"C\x01A\x91\x01f".to_vec(); // class A { f }
        for i in 0..levels {
            bytes.extend_from_slice(if i % 2 == 0 { b"H\x01k" } else { b"\x60" });
        }
        bytes.push(0x90);
        for i in (0..levels).rev() {
            if i % 2 == 0 {
                bytes.push(b'Z');
            }
        }
        bytes
    };
    let ok = nested(255);
    let too_deep = nested(256);
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            assert!(hessian::from_slice(&ok).is_ok());
            assert!(matches!(
                hessian::from_slice(&too_deep),
                Err(Error::TooDeep { .. })
            ));
        })
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}
