//! [`DatasetError`]: what can go wrong building, opening or querying a dataset.
//!
//! Each variant names the variable, dimension or group involved and, where there is a choice,
//! lists what exists (the available variables, the dataset's dimensions) so the user can fix
//! the call. Lower layers' errors are wrapped with `#[from]`.

use crate::store::StoreError;

/// `Result` with [`DatasetError`].
pub type DatasetResult<T> = std::result::Result<T, DatasetError>;

/// Everything that can go wrong in the dataset room.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A variable was asked for by a name the dataset does not have.
    #[error("no variable named {name:?} in this dataset; it has: {}", list(.available))]
    VariableNotFound {
        /// The name asked for.
        name: String,
        /// The dataset's variables, in order.
        available: Vec<String>,
    },

    /// A dimension was asked for by a name that does not exist where it was looked up.
    #[error("no dimension named {dim:?} in {context}; its dimensions are: {}", sizes(.available))]
    DimNotFound {
        /// The name asked for.
        dim: String,
        /// Where it was looked up (`"this dataset"`, `"variable \"t2m\""`, `"the chunks option"`).
        context: String,
        /// The dimensions there, with their lengths.
        available: Vec<(String, usize)>,
    },

    /// Two variables give one dimension different lengths.
    #[error(
        "dimension {dim:?} has length {len} in variable {variable:?} but {other_len} in \
         variable {other:?}; every variable must agree on each dimension's length"
    )]
    DimLengthConflict {
        /// The dimension.
        dim: String,
        /// The variable being added (or opened).
        variable: String,
        /// Its length there.
        len: usize,
        /// A variable already in the dataset using the dimension.
        other: String,
        /// Its length there.
        other_len: usize,
    },

    /// A variable's dimension names do not fit its data.
    #[error("variable {variable:?}: {reason}")]
    InvalidDims {
        /// The variable.
        variable: String,
        /// What is wrong (the number of names vs the array's dimensions, a repeated name).
        reason: String,
    },

    /// A Zarr group has arrays without xarray's dimension names, so it is not a dataset.
    #[error("{}", no_dimension_names(.store, .path, .arrays))]
    NoDimensionNames {
        /// The store.
        store: String,
        /// The group.
        path: String,
        /// The arrays without dimension names.
        arrays: Vec<String>,
    },

    /// A dataset was opened from a node that is an array, not a group.
    #[error(
        "{path:?} in {store} is a Zarr array, not a group; a dataset is a group of arrays. \
         Open the array with chunkflow::array::from_zarr, or open its parent group"
    )]
    NotAGroup {
        /// The store.
        store: String,
        /// The node.
        path: String,
    },

    /// Consolidated metadata was required but the group has none.
    #[error(
        "the group {path:?} in {store} has no consolidated metadata (v2 `.zmetadata` or v3 \
         inline `consolidated_metadata`); open it with Consolidated::Auto or Consolidated::No \
         to list the store instead"
    )]
    ConsolidatedMetadataMissing {
        /// The store.
        store: String,
        /// The group.
        path: String,
    },

    /// Consolidated metadata was required but lists an array that is not in the store.
    #[error(
        "the consolidated metadata of group {path:?} in {store} is stale: it lists array \
         {array:?}, which cannot be opened ({reason}); open with Consolidated::Auto to fall \
         back to listing the store"
    )]
    StaleConsolidatedMetadata {
        /// The store.
        store: String,
        /// The group.
        path: String,
        /// The array listed but missing.
        array: String,
        /// Why it did not open.
        reason: String,
    },

    /// A variable's CF encoding attributes (`_FillValue`, `scale_factor`, `units`, ...) could
    /// not be decoded.
    #[error("variable {variable:?}: cannot decode its {attribute:?} attribute: {reason}")]
    InvalidEncoding {
        /// The variable.
        variable: String,
        /// The attribute.
        attribute: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Times that cannot be decoded to `datetime64[ns]` (a non-standard calendar, units in
    /// months, a reference date before 1582-10-15 in the `standard` calendar), when
    /// [`OpenOptions::undecodable_times`](super::OpenOptions) asks for an error.
    #[error(
        "variable {variable:?}: cannot decode its times to datetime64[ns]: {reason} (open with \
         UndecodableTimes::KeepRaw to keep the raw numbers, or decode: false)"
    )]
    UndecodableTimes {
        /// The variable.
        variable: String,
        /// Why.
        reason: String,
    },

    /// A variable's data is not of the element type asked for.
    #[error("variable {variable:?} holds {found}, not {requested}")]
    DTypeMismatch {
        /// The variable.
        variable: String,
        /// Its element type.
        found: String,
        /// The type asked for.
        requested: String,
    },

    /// A position given to `isel` is outside its dimension.
    #[error(
        "index {index} is out of range for dimension {dim:?} of length {len} (valid: \
         -{len}..{len}, negative counting from the end)"
    )]
    IndexOutOfRange {
        /// The dimension.
        dim: String,
        /// The position asked for.
        index: i64,
        /// The dimension's length.
        len: usize,
    },

    /// A label given to `sel` is not in the index coordinate (within the tolerance, for a
    /// method).
    #[error("{label} not found in index coordinate {coord:?} ({range}){hint}")]
    LabelNotFound {
        /// The index coordinate (and dimension).
        coord: String,
        /// The label, as text.
        label: String,
        /// What the coordinate holds: dtype, length, first and last values.
        range: String,
        /// What to try instead (a method, a tolerance), or empty.
        hint: String,
    },

    /// `sel` was asked to select on a dimension that has no index coordinate.
    #[error(
        "dimension {dim:?} has no index coordinate (a 1-D coordinate named {dim:?}), so it \
         cannot be selected by label; select by position with isel, or add the coordinate. \
         Index coordinates here: {}", list(.indexes)
    )]
    NoIndex {
        /// The dimension.
        dim: String,
        /// The index coordinates there are.
        indexes: Vec<String>,
    },

    /// A selection that is not valid for reasons other than a missing dimension or label (a
    /// zero slice step, pointwise lists of different lengths, a label of the wrong type).
    #[error("invalid selection on {dim:?}: {reason}")]
    InvalidSelection {
        /// The dimension (or new pointwise dimension) involved.
        dim: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// Two operands give a shared dimension different lengths.
    #[error(
        "cannot {op}: dimension {dim:?} has length {left} in the left operand but {right} in \
         the right; chunkflow broadcasts by dimension name and does not align or reindex, so \
         shared dimensions must have equal lengths (select with isel/sel first)"
    )]
    DimSizeMismatch {
        /// The operation (`"add"`, `"dot"`).
        op: String,
        /// The dimension.
        dim: String,
        /// Its length on the left.
        left: usize,
        /// Its length on the right.
        right: usize,
    },

    /// Two operands have different values in the index coordinate of a shared dimension.
    #[error(
        "cannot {op}: the index coordinate {coord:?} differs between the operands ({detail}); \
         chunkflow requires equal indexes (xarray's join=\"exact\") and does not align: \
         select matching labels with sel first, or drop the coordinate"
    )]
    IndexMismatch {
        /// The operation.
        op: String,
        /// The index coordinate.
        coord: String,
        /// Where they first differ.
        detail: String,
    },

    /// An operation that does not apply to a variable's element type (a mean of datetimes,
    /// arithmetic on booleans).
    #[error("cannot {op} {what}: {reason}")]
    UnsupportedDType {
        /// The operation.
        op: String,
        /// What it was applied to (`"variable \"time\" (datetime64[ns])"`).
        what: String,
        /// Why, and what to do.
        reason: String,
    },

    /// A variable cannot be encoded for Zarr as its encoding asks (conflicting CF keys, a
    /// calendar that needs cftime, a type it cannot be stored as).
    #[error("variable {variable:?} cannot be written: {reason}")]
    Unencodable {
        /// The variable.
        variable: String,
        /// Why, and what to change.
        reason: String,
    },

    /// Something already exists where a dataset was to be created.
    #[error(
        "{path:?} in {store} already holds a Zarr {existing}; write with WriteMode::Overwrite \
         to replace it (its data is deleted), or choose another path"
    )]
    GroupExists {
        /// The store.
        store: String,
        /// The path.
        path: String,
        /// What is there (`"group"`, `"array"`).
        existing: String,
    },

    /// A variable's chunks straddle a stored chunk (or shard) boundary, so two tasks would
    /// write one stored chunk.
    #[error(
        "variable {variable:?}: its chunk covering {}..{} along {dim:?} (chunks {chunks:?}) \
         crosses a boundary of the stored chunks of size {stored}, so two tasks would write one \
         stored chunk. Rechunk the variable so every chunk boundary along {dim:?} falls on a \
         multiple of {stored} (e.g. chunks of {stored}), or set the encoding's chunks to a size \
         that divides its chunks", .span.0, .span.1
    )]
    ChunksNotAligned {
        /// The variable.
        variable: String,
        /// The dimension.
        dim: String,
        /// The variable's chunks along it.
        chunks: Vec<usize>,
        /// The stored chunk (or shard) size along it.
        stored: u64,
        /// The straddling chunk's element range.
        span: (u64, u64),
    },

    /// A variable's chunks are not regular, so no Zarr chunk shape fits them.
    #[error(
        "variable {variable:?}: its chunks {chunks:?} along {dim:?} are not regular (Zarr needs \
         all chunks equal but a smaller last one); rechunk it to uniform chunks, or set the \
         encoding's chunks"
    )]
    IrregularChunks {
        /// The variable.
        variable: String,
        /// The dimension.
        dim: String,
        /// The variable's chunks along it.
        chunks: Vec<usize>,
    },

    /// A partitioned write names a variable the store does not have.
    #[error(
        "variable {variable:?} is not in the group {path:?} of {store} (it has: {}); \
         initialize the store from the same dataset (initialize_store), or drop the variable",
        list(.stored)
    )]
    VariableNotInStore {
        /// The variable.
        variable: String,
        /// The store.
        store: String,
        /// The group.
        path: String,
        /// The arrays the group has.
        stored: Vec<String>,
    },

    /// A variable differs from the stored array it is written into (dimensions, shape or
    /// stored type).
    #[error(
        "variable {variable:?} does not match the stored array: {reason}; initialize the store \
         from the same dataset the ranks write"
    )]
    StoreMismatch {
        /// The variable.
        variable: String,
        /// What differs.
        reason: String,
    },

    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// An array operation failed.
    #[error(transparent)]
    Array(#[from] crate::Error),
}

impl From<crate::array::ChunkError> for DatasetError {
    fn from(e: crate::array::ChunkError) -> Self {
        DatasetError::Array(e.into())
    }
}

impl From<DatasetError> for crate::Error {
    /// Lets `?` carry a dataset error into code returning [`crate::Result`]: store and array
    /// errors keep their variant, the others become [`crate::Error::InvalidArgument`] with the
    /// same message.
    fn from(e: DatasetError) -> Self {
        match e {
            DatasetError::Array(e) => e,
            DatasetError::Store(e) => crate::Error::Store(e),
            other => crate::Error::InvalidArgument(other.to_string()),
        }
    }
}

fn no_dimension_names(store: &str, path: &str, arrays: &[String]) -> String {
    let (noun, verb) = if arrays.len() == 1 {
        ("array", "has")
    } else {
        ("arrays", "have")
    };
    format!(
        "the group {path:?} in {store} is not an xarray dataset: {noun} {} {verb} no dimension \
         names (neither Zarr v3 `dimension_names` nor the v2 `_ARRAY_DIMENSIONS` attribute that \
         xarray writes), so dimensions cannot be matched by name. Open such arrays as plain \
         chunked arrays with chunkflow::array::from_zarr / from_zarr_with",
        list(arrays)
    )
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".into();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sizes(dims: &[(String, usize)]) -> String {
    if dims.is_empty() {
        return "(none)".into();
    }
    dims.iter()
        .map(|(d, n)| format!("{d:?} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}
