//! Byte helpers shared by every on-disk encoding (rows, metadata, log frames, checkpoint
//! state): varints, length-prefixed bytes, and a bounds-checked reader that turns truncated or
//! corrupt input into a `StoreError` instead of a panic.

use super::StoreError;

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub(super) struct Reader<'a> {
    pub(super) b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Reader { b }
    }

    pub(super) fn corrupt(&self) -> StoreError {
        StoreError("corrupt record in storage".to_owned())
    }

    pub(super) fn u8(&mut self) -> Result<u8, StoreError> {
        let (&x, rest) = self.b.split_first().ok_or_else(|| self.corrupt())?;
        self.b = rest;
        Ok(x)
    }

    pub(super) fn u32(&mut self) -> Result<u32, StoreError> {
        let (n, rest) = self
            .b
            .split_first_chunk::<4>()
            .ok_or_else(|| self.corrupt())?;
        self.b = rest;
        Ok(u32::from_le_bytes(*n))
    }

    pub(super) fn i64(&mut self) -> Result<i64, StoreError> {
        let (n, rest) = self
            .b
            .split_first_chunk::<8>()
            .ok_or_else(|| self.corrupt())?;
        self.b = rest;
        Ok(i64::from_le_bytes(*n))
    }

    pub(super) fn varint(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = self.u8()?;
            v |= u64::from(x & 0x7F) << shift;
            if x & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.corrupt())
    }

    /// A length that must fit in the remaining input (guards allocations on corrupt data).
    pub(super) fn len(&mut self) -> Result<usize, StoreError> {
        let n = self.varint()?;
        if n > self.b.len() as u64 {
            return Err(self.corrupt());
        }
        Ok(n as usize)
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.len()?;
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    pub(super) fn string(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt())
    }

    pub(super) fn finish(&self) -> Result<(), StoreError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt())
        }
    }
}
