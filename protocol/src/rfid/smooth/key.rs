//! EPC keys that need no heap allocation for any EPC the Tag Data Standard defines, and the hasher of the tag
//! table.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash, Hasher};

/// EPCs up to this many bytes live inline; every TDS 1.x scheme fits (the longest, GIAI-202, is 26 bytes).
pub(crate) const INLINE: usize = 30;

/// The longest EPC a Gen2 tag can hold: the PC word's length field counts at most 31 words.
pub const MAX_EPC_BYTES: usize = 62;

/// The bytes of one EPC, used as the tag-table key and in audit entries.
///
/// Hashes and compares exactly like `[u8]`, so the table is searched with `&read.epc[..]` and no key is built
/// for a read of a tag already tracked.
#[derive(Clone)]
pub(crate) enum EpcKey {
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    /// Longer than [`INLINE`]: rare, one allocation per new pass (and per audited read).
    Heap(Box<[u8]>),
}

impl EpcKey {
    pub(crate) const EMPTY: EpcKey = EpcKey::Inline {
        len: 0,
        bytes: [0; INLINE],
    };

    /// A key for `epc`, truncated to [`MAX_EPC_BYTES`] (callers reject longer EPCs before they matter).
    pub(crate) fn new(epc: &[u8]) -> Self {
        let epc = &epc[..epc.len().min(MAX_EPC_BYTES)];
        if epc.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..epc.len()].copy_from_slice(epc);
            EpcKey::Inline {
                len: epc.len() as u8,
                bytes,
            }
        } else {
            EpcKey::Heap(epc.into())
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            EpcKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            EpcKey::Heap(b) => b,
        }
    }

    /// Heap bytes this key owns (0 for inline keys).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            EpcKey::Inline { .. } => 0,
            EpcKey::Heap(b) => b.len(),
        }
    }
}

impl PartialEq for EpcKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for EpcKey {}

impl Hash for EpcKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Exactly as `[u8]` hashes, which `Borrow<[u8]>` requires.
        self.as_bytes().hash(state)
    }
}

impl Borrow<[u8]> for EpcKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Builds [`FoldHasher`]s; fixed seed, so runs are reproducible.
#[derive(Clone, Copy, Default, Debug)]
pub struct FoldBuild;

impl BuildHasher for FoldBuild {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        FoldHasher { h: SEED }
    }
}

const SEED: u64 = 0x243F_6A88_85A3_08D3;
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// A small, fast hasher for EPC bytes: each 8-byte word is mixed in with a folded 64×64→128-bit multiply.
///
/// Why not FxHash: Fx's last step is a plain multiply, whose low bits (the ones a hash table indexes by) depend
/// only on the low bits of the input, and an EPC's varying serial often sits in the high bytes of a word, so
/// thousands of tags would share a handful of buckets. Folding the high half of the product back in mixes every
/// input bit into the low bits. Not keyed: it is not meant to resist crafted collisions (a hostile tag emulator
/// at the dock door); the `max_tags` bound caps what such an attack costs.
#[derive(Clone, Copy, Debug)]
pub struct FoldHasher {
    h: u64,
}

impl FoldHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        let p = u128::from(self.h ^ word) * u128::from(K);
        self.h = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Zero padding is unambiguous: `[u8]` hashes its length first.
            let mut w = [0; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn key_round_trips_and_hashes_like_a_slice() {
        for len in [0, 1, 12, 30, 31, 62] {
            let epc: Vec<u8> = (0..len as u8).collect();
            let key = EpcKey::new(&epc);
            assert_eq!(key.as_bytes(), &epc[..], "len {len}");
            assert_eq!(key.heap_bytes(), if len > INLINE { len } else { 0 });
            let b = FoldBuild;
            assert_eq!(b.hash_one(&key), b.hash_one(&epc[..]), "len {len}");
        }
        assert_eq!(EpcKey::new(&[7; 80]).as_bytes().len(), MAX_EPC_BYTES);
    }

    /// SSCC-96 tags of one company differ only in the serial reference, in the middle bytes: the low bits of the
    /// hash (the bucket index) must still spread them.
    #[test]
    fn low_bits_spread_when_only_middle_bytes_vary() {
        let b = FoldBuild;
        let buckets: HashSet<u64> = (0..4096u32)
            .map(|i| {
                let mut epc = [0x31, 0x14, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0];
                epc[5..8].copy_from_slice(&i.to_be_bytes()[1..]);
                b.hash_one(&epc[..]) & 4095
            })
            .collect();
        // A uniform hash fills about 1 - 1/e of 4096 buckets with 4096 keys (~2589).
        assert!(buckets.len() > 2400, "{} buckets used", buckets.len());
    }
}
