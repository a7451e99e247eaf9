//! Original ids to dense codes, a block of values at a time: the hash encoder behind the
//! streaming interaction reader (`tacitrec.io.read_interactions`).
//!
//! An [`IdTable`] holds the distinct ids seen so far, of one kind: 64-bit integers, or byte
//! strings given as Arrow's string layout (`offsets` into one `data` buffer, read in place).
//! Each new id gets the next code (order of first appearance); every encoded value adds one to
//! its id's count, so ids that only appear in a dictionary but in no row can be told apart.
//! [`IdTable::sorted_codes`] then numbers the counted ids in sorted order (integers by value,
//! strings by bytes, which for UTF-8 is code-point order) for the reader's final mapping.
//!
//! The table is open addressing with linear probing over 16-byte slots (at most 3/4 full) that
//! hold an integer id itself, or a string id's place in the arena (its bytes copied there once)
//! with more bits of its hash, so that a lookup touches one slot and, for strings, the bytes it
//! compares. Memory: 37 to 59 bytes per distinct integer id (key, count, 4/3 to 8/3 slots),
//! about 24 more plus the id's bytes per string.

use crate::error::{try_with_capacity, try_zeroed, Error, Result};
use crate::simd::prefetch;

/// The most distinct ids one table holds (codes are `int32` at the boundary).
pub const MAX_IDS: usize = i32::MAX as usize;

const EMPTY: u32 = u32::MAX;
/// Whether `n` ids fit `slots` slots: at most 3/4 full (linear probing then looks at 2.5 slots
/// on average for an id it finds, most often in the same cache line).
#[inline(always)]
fn fits(n: usize, slots: usize) -> bool {
    4 * n <= 3 * slots
}

/// Values hashed together, before their lookups.
const BLOCK: usize = 256;
/// How many lookups ahead a value's slot is prefetched: the cache misses of that many lookups
/// overlap instead of following one another.
const AHEAD_SLOT: usize = 16;
/// How many lookups ahead the bytes a string's slot points to are prefetched (its slot was
/// prefetched `AHEAD_SLOT - AHEAD_KEY` lookups before, so it is read from cache).
const AHEAD_KEY: usize = 8;
/// How many values ahead an id's count is prefetched.
const AHEAD_COUNT: usize = 16;
/// String ids at least this long keep their length in the arena's offsets only.
const LONG_KEY: usize = 0xFFFF;
const START_MASK: u64 = (1 << 48) - 1;

/// One entry of the hash table: an integer id itself, or a string id's start in the arena
/// (low 48 bits) with its length (high 16 bits, saturated) and 32 more bits of its hash.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u64,
    code: u32,
    tag: u32,
}

impl Slot {
    const EMPTY: Slot = Slot {
        key: 0,
        code: EMPTY,
        tag: 0,
    };
}
const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline(always)]
fn mix(h: u64) -> u64 {
    let h = (h ^ (h >> 32)).wrapping_mul(K);
    h ^ (h >> 29)
}

#[inline(always)]
fn step(h: u64, w: u64) -> u64 {
    (h.rotate_left(5) ^ w).wrapping_mul(K)
}

/// The 8 bytes of `b` from `i` (little-endian): one unaligned load.
#[inline(always)]
fn word(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// The 4 bytes of `b` from `i` (little-endian).
#[inline(always)]
fn half_word(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i..i + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// A hash of a byte string: its length, then its 8-byte words, the last one read so that it
/// ends with the string (overlapping the one before); strings under 8 bytes in one word made of
/// two overlapping halves (or of their first, middle and last byte under 4). The length makes
/// the overlaps unambiguous. No copies and no calls: a string of 9 to 16 bytes takes two loads.
#[inline(always)]
fn hash_bytes(b: &[u8]) -> u64 {
    let n = b.len();
    let mut h = (n as u64).wrapping_mul(K);
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            h = step(h, word(b, i));
            i += 8;
        }
        h = step(h, word(b, n - 8));
    } else if n >= 4 {
        h = step(h, half_word(b, 0) | (half_word(b, n - 4) << 32));
    } else if n > 0 {
        h = step(
            h,
            u64::from(b[0]) | (u64::from(b[n / 2]) << 8) | (u64::from(b[n - 1]) << 16),
        );
    }
    mix(h)
}

/// `a == b`, without a call for the common id lengths (8 to 16 bytes: two loads each).
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8)
    } else {
        a == b
    }
}

/// The keys of a table.
#[derive(Debug, Clone)]
enum Keys {
    Ints(Vec<i64>),
    /// The bytes of every id back to back; id `c` is `arena[starts[c]..starts[c + 1]]`, and
    /// `hashes[c]` its hash (kept to grow the table without rehashing the bytes).
    Bytes {
        arena: Vec<u8>,
        starts: Vec<u64>,
        hashes: Vec<u64>,
    },
}

/// The distinct ids seen so far, their codes (order of first appearance) and counts.
#[derive(Debug, Clone)]
pub struct IdTable {
    keys: Keys,
    counts: Vec<i64>,
    slots: Vec<Slot>,
    mask: usize,
}

/// The kind of ids a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Ints,
    Bytes,
}

impl IdTable {
    pub fn new(kind: IdKind) -> Self {
        let keys = match kind {
            IdKind::Ints => Keys::Ints(Vec::new()),
            IdKind::Bytes => Keys::Bytes {
                arena: Vec::new(),
                starts: vec![0],
                hashes: Vec::new(),
            },
        };
        IdTable {
            keys,
            counts: Vec::new(),
            slots: vec![Slot::EMPTY; 1024],
            mask: 1023,
        }
    }

    pub fn kind(&self) -> IdKind {
        match self.keys {
            Keys::Ints(_) => IdKind::Ints,
            Keys::Bytes { .. } => IdKind::Bytes,
        }
    }

    /// The number of distinct ids.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// How many encoded values each id had (by code).
    pub fn counts(&self) -> &[i64] {
        &self.counts
    }

    /// The integer ids by code (empty for a table of strings).
    pub fn int_keys(&self) -> &[i64] {
        match &self.keys {
            Keys::Ints(k) => k,
            Keys::Bytes { .. } => &[],
        }
    }

    /// The string ids by code as Arrow's layout: `(offsets, bytes)`, id `c` is
    /// `bytes[offsets[c]..offsets[c + 1]]` (empty for a table of integers).
    pub fn byte_keys(&self) -> (&[u64], &[u8]) {
        match &self.keys {
            Keys::Ints(_) => (&[], &[]),
            Keys::Bytes { arena, starts, .. } => (starts, arena),
        }
    }

    fn wrong_kind(&self, what: &str) -> Error {
        let (has, given) = match self.kind() {
            IdKind::Ints => ("integer", "strings"),
            IdKind::Bytes => ("string", "integers"),
        };
        Error::invalid(
            what,
            format!("holds {given}, but the ids seen before are {has}s (every part of a data set must give ids one type)"),
        )
    }

    /// Doubles the slots when a new id would make them more than half full.
    fn reserve_one(&mut self, what: &str) -> Result<()> {
        let n = self.counts.len();
        if n >= MAX_IDS {
            return Err(Error::invalid(
                what,
                format!("holds more than {MAX_IDS} distinct ids"),
            ));
        }
        if fits(n + 1, self.slots.len()) {
            return Ok(());
        }
        let size = self.slots.len() * 2;
        let mut slots = try_with_capacity::<Slot>(size, "the id hash table", || {
            format!("{n} distinct ids in {what}")
        })?;
        slots.resize(size, Slot::EMPTY);
        let mask = size - 1;
        for slot in self.slots.iter().filter(|s| s.code != EMPTY) {
            let h = match &self.keys {
                Keys::Ints(_) => mix(slot.key),
                Keys::Bytes { hashes, .. } => hashes[slot.code as usize],
            };
            let mut s = (h as usize) & mask;
            while slots[s].code != EMPTY {
                s = (s + 1) & mask;
            }
            slots[s] = *slot;
        }
        self.slots = slots;
        self.mask = mask;
        Ok(())
    }

    #[inline]
    fn code_of_int(&mut self, key: i64, h: u64, what: &str) -> Result<u32> {
        let mut s = (h as usize) & self.mask;
        loop {
            let slot = self.slots[s];
            if slot.code == EMPTY {
                break;
            }
            if slot.key == key as u64 {
                return Ok(slot.code);
            }
            s = (s + 1) & self.mask;
        }
        if !fits(self.counts.len() + 1, self.slots.len()) || self.counts.len() >= MAX_IDS {
            self.reserve_one(what)?;
            return self.code_of_int(key, h, what);
        }
        let code = self.counts.len() as u32;
        if let Keys::Ints(k) = &mut self.keys {
            k.push(key);
        }
        self.counts.push(0);
        self.slots[s] = Slot {
            key: key as u64,
            code,
            tag: 0,
        };
        Ok(code)
    }

    #[inline]
    fn code_of_bytes(&mut self, key: &[u8], h: u64, what: &str) -> Result<u32> {
        let tag = (h >> 32) as u32;
        let short = key.len().min(LONG_KEY) as u64;
        let mut s = (h as usize) & self.mask;
        loop {
            let slot = self.slots[s];
            if slot.code == EMPTY {
                break;
            }
            // the slot holds the id's start in the arena (low 48 bits) and its length (high
            // 16, saturated): one cache line to reject, one more to compare the bytes
            if slot.tag == tag && slot.key >> 48 == short {
                if let Keys::Bytes { arena, starts, .. } = &self.keys {
                    let start = (slot.key & START_MASK) as usize;
                    let end = if short < LONG_KEY as u64 {
                        start + short as usize
                    } else {
                        starts[slot.code as usize + 1] as usize
                    };
                    if same_bytes(&arena[start..end], key) {
                        return Ok(slot.code);
                    }
                }
            }
            s = (s + 1) & self.mask;
        }
        if !fits(self.counts.len() + 1, self.slots.len()) || self.counts.len() >= MAX_IDS {
            self.reserve_one(what)?;
            return self.code_of_bytes(key, h, what);
        }
        let code = self.counts.len() as u32;
        let mut at = 0u64;
        if let Keys::Bytes {
            arena,
            starts,
            hashes,
        } = &mut self.keys
        {
            at = arena.len() as u64;
            if at + key.len() as u64 > START_MASK {
                return Err(Error::invalid(
                    what,
                    "holds more than 2^48 bytes of distinct ids",
                ));
            }
            arena
                .try_reserve(key.len())
                .map_err(|_| Error::out_of_memory::<u8>(key.len() as u128, "string ids", what))?;
            arena.extend_from_slice(key);
            starts.push(arena.len() as u64);
            hashes.push(h);
        }
        self.counts.push(0);
        self.slots[s] = Slot {
            key: at | (short << 48),
            code,
            tag,
        };
        Ok(code)
    }

    /// A hint to load the slot where a lookup of hash `h` starts.
    #[inline(always)]
    fn prefetch_slot(&self, h: u64) {
        prefetch(self.slots.as_ptr().wrapping_add((h as usize) & self.mask));
    }

    /// A hint to load the first bytes of the string id in the slot where a lookup of hash `h`
    /// starts (that slot itself prefetched before). No branch on the slot: an empty one points
    /// to the arena's start.
    #[inline(always)]
    fn prefetch_key(&self, h: u64) {
        if let Keys::Bytes { arena, .. } = &self.keys {
            let slot = self.slots[(h as usize) & self.mask];
            prefetch(
                arena
                    .as_ptr()
                    .wrapping_add((slot.key & START_MASK) as usize),
            );
        }
    }

    /// Adds one to the count of each code of `codes` (all below `len()`), the counts prefetched
    /// ahead.
    #[inline]
    fn count_codes(&mut self, codes: &[i32]) {
        for j in 0..codes.len() {
            if let Some(&c) = codes.get(j + AHEAD_COUNT) {
                prefetch(self.counts.as_ptr().wrapping_add(c as u32 as usize));
            }
            self.counts[codes[j] as u32 as usize] += 1;
        }
    }

    /// Frees the hash index (the slots): the ids, codes and counts stay, no more values can be
    /// encoded. For the reader's second pass, which needs only those.
    pub fn release_index(&mut self) {
        self.slots = Vec::new();
        self.mask = 0;
    }

    fn check_open(&self, what: &str) -> Result<()> {
        if self.slots.is_empty() {
            Err(Error::invalid(
                what,
                "the id table no longer encodes (its index was released)",
            ))
        } else {
            Ok(())
        }
    }

    /// Writes the code of every value of `values` into `out` (as long), counting each.
    pub fn encode_ints(&mut self, what: &str, values: &[i64], out: &mut [i32]) -> Result<()> {
        if self.kind() != IdKind::Ints {
            return Err(self.wrong_kind(what));
        }
        self.check_open(what)?;
        check_out(what, values.len(), out.len())?;
        let mut hashes = [0u64; BLOCK];
        for (vals, outs) in values.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
            for (h, &v) in hashes.iter_mut().zip(vals) {
                *h = mix(v as u64);
            }
            let hashes = &hashes[..vals.len()];
            for &h in hashes.iter().take(AHEAD_SLOT) {
                self.prefetch_slot(h);
            }
            for (j, (o, &v)) in outs.iter_mut().zip(vals).enumerate() {
                if let Some(&h) = hashes.get(j + AHEAD_SLOT) {
                    self.prefetch_slot(h);
                }
                *o = self.code_of_int(v, hashes[j], what)? as i32;
            }
            self.count_codes(outs);
        }
        Ok(())
    }

    /// Writes the code of each of the `offsets.len() - 1` strings of Arrow's layout (`offsets`
    /// into `data`) into `out`, counting each when `count`.
    pub fn encode_bytes<O: Offset>(
        &mut self,
        what: &str,
        offsets: &[O],
        data: &[u8],
        out: &mut [i32],
        count: bool,
    ) -> Result<()> {
        if self.kind() != IdKind::Bytes {
            return Err(self.wrong_kind(what));
        }
        self.check_open(what)?;
        let n = offsets.len().saturating_sub(1);
        check_out(what, n, out.len())?;
        let key_of = |j: usize| -> Result<&[u8]> {
            match (offsets[j].to_usize(), offsets[j + 1].to_usize()) {
                (Some(a), Some(b)) if a <= b && b <= data.len() => Ok(&data[a..b]),
                _ => Err(Error::invalid(
                    what,
                    format!("string offsets {j} and {} are not within the data", j + 1),
                )),
            }
        };
        let mut hashes = [0u64; BLOCK];
        for (g, outs) in out.chunks_mut(BLOCK).enumerate() {
            let first = g * BLOCK;
            for (k, h) in hashes.iter_mut().enumerate().take(outs.len()) {
                *h = hash_bytes(key_of(first + k)?);
            }
            let hashes = &hashes[..outs.len()];
            for &h in hashes.iter().take(AHEAD_SLOT) {
                self.prefetch_slot(h);
            }
            for (j, o) in outs.iter_mut().enumerate() {
                if let Some(&h) = hashes.get(j + AHEAD_SLOT) {
                    self.prefetch_slot(h);
                }
                if let Some(&h) = hashes.get(j + AHEAD_KEY) {
                    self.prefetch_key(h);
                }
                *o = self.code_of_bytes(key_of(first + j)?, hashes[j], what)? as i32;
            }
            if count {
                self.count_codes(outs);
            }
        }
        Ok(())
    }

    /// Writes `dict_codes[indices[j]]` into `out[j]` and counts it: the rows of a
    /// dictionary-encoded column whose dictionary was encoded (uncounted) into `dict_codes`.
    pub fn take_counted(
        &mut self,
        what: &str,
        dict_codes: &[i32],
        indices: &[i32],
        out: &mut [i32],
    ) -> Result<()> {
        check_out(what, indices.len(), out.len())?;
        for (o, &i) in out.iter_mut().zip(indices) {
            let c = usize::try_from(i)
                .ok()
                .and_then(|i| dict_codes.get(i))
                .copied()
                .ok_or_else(|| Error::out_of_range(what, i as i64, dict_codes.len()))?;
            let n = self.counts.len();
            let count = self
                .counts
                .get_mut(c as usize)
                .ok_or_else(|| Error::out_of_range(what, c as i64, n))?;
            *count += 1;
            *o = c;
        }
        Ok(())
    }

    /// The string ids of the codes `order` as NumPy's fixed-width strings (`<U{width}`): the
    /// code points of each, padded with zeros to `width` (the most code points of one id, at
    /// least 1). Built without a string object per id. An id that is not UTF-8, or ends with
    /// a NUL character (NumPy drops trailing NULs, so two ids would become one), is an error.
    pub fn utf32_keys(&self, what: &str, order: &[i64]) -> Result<(Vec<u32>, usize)> {
        let Keys::Bytes { arena, starts, .. } = &self.keys else {
            return Err(self.wrong_kind(what));
        };
        let key = |c: i64| -> Result<&str> {
            let c = usize::try_from(c)
                .ok()
                .filter(|&c| c < self.len())
                .ok_or_else(|| Error::out_of_range(what, c, self.len()))?;
            std::str::from_utf8(&arena[starts[c] as usize..starts[c + 1] as usize])
                .map_err(|_| Error::invalid(what, format!("id {c} is not UTF-8")))
        };
        let mut width = 1;
        for &c in order {
            let k = key(c)?;
            if k.ends_with('\0') {
                return Err(Error::invalid(
                    what,
                    "an id ends with a NUL character, which NumPy strings drop (two ids would \
                     become one): remove it",
                ));
            }
            width = width.max(k.chars().count());
        }
        let n = order.len().checked_mul(width).ok_or_else(|| {
            Error::out_of_memory::<u32>(order.len() as u128 * width as u128, "string ids", what)
        })?;
        let mut out =
            try_zeroed::<u32>(n, "string ids", || format!("{} ids of {what}", order.len()))?;
        for (row, &c) in out.chunks_mut(width).zip(order) {
            for (o, ch) in row.iter_mut().zip(key(c)?.chars()) {
                *o = ch as u32;
            }
        }
        Ok((out, width))
    }

    /// The counted ids (count > 0) in sorted order: `(order, rank)`, `order[r]` the code of the
    /// `r`-th smallest id and `rank[code]` its position (-1 for ids never counted).
    pub fn sorted_codes(&self) -> (Vec<i64>, Vec<i32>) {
        let mut order: Vec<i64> = (0..self.len() as i64)
            .filter(|&c| self.counts[c as usize] > 0)
            .collect();
        match &self.keys {
            Keys::Ints(k) => order.sort_unstable_by_key(|&c| k[c as usize]),
            Keys::Bytes { arena, starts, .. } => {
                let key =
                    |c: i64| &arena[starts[c as usize] as usize..starts[c as usize + 1] as usize];
                order.sort_unstable_by(|&a, &b| key(a).cmp(key(b)));
            }
        }
        let mut rank = vec![-1i32; self.len()];
        for (r, &c) in order.iter().enumerate() {
            rank[c as usize] = r as i32;
        }
        (order, rank)
    }
}

fn check_out(what: &str, n: usize, out: usize) -> Result<()> {
    if n == out {
        Ok(())
    } else {
        Err(Error::shape(&format!("{what} codes length"), n, out))
    }
}

/// Arrow's string offsets: `int32` (string) or `int64` (large_string).
pub trait Offset: Copy {
    fn to_usize(self) -> Option<usize>;
}

impl Offset for i32 {
    fn to_usize(self) -> Option<usize> {
        usize::try_from(self).ok()
    }
}

impl Offset for i64 {
    fn to_usize(self) -> Option<usize> {
        usize::try_from(self).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_codes_follow_first_appearance_and_count() {
        let mut t = IdTable::new(IdKind::Ints);
        let mut out = vec![0; 6];
        t.encode_ints("u", &[7, -3, 7, 1 << 40, -3, 7], &mut out)
            .unwrap(); // ok: a test, on valid data it builds
        assert_eq!(out, [0, 1, 0, 2, 1, 0]);
        assert_eq!(t.counts(), &[3, 2, 1]);
        let (order, rank) = t.sorted_codes();
        assert_eq!(order, [1, 0, 2]);
        assert_eq!(rank, [1, 0, 2]);
    }

    #[test]
    fn many_ids_grow_the_table_and_keep_their_codes() {
        let mut t = IdTable::new(IdKind::Ints);
        let values: Vec<i64> = (0..100_000).map(|i| (i * 7919) % 50_000 - 25_000).collect();
        let mut out = vec![0; values.len()];
        t.encode_ints("u", &values, &mut out).unwrap(); // ok: a test, on valid data it builds
        assert_eq!(t.len(), 50_000);
        for (&v, &c) in values.iter().zip(&out) {
            assert_eq!(t.int_keys()[c as usize], v);
        }
        assert!(t.counts().iter().all(|&c| c == 2));
    }

    #[test]
    fn strings_from_arrow_offsets_and_dictionaries() {
        let mut t = IdTable::new(IdKind::Bytes);
        let data = "bananaapplebananaé".as_bytes();
        let offsets: [i32; 5] = [0, 6, 11, 17, 19];
        let mut out = vec![0; 4];
        t.encode_bytes("i", &offsets, data, &mut out, true).unwrap(); // ok: a test, on valid data it builds
        assert_eq!(out, [0, 1, 0, 2]);
        // a dictionary holding one new id no row uses: encoded, never counted
        let mut dict = vec![0; 2];
        t.encode_bytes("i", &[0i64, 5, 11], b"applecherry", &mut dict, false)
            .unwrap(); // ok: a test, on valid data it builds
        assert_eq!(dict, [1, 3]);
        let mut rows = vec![0; 3];
        t.take_counted("i", &dict, &[0, 0, 0], &mut rows).unwrap(); // ok: a test, on valid data it builds
        assert_eq!(rows, [1, 1, 1]);
        assert_eq!(t.counts(), &[2, 4, 1, 0]);
        let (order, rank) = t.sorted_codes();
        assert_eq!(order, [1, 0, 2]); // apple, banana, é; cherry uncounted
        assert_eq!(rank, [1, 0, 2, -1]);
        let (utf32, width) = t.utf32_keys("i", &order).unwrap(); // ok: a test, on valid data it builds
        assert_eq!(width, 6);
        let text: Vec<u32> = "apple\0banana\u{e9}\0\0\0\0\0"
            .chars()
            .map(|c| c as u32)
            .collect();
        assert_eq!(utf32, text);
        assert!(t.utf32_keys("i", &[4]).is_err());
        let mut nul = IdTable::new(IdKind::Bytes);
        let mut out = vec![0; 1];
        nul.encode_bytes("i", &[0i32, 2], b"a\0", &mut out, true)
            .unwrap(); // ok: a test, on valid data it builds
        assert!(nul.utf32_keys("i", &[0]).is_err());
    }

    #[test]
    fn strings_of_every_length_keep_their_own_codes() {
        // lengths 0..40 (every branch of the hash and the compare), and for each length
        // strings that differ in one byte only, at every position
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for n in 0..40usize {
            let base: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            keys.push(base.clone());
            for p in 0..n {
                let mut k = base.clone();
                k[p] = b'#';
                keys.push(k);
            }
        }
        let mut offsets = vec![0i64];
        let mut data = Vec::new();
        for k in keys.iter().chain(keys.iter().rev()) {
            data.extend_from_slice(k);
            offsets.push(data.len() as i64);
        }
        let mut t = IdTable::new(IdKind::Bytes);
        let mut out = vec![0; 2 * keys.len()];
        t.encode_bytes("i", &offsets, &data, &mut out, true)
            .unwrap(); // ok: a test, on valid data it builds
        assert_eq!(t.len(), keys.len());
        let (starts, arena) = t.byte_keys();
        for (j, k) in keys.iter().enumerate() {
            let c = out[j] as usize;
            assert_eq!(c, j);
            assert_eq!(out[2 * keys.len() - 1 - j] as usize, c);
            assert_eq!(&arena[starts[c] as usize..starts[c + 1] as usize], &k[..]);
        }
        assert!(t.counts().iter().all(|&c| c == 2));
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut t = IdTable::new(IdKind::Bytes);
        let mut out = vec![0; 1];
        assert!(t.encode_ints("u", &[1], &mut out).is_err());
        assert!(t
            .encode_bytes("u", &[0i32, 9], b"abc", &mut out, true)
            .is_err());
        assert!(t.take_counted("u", &[0], &[3], &mut out).is_err());
        assert!(t
            .encode_bytes("u", &[0i32, 1, 2], b"ab", &mut out, true)
            .is_err());
    }
}
