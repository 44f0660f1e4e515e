//! CRC-8 as PlainBuffer uses it (reference §3.7): polynomial 0x07, MSB-first, init 0, no
//! reflection, no final XOR (catalogue name CRC-8/SMBUS). Table-driven, slicing-by-8 for long
//! inputs (string/blob payloads dominate the bytes PlainBuffer checksums).

/// Lookup table: `TABLE[i]` is the CRC of the single byte `i`.
pub const TABLE: [u8; 256] = make_table();

const fn make_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u8;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x80 != 0 {
                (c << 1) ^ 0x07
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// `SLICE8[k][i]`: CRC of byte `i` followed by `k` zero bytes. CRC is linear, so 8 bytes fold
/// into 8 independent lookups instead of a chain of 8 dependent ones.
const SLICE8: [[u8; 256]; 8] = make_slice8();

const fn make_slice8() -> [[u8; 256]; 8] {
    let mut t = [[0u8; 256]; 8];
    t[0] = TABLE;
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            t[k][i] = TABLE[t[k - 1][i] as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// Feeds one byte.
#[inline(always)]
pub fn crc8_byte(crc: u8, byte: u8) -> u8 {
    TABLE[(crc ^ byte) as usize]
}

/// Feeds a byte slice.
#[inline]
pub fn crc8_update(mut crc: u8, bytes: &[u8]) -> u8 {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        crc = SLICE8[7][(crc ^ c[0]) as usize]
            ^ SLICE8[6][c[1] as usize]
            ^ SLICE8[5][c[2] as usize]
            ^ SLICE8[4][c[3] as usize]
            ^ SLICE8[3][c[4] as usize]
            ^ SLICE8[2][c[5] as usize]
            ^ SLICE8[1][c[6] as usize]
            ^ SLICE8[0][c[7] as usize];
    }
    chunks.remainder().iter().fold(crc, |c, &b| crc8_byte(c, b))
}

/// Feeds an int32 as its 4 little-endian bytes.
#[inline]
pub fn crc8_i32(crc: u8, v: i32) -> u8 {
    crc8_update(crc, &v.to_le_bytes())
}

/// Feeds an int64 as its 8 little-endian bytes.
#[inline]
pub fn crc8_i64(crc: u8, v: i64) -> u8 {
    crc8_update(crc, &v.to_le_bytes())
}

/// CRC of a whole slice, starting from 0.
#[inline]
pub fn crc8(bytes: &[u8]) -> u8 {
    crc8_update(0, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc8(b"123456789"), 0xF4);
    }

    #[test]
    fn table_prefix_matches_reference() {
        assert_eq!(
            &TABLE[..10],
            &[0x00, 0x07, 0x0e, 0x09, 0x1c, 0x1b, 0x12, 0x15, 0x38, 0x3f]
        );
    }

    #[test]
    fn incremental_equals_whole() {
        let data = b"hello plainbuffer";
        let (a, b) = data.split_at(5);
        assert_eq!(crc8_update(crc8(a), b), crc8(data));
        assert_eq!(crc8_i32(0, 0x0403_0201), crc8(&[1, 2, 3, 4]));
        assert_eq!(crc8_i64(0, 1), crc8(&[1, 0, 0, 0, 0, 0, 0, 0]));
    }

    #[test]
    fn slicing_matches_bytewise() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in [0u8, 1, 0x80, 0xff] {
            for len in 0..data.len().min(40) {
                let bytewise = data[..len].iter().fold(start, |c, &b| crc8_byte(c, b));
                assert_eq!(crc8_update(start, &data[..len]), bytewise);
            }
            let bytewise = data.iter().fold(start, |c, &b| crc8_byte(c, b));
            assert_eq!(crc8_update(start, &data), bytewise);
        }
    }

    #[test]
    fn row_crc_of_first_vector() {
        // Reference §3.10: row crc = crc8 over `4c 00`.
        assert_eq!(crc8(&[0x4c, 0x00]), 0xa7);
    }
}
