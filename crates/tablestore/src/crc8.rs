//! CRC-8 as PlainBuffer uses it (reference §3.7): polynomial 0x07, MSB-first, init 0, no
//! reflection, no final XOR (catalogue name CRC-8/SMBUS), computed by the `crc` crate with its
//! slicing-by-16 table (`Crc<u8, Table<16>>`).
//!
//! Why the crate and not our previous hand-written slicing-by-8 table: measured with
//! `cargo test --release -p tsmigrate-tablestore --lib crc8 -- --ignored --nocapture` (the
//! `crc8_benchmark` test below; a 4 KiB pseudo-random row buffer, best of 5 per run, range over
//! 3 runs on the 2-core dev machine), in ns/byte:
//!
//! | input                              | hand-written | crc `Table<16>` | crc `Table<1>` |
//! |------------------------------------|--------------|-----------------|----------------|
//! | the whole 4 KiB at once            | 0.44–0.48    | 0.20–0.22       | 1.82–1.93      |
//! | in encoder-sized pieces (1–120 B)  | 0.60–0.63    | 0.64–0.68       | 1.97–2.01      |
//! | byte by byte (`crc8_byte`)         | 1.96–2.03    | 1.99–2.05       | 1.92–2.04      |
//!
//! `Table<16>` is about twice as fast on long payloads (strings and blobs are most of the bytes
//! PlainBuffer checksums) and within ~7% on short pieces and single bytes, so we use the crate
//! (the rule: the crate unless ours is clearly, over ~10%, faster). The crate's default
//! `Crc::<u8>::new` (`Table<1>`, one lookup per byte) is 4x slower on long payloads: the
//! `Table<16>` parameter is what makes the difference. The benchmark keeps the hand-written
//! implementation as its baseline, and `crc` is a normal dependency (crc + crc-catalog, no
//! other dependencies).

use crc::{Crc, Table, CRC_8_SMBUS};

/// CRC-8/SMBUS, slicing-by-16 (a 16 x 256-byte table built at compile time).
static CRC8: Crc<u8, Table<16>> = Crc::<u8, Table<16>>::new(&CRC_8_SMBUS);

/// Lookup table: `TABLE[i]` is the CRC of the single byte `i`.
pub const TABLE: [u8; 256] = Crc::<u8, Table<1>>::new(&CRC_8_SMBUS).table()[0];

/// Feeds one byte.
#[inline(always)]
pub fn crc8_byte(crc: u8, byte: u8) -> u8 {
    crc8_update(crc, &[byte])
}

/// Feeds a byte slice.
#[inline]
pub fn crc8_update(crc: u8, bytes: &[u8]) -> u8 {
    let mut digest = CRC8.digest_with_initial(crc);
    digest.update(bytes);
    digest.finalize()
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

    /// The previous hand-written implementation (slicing-by-8), the benchmark's baseline.
    mod hand_written {
        const TABLE: [u8; 256] = make_table();

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

        #[inline(always)]
        pub(super) fn crc8_byte(crc: u8, byte: u8) -> u8 {
            TABLE[(crc ^ byte) as usize]
        }

        #[inline]
        pub(super) fn crc8_update(mut crc: u8, bytes: &[u8]) -> u8 {
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
    }

    #[test]
    #[ignore = "benchmark: run in release with --ignored --nocapture"]
    fn crc8_benchmark() {
        use std::hint::black_box;
        use std::time::Instant;

        fn ns_per_byte(bytes: usize, iters: u32, mut f: impl FnMut() -> u8) -> f64 {
            for _ in 0..iters / 10 {
                black_box(f());
            }
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(f());
                }
                best = best.min(t.elapsed().as_nanos() as f64 / f64::from(iters) / bytes as f64);
            }
            best
        }

        // A few-KB row buffer, and the piece sizes the encoder feeds (names, 8-byte values,
        // type and op bytes, strings).
        let buf: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let cuts = [3usize, 1, 8, 5, 1, 40, 2, 1, 8, 120, 1, 6];
        let pieces = |f: &dyn Fn(u8, &[u8]) -> u8| {
            let (mut crc, mut i, mut k) = (0u8, 0usize, 0usize);
            while i < buf.len() {
                let n = cuts[k % cuts.len()].min(buf.len() - i);
                crc = f(crc, &buf[i..i + n]);
                i += n;
                k += 1;
            }
            crc
        };
        let table1 = Crc::<u8>::new(&CRC_8_SMBUS);
        assert_eq!(hand_written::crc8_update(0, &buf), crc8(&buf));
        assert_eq!(table1.checksum(&buf), crc8(&buf));

        let n = buf.len();
        let rows = [
            (
                "whole 4 KiB",
                ns_per_byte(n, 100_000, || hand_written::crc8_update(0, black_box(&buf))),
                ns_per_byte(n, 100_000, || crc8_update(0, black_box(&buf))),
                ns_per_byte(n, 100_000, || table1.checksum(black_box(&buf))),
            ),
            (
                "4 KiB in encoder pieces",
                ns_per_byte(n, 50_000, || {
                    pieces(&|c, b| hand_written::crc8_update(c, black_box(b)))
                }),
                ns_per_byte(n, 50_000, || pieces(&|c, b| crc8_update(c, black_box(b)))),
                ns_per_byte(n, 50_000, || {
                    pieces(&|c, b| {
                        let mut d = table1.digest_with_initial(c);
                        d.update(black_box(b));
                        d.finalize()
                    })
                }),
            ),
            (
                "4 KiB byte by byte",
                ns_per_byte(n, 20_000, || {
                    buf.iter()
                        .fold(0, |c, &b| hand_written::crc8_byte(c, black_box(b)))
                }),
                ns_per_byte(n, 20_000, || {
                    buf.iter().fold(0, |c, &b| crc8_byte(c, black_box(b)))
                }),
                ns_per_byte(n, 20_000, || {
                    buf.iter().fold(0, |c, &b| {
                        let mut d = table1.digest_with_initial(c);
                        d.update(&[black_box(b)]);
                        d.finalize()
                    })
                }),
            ),
        ];
        println!("ns/byte                    hand-written  crc Table<16>  crc Table<1>");
        for (what, hand, t16, t1) in rows {
            println!("{what:<26} {hand:>12.3}  {t16:>13.3}  {t1:>12.3}");
        }
    }
}
