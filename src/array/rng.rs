//! The random number generator behind `array::random`: xoshiro256++ in [`LANES`] interleaved
//! streams, so that filling a chunk is a SIMD loop instead of one dependent step per number.
//!
//! # The stream
//!
//! A [`ChunkRng`] is seeded from one `u64` (each chunk's own seed, derived from the user's seed
//! and the chunk index, so values never depend on the executor or the thread count). Lane 0 is
//! exactly `rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed)` (SplitMix64 seeding), and
//! lane `l` is that generator advanced by `l` jumps of 2^128 steps, so the lanes never overlap.
//! Output `i` of the chunk is output `i / LANES` of lane `i % LANES`.
//!
//! Uniform doubles are numpy's: `(x >> 11) * 2^-53`, 53 random bits in `[0, 1)`. Every step is
//! integer arithmetic plus one exact conversion, so the bits are the same whichever instruction
//! set runs them: [`ChunkRng::fill_uniform`] picks AVX-512 or AVX2 code at run time when the
//! CPU has it and falls back to plain code otherwise, and a test checks they agree.
//!
//! Through [`rand::RngCore`] the same stream feeds `rand_distr` (the normal distribution's
//! ziggurat); it is buffered, so a distribution also draws its numbers in bulk.
//!
//! # What it must not do
//!
//! No global state and no thread-local state: a chunk's numbers depend on its seed alone.

use std::mem::MaybeUninit;

/// Interleaved streams: 16 × 64-bit words are two AVX-512 registers (four AVX2 registers), enough
/// independent work per step to hide the latency of the state update.
pub(crate) const LANES: usize = 16;

/// Steps per refill of the buffer that serves [`rand::RngCore`] calls.
const BUFFERED_STEPS: usize = 32;

/// xoshiro256's jump polynomial: advances a state by 2^128 steps.
const JUMP: [u64; 4] = [
    0x180e_c6d3_3cfd_0aba,
    0xd5a6_1266_f0c9_392c,
    0xa958_2618_e03f_c9aa,
    0x39ab_dc45_29b1_661c,
];

/// [`LANES`] xoshiro256++ generators stepped together (see the module doc).
#[derive(Clone)]
pub(crate) struct ChunkRng {
    /// `s[k][l]`: word `k` of lane `l`'s state (structure of arrays, so a step vectorises).
    s: [[u64; LANES]; 4],
    /// Outputs not yet handed out through `RngCore`, in stream order.
    buf: Box<[u64; LANES * BUFFERED_STEPS]>,
    /// The next unread position of `buf` (`buf.len()` when empty).
    pos: usize,
}

/// SplitMix64, as `rand_xoshiro::SplitMix64` (the recommended seeder of xoshiro).
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One xoshiro256++ step of a single state.
fn step_one(s: &mut [u64; 4]) -> u64 {
    let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    out
}

/// Advances a single state by 2^128 steps (the reference `jump()`).
fn jump(s: &mut [u64; 4]) {
    let mut acc = [0u64; 4];
    for word in JUMP {
        for bit in 0..64 {
            if word & (1u64 << bit) != 0 {
                for (a, x) in acc.iter_mut().zip(s.iter()) {
                    *a ^= *x;
                }
            }
            step_one(s);
        }
    }
    *s = acc;
}

/// 53 random bits as a double in `[0, 1)` (numpy's `random_standard_uniform`).
#[inline(always)]
fn to_unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

impl ChunkRng {
    /// The generator of one chunk.
    // Lane `l` is column `l` of the structure-of-arrays state: indexed, not iterated.
    #[allow(clippy::needless_range_loop)]
    pub(crate) fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut lane = [0u64; 4];
        for w in &mut lane {
            *w = splitmix64(&mut x);
        }
        let mut s = [[0u64; LANES]; 4];
        for l in 0..LANES {
            if l > 0 {
                jump(&mut lane);
            }
            for k in 0..4 {
                s[k][l] = lane[k];
            }
        }
        ChunkRng {
            s,
            buf: Box::new([0; LANES * BUFFERED_STEPS]),
            pos: LANES * BUFFERED_STEPS,
        }
    }

    /// One step of every lane: `out[l]` is lane `l`'s next output.
    #[inline(always)]
    fn step(&mut self, out: &mut [u64; LANES]) {
        let [s0, s1, s2, s3] = &mut self.s;
        for l in 0..LANES {
            out[l] = s0[l]
                .wrapping_add(s3[l])
                .rotate_left(23)
                .wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
    }

    /// Writes the next `out.len()` uniform doubles of the stream into `out` (which need not be
    /// initialised: a fresh chunk buffer is filled without zeroing it first).
    pub(crate) fn fill_uniform(&mut self, out: &mut [MaybeUninit<f64>]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the CPU supports the features `fill_uniform_avx512` is compiled for.
                return unsafe { self.fill_uniform_avx512(out) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports the features `fill_uniform_avx2` is compiled for.
                return unsafe { self.fill_uniform_avx2(out) };
            }
        }
        self.fill_uniform_portable(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
    fn fill_uniform_avx512(&mut self, out: &mut [MaybeUninit<f64>]) {
        self.fill_uniform_portable(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn fill_uniform_avx2(&mut self, out: &mut [MaybeUninit<f64>]) {
        self.fill_uniform_portable(out)
    }

    /// The loop every instruction set runs (inlined into the `target_feature` copies): words
    /// left over from an earlier call first, then whole steps, and a last partial step through
    /// the buffer, so that filling in slices of any length continues the stream exactly.
    #[inline(always)]
    fn fill_uniform_portable(&mut self, out: &mut [MaybeUninit<f64>]) {
        let buffered = (self.buf.len() - self.pos).min(out.len());
        let (head, out) = out.split_at_mut(buffered);
        for (d, &w) in head.iter_mut().zip(&self.buf[self.pos..]) {
            d.write(to_unit(w));
        }
        self.pos += buffered;
        let mut words = [0u64; LANES];
        let mut it = out.chunks_exact_mut(LANES);
        for dst in &mut it {
            self.step(&mut words);
            for (d, &w) in dst.iter_mut().zip(&words) {
                d.write(to_unit(w));
            }
        }
        let rest = it.into_remainder();
        if !rest.is_empty() {
            self.refill();
            for (d, &w) in rest.iter_mut().zip(self.buf.iter()) {
                d.write(to_unit(w));
            }
            self.pos = rest.len();
        }
    }

    /// A vector of `n` uniform doubles in `[0, 1)`: the next `n` of the stream.
    #[cfg(test)]
    pub(crate) fn uniform_vec(&mut self, n: usize) -> Vec<f64> {
        let mut v = Vec::with_capacity(n);
        self.fill_uniform(&mut v.spare_capacity_mut()[..n]);
        // SAFETY: `fill_uniform` wrote all of the first `n` elements.
        unsafe { v.set_len(n) };
        v
    }

    fn refill(&mut self) {
        let mut words = [0u64; LANES];
        for k in 0..BUFFERED_STEPS {
            self.step(&mut words);
            self.buf[k * LANES..(k + 1) * LANES].copy_from_slice(&words);
        }
        self.pos = 0;
    }
}

impl rand::RngCore for ChunkRng {
    fn next_u32(&mut self) -> u32 {
        // The upper bits are the strongest (as rand_xoshiro does).
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        if self.pos == self.buf.len() {
            self.refill();
        }
        let x = self.buf[self.pos];
        self.pos += 1;
        x
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Lane `l` of a chunk's stream, as numbers.
    fn lane(values: &[u64], l: usize) -> Vec<u64> {
        values.iter().skip(l).step_by(LANES).copied().collect()
    }

    #[test]
    fn lanes_are_xoshiro256plusplus_streams_a_jump_apart() {
        let mut rng = ChunkRng::new(42);
        let words: Vec<u64> = (0..LANES * 20).map(|_| rng.next_u64()).collect();
        let mut reference = Xoshiro256PlusPlus::seed_from_u64(42);
        for l in 0..LANES {
            let mut r = reference.clone();
            let expect: Vec<u64> = (0..20).map(|_| r.next_u64()).collect();
            assert_eq!(lane(&words, l), expect, "lane {l}");
            reference.jump();
        }
    }

    #[test]
    fn uniform_is_the_word_stream_in_numpys_53_bit_form() {
        let words: Vec<u64> = {
            let mut rng = ChunkRng::new(7);
            (0..LANES * 5 + 3).map(|_| rng.next_u64()).collect()
        };
        let u = ChunkRng::new(7).uniform_vec(words.len());
        for (x, w) in u.iter().zip(&words) {
            assert_eq!(*x, (w >> 11) as f64 / 9007199254740992.0);
            assert!((0.0..1.0).contains(x));
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let n = LANES * 100 + 5;
        let mut portable = vec![MaybeUninit::uninit(); n];
        ChunkRng::new(3).fill_uniform_portable(&mut portable);
        let portable: Vec<u64> = portable
            .iter()
            // SAFETY: fill_uniform_portable wrote every element.
            .map(|x| unsafe { x.assume_init() }.to_bits())
            .collect();
        let dispatched: Vec<u64> = ChunkRng::new(3)
            .uniform_vec(n)
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(dispatched, portable);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut avx2 = vec![MaybeUninit::uninit(); n];
            // SAFETY: checked that the CPU has AVX2.
            unsafe { ChunkRng::new(3).fill_uniform_avx2(&mut avx2) };
            // SAFETY: fill_uniform_avx2 wrote every element.
            let avx2: Vec<u64> = avx2
                .iter()
                .map(|x| unsafe { x.assume_init() }.to_bits())
                .collect();
            assert_eq!(avx2, portable);
        }
    }

    #[test]
    fn a_fill_continues_where_the_last_one_stopped() {
        let n = LANES * BUFFERED_STEPS * 3 + 7;
        let whole = ChunkRng::new(9).uniform_vec(n);
        for sizes in [
            vec![LANES * 4, n - LANES * 4],
            vec![1, 2, 3, LANES + 1, LANES * BUFFERED_STEPS + 5, 7],
            vec![LANES * BUFFERED_STEPS - 1, 2, LANES * 3 + 3],
        ] {
            let mut rng = ChunkRng::new(9);
            let mut parts = Vec::new();
            for s in &sizes {
                parts.extend(rng.uniform_vec(*s));
            }
            parts.extend(rng.uniform_vec(n - parts.len()));
            assert_eq!(parts, whole, "slices {sizes:?}");
        }
        // The word interface and the bulk fill share one stream.
        let mut rng = ChunkRng::new(9);
        let first = rng.next_u64();
        assert_eq!(to_unit(first), whole[0]);
        assert_eq!(rng.uniform_vec(5), whole[1..6]);
    }
}
