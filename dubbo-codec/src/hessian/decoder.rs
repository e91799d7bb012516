//! Hessian 2.0 decoder over a complete buffer.
//!
//! Input is untrusted: every declared length is compared with the bytes actually left before
//! anything is allocated (each element or UTF-16 unit needs at least one byte, so a length can
//! never exceed what remains), nesting depth is capped, and every reference is checked against
//! what was defined before it. The decoder reads all forms any writer may use, including ones
//! Java never writes (variable-length lists, 4-byte UTF-8, non-compact lengths).

use std::sync::Arc;

use super::codes::*;
use super::string;
use super::value::{ClassDef, List, Map, Object, Value};
use crate::Error;

/// A declared length is only known to fit the remaining bytes, and a decoded element is larger
/// than its one-byte minimum, so collections start at most this big and grow as items arrive.
const PREALLOCATE_MAX: usize = 1024;

/// Bounds the decoder enforces beyond the size of its input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of values accepted; deeper input is rejected before it can exhaust the
    /// stack.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 256 }
    }
}

/// Reads one Hessian stream from a byte slice.
#[derive(Debug)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    classes: Vec<Arc<ClassDef>>,
    types: Vec<Arc<str>>,
    /// Lists, maps and objects started so far.
    refs: u32,
    depth: usize,
    limits: Limits,
}

impl<'a> Decoder<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self::with_limits(input, Limits::default())
    }

    pub fn with_limits(input: &'a [u8], limits: Limits) -> Self {
        Decoder {
            input,
            pos: 0,
            classes: Vec::new(),
            types: Vec::new(),
            refs: 0,
            depth: 0,
            limits,
        }
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether every byte has been read.
    pub fn is_at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Fails if bytes remain after what was read.
    pub fn finish(&self) -> Result<(), Error> {
        match self.input.len() - self.pos {
            0 => Ok(()),
            count => Err(Error::TrailingBytes {
                offset: self.pos,
                count,
            }),
        }
    }

    /// Reads a string, or `None` for a Hessian null.
    pub fn read_string_or_null(&mut self) -> Result<Option<String>, Error> {
        if self.peek() == Some(NULL) {
            self.pos += 1;
            return Ok(None);
        }
        self.read_string().map(Some)
    }

    /// Reads a string in any of its forms.
    pub fn read_string(&mut self) -> Result<String, Error> {
        let start = self.pos;
        let code = self.byte("a string")?;
        self.string_after(start, code)
    }

    /// Reads an int in any of its forms.
    pub fn read_int(&mut self) -> Result<i32, Error> {
        let start = self.pos;
        let code = self.byte("an int")?;
        self.int_after(start, code)
    }

    /// Reads the next value, recursively.
    pub fn read_value(&mut self) -> Result<Value, Error> {
        if self.depth >= self.limits.max_depth {
            return Err(Error::TooDeep {
                offset: self.pos,
                max: self.limits.max_depth,
            });
        }
        self.depth += 1;
        let value = self.value_inner();
        self.depth -= 1;
        value
    }

    fn value_inner(&mut self) -> Result<Value, Error> {
        loop {
            let start = self.pos;
            let code = self.byte("a value")?;
            return Ok(match code {
                NULL => Value::Null,
                TRUE => Value::Bool(true),
                FALSE => Value::Bool(false),
                0x80..=0xd7 | INT => Value::Int(self.int_after(start, code)?),
                0xd8..=0xff | 0x38..=0x3f | LONG_INT | LONG => Value::Long(self.long_after(code)?),
                DOUBLE_ZERO => Value::Double(0.0),
                DOUBLE_ONE => Value::Double(1.0),
                DOUBLE_BYTE => Value::Double(f64::from(self.byte("a double")? as i8)),
                DOUBLE_SHORT => Value::Double(f64::from(
                    self.array::<2>("a double").map(i16::from_be_bytes)?,
                )),
                DOUBLE_MILL => Value::Double(
                    0.001 * f64::from(self.array::<4>("a double").map(i32::from_be_bytes)?),
                ),
                DOUBLE => Value::Double(self.array::<8>("a double").map(f64::from_be_bytes)?),
                DATE_MILLIS => Value::Date(self.array::<8>("a date").map(i64::from_be_bytes)?),
                DATE_MINUTES => Value::Date(
                    i64::from(self.array::<4>("a date").map(i32::from_be_bytes)?) * 60_000,
                ),
                0x00..=0x1f | 0x30..=0x33 | STRING_CHUNK | STRING_FINAL => {
                    Value::String(self.string_after(start, code)?)
                }
                0x20..=0x2f | 0x34..=0x37 | BINARY_CHUNK | BINARY_FINAL => {
                    Value::Binary(self.binary_after(code)?)
                }
                LIST_VARIABLE
                | LIST_VARIABLE_UNTYPED
                | LIST_FIXED
                | LIST_FIXED_UNTYPED
                | 0x70..=0x7f => Value::List(self.list_after(code)?),
                MAP_UNTYPED | MAP_TYPED => Value::Map(self.map_after(code)?),
                CLASS_DEF => {
                    self.class_def()?;
                    continue; // a definition precedes the value it describes
                }
                OBJECT => {
                    let index = self.read_int()?;
                    Value::Object(self.object(start, i64::from(index))?)
                }
                0x60..=0x6f => Value::Object(self.object(start, i64::from(code - OBJECT_DIRECT))?),
                REF => {
                    let index = self.read_int()?;
                    if index < 0 || index as u32 >= self.refs {
                        return Err(Error::UndefinedReference {
                            offset: start,
                            what: "reference",
                            index: i64::from(index),
                            defined: self.refs as usize,
                        });
                    }
                    Value::Ref(index as u32)
                }
                _ => {
                    return Err(Error::UnexpectedCode {
                        offset: start,
                        code,
                        expected: "a value",
                    })
                }
            });
        }
    }

    fn int_after(&mut self, start: usize, code: u8) -> Result<i32, Error> {
        Ok(match code {
            0x80..=0xbf => i32::from(code) - i32::from(INT_ZERO),
            0xc0..=0xcf => {
                ((i32::from(code) - i32::from(INT_BYTE_ZERO)) << 8)
                    | i32::from(self.byte("an int")?)
            }
            0xd0..=0xd7 => {
                let low = self.array::<2>("an int").map(u16::from_be_bytes)?;
                ((i32::from(code) - i32::from(INT_SHORT_ZERO)) << 16) | i32::from(low)
            }
            INT => self.array::<4>("an int").map(i32::from_be_bytes)?,
            _ => {
                return Err(Error::UnexpectedCode {
                    offset: start,
                    code,
                    expected: "an int",
                })
            }
        })
    }

    fn long_after(&mut self, code: u8) -> Result<i64, Error> {
        Ok(match code {
            0xd8..=0xef => i64::from(code) - i64::from(LONG_ZERO),
            0xf0..=0xff => {
                ((i64::from(code) - i64::from(LONG_BYTE_ZERO)) << 8)
                    | i64::from(self.byte("a long")?)
            }
            0x38..=0x3f => {
                let low = self.array::<2>("a long").map(u16::from_be_bytes)?;
                ((i64::from(code) - i64::from(LONG_SHORT_ZERO)) << 16) | i64::from(low)
            }
            LONG_INT => i64::from(self.array::<4>("a long").map(i32::from_be_bytes)?),
            _ => self.array::<8>("a long").map(i64::from_be_bytes)?,
        })
    }

    /// A string whose first code has been read; chunks may follow in any string form.
    fn string_after(&mut self, start: usize, mut code: u8) -> Result<String, Error> {
        let mut joined: Option<Vec<u8>> = None;
        loop {
            let (units, last) = match code {
                0x00..=0x1f => (usize::from(code), true),
                0x30..=0x33 => (
                    usize::from(code - STRING_SHORT) << 8
                        | usize::from(self.byte("a string length")?),
                    true,
                ),
                STRING_FINAL | STRING_CHUNK => (
                    usize::from(self.array::<2>("a string length").map(u16::from_be_bytes)?),
                    code == STRING_FINAL,
                ),
                _ => {
                    return Err(Error::UnexpectedCode {
                        offset: self.pos - 1,
                        code,
                        expected: "a string",
                    })
                }
            };
            let rest = &self.input[self.pos..];
            let len = string::byte_len_of_units(rest, units).ok_or(if rest.len() < units {
                Error::LengthExceedsInput {
                    offset: self.pos,
                    what: "string",
                    declared: units as i64,
                    available: rest.len(),
                }
            } else {
                Error::InvalidUtf8 { offset: self.pos }
            })?;
            let bytes = &rest[..len];
            self.pos += len;
            if last && joined.is_none() {
                return string::decode_java_utf8(bytes).ok_or(Error::InvalidUtf8 { offset: start });
            }
            joined.get_or_insert_with(Vec::new).extend_from_slice(bytes);
            if last {
                let all = joined.unwrap_or_default();
                return string::decode_java_utf8(&all).ok_or(Error::InvalidUtf8 { offset: start });
            }
            code = self.byte("the next string chunk")?;
        }
    }

    fn binary_after(&mut self, mut code: u8) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        loop {
            let (len, last) = match code {
                0x20..=0x2f => (usize::from(code - BINARY_DIRECT), true),
                0x34..=0x37 => (
                    usize::from(code - BINARY_SHORT) << 8
                        | usize::from(self.byte("a binary length")?),
                    true,
                ),
                BINARY_FINAL | BINARY_CHUNK => (
                    usize::from(self.array::<2>("a binary length").map(u16::from_be_bytes)?),
                    code == BINARY_FINAL,
                ),
                _ => {
                    return Err(Error::UnexpectedCode {
                        offset: self.pos - 1,
                        code,
                        expected: "a binary chunk",
                    })
                }
            };
            out.extend_from_slice(self.take(len, "binary")?);
            if last {
                return Ok(out);
            }
            code = self.byte("the next binary chunk")?;
        }
    }

    fn list_after(&mut self, code: u8) -> Result<List, Error> {
        let type_name = match code {
            LIST_VARIABLE | LIST_FIXED | 0x70..=0x77 => Some(self.read_type()?),
            _ => None,
        };
        let len = match code {
            LIST_FIXED | LIST_FIXED_UNTYPED => Some(self.length("list")?),
            0x70..=0x77 => Some(usize::from(code - LIST_DIRECT)),
            0x78..=0x7f => Some(usize::from(code - LIST_DIRECT_UNTYPED)),
            _ => None,
        };
        self.refs += 1;
        let mut items = Vec::with_capacity(len.unwrap_or(0).min(PREALLOCATE_MAX));
        match len {
            Some(n) => {
                for _ in 0..n {
                    items.push(self.read_value()?);
                }
            }
            None => {
                while !self.eat_end("a list item or end")? {
                    items.push(self.read_value()?);
                }
            }
        }
        Ok(List {
            type_name,
            items,
            variable_length: len.is_none(),
        })
    }

    fn map_after(&mut self, code: u8) -> Result<Map, Error> {
        let type_name = if code == MAP_TYPED {
            Some(self.read_type()?)
        } else {
            None
        };
        self.refs += 1;
        let mut entries = Vec::new();
        while !self.eat_end("a map key or end")? {
            let key = self.read_value()?;
            let value = self.read_value()?;
            entries.push((key, value));
        }
        Ok(Map { type_name, entries })
    }

    fn class_def(&mut self) -> Result<(), Error> {
        let name = self.read_string()?;
        let count = self.length("class definition")?;
        let mut fields = Vec::with_capacity(count.min(PREALLOCATE_MAX));
        for _ in 0..count {
            fields.push(self.read_string()?);
        }
        self.classes.push(Arc::new(ClassDef { name, fields }));
        Ok(())
    }

    fn object(&mut self, start: usize, index: i64) -> Result<Object, Error> {
        let class = usize::try_from(index)
            .ok()
            .and_then(|i| self.classes.get(i))
            .cloned()
            .ok_or(Error::UndefinedReference {
                offset: start,
                what: "class definition",
                index,
                defined: self.classes.len(),
            })?;
        self.refs += 1;
        let mut fields = Vec::with_capacity(class.fields.len().min(PREALLOCATE_MAX));
        for _ in 0..class.fields.len() {
            fields.push(self.read_value()?);
        }
        Ok(Object { class, fields })
    }

    /// A list or map type: a string the first time, then its number in the stream's type table.
    fn read_type(&mut self) -> Result<Arc<str>, Error> {
        let start = self.pos;
        match self.peek() {
            Some(0x00..=0x1f | 0x30..=0x33 | STRING_CHUNK | STRING_FINAL) => {
                let name: Arc<str> = self.read_string()?.into();
                self.types.push(Arc::clone(&name));
                Ok(name)
            }
            _ => {
                let index = self.read_int()?;
                usize::try_from(index)
                    .ok()
                    .and_then(|i| self.types.get(i))
                    .cloned()
                    .ok_or(Error::UndefinedReference {
                        offset: start,
                        what: "type",
                        index: i64::from(index),
                        defined: self.types.len(),
                    })
            }
        }
    }

    /// A length that precedes that many items, each at least one byte long.
    fn length(&mut self, what: &'static str) -> Result<usize, Error> {
        let start = self.pos;
        let declared = self.read_int()?;
        let available = self.input.len() - self.pos;
        match usize::try_from(declared) {
            Ok(n) if n <= available => Ok(n),
            _ => Err(Error::LengthExceedsInput {
                offset: start,
                what,
                declared: i64::from(declared),
                available,
            }),
        }
    }

    fn eat_end(&mut self, expected: &'static str) -> Result<bool, Error> {
        match self.peek() {
            Some(END) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(Error::UnexpectedEnd {
                offset: self.pos,
                reading: expected,
            }),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn byte(&mut self, reading: &'static str) -> Result<u8, Error> {
        let b = self.peek().ok_or(Error::UnexpectedEnd {
            offset: self.pos,
            reading,
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self, reading: &'static str) -> Result<[u8; N], Error> {
        let bytes = self
            .input
            .get(self.pos..self.pos + N)
            .ok_or(Error::UnexpectedEnd {
                offset: self.pos,
                reading,
            })?;
        self.pos += N;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let available = self.input.len() - self.pos;
        if len > available {
            return Err(Error::LengthExceedsInput {
                offset: self.pos,
                what,
                declared: len as i64,
                available,
            });
        }
        let bytes = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }
}
