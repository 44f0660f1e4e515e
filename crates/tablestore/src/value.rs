//! Cell values as Tablestore stores them, and primary-key values (which add the range sentinels).

use std::borrow::Cow;
use std::cmp::Ordering;

/// An attribute-column value. Tablestore has exactly these five types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    Double(f64),
    Boolean(bool),
    String(String),
    Binary(Vec<u8>),
}

impl Value {
    /// The value borrowed, as the encoders and validators that take a [`ValueRef`] want it.
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Double(d) => ValueRef::Double(*d),
            Value::Boolean(b) => ValueRef::Boolean(*b),
            Value::String(s) => ValueRef::String(Cow::Borrowed(s)),
            Value::Binary(b) => ValueRef::Binary(Cow::Borrowed(b)),
        }
    }

    /// Bytes the service counts for this value (docs: string = UTF-8 bytes, binary = length,
    /// integer/double = 8, boolean = 1).
    pub fn data_size(&self) -> usize {
        self.as_value_ref().data_size()
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "INTEGER",
            Value::Double(_) => "DOUBLE",
            Value::Boolean(_) => "BOOLEAN",
            Value::String(_) => "STRING",
            Value::Binary(_) => "BINARY",
        }
    }

    /// Order between two values of the same type (filters compare only like types).
    pub fn compare_same_type(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Integer(a), Value::Integer(b)) => Some(a.cmp(b)),
            (Value::Double(a), Value::Double(b)) => a.partial_cmp(b),
            (Value::Boolean(a), Value::Boolean(b)) => Some(a.cmp(b)),
            (Value::String(a), Value::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Value::Binary(a), Value::Binary(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// A [`Value`] whose text or bytes may be borrowed: what a converter produces when the value
/// goes straight into an encoded change (no copy unless the conversion made new text).
#[derive(Debug, Clone, PartialEq)]
pub enum ValueRef<'a> {
    Integer(i64),
    Double(f64),
    Boolean(bool),
    String(Cow<'a, str>),
    Binary(Cow<'a, [u8]>),
}

impl ValueRef<'_> {
    /// Bytes the service counts for this value (the one place of the rule; see
    /// [`Value::data_size`]).
    pub fn data_size(&self) -> usize {
        match self {
            ValueRef::Integer(_) | ValueRef::Double(_) => 8,
            ValueRef::Boolean(_) => 1,
            ValueRef::String(s) => s.len(),
            ValueRef::Binary(b) => b.len(),
        }
    }

    /// The same value, borrowed from this one (no copy of text or bytes).
    pub fn reborrow(&self) -> ValueRef<'_> {
        match self {
            ValueRef::Integer(i) => ValueRef::Integer(*i),
            ValueRef::Double(d) => ValueRef::Double(*d),
            ValueRef::Boolean(b) => ValueRef::Boolean(*b),
            ValueRef::String(s) => ValueRef::String(Cow::Borrowed(s)),
            ValueRef::Binary(b) => ValueRef::Binary(Cow::Borrowed(b)),
        }
    }

    pub fn into_owned(self) -> Value {
        match self {
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Double(d) => Value::Double(d),
            ValueRef::Boolean(b) => Value::Boolean(b),
            ValueRef::String(s) => Value::String(s.into_owned()),
            ValueRef::Binary(b) => Value::Binary(b.into_owned()),
        }
    }
}

/// Primary-key column types (the only three a key may use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PkType {
    Integer,
    String,
    Binary,
}

impl PkType {
    pub fn name(self) -> &'static str {
        match self {
            PkType::Integer => "INTEGER",
            PkType::String => "STRING",
            PkType::Binary => "BINARY",
        }
    }
}

/// A primary-key cell value. `InfMin`/`InfMax` only appear in range bounds, `AutoIncrement` only
/// as a placeholder in writes to an auto-increment column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PkValue {
    Integer(i64),
    String(String),
    Binary(Vec<u8>),
    InfMin,
    InfMax,
    AutoIncrement,
}

impl PkValue {
    pub fn pk_type(&self) -> Option<PkType> {
        match self {
            PkValue::Integer(_) => Some(PkType::Integer),
            PkValue::String(_) => Some(PkType::String),
            PkValue::Binary(_) => Some(PkType::Binary),
            _ => None,
        }
    }

    pub fn data_size(&self) -> usize {
        match self {
            PkValue::Integer(_) => 8,
            PkValue::String(s) => s.len(),
            PkValue::Binary(b) => b.len(),
            _ => 0,
        }
    }

    /// Rank used to order the sentinels around real values.
    fn rank(&self) -> u8 {
        match self {
            PkValue::InfMin => 0,
            PkValue::InfMax => 2,
            _ => 1,
        }
    }
}

impl PartialOrd for PkValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Service order: INTEGER as signed i64, STRING/BINARY bytewise; INF_MIN below and INF_MAX above
/// everything. Values of different real types (never in one valid key column) order by type.
impl Ord for PkValue {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PkValue::Integer(a), PkValue::Integer(b)) => a.cmp(b),
            (PkValue::String(a), PkValue::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (PkValue::Binary(a), PkValue::Binary(b)) => a.cmp(b),
            _ => self
                .rank()
                .cmp(&other.rank())
                .then_with(|| type_rank(self).cmp(&type_rank(other))),
        }
    }
}

fn type_rank(v: &PkValue) -> u8 {
    match v {
        PkValue::InfMin => 0,
        PkValue::Integer(_) => 1,
        PkValue::String(_) => 2,
        PkValue::Binary(_) => 3,
        PkValue::AutoIncrement => 4,
        PkValue::InfMax => 5,
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Boolean(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Binary(v)
    }
}
impl From<i64> for PkValue {
    fn from(v: i64) -> Self {
        PkValue::Integer(v)
    }
}
impl From<&str> for PkValue {
    fn from(v: &str) -> Self {
        PkValue::String(v.to_owned())
    }
}
impl From<String> for PkValue {
    fn from(v: String) -> Self {
        PkValue::String(v)
    }
}
impl From<Vec<u8>> for PkValue {
    fn from(v: Vec<u8>) -> Self {
        PkValue::Binary(v)
    }
}
