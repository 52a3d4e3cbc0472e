//! Block streams: an array's blocks produced on demand, a slice at a time, for arrays whose
//! values are cheaper to compute again than to keep (random numbers, constants, and
//! element-wise maps and combinations of them).
//!
//! A [`BlockStreams`] opens a [`BlockStream`] on any block; the stream writes the block's
//! elements in C order, as many per call as the caller asks for. A reduction over such an array
//! pulls each block through a buffer that fits in the CPU's cache instead of materialising the
//! block (30 MiB for a 2000 × 2000 `f64` chunk), so generating and reducing become one pass over
//! the cache and the block is never written to memory and read back.
//!
//! Invariant: a stream yields exactly the values of the array's block task, in C order. The
//! block tasks of a streamed array are written as "open the stream, fill the whole block", so
//! both paths run the same code.

use std::mem::MaybeUninit;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::dtype::Element;

/// Opens streams on the blocks of one array.
pub(crate) trait BlockStreams<T>: Send + Sync {
    /// A stream over block `index` (of shape `shape`), positioned at its first element.
    fn open(&self, index: &[usize], shape: &[usize]) -> Box<dyn BlockStream<T> + '_>;
}

/// The elements of one block in C order, produced in consecutive slices.
pub(crate) trait BlockStream<T> {
    /// Writes the block's next `out.len()` elements into `out`.
    fn fill(&mut self, out: &mut [T]);

    /// [`BlockStream::fill`] into memory not initialised yet (a fresh block's buffer); every
    /// element of `out` is initialised when it returns. The default zeroes `out` first; a
    /// stream that writes every element anyway overrides it to skip that pass.
    fn fill_uninit(&mut self, out: &mut [MaybeUninit<T>])
    where
        T: Default,
    {
        for x in out.iter_mut() {
            x.write(T::default());
        }
        // SAFETY: every element was just initialised, and `MaybeUninit<T>` has `T`'s layout.
        let out = unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) };
        self.fill(out)
    }
}

/// A shared, type-erased [`BlockStreams`].
pub(crate) type Streams<T> = Arc<dyn BlockStreams<T>>;

/// Block `index` (of `shape`) in full, from its stream.
pub(crate) fn materialize<T: Element>(
    streams: &dyn BlockStreams<T>,
    index: &[usize],
    shape: &[usize],
) -> ArrayD<T> {
    let n: usize = shape.iter().product();
    let mut data: Vec<T> = Vec::with_capacity(n);
    streams
        .open(index, shape)
        .fill_uninit(&mut data.spare_capacity_mut()[..n]);
    // SAFETY: `fill_uninit` initialised the first `n` elements.
    unsafe { data.set_len(n) };
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("the stream filled the block's shape")
}

/// The streams of an array whose every element is one value (`full`, `zeros`, `ones`).
pub(crate) struct Constant<T>(pub(crate) T);

impl<T: Element> BlockStreams<T> for Constant<T> {
    fn open(&self, _: &[usize], _: &[usize]) -> Box<dyn BlockStream<T> + '_> {
        Box::new(Constant(self.0))
    }
}

impl<T: Copy> BlockStream<T> for Constant<T> {
    fn fill(&mut self, out: &mut [T]) {
        out.fill(self.0)
    }
}

/// The streams of `f` applied to every element of another array's streams.
pub(crate) struct Map<T, F> {
    pub(crate) inner: Streams<T>,
    pub(crate) f: F,
}

impl<T: Element, F: Fn(T) -> T + Send + Sync> BlockStreams<T> for Map<T, F> {
    fn open(&self, index: &[usize], shape: &[usize]) -> Box<dyn BlockStream<T> + '_> {
        Box::new(MapStream {
            inner: self.inner.open(index, shape),
            f: &self.f,
        })
    }
}

struct MapStream<'a, T, F> {
    inner: Box<dyn BlockStream<T> + 'a>,
    f: &'a F,
}

impl<T: Copy, F: Fn(T) -> T> BlockStream<T> for MapStream<'_, T, F> {
    fn fill(&mut self, out: &mut [T]) {
        self.inner.fill(out);
        let f = self.f;
        for x in out.iter_mut() {
            *x = f(*x);
        }
    }
}

/// The streams of `f` combining two arrays of one shape and chunking, element by element.
pub(crate) struct Zip<T, F> {
    pub(crate) a: Streams<T>,
    pub(crate) b: Streams<T>,
    pub(crate) f: F,
}

impl<T: Element, F: Fn(T, T) -> T + Send + Sync> BlockStreams<T> for Zip<T, F> {
    fn open(&self, index: &[usize], shape: &[usize]) -> Box<dyn BlockStream<T> + '_> {
        Box::new(ZipStream {
            a: self.a.open(index, shape),
            b: self.b.open(index, shape),
            scratch: Vec::new(),
            f: &self.f,
        })
    }
}

struct ZipStream<'a, T, F> {
    a: Box<dyn BlockStream<T> + 'a>,
    b: Box<dyn BlockStream<T> + 'a>,
    /// `b`'s slice, reused from call to call.
    scratch: Vec<T>,
    f: &'a F,
}

impl<T: Element, F: Fn(T, T) -> T> BlockStream<T> for ZipStream<'_, T, F> {
    fn fill(&mut self, out: &mut [T]) {
        self.a.fill(out);
        self.scratch.resize(out.len(), T::default());
        self.b.fill(&mut self.scratch);
        let f = self.f;
        for (x, &y) in out.iter_mut().zip(&self.scratch) {
            *x = f(*x, y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Element `i` of block `index` is `100 · index[0] + i`.
    struct Counting;

    struct CountingStream {
        next: f64,
    }

    impl BlockStreams<f64> for Counting {
        fn open(&self, index: &[usize], _: &[usize]) -> Box<dyn BlockStream<f64> + '_> {
            Box::new(CountingStream {
                next: 100.0 * index[0] as f64,
            })
        }
    }

    impl BlockStream<f64> for CountingStream {
        fn fill(&mut self, out: &mut [f64]) {
            for x in out {
                *x = self.next;
                self.next += 1.0;
            }
        }
    }

    #[test]
    fn slices_continue_where_the_last_one_stopped() {
        let whole = materialize(&Counting, &[1], &[2, 3]);
        assert_eq!(
            whole.iter().copied().collect::<Vec<_>>(),
            [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
        );
        let mut s = Counting.open(&[1], &[2, 3]);
        let (mut a, mut b) = ([0.0; 2], [0.0; 4]);
        s.fill(&mut a);
        s.fill(&mut b);
        assert_eq!(a, [100.0, 101.0]);
        assert_eq!(b, [102.0, 103.0, 104.0, 105.0]);
    }

    #[test]
    fn maps_and_zips_apply_per_element_across_slices() {
        let c: Streams<f64> = Arc::new(Counting);
        let m: Streams<f64> = Arc::new(Map {
            inner: c.clone(),
            f: |x: f64| 2.0 * x,
        });
        let z = Zip {
            a: m,
            b: c,
            f: |x: f64, y: f64| x - y,
        };
        let mut s = z.open(&[0], &[5]);
        let (mut a, mut b) = ([0.0; 3], [0.0; 2]);
        s.fill(&mut a);
        s.fill(&mut b);
        assert_eq!(a, [0.0, 1.0, 2.0]);
        assert_eq!(b, [3.0, 4.0]);
    }
}
