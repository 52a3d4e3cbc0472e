//! Deterministic tokens: how a pure task's inputs become part of its key.
//!
//! A task's key is `"<name>-<token>"`, where the token hashes (xxh3) the function's identity and
//! its arguments. The same pure call on the same inputs therefore gets the same key in every run
//! of the same program, and identical calls share one task. Values opt in with [`Tokenize`];
//! collections tokenize as their keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::Xxh3;

use super::Key;

/// A streaming hasher for tokens.
pub struct TokenHasher(Xxh3);

impl TokenHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        TokenHasher(Xxh3::new())
    }

    /// Feeds raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Feeds a tag that separates kinds of values (so `1u8` and `1u16` differ).
    pub fn tag(&mut self, tag: &str) {
        self.0.update(tag.as_bytes());
        self.0.update(&[0xff]);
    }

    /// The final 64-bit token.
    pub fn finish(&self) -> u64 {
        self.0.digest()
    }
}

impl Default for TokenHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Values that can be part of a task's identity.
///
/// Implemented for numbers, strings, bools, slices, `Vec`, `Option`, tuples, arrays and
/// [`Key`]. Implement it for your own argument types to let pure calls taking them dedupe:
///
/// ```
/// use chunkflow::graph::token::{Tokenize, TokenHasher};
/// struct Region { lat: f64, lon: f64 }
/// impl Tokenize for Region {
///     fn tokenize(&self, h: &mut TokenHasher) {
///         h.tag("Region");
///         self.lat.tokenize(h);
///         self.lon.tokenize(h);
///     }
/// }
/// ```
pub trait Tokenize {
    /// Feeds this value's identity into the hasher.
    fn tokenize(&self, h: &mut TokenHasher);
}

/// Hashes one value into a token.
pub fn token_of<T: Tokenize + ?Sized>(value: &T) -> u64 {
    let mut h = TokenHasher::new();
    value.tokenize(&mut h);
    h.finish()
}

/// A token that is unique within this process: for impure calls and untokenizable values.
pub fn unique_token() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = Xxh3::new();
    h.update(b"unique");
    h.update(&std::process::id().to_le_bytes());
    h.update(&n.to_le_bytes());
    h.digest()
}

/// Formats a key name from a prefix and a token: `"square-1f3a9c0d2b4e6f70"`.
pub fn key_name(prefix: &str, token: u64) -> String {
    format!("{prefix}-{token:016x}")
}

macro_rules! tokenize_bytes {
    ($($t:ty),*) => {$(
        impl Tokenize for $t {
            fn tokenize(&self, h: &mut TokenHasher) {
                h.tag(stringify!($t));
                h.write(&self.to_le_bytes());
            }
        }
    )*};
}
tokenize_bytes!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
);

impl Tokenize for f32 {
    fn tokenize(&self, h: &mut TokenHasher) {
        h.tag("f32");
        h.write(&self.to_bits().to_le_bytes());
    }
}

impl Tokenize for f64 {
    fn tokenize(&self, h: &mut TokenHasher) {
        h.tag("f64");
        h.write(&self.to_bits().to_le_bytes());
    }
}

impl Tokenize for bool {
    fn tokenize(&self, h: &mut TokenHasher) {
        h.tag("bool");
        h.write(&[*self as u8]);
    }
}

impl Tokenize for char {
    fn tokenize(&self, h: &mut TokenHasher) {
        h.tag("char");
        h.write(&(*self as u32).to_le_bytes());
    }
}

impl Tokenize for () {
    fn tokenize(&self, h: &mut TokenHasher) {
        h.tag("()");
    }
}

impl Tokenize for str {
    fn tokenize(&self, h: &mut TokenHasher) {
        h.tag("str");
        h.write(&(self.len() as u64).to_le_bytes());
        h.write(self.as_bytes());
    }
}

impl Tokenize for String {
    fn tokenize(&self, h: &mut TokenHasher) {
        self.as_str().tokenize(h);
    }
}

impl Tokenize for Key {
    fn tokenize(&self, h: &mut TokenHasher) {
        h.tag("key");
        h.write(&self.digest().to_le_bytes());
    }
}

impl<T: Tokenize> Tokenize for [T] {
    fn tokenize(&self, h: &mut TokenHasher) {
        h.tag("seq");
        h.write(&(self.len() as u64).to_le_bytes());
        for v in self {
            v.tokenize(h);
        }
    }
}

impl<T: Tokenize, const N: usize> Tokenize for [T; N] {
    fn tokenize(&self, h: &mut TokenHasher) {
        self.as_slice().tokenize(h);
    }
}

impl<T: Tokenize> Tokenize for Vec<T> {
    fn tokenize(&self, h: &mut TokenHasher) {
        self.as_slice().tokenize(h);
    }
}

impl<T: Tokenize + ?Sized> Tokenize for &T {
    fn tokenize(&self, h: &mut TokenHasher) {
        (**self).tokenize(h);
    }
}

impl<T: Tokenize + ?Sized> Tokenize for Box<T> {
    fn tokenize(&self, h: &mut TokenHasher) {
        (**self).tokenize(h);
    }
}

impl<T: Tokenize + ?Sized> Tokenize for Arc<T> {
    fn tokenize(&self, h: &mut TokenHasher) {
        (**self).tokenize(h);
    }
}

impl<T: Tokenize> Tokenize for Option<T> {
    fn tokenize(&self, h: &mut TokenHasher) {
        match self {
            None => h.tag("None"),
            Some(v) => {
                h.tag("Some");
                v.tokenize(h);
            }
        }
    }
}

macro_rules! tokenize_tuple {
    ($($name:ident)+) => {
        impl<$($name: Tokenize),+> Tokenize for ($($name,)+) {
            #[allow(non_snake_case)]
            fn tokenize(&self, h: &mut TokenHasher) {
                h.tag("tuple");
                let ($($name,)+) = self;
                $($name.tokenize(h);)+
            }
        }
    };
}
tokenize_tuple!(A);
tokenize_tuple!(A B);
tokenize_tuple!(A B C);
tokenize_tuple!(A B C D);
tokenize_tuple!(A B C D E);
tokenize_tuple!(A B C D E F);

impl<T: Tokenize, D: ndarray::Dimension> Tokenize for ndarray::Array<T, D> {
    fn tokenize(&self, h: &mut TokenHasher) {
        h.tag("ndarray");
        self.shape().tokenize(h);
        for v in self.iter() {
            v.tokenize(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_deterministic_and_typed() {
        assert_eq!(token_of(&3i64), token_of(&3i64));
        assert_ne!(token_of(&3i64), token_of(&3i32));
        assert_ne!(token_of(&(1u8, 2u8)), token_of(&(2u8, 1u8)));
        assert_ne!(token_of("ab"), token_of(&("a", "b")));
        assert_ne!(unique_token(), unique_token());
    }
}
