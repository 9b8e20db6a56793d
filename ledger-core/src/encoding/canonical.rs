//! A serde serializer that writes canonical CBOR (RFC 8949 §4.2.1) directly: shortest-form
//! heads, definite lengths, and each map's entries sorted by the bytes of their encoded keys.
//!
//! Each map (and struct) is encoded into a buffer of its own and written out sorted when it
//! ends, so a value is built once instead of through an intermediate tree. It writes exactly
//! what encoding through `ciborium::Value` and sorting gives ([`super::reference`], held to
//! it by property test), and like it refuses floats, tags and duplicate map keys.

use serde::ser::{self, Serialize};

/// Why a value has no canonical encoding (a float, a tag, a duplicate key, an integer
/// beyond 64 bits, or an error from the value's own `Serialize`).
#[derive(Debug)]
pub(super) struct EncodeError(pub(super) String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        EncodeError(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, EncodeError>;

const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;

/// Encodes `value` as canonical CBOR onto `out`.
pub(super) fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    value.serialize(&mut Encoder { out })
}

/// A CBOR head in its shortest form (RFC 8949 §4.2.1).
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn signed(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        head(out, UNSIGNED, v as u64);
    } else {
        // -1 - v, which cannot overflow for any negative i64.
        head(out, NEGATIVE, !(v as u64));
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn length(n: usize) -> u64 {
    n as u64
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

/// An array: its elements follow the head directly when the length is known, else they are
/// counted into a buffer first.
pub(super) struct Seq<'a> {
    out: &'a mut Vec<u8>,
    buf: Option<Vec<u8>>,
    expected: Option<usize>,
    count: usize,
}

impl<'a> Seq<'a> {
    fn new(out: &'a mut Vec<u8>, len: Option<usize>) -> Self {
        match len {
            Some(n) => {
                head(out, ARRAY, length(n));
                Seq { out, buf: None, expected: Some(n), count: 0 }
            }
            None => Seq { out, buf: Some(Vec::new()), expected: None, count: 0 },
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.count += 1;
        let out = match &mut self.buf {
            Some(b) => b,
            None => &mut *self.out,
        };
        encode(value, out)
    }

    fn finish(self) -> Result<()> {
        match (self.buf, self.expected) {
            (Some(buf), _) => {
                head(self.out, ARRAY, length(self.count));
                self.out.extend_from_slice(&buf);
                Ok(())
            }
            (None, Some(n)) if n == self.count => Ok(()),
            (None, _) => {
                Err(EncodeError(format!("a sequence announced {:?} elements and gave {}", self.expected, self.count)))
            }
        }
    }
}

/// A map or struct: entries are encoded into one buffer, then written sorted by key bytes.
pub(super) struct Map<'a> {
    out: &'a mut Vec<u8>,
    buf: Vec<u8>,
    /// Per entry: where its key starts, where its value starts, where it ends, in `buf`.
    spans: Vec<(usize, usize, usize)>,
    pending_key: Option<(usize, usize)>,
}

impl<'a> Map<'a> {
    fn new(out: &'a mut Vec<u8>, len: usize) -> Self {
        Map { out, buf: Vec::with_capacity(64 * len), spans: Vec::with_capacity(len), pending_key: None }
    }

    fn key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<()> {
        let start = self.buf.len();
        encode(key, &mut self.buf)?;
        self.pending_key = Some((start, self.buf.len()));
        Ok(())
    }

    fn value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<()> {
        let (k, v) = self.pending_key.take().ok_or_else(|| EncodeError("a map value came without its key".into()))?;
        encode(value, &mut self.buf)?;
        self.spans.push((k, v, self.buf.len()));
        Ok(())
    }

    fn field<V: Serialize + ?Sized>(&mut self, name: &str, value: &V) -> Result<()> {
        let start = self.buf.len();
        text(&mut self.buf, name);
        let v = self.buf.len();
        encode(value, &mut self.buf)?;
        self.spans.push((start, v, self.buf.len()));
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        let buf = &self.buf;
        self.spans.sort_unstable_by(|a, b| buf[a.0..a.1].cmp(&buf[b.0..b.1]));
        if self.spans.windows(2).any(|w| buf[w[0].0..w[0].1] == buf[w[1].0..w[1].1]) {
            return Err(EncodeError("duplicate map key".into()));
        }
        head(self.out, MAP, length(self.spans.len()));
        for &(k, _, end) in &self.spans {
            self.out.extend_from_slice(&buf[k..end]);
        }
        Ok(())
    }
}

/// A variant with content: a one-entry map from the variant's name to the content.
pub(super) struct Variant<T> {
    inner: T,
}

impl<'a> ser::Serializer for &'a mut Encoder<'_> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Variant<Seq<'a>>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Map<'a>;
    type SerializeStructVariant = Variant<Map<'a>>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(if v { TRUE } else { FALSE });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        signed(self.out, v.into());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        signed(self.out, v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        signed(self.out, v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        signed(self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        if let Ok(u) = u64::try_from(v) {
            head(self.out, UNSIGNED, u);
        } else if v < 0 && v >= -(i128::from(u64::MAX)) - 1 {
            head(self.out, NEGATIVE, (-1 - v) as u64);
        } else {
            return Err(EncodeError("integers beyond 64 bits are not allowed".into()));
        }
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        head(self.out, UNSIGNED, v.into());
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        head(self.out, UNSIGNED, v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        head(self.out, UNSIGNED, v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        head(self.out, UNSIGNED, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        let v = u64::try_from(v).map_err(|_| EncodeError("integers beyond 64 bits are not allowed".into()))?;
        head(self.out, UNSIGNED, v);
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<()> {
        Err(EncodeError("floats are not allowed".into()))
    }
    fn serialize_f64(self, _: f64) -> Result<()> {
        Err(EncodeError("floats are not allowed".into()))
    }
    fn serialize_char(self, v: char) -> Result<()> {
        text(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        text(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        head(self.out, BYTES, length(v.len()));
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<()> {
        self.out.push(NULL);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.out.push(NULL);
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        text(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        // ciborium's marker for a value outside any tag: the value itself.
        if (name, variant) == ("@@TAG@@", "@@UNTAGGED@@") {
            return value.serialize(self);
        }
        head(self.out, MAP, 1);
        text(self.out, variant);
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'a>> {
        Ok(Seq::new(self.out, len))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>> {
        Ok(Seq::new(self.out, Some(len)))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a>> {
        Ok(Seq::new(self.out, Some(len)))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Seq<'a>>> {
        if name == "@@TAG@@" {
            return Err(EncodeError("tags are not allowed".into()));
        }
        head(self.out, MAP, 1);
        text(self.out, variant);
        Ok(Variant { inner: Seq::new(self.out, Some(len)) })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>> {
        Ok(Map::new(self.out, len.unwrap_or(0)))
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map<'a>> {
        Ok(Map::new(self.out, len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Map<'a>>> {
        head(self.out, MAP, 1);
        text(self.out, variant);
        Ok(Variant { inner: Map::new(self.out, len) })
    }
}

/// serde's four sequence shapes (sequence, tuple, tuple struct, tuple variant) all write the
/// elements of one definite-length array.
macro_rules! array_elements {
    ($($trait:ident :: $method:ident for $ty:ty => $seq:ident $(. $field:ident)?;)*) => {$(
        impl ser::$trait for $ty {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                let $seq = self;
                $seq $(. $field)?.element(value)
            }
            fn end(self) -> Result<()> {
                let $seq = self;
                $seq $(. $field)?.finish()
            }
        }
    )*};
}

array_elements! {
    SerializeSeq::serialize_element for Seq<'_> => seq;
    SerializeTuple::serialize_element for Seq<'_> => seq;
    SerializeTupleStruct::serialize_field for Seq<'_> => seq;
    SerializeTupleVariant::serialize_field for Variant<Seq<'_>> => seq.inner;
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.value(value)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<()> {
        self.field(key, value)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Variant<Map<'_>> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<()> {
        self.inner.field(key, value)
    }
    fn end(self) -> Result<()> {
        self.inner.finish()
    }
}
