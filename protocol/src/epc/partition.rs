//! Partition tables (TDS §14.5, one per scheme family), as also machine-readable in GS1's Tag Data Translation
//! files (ref.gs1.org/standards/tdt/2.0.0/<SCHEME>.xml: one `option` per company prefix length).
//!
//! The 3-bit partition value P says how the bits after it split between the GS1 Company Prefix and the next field.
//! In every table the company prefix has 12 - P digits; P = 7 is invalid. The second field is decimal with a fixed
//! number of digits (item reference with indicator, serial reference with extension digit, location reference,
//! asset type), or an integer (GIAI-96), or a 7-bit string with a maximum length (GIAI-202).

/// One row: the company prefix's bits and digits, the other field's bits and digits (or characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub cp_bits: u32,
    pub cp_digits: usize,
    pub other_bits: u32,
    pub other_digits: usize,
}

const fn row(cp_bits: u32, cp_digits: usize, other_bits: u32, other_digits: usize) -> Row {
    Row {
        cp_bits,
        cp_digits,
        other_bits,
        other_digits,
    }
}

/// A partition table, indexed by partition value 0..=6.
pub(crate) type Table = [Row; 7];

/// SGTIN-96 and SGTIN-198 (TDS SGTIN partition table): 44 bits and 13 digits for company prefix plus indicator/item reference.
pub(crate) const SGTIN: Table = [
    row(40, 12, 4, 1),
    row(37, 11, 7, 2),
    row(34, 10, 10, 3),
    row(30, 9, 14, 4),
    row(27, 8, 17, 5),
    row(24, 7, 20, 6),
    row(20, 6, 24, 7),
];

/// SSCC-96 (TDS SSCC partition table): 58 bits and 17 digits for company prefix plus extension digit/serial reference.
pub(crate) const SSCC: Table = [
    row(40, 12, 18, 5),
    row(37, 11, 21, 6),
    row(34, 10, 24, 7),
    row(30, 9, 28, 8),
    row(27, 8, 31, 9),
    row(24, 7, 34, 10),
    row(20, 6, 38, 11),
];

/// SGLN-96 and SGLN-195 (TDS SGLN partition table): 41 bits and 12 digits for company prefix plus location reference.
pub(crate) const SGLN: Table = [
    row(40, 12, 1, 0),
    row(37, 11, 4, 1),
    row(34, 10, 7, 2),
    row(30, 9, 11, 3),
    row(27, 8, 14, 4),
    row(24, 7, 17, 5),
    row(20, 6, 21, 6),
];

/// GRAI-96 and GRAI-170 (TDS GRAI partition table): 44 bits and 12 digits for company prefix plus asset type.
pub(crate) const GRAI: Table = [
    row(40, 12, 4, 0),
    row(37, 11, 7, 1),
    row(34, 10, 10, 2),
    row(30, 9, 14, 3),
    row(27, 8, 17, 4),
    row(24, 7, 20, 5),
    row(20, 6, 24, 6),
];

/// GIAI-96 (TDS GIAI-96 partition table): 82 bits for company prefix plus an integer asset reference. The digit column is the
/// most digits the reference's bits can hold; the bit count is the binding limit (TDT: decimalMaximum 2^bits - 1).
pub(crate) const GIAI96: Table = [
    row(40, 12, 42, 13),
    row(37, 11, 45, 14),
    row(34, 10, 48, 15),
    row(30, 9, 52, 16),
    row(27, 8, 55, 17),
    row(24, 7, 58, 18),
    row(20, 6, 62, 19),
];

/// GIAI-202 (TDS GIAI-202 partition table): 188 bits for company prefix plus a 7-bit string of at most 30 - (prefix digits)
/// characters (GIAI is at most 30 characters in all).
pub(crate) const GIAI202: Table = [
    row(40, 12, 148, 18),
    row(37, 11, 151, 19),
    row(34, 10, 154, 20),
    row(30, 9, 158, 21),
    row(27, 8, 161, 22),
    row(24, 7, 164, 23),
    row(20, 6, 168, 24),
];

/// The row for partition value `p`, or `None` for 7 (invalid).
pub(crate) fn lookup(table: &Table, p: u8) -> Option<Row> {
    table.get(usize::from(p)).copied()
}

/// The partition value for a company prefix of `digits` digits, if it is 6 to 12.
pub(crate) fn for_prefix_digits(digits: usize) -> Option<u8> {
    (6..=12).contains(&digits).then(|| (12 - digits) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_consistent() {
        // (table, company prefix + other bits, company prefix + other digits or None when not fixed)
        let tables: [(&Table, u32, Option<usize>); 6] = [
            (&SGTIN, 44, Some(13)),
            (&SSCC, 58, Some(17)),
            (&SGLN, 41, Some(12)),
            (&GRAI, 44, Some(12)),
            (&GIAI96, 82, None),
            (&GIAI202, 188, Some(30)),
        ];
        let cp_bits = [40, 37, 34, 30, 27, 24, 20];
        for (t, bits, digits) in tables {
            for (p, r) in t.iter().enumerate() {
                assert_eq!(r.cp_digits, 12 - p);
                assert_eq!(r.cp_bits, cp_bits[p]);
                // The company prefix bits hold every value of its digits.
                assert!(10u64.pow(r.cp_digits as u32) <= 1 << r.cp_bits);
                assert_eq!(r.cp_bits + r.other_bits, bits);
                if let Some(d) = digits {
                    assert_eq!(r.cp_digits + r.other_digits, d);
                }
                assert_eq!(for_prefix_digits(r.cp_digits), Some(p as u8));
            }
            assert_eq!(lookup(t, 7), None);
        }
        assert_eq!(for_prefix_digits(5), None);
        assert_eq!(for_prefix_digits(13), None);
    }
}
