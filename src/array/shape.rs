//! Shape and selection: slicing, transposes, reshapes, concatenation and stacking.

use ndarray::SliceInfoElem;

use super::core::Array;
use super::dtype::Element;
use crate::error::{Error, Result};

/// Basic and integer selection (see [`Array::slice`]).
pub(crate) fn slice<T: Element>(_x: &Array<T>, _info: &[SliceInfoElem]) -> Result<Array<T>> {
    Err(Error::InvalidArgument("slicing is not built yet".into()))
}
