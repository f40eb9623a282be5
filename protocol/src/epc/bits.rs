//! Big-endian bit fields: EPC bit 0 is the most significant bit of the first byte (TDS §15.1, "bit 20h" onward).

/// Reads fields of up to 64 bits. Reading past the end yields zeros: callers check the length first, and a zero is
/// safer than a panic if one ever does not.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// The next `n` bits (at most 64) as an unsigned integer.
    pub(crate) fn read(&mut self, n: u32) -> u64 {
        debug_assert!(n <= 64);
        let mut v = 0u64;
        for _ in 0..n.min(64) {
            let byte = self.data.get(self.pos / 8).copied().unwrap_or(0);
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u64::from(bit);
            self.pos += 1;
        }
        v
    }
}

/// Appends fields; [`BitWriter::into_words`] pads to whole 16-bit words as a Gen2 EPC bank stores them.
pub(crate) struct BitWriter {
    out: Vec<u8>,
    len: usize,
}

impl BitWriter {
    pub(crate) fn new() -> Self {
        BitWriter {
            out: Vec::with_capacity(26),
            len: 0,
        }
    }

    /// Appends the low `n` bits (at most 64) of `value`, most significant first.
    pub(crate) fn push(&mut self, value: u64, n: u32) {
        for i in (0..n.min(64)).rev() {
            if self.len.is_multiple_of(8) {
                self.out.push(0);
            }
            if (value >> i) & 1 == 1 {
                if let Some(last) = self.out.last_mut() {
                    *last |= 0x80 >> (self.len % 8);
                }
            }
            self.len += 1;
        }
    }

    pub(crate) fn push_zeros(&mut self, mut n: u32) {
        while n > 0 {
            let k = n.min(64);
            self.push(0, k);
            n -= k;
        }
    }

    /// The bytes written so far, the last one zero-padded.
    #[cfg(test)]
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// The bytes written so far, zero-padded to a whole number of 16-bit words.
    pub(crate) fn into_words(mut self) -> Vec<u8> {
        if !self.out.len().is_multiple_of(2) {
            self.out.push(0);
        }
        self.out
    }
}

/// True when every bit of `data` from bit `from` on is zero.
pub(crate) fn zero_from(data: &[u8], from: usize) -> bool {
    let first = from / 8;
    let Some(&partial) = data.get(first) else {
        return true;
    };
    let keep = from % 8;
    // The bits of the first byte at or after `from`.
    let mask = if keep == 0 { 0xFF } else { 0xFFu8 >> keep };
    partial & mask == 0 && data[first + 1..].iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let mut w = BitWriter::new();
        w.push(0x30, 8);
        w.push(3, 3);
        w.push(5, 3);
        w.push(614141, 24);
        w.push(812345, 20);
        w.push(6789, 38);
        let bytes = w.into_words();
        // TDS Appendix E: urn:epc:tag:sgtin-96:3.0614141.812345.6789.
        assert_eq!(
            bytes,
            [0x30, 0x74, 0x25, 0x7B, 0xF7, 0x19, 0x4E, 0x40, 0x00, 0x00, 0x1A, 0x85]
        );
        let mut r = BitReader::new(&bytes);
        let fields: Vec<u64> = [8, 3, 3, 24, 20, 38].iter().map(|&n| r.read(n)).collect();
        assert_eq!(fields, [0x30, 3, 5, 614141, 812345, 6789]);
        assert_eq!(r.read(8), 0, "past the end reads zeros");
    }

    #[test]
    fn words() {
        let mut w = BitWriter::new();
        w.push(1, 1);
        assert_eq!(w.into_words(), [0x80, 0x00]);
        let mut w = BitWriter::new();
        w.push(u64::MAX, 64);
        w.push_zeros(70);
        assert_eq!(w.into_words().len(), 18);
    }

    #[test]
    fn zero_tail() {
        let cases: &[(&[u8], usize, bool)] = &[
            (&[0xFF, 0x00], 8, true),
            (&[0xFF, 0x01], 8, false),
            (&[0xFC], 6, true),
            (&[0xFE], 6, false),
            (&[0xFF], 8, true),
            (&[], 0, true),
            (&[0x01], 0, false),
            (&[0xFF, 0xC0, 0x00], 10, true),
            (&[0xFF, 0xE0, 0x00], 10, false),
        ];
        for &(data, from, want) in cases {
            assert_eq!(zero_from(data, from), want, "{data:02x?} from {from}");
        }
    }
}
