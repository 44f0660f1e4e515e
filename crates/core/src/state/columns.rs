//! Reading typed attribute columns out of a state row, with `Corrupt` errors that name the row.

use serde::de::DeserializeOwned;

use super::{StateError, PK_KEY};
use tablestore::{Cell, PkValue, Row, Value};

/// A state row being decoded: its `key` text (for errors) and its cells.
pub(super) struct Cols<'a> {
    pub key: String,
    row: &'a Row,
}

impl<'a> Cols<'a> {
    pub fn new(row: &'a Row) -> Self {
        let key = row
            .primary_key
            .columns()
            .iter()
            .find(|c| c.name == PK_KEY)
            .map(|c| match &c.value {
                PkValue::String(s) => s.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        Cols { key, row }
    }

    fn corrupt(&self, detail: String) -> StateError {
        StateError::corrupt(&self.key, detail)
    }

    fn value(&self, name: &str) -> Option<&Value> {
        self.row.get(name)
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, StateError> {
        match self
            .row
            .cells
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.value)
        {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(self.corrupt(format!(
                "column {name} is {}, expected STRING",
                v.type_name()
            ))),
        }
    }

    pub fn str(&self, name: &str) -> Result<&'a str, StateError> {
        self.opt_str(name)?
            .ok_or_else(|| self.corrupt(format!("column {name} is missing")))
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, StateError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Integer(i)) => Ok(Some(*i)),
            Some(v) => Err(self.corrupt(format!(
                "column {name} is {}, expected INTEGER",
                v.type_name()
            ))),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64, StateError> {
        self.opt_int(name)?
            .ok_or_else(|| self.corrupt(format!("column {name} is missing")))
    }

    pub fn u64(&self, name: &str) -> Result<u64, StateError> {
        let i = self.int(name)?;
        u64::try_from(i).map_err(|_| self.corrupt(format!("column {name} is negative ({i})")))
    }

    pub fn u32(&self, name: &str) -> Result<u32, StateError> {
        let i = self.int(name)?;
        u32::try_from(i).map_err(|_| self.corrupt(format!("column {name} is out of range ({i})")))
    }

    /// A JSON text column decoded as `T` (absent = `None`).
    pub fn opt_json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StateError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| self.corrupt(format!("column {name} is not the expected JSON: {e}"))),
        }
    }

    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, StateError> {
        self.opt_json(name)?
            .ok_or_else(|| self.corrupt(format!("column {name} is missing")))
    }
}

/// `i64` for an INTEGER column, or `Invalid` naming the field.
pub(super) fn to_i64(field: &str, v: u64) -> Result<i64, StateError> {
    i64::try_from(v).map_err(|_| {
        StateError::Invalid(format!(
            "{field} = {v} is above {} and cannot be stored",
            i64::MAX
        ))
    })
}

/// A JSON text cell.
pub(super) fn json_cell(name: &str, v: &impl serde::Serialize) -> Result<Cell, StateError> {
    let text = serde_json::to_string(v)
        .map_err(|e| StateError::Invalid(format!("{name} cannot be encoded as JSON: {e}")))?;
    Ok(Cell::new(name, text))
}
