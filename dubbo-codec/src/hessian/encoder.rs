//! Hessian 2.0 encoder.
//!
//! Every choice of form follows Java's `Hessian2Output`, so our bytes equal Java's: the shortest
//! compact int/long form, doubles as whole numbers or thousandths when exact, dates in minutes
//! when exact, strings chunked every 32768 UTF-16 units, binaries in 4093-byte chunks, class
//! definitions and type names written once per stream and referenced after.
//!
//! Besides [`Encoder::write_value`], the primitive writers are public so that a caller holding
//! its data in another shape (JSON, say) can stream it out without building a [`Value`] first.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::codes::*;
use super::string;
use super::value::{ClassDef, Value};
use crate::Error;

/// Writes one Hessian stream into a caller's buffer.
#[derive(Debug)]
pub struct Encoder<'a> {
    out: &'a mut BytesMut,
    classes: Vec<Arc<ClassDef>>,
    types: Vec<Arc<str>>,
    /// Lists, maps and objects started so far: the next one's reference number.
    refs: u32,
}

impl<'a> Encoder<'a> {
    pub fn new(out: &'a mut BytesMut) -> Self {
        Encoder {
            out,
            classes: Vec::new(),
            types: Vec::new(),
            refs: 0,
        }
    }

    /// The buffer being written.
    pub fn buffer(&mut self) -> &mut BytesMut {
        self.out
    }

    pub fn write_null(&mut self) {
        self.out.put_u8(NULL);
    }

    pub fn write_bool(&mut self, b: bool) {
        self.out.put_u8(if b { TRUE } else { FALSE });
    }

    pub fn write_int(&mut self, v: i32) {
        let out = &mut *self.out;
        if (INT_DIRECT_MIN..=INT_DIRECT_MAX).contains(&v) {
            out.put_u8((v + i32::from(INT_ZERO)) as u8);
        } else if (INT_BYTE_MIN..=INT_BYTE_MAX).contains(&v) {
            out.put_u8((i32::from(INT_BYTE_ZERO) + (v >> 8)) as u8);
            out.put_u8(v as u8);
        } else if (INT_SHORT_MIN..=INT_SHORT_MAX).contains(&v) {
            out.put_u8((i32::from(INT_SHORT_ZERO) + (v >> 16)) as u8);
            out.put_u16(v as u16);
        } else {
            out.put_u8(INT);
            out.put_i32(v);
        }
    }

    pub fn write_long(&mut self, v: i64) {
        let out = &mut *self.out;
        if (LONG_DIRECT_MIN..=LONG_DIRECT_MAX).contains(&v) {
            out.put_u8((v + i64::from(LONG_ZERO)) as u8);
        } else if (LONG_BYTE_MIN..=LONG_BYTE_MAX).contains(&v) {
            out.put_u8((i64::from(LONG_BYTE_ZERO) + (v >> 8)) as u8);
            out.put_u8(v as u8);
        } else if (LONG_SHORT_MIN..=LONG_SHORT_MAX).contains(&v) {
            out.put_u8((i64::from(LONG_SHORT_ZERO) + (v >> 16)) as u8);
            out.put_u16(v as u16);
        } else if let Ok(i) = i32::try_from(v) {
            out.put_u8(LONG_INT);
            out.put_i32(i);
        } else {
            out.put_u8(LONG);
            out.put_i64(v);
        }
    }

    pub fn write_double(&mut self, v: f64) {
        let out = &mut *self.out;
        // Java's casts saturate and map NaN to 0, exactly like Rust's `as`.
        let int = v as i32;
        if f64::from(int) == v {
            match int {
                0 => return out.put_u8(DOUBLE_ZERO),
                1 => return out.put_u8(DOUBLE_ONE),
                -0x80..=0x7f => {
                    out.put_u8(DOUBLE_BYTE);
                    return out.put_i8(int as i8);
                }
                -0x8000..=0x7fff => {
                    out.put_u8(DOUBLE_SHORT);
                    return out.put_i16(int as i16);
                }
                _ => {}
            }
        }
        let mills = (v * 1000.0) as i32;
        if 0.001 * f64::from(mills) == v {
            out.put_u8(DOUBLE_MILL);
            out.put_i32(mills);
        } else {
            out.put_u8(DOUBLE);
            out.put_f64(v);
        }
    }

    /// Writes a `java.util.Date` given in milliseconds since the epoch.
    pub fn write_date(&mut self, millis: i64) {
        if millis % 60_000 == 0 {
            if let Ok(minutes) = i32::try_from(millis / 60_000) {
                self.out.put_u8(DATE_MINUTES);
                return self.out.put_i32(minutes);
            }
        }
        self.out.put_u8(DATE_MILLIS);
        self.out.put_i64(millis);
    }

    pub fn write_string(&mut self, s: &str) {
        if s.len() <= STRING_DIRECT_MAX && s.is_ascii() {
            self.out.put_u8(s.len() as u8);
            return self.out.put_slice(s.as_bytes());
        }
        let mut pieces = string::chunks(s, STRING_CHUNK_UNITS).peekable();
        if pieces.peek().is_none() {
            return self.out.put_u8(0);
        }
        while let Some((piece, units)) = pieces.next() {
            if pieces.peek().is_some() {
                self.out.put_u8(STRING_CHUNK);
                self.out.put_u16(units as u16);
            } else if units <= STRING_DIRECT_MAX {
                self.out.put_u8(units as u8);
            } else if units <= STRING_SHORT_MAX {
                self.out.put_u8(STRING_SHORT + (units >> 8) as u8);
                self.out.put_u8(units as u8);
            } else {
                self.out.put_u8(STRING_FINAL);
                self.out.put_u16(units as u16);
            }
            string::put_java_utf8(self.out, piece);
        }
    }

    /// Writes a `byte[]`.
    pub fn write_binary(&mut self, mut bytes: &[u8]) {
        while bytes.len() > BINARY_CHUNK_BYTES {
            let (chunk, rest) = bytes.split_at(BINARY_CHUNK_BYTES);
            self.out.put_u8(BINARY_CHUNK);
            self.out.put_u16(chunk.len() as u16);
            self.out.put_slice(chunk);
            bytes = rest;
        }
        let len = bytes.len();
        if len <= BINARY_DIRECT_MAX {
            self.out.put_u8(BINARY_DIRECT + len as u8);
        } else if len <= BINARY_SHORT_MAX {
            self.out.put_u8(BINARY_SHORT + (len >> 8) as u8);
            self.out.put_u8(len as u8);
        } else {
            self.out.put_u8(BINARY_FINAL);
            self.out.put_u16(len as u16);
        }
        self.out.put_slice(bytes);
    }

    /// Starts a list. `len: None` writes a variable-length list that [`Self::write_end`] closes.
    pub fn write_list_begin(
        &mut self,
        len: Option<usize>,
        type_name: Option<&str>,
    ) -> Result<(), Error> {
        match (len, type_name) {
            (None, Some(t)) => {
                self.out.put_u8(LIST_VARIABLE);
                self.write_type(t)?;
            }
            (None, None) => self.out.put_u8(LIST_VARIABLE_UNTYPED),
            (Some(n), Some(t)) if n <= LIST_DIRECT_MAX => {
                self.out.put_u8(LIST_DIRECT + n as u8);
                self.write_type(t)?;
            }
            (Some(n), None) if n <= LIST_DIRECT_MAX => {
                self.out.put_u8(LIST_DIRECT_UNTYPED + n as u8)
            }
            (Some(n), t) => {
                let n = i32::try_from(n)
                    .map_err(|_| Error::Unencodable(format!("a list of {n} items")))?;
                match t {
                    Some(t) => {
                        self.out.put_u8(LIST_FIXED);
                        self.write_type(t)?;
                    }
                    None => self.out.put_u8(LIST_FIXED_UNTYPED),
                }
                self.write_int(n);
            }
        }
        self.refs += 1;
        Ok(())
    }

    /// Starts a map; entries follow as key, value, key, value…, then [`Self::write_end`].
    pub fn write_map_begin(&mut self, type_name: Option<&str>) -> Result<(), Error> {
        match type_name {
            Some(t) => {
                self.out.put_u8(MAP_TYPED);
                self.write_type(t)?;
            }
            None => self.out.put_u8(MAP_UNTYPED),
        }
        self.refs += 1;
        Ok(())
    }

    /// Ends a map or a variable-length list.
    pub fn write_end(&mut self) {
        self.out.put_u8(END);
    }

    /// Starts an object of `class`, writing its definition first if this stream has not seen it.
    /// The field values follow, in the definition's order.
    pub fn write_object_begin(&mut self, class: &Arc<ClassDef>) -> Result<(), Error> {
        let index = match self
            .classes
            .iter()
            .position(|c| Arc::ptr_eq(c, class) || **c == **class)
        {
            Some(i) => i,
            None => {
                if class.name.is_empty() {
                    return Err(Error::Unencodable(
                        "an object with an empty class name".into(),
                    ));
                }
                self.out.put_u8(CLASS_DEF);
                self.write_string(&class.name);
                self.write_int(class.fields.len() as i32);
                for field in &class.fields {
                    self.write_string(field);
                }
                self.classes.push(Arc::clone(class));
                self.classes.len() - 1
            }
        };
        if index <= OBJECT_DIRECT_MAX {
            self.out.put_u8(OBJECT_DIRECT + index as u8);
        } else {
            self.out.put_u8(OBJECT);
            self.write_int(index as i32);
        }
        self.refs += 1;
        Ok(())
    }

    /// Writes a back-reference to the `index`-th list, map or object of this stream.
    pub fn write_ref(&mut self, index: u32) -> Result<(), Error> {
        if index >= self.refs {
            return Err(Error::Unencodable(format!(
                "reference #{index}: only {} lists, maps or objects were written before it",
                self.refs
            )));
        }
        self.out.put_u8(REF);
        self.write_int(index as i32);
        Ok(())
    }

    /// A list or map type: written in full the first time, by number after.
    fn write_type(&mut self, name: &str) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::Unencodable("an empty type name".into()));
        }
        match self.types.iter().position(|t| &**t == name) {
            Some(i) => self.write_int(i as i32),
            None => {
                self.types.push(name.into());
                self.write_string(name);
            }
        }
        Ok(())
    }

    /// Writes any value, recursively.
    pub fn write_value(&mut self, value: &Value) -> Result<(), Error> {
        match value {
            Value::Null => self.write_null(),
            Value::Bool(b) => self.write_bool(*b),
            Value::Int(i) => self.write_int(*i),
            Value::Long(l) => self.write_long(*l),
            Value::Double(d) => self.write_double(*d),
            Value::Date(ms) => self.write_date(*ms),
            Value::String(s) => self.write_string(s),
            Value::Binary(b) => self.write_binary(b),
            Value::List(list) => {
                let len = (!list.variable_length).then_some(list.items.len());
                self.write_list_begin(len, list.type_name.as_deref())?;
                for item in &list.items {
                    self.write_value(item)?;
                }
                if list.variable_length {
                    self.write_end();
                }
            }
            Value::Map(map) => {
                self.write_map_begin(map.type_name.as_deref())?;
                for (k, v) in &map.entries {
                    self.write_value(k)?;
                    self.write_value(v)?;
                }
                self.write_end();
            }
            Value::Object(obj) => {
                if obj.fields.len() != obj.class.fields.len() {
                    return Err(Error::Unencodable(format!(
                        "an object of {} with {} values for {} fields",
                        obj.class.name,
                        obj.fields.len(),
                        obj.class.fields.len()
                    )));
                }
                self.write_object_begin(&obj.class)?;
                for field in &obj.fields {
                    self.write_value(field)?;
                }
            }
            Value::Ref(index) => self.write_ref(*index)?,
        }
        Ok(())
    }
}
