//! Byte codes of the Hessian 2.0 grammar (names follow Caucho's `Hessian2Constants`).

pub const NULL: u8 = b'N';
pub const TRUE: u8 = b'T';
pub const FALSE: u8 = b'F';

pub const INT: u8 = b'I';
pub const INT_ZERO: u8 = 0x90;
pub const INT_DIRECT_MIN: i32 = -0x10;
pub const INT_DIRECT_MAX: i32 = 0x2f;
pub const INT_BYTE_ZERO: u8 = 0xc8;
pub const INT_BYTE_MIN: i32 = -0x800;
pub const INT_BYTE_MAX: i32 = 0x7ff;
pub const INT_SHORT_ZERO: u8 = 0xd4;
pub const INT_SHORT_MIN: i32 = -0x40000;
pub const INT_SHORT_MAX: i32 = 0x3ffff;

pub const LONG: u8 = b'L';
pub const LONG_INT: u8 = b'Y';
pub const LONG_ZERO: u8 = 0xe0;
pub const LONG_DIRECT_MIN: i64 = -0x08;
pub const LONG_DIRECT_MAX: i64 = 0x0f;
pub const LONG_BYTE_ZERO: u8 = 0xf8;
pub const LONG_BYTE_MIN: i64 = -0x800;
pub const LONG_BYTE_MAX: i64 = 0x7ff;
pub const LONG_SHORT_ZERO: u8 = 0x3c;
pub const LONG_SHORT_MIN: i64 = -0x40000;
pub const LONG_SHORT_MAX: i64 = 0x3ffff;

pub const DOUBLE: u8 = b'D';
pub const DOUBLE_ZERO: u8 = 0x5b;
pub const DOUBLE_ONE: u8 = 0x5c;
pub const DOUBLE_BYTE: u8 = 0x5d;
pub const DOUBLE_SHORT: u8 = 0x5e;
/// Java writes this as a 32-bit count of thousandths, not the IEEE float the spec text describes.
pub const DOUBLE_MILL: u8 = 0x5f;

pub const DATE_MILLIS: u8 = 0x4a;
pub const DATE_MINUTES: u8 = 0x4b;

pub const STRING_CHUNK: u8 = b'R';
pub const STRING_FINAL: u8 = b'S';
pub const STRING_DIRECT_MAX: usize = 0x1f;
pub const STRING_SHORT: u8 = 0x30;
pub const STRING_SHORT_MAX: usize = 0x3ff;
/// Java splits strings into chunks of at most this many UTF-16 units.
pub const STRING_CHUNK_UNITS: usize = 0x8000;

pub const BINARY_CHUNK: u8 = b'A';
pub const BINARY_FINAL: u8 = b'B';
pub const BINARY_DIRECT: u8 = 0x20;
pub const BINARY_DIRECT_MAX: usize = 0x0f;
pub const BINARY_SHORT: u8 = 0x34;
pub const BINARY_SHORT_MAX: usize = 0x3ff;
/// Java's writer emits non-final chunks that fill its 4096-byte buffer less the 3-byte header.
pub const BINARY_CHUNK_BYTES: usize = 4093;

pub const LIST_VARIABLE: u8 = b'U';
pub const LIST_FIXED: u8 = b'V';
pub const LIST_VARIABLE_UNTYPED: u8 = b'W';
pub const LIST_FIXED_UNTYPED: u8 = b'X';
pub const LIST_DIRECT: u8 = 0x70;
pub const LIST_DIRECT_UNTYPED: u8 = 0x78;
pub const LIST_DIRECT_MAX: usize = 7;

pub const MAP_TYPED: u8 = b'M';
pub const MAP_UNTYPED: u8 = b'H';
pub const END: u8 = b'Z';

pub const CLASS_DEF: u8 = b'C';
pub const OBJECT: u8 = b'O';
pub const OBJECT_DIRECT: u8 = 0x60;
pub const OBJECT_DIRECT_MAX: usize = 0x0f;

pub const REF: u8 = b'Q';
