//! A minimal, blocking D-Bus client: what the systemd cgroup driver needs
//! ([`crate::systemd`]), and nothing more.
//!
//! - Wire format ([`Value`], [`Message`]): every type of the spec, written
//!   little-endian, read in either byte order.
//! - Transport ([`Connection`]): a unix socket (a path or an abstract name,
//!   from a `unix:` address), SASL `EXTERNAL` with the uid, `Hello` when the
//!   peer is a bus daemon, method calls with a deadline, and the signals the
//!   caller asked to keep queued for later.
//!
//! No threads, no executor, no libdbus: the caller forks, so it must stay
//! single-threaded, and the static binary stays small. Everything read from
//! the socket comes from another process and is untrusted: every length is
//! checked against the bytes present and against the spec's limits, nesting
//! is bounded, and malformed input is an error, never a panic. Messages the
//! caller did not ask for are skipped without decoding their body (and
//! without buffering it), so a chatty or hostile peer costs no memory.

use crate::sys::ErrnoResult as _;
use std::collections::VecDeque;
use std::fmt;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// The largest message the spec allows (128 MiB).
pub const MAX_MESSAGE_LEN: usize = 1 << 27;
/// The largest array the spec allows (64 MiB).
const MAX_ARRAY_LEN: usize = 1 << 26;
/// Header fields larger than this are refused (real ones are a few hundred
/// bytes: path, interface, member, names, signature).
const MAX_HEADER_FIELDS_LEN: usize = 1 << 16;
/// Bodies larger than this are not decoded: a reply that big is an error,
/// a signal that big is skipped. husk's replies are a few hundred bytes.
pub const MAX_DECODED_BODY_LEN: usize = 4 << 20;
const MAX_SIGNATURE_LEN: usize = 255;
/// The spec's nesting limits: 32 arrays and 32 structs in a signature,
/// 64 containers (variants included) in a value.
const MAX_ARRAY_NESTING: u32 = 32;
const MAX_STRUCT_NESTING: u32 = 32;
const MAX_DEPTH: u32 = 64;
/// Kept signals beyond this drop the oldest.
const MAX_QUEUED_SIGNALS: usize = 256;
/// A SASL line longer than this is garbage.
const MAX_AUTH_LINE: usize = 16 * 1024;

pub const BUS_NAME: &str = "org.freedesktop.DBus";
pub const BUS_PATH: &str = "/org/freedesktop/DBus";
pub const BUS_INTERFACE: &str = "org.freedesktop.DBus";

// ---------------------------------------------------------------------------
// Values and signatures

/// One D-Bus value. `Array` carries its element signature so that an empty
/// array still has a type; `Bytes` is the compact form of `ay` (decoding
/// gives it; encoding takes it or an `Array("y", …)` alike).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    /// An index into the message's fds (`h`); husk passes none.
    UnixFd(u32),
    Str(String),
    ObjPath(String),
    Sig(String),
    Bytes(Vec<u8>),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
    DictEntry(Box<Value>, Box<Value>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn variant(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    pub fn array(elem_sig: &str, items: Vec<Value>) -> Value {
        Value::Array(elem_sig.to_string(), items)
    }

    /// The signature of this value (a single complete type).
    pub fn signature(&self) -> String {
        let mut s = String::new();
        self.write_signature(&mut s);
        s
    }

    fn write_signature(&self, out: &mut String) {
        match self {
            Value::Byte(_) => out.push('y'),
            Value::Bool(_) => out.push('b'),
            Value::I16(_) => out.push('n'),
            Value::U16(_) => out.push('q'),
            Value::I32(_) => out.push('i'),
            Value::U32(_) => out.push('u'),
            Value::I64(_) => out.push('x'),
            Value::U64(_) => out.push('t'),
            Value::Double(_) => out.push('d'),
            Value::UnixFd(_) => out.push('h'),
            Value::Str(_) => out.push('s'),
            Value::ObjPath(_) => out.push('o'),
            Value::Sig(_) => out.push('g'),
            Value::Bytes(_) => out.push_str("ay"),
            Value::Array(elem, _) => {
                out.push('a');
                out.push_str(elem);
            }
            Value::Struct(fields) => {
                out.push('(');
                for f in fields {
                    f.write_signature(out);
                }
                out.push(')');
            }
            Value::Variant(_) => out.push('v'),
            Value::DictEntry(k, v) => {
                out.push('{');
                k.write_signature(out);
                v.write_signature(out);
                out.push('}');
            }
        }
    }

    /// The text of a string, object path or signature.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjPath(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::U64(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }

    /// The value inside a variant (any depth of variants), or the value itself.
    pub fn unwrap_variant(&self) -> &Value {
        let mut v = self;
        while let Value::Variant(inner) = v {
            v = inner;
        }
        v
    }
}

fn is_basic(c: u8) -> bool {
    matches!(
        c,
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b'h' | b's' | b'o' | b'g'
    )
}

fn alignment(type_code: u8) -> usize {
    match type_code {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        // b i u h s o a
        _ => 4,
    }
}

/// The length of the first single complete type of `sig`, validated: known
/// codes, closed and non-empty structs, dict entries only as array elements
/// with a basic key and exactly one value type, the nesting limits.
fn complete_type_len(sig: &[u8], arrays: u32, structs: u32, array_elem: bool) -> Result<usize> {
    let Some(&c) = sig.first() else {
        bail!("signature ends inside a type");
    };
    let rest = sig.get(1..).unwrap_or_default();
    match c {
        c if is_basic(c) || c == b'v' => Ok(1),
        b'a' => {
            if arrays >= MAX_ARRAY_NESTING {
                bail!("arrays nested deeper than {MAX_ARRAY_NESTING}");
            }
            Ok(1 + complete_type_len(rest, arrays + 1, structs, true)?)
        }
        b'(' => {
            if structs >= MAX_STRUCT_NESTING {
                bail!("structs nested deeper than {MAX_STRUCT_NESTING}");
            }
            let mut i = 0;
            loop {
                match rest.get(i) {
                    None => bail!("unterminated struct"),
                    Some(b')') => break,
                    Some(_) => i += complete_type_len(rest.get(i..).unwrap_or_default(), arrays, structs + 1, false)?,
                }
            }
            if i == 0 {
                bail!("empty struct");
            }
            Ok(i + 2)
        }
        b'{' => {
            if !array_elem {
                bail!("dict entry outside an array");
            }
            if structs >= MAX_STRUCT_NESTING {
                bail!("structs nested deeper than {MAX_STRUCT_NESTING}");
            }
            match rest.first() {
                Some(k) if is_basic(*k) => {}
                _ => bail!("dict entry key must be a basic type"),
            }
            let vlen = complete_type_len(rest.get(1..).unwrap_or_default(), arrays, structs + 1, false)?;
            if rest.get(1 + vlen) != Some(&b'}') {
                bail!("dict entry must hold exactly a key and a value");
            }
            Ok(vlen + 3)
        }
        c => bail!("unknown type code {:?}", char::from(c)),
    }
}

/// Check a signature: a sequence of complete types, at most 255 bytes.
pub fn validate_signature(sig: &str) -> Result<()> {
    let b = sig.as_bytes();
    if b.len() > MAX_SIGNATURE_LEN {
        bail!("signature longer than {MAX_SIGNATURE_LEN} bytes");
    }
    let mut i = 0;
    while i < b.len() {
        i += complete_type_len(&b[i..], 0, 0, false).with_context(|| format!("invalid signature {sig:?}"))?;
    }
    Ok(())
}

/// Split a validated signature into its complete types.
fn split_types(sig: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sig.len() {
        let n = complete_type_len(&sig[i..], 0, 0, false)?;
        out.push(&sig[i..i + n]);
        i += n;
    }
    Ok(out)
}

/// An object path: `/`, or `/`-separated non-empty elements of [A-Za-z0-9_].
pub fn valid_object_path(p: &str) -> bool {
    if p == "/" {
        return true;
    }
    let Some(rest) = p.strip_prefix('/') else {
        return false;
    };
    rest.split('/')
        .all(|e| !e.is_empty() && e.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'))
}

// ---------------------------------------------------------------------------
// Marshalling

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    /// A fixed-size value: padded to its own size, then its bytes.
    fn fixed<const N: usize>(&mut self, bytes: [u8; N]) {
        self.pad(N);
        self.buf.extend_from_slice(&bytes);
    }

    fn u32_at(&mut self, v: u32) {
        self.fixed(v.to_le_bytes());
    }

    fn string(&mut self, s: &str) -> Result<()> {
        if s.contains('\0') {
            bail!("string {s:?} contains a NUL byte");
        }
        let len = u32::try_from(s.len()).map_err(|_| anyhow!("string of {} bytes is too long", s.len()))?;
        self.u32_at(len);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        Ok(())
    }

    fn signature(&mut self, s: &str) -> Result<()> {
        validate_signature(s)?;
        // validate_signature bounds the length to 255
        self.buf
            .push(u8::try_from(s.len()).context("signature longer than 255 bytes")?);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        Ok(())
    }

    /// An array: the length, padding to the element alignment (also when
    /// the array is empty), the elements; the length excludes that padding.
    fn array(
        &mut self,
        elem_sig: &str,
        n: usize,
        mut each: impl FnMut(&mut Writer, usize) -> Result<()>,
    ) -> Result<()> {
        self.pad(4);
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.pad(alignment(elem_sig.as_bytes().first().copied().unwrap_or(b'y')));
        let start = self.buf.len();
        for i in 0..n {
            each(self, i)?;
        }
        let len = self.buf.len() - start;
        if len > MAX_ARRAY_LEN {
            bail!("array of {len} bytes is longer than the limit of {MAX_ARRAY_LEN}");
        }
        let len = u32::try_from(len).context("array length")?;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }

    fn value(&mut self, v: &Value, depth: u32) -> Result<()> {
        if depth > MAX_DEPTH {
            bail!("value nested deeper than {MAX_DEPTH}");
        }
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32_at(u32::from(*b)),
            Value::I16(x) => self.fixed(x.to_le_bytes()),
            Value::U16(x) => self.fixed(x.to_le_bytes()),
            Value::I32(x) => self.fixed(x.to_le_bytes()),
            Value::U32(x) | Value::UnixFd(x) => self.u32_at(*x),
            Value::I64(x) => self.fixed(x.to_le_bytes()),
            Value::U64(x) => self.fixed(x.to_le_bytes()),
            Value::Double(x) => self.fixed(x.to_le_bytes()),
            Value::Str(s) => self.string(s)?,
            Value::ObjPath(p) => {
                if !valid_object_path(p) {
                    bail!("invalid object path {p:?}");
                }
                self.string(p)?;
            }
            Value::Sig(s) => self.signature(s)?,
            Value::Bytes(b) => self.array("y", 1, |w, _| {
                w.buf.extend_from_slice(b);
                Ok(())
            })?,
            Value::Array(elem, items) => {
                let full = format!("a{elem}");
                validate_signature(&full)?;
                if split_types(full.as_bytes())?.len() != 1 {
                    bail!("array element signature {elem:?} is not a single complete type");
                }
                self.array(elem, items.len(), |w, i| {
                    let item = &items[i];
                    let s = item.signature();
                    if s != *elem {
                        bail!("array of {elem:?} holds a value of type {s:?}");
                    }
                    w.value(item, depth + 1)
                })?;
            }
            Value::Struct(fields) => {
                if fields.is_empty() {
                    bail!("empty struct");
                }
                self.pad(8);
                for f in fields {
                    self.value(f, depth + 1)?;
                }
            }
            Value::DictEntry(k, val) => {
                self.pad(8);
                self.value(k, depth + 1)?;
                self.value(val, depth + 1)?;
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature())?;
                self.value(inner, depth + 1)?;
            }
        }
        Ok(())
    }
}

/// Marshal values as a message body (offsets from an 8-aligned start).
pub fn encode_body(values: &[Value]) -> Result<Vec<u8>> {
    let mut w = Writer { buf: Vec::new() };
    for v in values {
        w.value(v, 0)?;
    }
    Ok(w.buf)
}

// ---------------------------------------------------------------------------
// Unmarshalling

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            bail!(
                "truncated: {n} bytes needed at offset {} of {}",
                self.pos,
                self.buf.len()
            );
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn align(&mut self, n: usize) -> Result<()> {
        let pad = (n - self.pos % n) % n;
        let at = self.pos;
        if self.take(pad)?.iter().any(|b| *b != 0) {
            bail!("non-zero padding at offset {at}");
        }
        Ok(())
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.align(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        if self.big {
            a.reverse();
        }
        // now little-endian
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        let at = self.pos;
        let bytes = self.take(len)?;
        if self.u8()? != 0 {
            bail!("string at offset {at} is not NUL-terminated");
        }
        if bytes.contains(&0) {
            bail!("string at offset {at} contains a NUL byte");
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| anyhow!("string at offset {at} is not UTF-8"))
    }

    fn signature(&mut self) -> Result<String> {
        let len = usize::from(self.u8()?);
        let at = self.pos;
        let bytes = self.take(len)?;
        if self.u8()? != 0 {
            bail!("signature at offset {at} is not NUL-terminated");
        }
        let s = std::str::from_utf8(bytes).map_err(|_| anyhow!("signature at offset {at} is not ASCII"))?;
        validate_signature(s)?;
        Ok(s.to_string())
    }

    /// Read one value of the single complete type `sig` (already validated).
    fn value(&mut self, sig: &[u8], depth: u32) -> Result<Value> {
        if depth > MAX_DEPTH {
            bail!("value nested deeper than {MAX_DEPTH}");
        }
        let Some(&c) = sig.first() else {
            bail!("empty type");
        };
        Ok(match c {
            b'y' => Value::Byte(self.u8()?),
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                x => bail!("boolean with value {x}"),
            },
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' => Value::U32(self.u32()?),
            b'h' => Value::UnixFd(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b'd' => Value::Double(f64::from_le_bytes(self.fixed()?)),
            b's' => Value::Str(self.string()?),
            b'o' => {
                let p = self.string()?;
                if !valid_object_path(&p) {
                    bail!("invalid object path {p:?}");
                }
                Value::ObjPath(p)
            }
            b'g' => Value::Sig(self.signature()?),
            b'v' => {
                let s = self.signature()?;
                let types = split_types(s.as_bytes())?;
                let [t] = types.as_slice() else {
                    bail!("variant signature {s:?} is not a single complete type");
                };
                Value::variant(self.value(t, depth + 1)?)
            }
            b'a' => {
                let elem = sig.get(1..).unwrap_or_default();
                let len = self.u32()? as usize;
                if len > MAX_ARRAY_LEN {
                    bail!("array of {len} bytes is longer than the limit of {MAX_ARRAY_LEN}");
                }
                self.align(alignment(elem.first().copied().unwrap_or(b'y')))?;
                let start = self.pos;
                let body = self.take(len)?;
                if elem == b"y" {
                    return Ok(Value::Bytes(body.to_vec()));
                }
                // read the elements in place: positions stay relative to the
                // same buffer, so alignment is right
                self.pos = start;
                let end = start + len;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem, depth + 1)?);
                }
                if self.pos != end {
                    bail!("array elements overrun the array length {len}");
                }
                let elem = std::str::from_utf8(elem).map_err(|_| anyhow!("signature is not ASCII"))?;
                Value::Array(elem.to_string(), items)
            }
            b'(' => {
                self.align(8)?;
                let inner = sig.get(1..sig.len().saturating_sub(1)).unwrap_or_default();
                let mut fields = Vec::new();
                for t in split_types(inner)? {
                    fields.push(self.value(t, depth + 1)?);
                }
                Value::Struct(fields)
            }
            b'{' => {
                self.align(8)?;
                let inner = sig.get(1..sig.len().saturating_sub(1)).unwrap_or_default();
                let types = split_types(inner)?;
                let [k, v] = types.as_slice() else {
                    bail!("dict entry without exactly two types");
                };
                let k = self.value(k, depth + 1)?;
                let v = self.value(v, depth + 1)?;
                Value::DictEntry(Box::new(k), Box::new(v))
            }
            c => bail!("unknown type code {:?}", char::from(c)),
        })
    }
}

/// Unmarshal a body of the given signature (the whole buffer must be used).
pub fn decode_body(body: &[u8], sig: &str, big_endian: bool) -> Result<Vec<Value>> {
    validate_signature(sig)?;
    let mut r = Reader {
        buf: body,
        pos: 0,
        big: big_endian,
    };
    let mut out = Vec::new();
    for t in split_types(sig.as_bytes())? {
        out.push(r.value(t, 0)?);
    }
    if r.pos != body.len() {
        bail!(
            "{} bytes left over after a body of signature {sig:?}",
            body.len() - r.pos
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Messages

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    MethodCall = 1,
    MethodReturn = 2,
    Error = 3,
    Signal = 4,
}

impl MessageType {
    fn from_u8(b: u8) -> Option<MessageType> {
        Some(match b {
            1 => MessageType::MethodCall,
            2 => MessageType::MethodReturn,
            3 => MessageType::Error,
            4 => MessageType::Signal,
            _ => return None,
        })
    }
}

pub const FLAG_NO_REPLY_EXPECTED: u8 = 0x1;
pub const FLAG_NO_AUTO_START: u8 = 0x2;

const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SENDER: u8 = 7;
const FIELD_SIGNATURE: u8 = 8;
const FIELD_UNIX_FDS: u8 = 9;

/// A message: the header fields husk uses and the body. The body signature
/// is computed from the values when encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: MessageType,
    pub flags: u8,
    /// Set by [`Message::encode`]'s caller; read from the wire when decoding.
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub body: Vec<Value>,
}

/// The fixed 16 bytes that start every message, and the lengths they give.
#[derive(Debug, Clone, Copy)]
struct Fixed {
    big: bool,
    kind: u8,
    flags: u8,
    serial: u32,
    body_len: usize,
    /// Where the body starts: after the header fields, padded to 8.
    body_start: usize,
    total: usize,
}

impl Fixed {
    fn parse(b: &[u8]) -> Result<Fixed> {
        let Some(b) = b.get(..16) else {
            bail!("truncated message header ({} of 16 bytes)", b.len());
        };
        let big = match b[0] {
            b'l' => false,
            b'B' => true,
            x => bail!("invalid byte order mark {x:#04x}"),
        };
        if b[3] != 1 {
            bail!("unsupported protocol version {}", b[3]);
        }
        let word32 = |i: usize| {
            let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
            if big {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        let word = |i: usize| word32(i) as usize;
        let body_len = word(4);
        let serial = word32(8);
        let fields_len = word(12);
        if serial == 0 {
            bail!("message with serial 0");
        }
        if fields_len > MAX_HEADER_FIELDS_LEN {
            bail!("header fields of {fields_len} bytes (limit {MAX_HEADER_FIELDS_LEN})");
        }
        if body_len > MAX_MESSAGE_LEN {
            bail!("message body of {body_len} bytes (limit {MAX_MESSAGE_LEN})");
        }
        let body_start = (16 + fields_len).next_multiple_of(8);
        let total = body_start + body_len;
        if total > MAX_MESSAGE_LEN {
            bail!("message of {total} bytes (limit {MAX_MESSAGE_LEN})");
        }
        Ok(Fixed {
            big,
            kind: b[1],
            flags: b[2],
            serial,
            body_len,
            body_start,
            total,
        })
    }
}

/// The total length of the message whose first 16 bytes are given.
pub fn message_len(first16: &[u8]) -> Result<usize> {
    Ok(Fixed::parse(first16)?.total)
}

/// A message with its body not decoded yet.
struct Header {
    msg: Message,
    signature: String,
}

fn parse_header(buf: &[u8], f: &Fixed) -> Result<Header> {
    let Some(kind) = MessageType::from_u8(f.kind) else {
        bail!("unknown message type {}", f.kind);
    };
    let Some(hdr) = buf.get(..f.body_start) else {
        bail!("truncated message header");
    };
    let mut r = Reader {
        buf: hdr,
        pos: 12,
        big: f.big,
    };
    let fields = r.value(b"a(yv)", 0).context("header fields")?;
    if hdr[r.pos..].iter().any(|b| *b != 0) {
        bail!("non-zero padding after the header fields");
    }
    let mut msg = Message {
        kind,
        flags: f.flags,
        serial: f.serial,
        path: None,
        interface: None,
        member: None,
        error_name: None,
        reply_serial: None,
        destination: None,
        sender: None,
        body: Vec::new(),
    };
    let mut signature = String::new();
    let Value::Array(_, fields) = fields else {
        bail!("header fields are not an array");
    };
    for field in fields {
        let Value::Struct(kv) = field else {
            bail!("header field is not a struct");
        };
        let [Value::Byte(code), Value::Variant(v)] = kv.as_slice() else {
            bail!("header field is not (yv)");
        };
        let v = v.as_ref();
        let bad = || anyhow!("header field {code} has the wrong type {}", v.signature());
        match *code {
            FIELD_PATH => match v {
                Value::ObjPath(p) => msg.path = Some(p.clone()),
                _ => return Err(bad()),
            },
            FIELD_INTERFACE | FIELD_MEMBER | FIELD_ERROR_NAME | FIELD_DESTINATION | FIELD_SENDER => {
                let Value::Str(s) = v else {
                    return Err(bad());
                };
                let slot = match *code {
                    FIELD_INTERFACE => &mut msg.interface,
                    FIELD_MEMBER => &mut msg.member,
                    FIELD_ERROR_NAME => &mut msg.error_name,
                    FIELD_DESTINATION => &mut msg.destination,
                    _ => &mut msg.sender,
                };
                *slot = Some(s.clone());
            }
            FIELD_REPLY_SERIAL => match v {
                Value::U32(s) => msg.reply_serial = Some(*s),
                _ => return Err(bad()),
            },
            FIELD_SIGNATURE => match v {
                Value::Sig(s) => signature = s.clone(),
                _ => return Err(bad()),
            },
            // husk never negotiates fd passing, so no fd reaches it
            FIELD_UNIX_FDS => match v {
                Value::U32(_) => {}
                _ => return Err(bad()),
            },
            // unknown fields are ignored (spec)
            _ => {}
        }
    }
    let required: &[(&str, bool)] = match kind {
        MessageType::MethodCall => &[("PATH", msg.path.is_some()), ("MEMBER", msg.member.is_some())],
        MessageType::MethodReturn => &[("REPLY_SERIAL", msg.reply_serial.is_some())],
        MessageType::Error => &[
            ("ERROR_NAME", msg.error_name.is_some()),
            ("REPLY_SERIAL", msg.reply_serial.is_some()),
        ],
        MessageType::Signal => &[
            ("PATH", msg.path.is_some()),
            ("INTERFACE", msg.interface.is_some()),
            ("MEMBER", msg.member.is_some()),
        ],
    };
    if let Some((name, _)) = required.iter().find(|(_, present)| !present) {
        bail!("{kind:?} message without the required {name} header field");
    }
    Ok(Header { msg, signature })
}

impl Message {
    /// A method call; `destination` is `None` on a direct connection to a peer.
    pub fn method_call(
        destination: Option<&str>,
        path: &str,
        interface: &str,
        member: &str,
        body: Vec<Value>,
    ) -> Message {
        Message {
            kind: MessageType::MethodCall,
            flags: 0,
            serial: 0,
            path: Some(path.to_string()),
            interface: Some(interface.to_string()),
            member: Some(member.to_string()),
            error_name: None,
            reply_serial: None,
            destination: destination.map(str::to_string),
            sender: None,
            body,
        }
    }

    /// A call to the bus daemon itself (`Hello`, `AddMatch`,
    /// `NameHasOwner`, …).
    pub fn bus_call(member: &str, body: Vec<Value>) -> Message {
        Message::method_call(Some(BUS_NAME), BUS_PATH, BUS_INTERFACE, member, body)
    }

    /// A reply of `kind` (MethodReturn or Error) to `call`.
    pub fn reply(call: &Message, kind: MessageType, body: Vec<Value>) -> Message {
        Message {
            kind,
            flags: FLAG_NO_REPLY_EXPECTED,
            serial: 0,
            path: None,
            interface: None,
            member: None,
            error_name: None,
            reply_serial: Some(call.serial),
            destination: call.sender.clone(),
            sender: None,
            body,
        }
    }

    /// A signal.
    pub fn signal(path: &str, interface: &str, member: &str, body: Vec<Value>) -> Message {
        Message {
            kind: MessageType::Signal,
            flags: FLAG_NO_REPLY_EXPECTED,
            serial: 0,
            path: Some(path.to_string()),
            interface: Some(interface.to_string()),
            member: Some(member.to_string()),
            error_name: None,
            reply_serial: None,
            destination: None,
            sender: None,
            body,
        }
    }

    /// The body's signature.
    pub fn signature(&self) -> String {
        let mut s = String::new();
        for v in &self.body {
            v.write_signature(&mut s);
        }
        s
    }

    /// Marshal (little-endian) with the serial in `self.serial`.
    pub fn encode(&self) -> Result<Vec<u8>> {
        if self.serial == 0 {
            bail!("a message needs a non-zero serial");
        }
        let body = encode_body(&self.body)?;
        let sig = self.signature();
        let mut fields = Vec::new();
        let mut field = |code: u8, v: Value| fields.push(Value::Struct(vec![Value::Byte(code), Value::variant(v)]));
        if let Some(p) = &self.path {
            field(FIELD_PATH, Value::ObjPath(p.clone()));
        }
        if let Some(s) = &self.interface {
            field(FIELD_INTERFACE, Value::str(s));
        }
        if let Some(s) = &self.member {
            field(FIELD_MEMBER, Value::str(s));
        }
        if let Some(s) = &self.error_name {
            field(FIELD_ERROR_NAME, Value::str(s));
        }
        if let Some(s) = self.reply_serial {
            field(FIELD_REPLY_SERIAL, Value::U32(s));
        }
        if let Some(s) = &self.destination {
            field(FIELD_DESTINATION, Value::str(s));
        }
        if let Some(s) = &self.sender {
            field(FIELD_SENDER, Value::str(s));
        }
        if !sig.is_empty() {
            field(FIELD_SIGNATURE, Value::Sig(sig));
        }
        let body_len = u32::try_from(body.len()).map_err(|_| anyhow!("message body too long"))?;
        let mut w = Writer {
            buf: Vec::with_capacity(128 + body.len()),
        };
        w.buf.extend_from_slice(&[b'l', self.kind as u8, self.flags, 1]);
        w.buf.extend_from_slice(&body_len.to_le_bytes());
        w.buf.extend_from_slice(&self.serial.to_le_bytes());
        w.value(&Value::array("(yv)", fields), 0)?;
        w.pad(8);
        w.buf.extend_from_slice(&body);
        if w.buf.len() > MAX_MESSAGE_LEN {
            bail!("message of {} bytes (limit {MAX_MESSAGE_LEN})", w.buf.len());
        }
        Ok(w.buf)
    }

    /// Unmarshal one whole message (`buf` must be exactly one message).
    pub fn decode(buf: &[u8]) -> Result<Message> {
        let f = Fixed::parse(buf)?;
        if buf.len() != f.total {
            bail!("message of {} bytes announced, {} given", f.total, buf.len());
        }
        let h = parse_header(buf, &f)?;
        let mut msg = h.msg;
        msg.body = decode_body(&buf[f.body_start..], &h.signature, f.big).context("message body")?;
        Ok(msg)
    }

    /// `interface.member` (for messages and errors).
    pub fn describe(&self) -> String {
        format!(
            "{}.{}",
            self.interface.as_deref().unwrap_or("?"),
            self.member.as_deref().unwrap_or("?")
        )
    }
}

// ---------------------------------------------------------------------------
// Errors

/// An ERROR reply: its name (`org.freedesktop.systemd1.NoSuchUnit`) and
/// text. Wrapped in the `anyhow::Error` a call returns; test for it with
/// [`remote_error`] or [`is_remote_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub name: String,
    pub message: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}: {}", self.name, self.message)
        }
    }
}

impl std::error::Error for RemoteError {}

/// The D-Bus error inside `e`, if `e` is (or wraps) an ERROR reply.
pub fn remote_error(e: &anyhow::Error) -> Option<&RemoteError> {
    e.chain().find_map(|c| c.downcast_ref::<RemoteError>())
}

pub fn is_remote_error(e: &anyhow::Error, name: &str) -> bool {
    remote_error(e).is_some_and(|r| r.name == name)
}

// ---------------------------------------------------------------------------
// Addresses

/// Where to connect: a socket path or an abstract socket name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Path(p) => write!(f, "unix:path={}", p.display()),
            Endpoint::Abstract(n) => write!(f, "unix:abstract={}", String::from_utf8_lossy(n)),
        }
    }
}

fn unescape(v: &str) -> Result<Vec<u8>> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| anyhow!("bad %-escape in address value {v:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The unix endpoints of a D-Bus address (`unix:path=/run/x;unix:abstract=y`),
/// in order. Other transports are skipped; none usable is an error.
pub fn parse_address(addr: &str) -> Result<Vec<Endpoint>> {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::new();
    for part in addr.split(';').filter(|p| !p.is_empty()) {
        let Some((transport, params)) = part.split_once(':') else {
            bail!("invalid D-Bus address {addr:?}: no transport in {part:?}");
        };
        if transport != "unix" {
            continue;
        }
        for kv in params.split(',') {
            let Some((k, v)) = kv.split_once('=') else {
                bail!("invalid D-Bus address {addr:?}: {kv:?} is not key=value");
            };
            match k {
                "path" => out.push(Endpoint::Path(PathBuf::from(std::ffi::OsString::from_vec(unescape(
                    v,
                )?)))),
                "abstract" => out.push(Endpoint::Abstract(unescape(v)?)),
                _ => {}
            }
        }
    }
    if out.is_empty() {
        bail!("no usable address in {addr:?} (husk connects to unix:path= and unix:abstract= addresses)");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Connection

/// Is the peer a bus daemon (send `Hello`, messages are routed by name) or
/// a program talking D-Bus directly (systemd's private socket)?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Bus,
    Direct,
}

/// One authenticated connection. Blocking, with a deadline on every
/// operation; single-threaded by design.
pub struct Connection {
    stream: UnixStream,
    endpoint: Endpoint,
    peer: Peer,
    next_serial: u32,
    /// Bytes read and not consumed yet.
    rbuf: Vec<u8>,
    /// Kept signals (see [`Connection::keep_signals`]), oldest first.
    signals: VecDeque<Message>,
    keep: Vec<(String, String)>,
    unique_name: Option<String>,
    /// An error left the stream in an unknown state (a partial write or
    /// read, garbage): every later operation fails.
    broken: bool,
    /// The time one call (or the authentication) may take.
    pub timeout: Duration,
}

fn timed_out(what: &str) -> anyhow::Error {
    anyhow!("timed out {what}")
}

/// The uid in hex digits of its decimal text (SASL EXTERNAL's identity).
pub fn auth_external_line(uid: u32) -> String {
    let hex: String = uid.to_string().bytes().map(|b| format!("{b:02x}")).collect();
    format!("AUTH EXTERNAL {hex}\r\n")
}

fn connect_socket(ep: &Endpoint, deadline: Instant) -> Result<UnixStream> {
    use nix::errno::Errno;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let addr = match ep {
        Endpoint::Path(p) => UnixAddr::new(p.as_path()),
        Endpoint::Abstract(n) => UnixAddr::new_abstract(n),
    }
    .with_context(|| format!("socket address {ep}"))?;
    // Non-blocking so that a listener with a full backlog (EAGAIN) does not
    // block us past the deadline; close-on-exec: husk execs containers.
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .context("socket")?;
    let mut wait = Duration::from_millis(5);
    loop {
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) if Instant::now() + wait < deadline => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e).with_context(|| format!("connect to {ep}")),
        }
    }
    let stream = UnixStream::from(fd);
    stream
        .set_nonblocking(false)
        .errno()
        .context("set the socket blocking")?;
    Ok(stream)
}

impl Connection {
    /// Connect to one endpoint and authenticate as `uid` (SASL EXTERNAL;
    /// the peer checks it against the socket's credentials), then `Hello`
    /// when the peer is a bus.
    pub fn connect(endpoint: &Endpoint, peer: Peer, uid: u32, timeout: Duration) -> Result<Connection> {
        let deadline = Instant::now() + timeout;
        let stream = crate::logging::step(
            "connect",
            || endpoint.to_string(),
            || connect_socket(endpoint, deadline),
        )?;
        let mut c = Connection {
            stream,
            endpoint: endpoint.clone(),
            peer,
            next_serial: 1,
            rbuf: Vec::new(),
            signals: VecDeque::new(),
            keep: Vec::new(),
            unique_name: None,
            broken: false,
            timeout,
        };
        crate::logging::step(
            "D-Bus authentication",
            || format!("as uid {uid}"),
            || c.authenticate(uid, deadline),
        )
        .with_context(|| format!("authenticate to {endpoint} as uid {uid}"))?;
        if peer == Peer::Bus {
            let reply = c
                .call(Message::bus_call("Hello", Vec::new()))
                .with_context(|| format!("Hello to the bus at {endpoint}"))?;
            c.unique_name = reply.first().and_then(Value::as_str).map(str::to_string);
        }
        Ok(c)
    }

    /// Connect to the first endpoint of a D-Bus address that answers.
    pub fn connect_address(address: &str, peer: Peer, uid: u32, timeout: Duration) -> Result<Connection> {
        let mut errors = Vec::new();
        for ep in parse_address(address)? {
            match Connection::connect(&ep, peer, uid, timeout) {
                Ok(c) => return Ok(c),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        bail!("{}", errors.join("; "))
    }

    fn authenticate(&mut self, uid: u32, deadline: Instant) -> Result<()> {
        // The leading NUL byte (credentials on some systems), AUTH and BEGIN
        // in one write: BEGIN is only acted on after the server's OK.
        let mut out = vec![0u8];
        out.extend_from_slice(auth_external_line(uid).as_bytes());
        out.extend_from_slice(b"BEGIN\r\n");
        self.write_all(&out, deadline)?;
        let line = self.read_line(deadline)?;
        match line.split_once(' ').map_or((line.as_str(), ""), |(a, b)| (a, b)) {
            ("OK", guid) if !guid.is_empty() => Ok(()),
            ("REJECTED", mechs) => bail!("authentication rejected (the server accepts: {mechs})"),
            _ => bail!("unexpected authentication answer {line:?}"),
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String> {
        loop {
            if let Some(i) = self.rbuf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.rbuf.drain(..i + 2).take(i).collect();
                return String::from_utf8(line).map_err(|_| anyhow!("authentication answer is not text"));
            }
            if self.rbuf.len() > MAX_AUTH_LINE {
                bail!("authentication answer longer than {MAX_AUTH_LINE} bytes");
            }
            self.read_more(deadline, "reading the authentication answer")?;
        }
    }

    /// The endpoint this connection talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// The unique name the bus gave (`:1.42`), after Hello.
    pub fn unique_name(&self) -> Option<&str> {
        self.unique_name.as_deref()
    }

    /// Keep signals of this interface and member (queued until
    /// [`Connection::wait_signal`] takes them); others are skipped unread.
    pub fn keep_signals(&mut self, interface: &str, member: &str) {
        if !self.keep.iter().any(|(i, m)| i == interface && m == member) {
            self.keep.push((interface.to_string(), member.to_string()));
        }
    }

    fn kept(&self, m: &Message) -> bool {
        self.keep
            .iter()
            .any(|(i, n)| m.interface.as_deref() == Some(i) && m.member.as_deref() == Some(n))
    }

    fn read_more(&mut self, deadline: Instant, what: &str) -> Result<()> {
        let mut chunk = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out(what));
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .errno()
                .context("set the socket's read timeout")?;
            match self.stream.read(&mut chunk) {
                Ok(0) => bail!("{} closed the connection while {what}", self.endpoint),
                Ok(n) => {
                    self.rbuf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(timed_out(what));
                }
                Err(e) => {
                    return Err(e)
                        .errno()
                        .with_context(|| format!("read from {} while {what}", self.endpoint));
                }
            }
        }
    }

    fn fill(&mut self, n: usize, deadline: Instant, what: &str) -> Result<()> {
        while self.rbuf.len() < n {
            self.read_more(deadline, what)?;
        }
        Ok(())
    }

    /// Drop `n` bytes of input, reading (and discarding) what is not buffered.
    fn skip(&mut self, n: usize, deadline: Instant, what: &str) -> Result<()> {
        if self.rbuf.len() >= n {
            self.rbuf.drain(..n);
            return Ok(());
        }
        let mut left = n - self.rbuf.len();
        self.rbuf.clear();
        while left > 0 {
            self.read_more(deadline, what)?;
            let k = self.rbuf.len().min(left);
            self.rbuf.drain(..k);
            left -= k;
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        if self.broken {
            bail!("the connection to {} is unusable after an earlier error", self.endpoint);
        }
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8], deadline: Instant) -> Result<()> {
        self.check()?;
        let r = self.write_raw(buf, deadline);
        self.broken |= r.is_err();
        r
    }

    fn write_raw(&mut self, mut buf: &[u8], deadline: Instant) -> Result<()> {
        use nix::errno::Errno;
        use nix::sys::socket::{MsgFlags, send};
        while !buf.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out("sending"));
            }
            self.stream
                .set_write_timeout(Some(left.max(Duration::from_millis(1))))
                .errno()
                .context("set the socket's write timeout")?;
            // MSG_NOSIGNAL: a closed peer is an error, not a SIGPIPE.
            match send(self.stream.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => buf = &buf[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Err(timed_out("sending")),
                Err(e) => return Err(e).with_context(|| format!("send to {}", self.endpoint)),
            }
        }
        Ok(())
    }

    /// Send a message with the next serial; returns that serial.
    pub fn send(&mut self, mut msg: Message) -> Result<u32> {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.checked_add(1).unwrap_or(1);
        msg.serial = serial;
        let bytes = msg.encode().with_context(|| format!("encode {}", msg.describe()))?;
        self.write_all(&bytes, Instant::now() + self.timeout)
            .with_context(|| format!("send {} to {}", msg.describe(), self.endpoint))?;
        Ok(serial)
    }

    /// Read the next message. Returns `None` for a message skipped without
    /// decoding its body: an unknown type, a reply to another serial than
    /// `reply_to`, a signal not kept — unless `all`. Any error (a timeout
    /// too: part of a message may have been read) breaks the connection.
    fn next(&mut self, deadline: Instant, what: &str, reply_to: Option<u32>, all: bool) -> Result<Option<Message>> {
        self.check()?;
        let r = self.next_raw(deadline, what, reply_to, all);
        self.broken |= r.is_err();
        r
    }

    fn next_raw(&mut self, deadline: Instant, what: &str, reply_to: Option<u32>, all: bool) -> Result<Option<Message>> {
        self.fill(16, deadline, what)?;
        let f = Fixed::parse(&self.rbuf).with_context(|| format!("malformed message from {}", self.endpoint))?;
        if MessageType::from_u8(f.kind).is_none() {
            // the spec says to ignore unknown types
            self.skip(f.total, deadline, what)?;
            return Ok(None);
        }
        self.fill(f.body_start, deadline, what)?;
        let h = parse_header(&self.rbuf, &f).with_context(|| format!("malformed message from {}", self.endpoint))?;
        let m = &h.msg;
        let wanted = all
            || match m.kind {
                MessageType::MethodReturn | MessageType::Error => reply_to.is_some() && m.reply_serial == reply_to,
                MessageType::Signal => self.kept(m),
                MessageType::MethodCall => m.flags & FLAG_NO_REPLY_EXPECTED == 0,
            };
        if !wanted {
            self.skip(f.total, deadline, what)?;
            return Ok(None);
        }
        if f.body_len > MAX_DECODED_BODY_LEN {
            self.skip(f.total, deadline, what)?;
            if m.kind == MessageType::MethodCall {
                // answered with an error all the same, body unread
                return Ok(Some(h.msg));
            }
            bail!(
                "{} from {} has a body of {} bytes (limit {MAX_DECODED_BODY_LEN})",
                m.describe(),
                self.endpoint,
                f.body_len
            );
        }
        self.fill(f.total, deadline, what)?;
        let body = decode_body(&self.rbuf[f.body_start..f.total], &h.signature, f.big);
        self.rbuf.drain(..f.total);
        let mut msg = h.msg;
        match body {
            Ok(b) => msg.body = b,
            // a call or signal we cannot read is dropped; a reply is an error
            Err(_) if !all && msg.kind != MessageType::MethodReturn && msg.kind != MessageType::Error => {
                return Ok(None);
            }
            Err(e) => return Err(e).with_context(|| format!("malformed {} from {}", msg.describe(), self.endpoint)),
        }
        Ok(Some(msg))
    }

    /// Read the next message whatever it is (for a program serving calls,
    /// such as a test's stand-in for systemd), body decoded.
    pub fn recv(&mut self, timeout: Duration) -> Result<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.next(deadline, "waiting for a message", None, true)? {
                return Ok(m);
            }
        }
    }

    /// Queue a kept signal, answer a call with an error; else drop.
    fn dispatch(&mut self, m: Message) -> Result<()> {
        match m.kind {
            MessageType::Signal => {
                if self.signals.len() >= MAX_QUEUED_SIGNALS {
                    self.signals.pop_front();
                }
                self.signals.push_back(m);
            }
            MessageType::MethodCall if m.flags & FLAG_NO_REPLY_EXPECTED == 0 => {
                let mut e = Message::reply(&m, MessageType::Error, vec![Value::str("husk serves no methods")]);
                e.error_name = Some("org.freedesktop.DBus.Error.UnknownMethod".into());
                self.send(e)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Call a method and wait for its reply (within `self.timeout`): the
    /// reply's body, or the ERROR reply as a [`RemoteError`]. Kept signals
    /// read meanwhile are queued.
    /// Named in the `--debug` timeline as a step `D-Bus call
    /// Interface.Member`, with its round-trip time.
    pub fn call(&mut self, msg: Message) -> Result<Vec<Value>> {
        let desc = msg.describe();
        crate::logging::step("D-Bus call", || desc.clone(), || self.call_untimed(msg, &desc))
    }

    fn call_untimed(&mut self, msg: Message, desc: &str) -> Result<Vec<Value>> {
        let what = format!("waiting for the reply to {desc} ({} s)", self.timeout.as_secs_f64());
        let serial = self.send(msg)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let Some(m) = self.next(deadline, &what, Some(serial), false)? else {
                continue;
            };
            match m.kind {
                MessageType::MethodReturn => return Ok(m.body),
                MessageType::Error => {
                    let message = m.body.first().and_then(Value::as_str).unwrap_or_default().to_string();
                    return Err(RemoteError {
                        name: m.error_name.unwrap_or_default(),
                        message,
                    }
                    .into());
                }
                _ => self.dispatch(m)?,
            }
        }
    }

    /// Wait (until `deadline`) for a kept signal for which `pred` holds,
    /// taking it from the queue first. Other kept signals stay queued.
    pub fn wait_signal(&mut self, deadline: Instant, mut pred: impl FnMut(&Message) -> bool) -> Result<Message> {
        if let Some(i) = self.signals.iter().position(&mut pred)
            && let Some(m) = self.signals.remove(i)
        {
            return Ok(m);
        }
        loop {
            let Some(m) = self.next(deadline, "waiting for a signal", None, false)? else {
                continue;
            };
            if m.kind == MessageType::Signal && pred(&m) {
                return Ok(m);
            }
            self.dispatch(m)?;
        }
    }
}

// ---------------------------------------------------------------------------

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test messages: lengths and bytes made small"
)]
mod tests {
    use super::*;

    /// Little-endian bytes written out by hand from the spec.
    fn le32(v: u32) -> [u8; 4] {
        v.to_le_bytes()
    }

    fn hello() -> Message {
        Message {
            serial: 1,
            ..Message::bus_call("Hello", Vec::new())
        }
    }

    #[test]
    fn hello_is_encoded_byte_for_byte() {
        let mut e: Vec<u8> = vec![b'l', 1, 0, 1];
        e.extend(le32(0)); // body length
        e.extend(le32(1)); // serial
        e.extend(le32(109)); // header fields array length (16..125)
        // PATH: code 1, variant signature "o", string at 20
        e.extend([1, 1, b'o', 0]);
        e.extend(le32(21));
        e.extend(b"/org/freedesktop/DBus\0"); // ends at 46
        e.extend([0, 0]); // to 48
        e.extend([2, 1, b's', 0]);
        e.extend(le32(20));
        e.extend(b"org.freedesktop.DBus\0"); // ends at 77
        e.extend([0, 0, 0]); // to 80
        e.extend([3, 1, b's', 0]);
        e.extend(le32(5));
        e.extend(b"Hello\0"); // ends at 94
        e.extend([0, 0]); // to 96
        e.extend([6, 1, b's', 0]);
        e.extend(le32(20));
        e.extend(b"org.freedesktop.DBus\0"); // ends at 125
        e.extend([0, 0, 0]); // body starts at 128
        assert_eq!(e.len(), 128);
        assert_eq!(hello().encode().unwrap(), e);
        assert_eq!(Message::decode(&e).unwrap(), hello());
        assert_eq!(message_len(&e[..16]).unwrap(), 128);
    }

    #[test]
    fn start_transient_unit_body_pads_even_the_empty_array() {
        let body = vec![
            Value::str("a.scope"),
            Value::str("replace"),
            Value::array(
                "(sv)",
                vec![
                    Value::Struct(vec![Value::str("Delegate"), Value::variant(Value::Bool(true))]),
                    Value::Struct(vec![
                        Value::str("PIDs"),
                        Value::variant(Value::array("u", vec![Value::U32(42)])),
                    ]),
                ],
            ),
            Value::array("(sa(sv))", vec![]),
        ];
        let mut e: Vec<u8> = Vec::new();
        e.extend(le32(7));
        e.extend(b"a.scope\0"); // 12
        e.extend(le32(7));
        e.extend(b"replace\0"); // 24
        e.extend(le32(48)); // a(sv): 28, then padding to 32
        e.extend([0; 4]);
        e.extend(le32(8));
        e.extend(b"Delegate\0"); // 45
        e.extend([1, b'b', 0]); // 48
        e.extend(le32(1)); // 52
        e.extend([0; 4]); // struct at 56
        e.extend(le32(4));
        e.extend(b"PIDs\0"); // 65
        e.extend([2, b'a', b'u', 0]); // 69
        e.extend([0; 3]); // 72
        e.extend(le32(4)); // 76
        e.extend(le32(42)); // 80: end of a(sv), 80 - 32 = 48
        e.extend(le32(0)); // empty a(sa(sv)) at 80..84
        e.extend([0; 4]); // padded to its 8-aligned elements: 88
        assert_eq!(encode_body(&body).unwrap(), e);
        let sig: String = body.iter().map(Value::signature).collect();
        assert_eq!(sig, "ssa(sv)a(sa(sv))");
        assert_eq!(decode_body(&e, &sig, false).unwrap(), body);
        // whole message round trip
        let msg = Message {
            serial: 7,
            flags: FLAG_NO_AUTO_START,
            ..Message::method_call(
                Some("org.freedesktop.systemd1"),
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "StartTransientUnit",
                body,
            )
        };
        let bytes = msg.encode().unwrap();
        assert_eq!(bytes.len() % 8, 0);
        assert_eq!(&bytes[bytes.len() - 88..], &e[..]);
        assert_eq!(Message::decode(&bytes).unwrap(), msg);
    }

    fn every_type() -> Vec<Value> {
        vec![
            Value::Byte(0xfe),
            Value::Bool(true),
            Value::I16(-2),
            Value::U16(65535),
            Value::I32(-70000),
            Value::U32(0xdead_beef),
            Value::I64(-1 << 40),
            Value::U64(u64::MAX),
            Value::Double(1.5),
            Value::Str("héllo".into()),
            Value::ObjPath("/org/freedesktop/systemd1/unit/a_2escope".into()),
            Value::Sig("a{sv}(ii)".into()),
            Value::Bytes(vec![1, 2, 3]),
            Value::Array("t".into(), vec![]),
            Value::Array(
                "{sv}".into(),
                vec![Value::DictEntry(
                    Box::new(Value::str("k")),
                    Box::new(Value::variant(Value::variant(Value::U16(3)))),
                )],
            ),
            Value::Struct(vec![
                Value::Byte(1),
                Value::U64(2),
                Value::Struct(vec![Value::Bool(false)]),
            ]),
            Value::array(
                "(ss)",
                vec![Value::Struct(vec![Value::str("/dev/null"), Value::str("rwm")])],
            ),
            Value::array("ay", vec![Value::Bytes(vec![]), Value::Bytes(vec![9])]),
        ]
    }

    #[test]
    fn every_type_round_trips() {
        let body = every_type();
        let sig: String = body.iter().map(Value::signature).collect();
        validate_signature(&sig).unwrap();
        let bytes = encode_body(&body).unwrap();
        assert_eq!(decode_body(&bytes, &sig, false).unwrap(), body);
    }

    #[test]
    fn big_endian_messages_are_read() {
        // an error reply, big-endian, written by hand: serial 2, reply to 5
        let mut e: Vec<u8> = vec![b'B', 3, 1, 1];
        e.extend(8u32.to_be_bytes()); // body: u32 len 3 + "abc\0"
        e.extend(2u32.to_be_bytes());
        let mut fields: Vec<u8> = Vec::new();
        fields.extend([4, 1, b's', 0]); // at 16
        fields.extend(6u32.to_be_bytes());
        fields.extend(b"x.y.Zz\0"); // 16+4+4+7 = 31
        fields.push(0); // 32
        fields.extend([5, 1, b'u', 0]);
        fields.extend(5u32.to_be_bytes()); // 40
        fields.extend([8, 1, b'g', 0, 1, b's', 0]); // 47
        e.extend((fields.len() as u32).to_be_bytes());
        e.extend(&fields);
        e.push(0); // 48
        e.extend(3u32.to_be_bytes());
        e.extend(b"abc\0");
        let m = Message::decode(&e).unwrap();
        assert_eq!(m.kind, MessageType::Error);
        assert_eq!(m.error_name.as_deref(), Some("x.y.Zz"));
        assert_eq!(m.reply_serial, Some(5));
        assert_eq!(m.body, vec![Value::str("abc")]);
    }

    #[test]
    fn truncations_and_corruptions_are_errors_not_panics() {
        let msg = Message {
            serial: 3,
            ..Message::signal("/a/b", "i.f", "M", every_type())
        };
        let bytes = msg.encode().unwrap();
        assert_eq!(Message::decode(&bytes).unwrap(), msg);
        for n in 0..bytes.len() {
            assert!(Message::decode(&bytes[..n]).is_err(), "truncated at {n}");
            // a truncated body with the lengths patched to match
            if n >= 16 {
                let mut b = bytes[..n].to_vec();
                let f = Fixed::parse(&bytes).unwrap();
                if n > f.body_start {
                    b[4..8].copy_from_slice(&((n - f.body_start) as u32).to_le_bytes());
                    assert!(Message::decode(&b).is_err(), "short body at {n}");
                }
            }
        }
        // every byte flipped in turn, a few values each: any result, no panic
        let mut seed = 0x1234_5678u32;
        for i in 0..bytes.len() {
            for x in [0u8, 0xff, 0x80, 1] {
                let mut b = bytes.clone();
                b[i] ^= x;
                let _ = Message::decode(&b);
            }
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let mut b = bytes.clone();
            for k in 0..8 {
                let j = (seed as usize).wrapping_add(k * 7919) % b.len();
                b[j] = (seed >> (k % 4 * 8)) as u8;
            }
            let _ = Message::decode(&b);
        }
    }

    #[test]
    fn hostile_lengths_and_nesting_are_refused() {
        // an array claiming 64 MiB + 1
        let mut b = Vec::new();
        b.extend(le32((MAX_ARRAY_LEN + 1) as u32));
        assert!(
            decode_body(&b, "au", false)
                .unwrap_err()
                .to_string()
                .contains("longer than the limit")
        );
        // an array claiming more than the buffer
        let mut b = Vec::new();
        b.extend(le32(1000));
        assert!(decode_body(&b, "au", false).is_err());
        // element overrunning the array length
        let mut b = Vec::new();
        b.extend(le32(2));
        b.extend(le32(1));
        assert!(decode_body(&b, "au", false).is_err());
        // variants nested past the depth limit
        let mut b = Vec::new();
        for _ in 0..100 {
            b.extend([1, b'v', 0]);
        }
        b.extend([1, b'y', 0, 7]);
        assert!(
            decode_body(&b, "v", false)
                .unwrap_err()
                .to_string()
                .contains("nested deeper")
        );
        // a bool of 2, non-zero padding, a string without NUL, bad path
        assert!(decode_body(&le32(2), "b", false).is_err());
        assert!(decode_body(&[1, 9, 0, 0, 1, 0, 0, 0], "yu", false).is_err());
        assert!(decode_body(&[1, 0, 0, 0, b'a', b'b'], "s", false).is_err());
        assert!(decode_body(&[2, 0, 0, 0, b'a', b'b', 0], "o", false).is_err());
        // message header: huge lengths, bad endianness, version, serial 0
        let mut h = hello().encode().unwrap();
        h[12..16].copy_from_slice(&le32(u32::MAX));
        assert!(Message::decode(&h).is_err());
        let mut h = hello().encode().unwrap();
        h[4..8].copy_from_slice(&le32(u32::MAX));
        assert!(message_len(&h).is_err());
        let mut h = hello().encode().unwrap();
        h[0] = b'x';
        assert!(Message::decode(&h).is_err());
        let mut h = hello().encode().unwrap();
        h[3] = 2;
        assert!(Message::decode(&h).is_err());
        let mut h = hello().encode().unwrap();
        h[8..12].copy_from_slice(&le32(0));
        assert!(Message::decode(&h).is_err());
    }

    #[test]
    fn signatures_are_validated() {
        for ok in [
            "",
            "s",
            "a{sv}",
            "a(sa(sv))",
            "ssa(sv)a(sa(sv))",
            "aay",
            "v",
            "a{oa{sa{sv}}}",
        ] {
            validate_signature(ok).unwrap();
        }
        for bad in [
            "(", ")", "()", "a", "{sv}", "a{vs}", "a{s}", "a{sss}", "z", "(s", "a{(s)s}",
        ] {
            assert!(validate_signature(bad).is_err(), "{bad:?}");
        }
        assert!(validate_signature(&"a".repeat(33).chars().chain(['y']).collect::<String>()).is_err());
        validate_signature(&"a".repeat(32).chars().chain(['y']).collect::<String>()).unwrap();
        assert!(validate_signature(&format!("{}y{}", "(".repeat(33), ")".repeat(33))).is_err());
        assert!(validate_signature(&"y".repeat(256)).is_err());
    }

    #[test]
    fn encoding_refuses_inconsistent_values() {
        assert!(encode_body(&[Value::array("u", vec![Value::str("x")])]).is_err());
        assert!(encode_body(&[Value::array("uu", vec![])]).is_err());
        assert!(encode_body(&[Value::Struct(vec![])]).is_err());
        assert!(encode_body(&[Value::str("a\0b")]).is_err());
        assert!(encode_body(&[Value::ObjPath("a/b".into())]).is_err());
        assert!(encode_body(&[Value::ObjPath("/a//b".into())]).is_err());
        assert!(encode_body(&[Value::ObjPath("/a/".into())]).is_err());
        encode_body(&[Value::ObjPath("/".into())]).unwrap();
    }

    #[test]
    fn header_fields_are_checked() {
        // a method return without REPLY_SERIAL
        let m = Message {
            serial: 1,
            kind: MessageType::MethodReturn,
            ..Message::method_call(None, "/", "i.f", "m", vec![])
        };
        assert!(
            Message::decode(&m.encode().unwrap())
                .unwrap_err()
                .to_string()
                .contains("REPLY_SERIAL")
        );
        // a signal without INTERFACE
        let mut s = Message {
            serial: 1,
            ..Message::signal("/", "i.f", "M", vec![])
        };
        s.interface = None;
        assert!(Message::decode(&s.encode().unwrap()).is_err());
        // unknown header field codes are ignored, known ones with the wrong type refused
        let mut e: Vec<u8> = vec![b'l', 4, 0, 1];
        e.extend(le32(0));
        e.extend(le32(1));
        let mut fields: Vec<u8> = Vec::new();
        fields.extend([1, 1, b's', 0]); // PATH as a string
        fields.extend(le32(1));
        fields.extend(b"/\0");
        e.extend(le32(fields.len() as u32));
        e.extend(&fields);
        while !e.len().is_multiple_of(8) {
            e.push(0);
        }
        assert!(Message::decode(&e).unwrap_err().to_string().contains("wrong type"));
    }

    #[test]
    fn addresses_are_parsed() {
        assert_eq!(
            parse_address("unix:path=/run/dbus/system_bus_socket").unwrap(),
            vec![Endpoint::Path("/run/dbus/system_bus_socket".into())]
        );
        assert_eq!(
            parse_address("tcp:host=x,port=1;unix:abstract=/tmp/dbus-x%2cy,guid=00;unix:path=/a%20b").unwrap(),
            vec![
                Endpoint::Abstract(b"/tmp/dbus-x,y".to_vec()),
                Endpoint::Path("/a b".into())
            ]
        );
        assert!(parse_address("tcp:host=x").is_err());
        assert!(parse_address("unix:path=/a%2").is_err());
        assert!(parse_address("nocolon").is_err());
        assert!(parse_address("").is_err());
    }

    #[test]
    fn auth_line_is_the_uid_in_hex() {
        assert_eq!(auth_external_line(0), "AUTH EXTERNAL 30\r\n");
        assert_eq!(auth_external_line(1000), "AUTH EXTERNAL 31303030\r\n");
    }

    #[test]
    fn remote_errors_survive_context() {
        let e: anyhow::Error = RemoteError {
            name: "org.freedesktop.systemd1.NoSuchUnit".into(),
            message: "Unit x.scope not loaded.".into(),
        }
        .into();
        let e = e.context("GetUnit x.scope");
        assert!(is_remote_error(&e, "org.freedesktop.systemd1.NoSuchUnit"));
        assert_eq!(
            format!("{e:#}"),
            "GetUnit x.scope: org.freedesktop.systemd1.NoSuchUnit: Unit x.scope not loaded."
        );
    }
}
