//! The plain-data description of a Zarr array: [`ArraySpec`], [`FillValue`], [`Compression`]
//! and [`ZarrFormat`], and the metadata documents (`.zarray`/`.zattrs`, `zarr.json`) they turn
//! into, written the way zarr-python 3.1 and xarray write them.
//!
//! No zarrs calls here: this is serde data (rechunk plans can carry it) and JSON. `zarr.rs`
//! validates the documents with zarrs and writes them.

use serde_json::{Map, Value, json};

use crate::array::DType;

/// The Zarr format version of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ZarrFormat {
    /// Zarr v2 (`.zarray`, `.zgroup`, `.zattrs`).
    V2,
    /// Zarr v3 (`zarr.json`).
    V3,
}

impl std::fmt::Display for ZarrFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ZarrFormat::V2 => "v2",
            ZarrFormat::V3 => "v3",
        })
    }
}

/// What never-written parts of an array read as.
///
/// When reading metadata the value comes back in its typed form (`Int`, `UInt`, `Float`,
/// `Bool`, `NaN`, or `Null`); `Zero` is a convenience for specs.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FillValue {
    /// No fill value: Zarr v2 `fill_value: null`, which is what xarray writes for integers so
    /// that no value is masked as missing. Never-written chunks read as zero (`false`). In v3,
    /// which requires a value, it is written as zero.
    Null,
    /// Zero (`false` for booleans).
    Zero,
    /// Not-a-number (floats only): xarray's default for floats.
    NaN,
    /// A boolean.
    Bool(bool),
    /// A signed integer (also accepted for unsigned and float arrays when in range).
    Int(i64),
    /// An unsigned integer (also accepted for signed and float arrays when in range).
    UInt(u64),
    /// A float (also infinities; accepted for integer arrays when integral and in range).
    Float(f64),
}

impl FillValue {
    /// The typed, canonical form of this fill value for `dtype`, or why it does not fit.
    ///
    /// ```
    /// use chunkflow::array::DType;
    /// use chunkflow::store::FillValue;
    /// assert_eq!(FillValue::Zero.resolve(DType::U8), Ok(FillValue::UInt(0)));
    /// assert_eq!(FillValue::Float(f64::NAN).resolve(DType::F32), Ok(FillValue::NaN));
    /// assert!(FillValue::Int(300).resolve(DType::U8).is_err());
    /// ```
    pub fn resolve(self, dtype: DType) -> Result<FillValue, String> {
        use FillValue as F;
        let bad = || format!("fill value {self:?} does not fit dtype {dtype}");
        Ok(match (self, dtype) {
            (F::Null, _) => F::Null,
            (F::Zero, DType::Bool) => F::Bool(false),
            (F::Bool(b), DType::Bool) => F::Bool(b),
            (F::Int(i), DType::Bool) if i == 0 || i == 1 => F::Bool(i == 1),
            (F::UInt(u), DType::Bool) if u <= 1 => F::Bool(u == 1),
            (_, DType::Bool) => return Err(bad()),
            (F::Zero, d) if d.is_float() => F::Float(0.0),
            (F::NaN, d) if d.is_float() => F::NaN,
            (F::Float(x), d) if d.is_float() && x.is_nan() => F::NaN,
            (F::Float(x), d) if d.is_float() => F::Float(x),
            (F::Int(i), d) if d.is_float() => F::Float(i as f64),
            (F::UInt(u), d) if d.is_float() => F::Float(u as f64),
            (F::NaN | F::Bool(_), _) => return Err(bad()),
            // Integers.
            (F::Zero, d) => int_fill(0, d).ok_or_else(bad)?,
            (F::Int(i), d) => int_fill(i128::from(i), d).ok_or_else(bad)?,
            (F::UInt(u), d) => int_fill(i128::from(u), d).ok_or_else(bad)?,
            (F::Float(x), d) => {
                if x.fract() != 0.0 || !x.is_finite() {
                    return Err(bad());
                }
                int_fill(x as i128, d).ok_or_else(bad)?
            }
        })
    }

    /// The value as an `f64` (`Null` and `Zero` are 0, `NaN` is NaN).
    pub fn as_f64(self) -> f64 {
        match self {
            FillValue::Null | FillValue::Zero => 0.0,
            FillValue::NaN => f64::NAN,
            FillValue::Bool(b) => f64::from(u8::from(b)),
            FillValue::Int(i) => i as f64,
            FillValue::UInt(u) => u as f64,
            FillValue::Float(x) => x,
        }
    }

    /// The JSON of this (resolved) fill value in `format`'s metadata.
    pub(super) fn to_json(self, dtype: DType, format: ZarrFormat) -> Value {
        match self {
            FillValue::Null if format == ZarrFormat::V2 => Value::Null,
            FillValue::Null | FillValue::Zero => match dtype {
                DType::Bool => json!(false),
                d if d.is_float() => json!(0.0),
                _ => json!(0),
            },
            FillValue::NaN => json!("NaN"),
            FillValue::Bool(b) => json!(b),
            FillValue::Int(i) => json!(i),
            FillValue::UInt(u) => json!(u),
            FillValue::Float(x) if x == f64::INFINITY => json!("Infinity"),
            FillValue::Float(x) if x == f64::NEG_INFINITY => json!("-Infinity"),
            FillValue::Float(x) => json!(x),
        }
    }

    /// Decodes zarrs' native-endian fill value bytes.
    pub(super) fn from_ne_bytes(dtype: DType, b: &[u8]) -> Option<FillValue> {
        fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
            b.try_into().ok()
        }
        Some(match dtype {
            DType::Bool => FillValue::Bool(*b.first()? != 0),
            DType::I8 => FillValue::Int(i8::from_ne_bytes(arr(b)?).into()),
            DType::I16 => FillValue::Int(i16::from_ne_bytes(arr(b)?).into()),
            DType::I32 => FillValue::Int(i32::from_ne_bytes(arr(b)?).into()),
            DType::I64 => FillValue::Int(i64::from_ne_bytes(arr(b)?)),
            DType::U8 => FillValue::UInt(u8::from_ne_bytes(arr(b)?).into()),
            DType::U16 => FillValue::UInt(u16::from_ne_bytes(arr(b)?).into()),
            DType::U32 => FillValue::UInt(u32::from_ne_bytes(arr(b)?).into()),
            DType::U64 => FillValue::UInt(u64::from_ne_bytes(arr(b)?)),
            DType::F32 => FillValue::Float(f32::from_ne_bytes(arr(b)?).into()).resolve_nan(),
            DType::F64 => FillValue::Float(f64::from_ne_bytes(arr(b)?)).resolve_nan(),
        })
    }

    fn resolve_nan(self) -> FillValue {
        match self {
            FillValue::Float(x) if x.is_nan() => FillValue::NaN,
            other => other,
        }
    }
}

fn int_fill(v: i128, dtype: DType) -> Option<FillValue> {
    let (lo, hi): (i128, i128) = match dtype {
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        DType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DType::I64 => (i64::MIN.into(), i64::MAX.into()),
        DType::U8 => (0, u8::MAX.into()),
        DType::U16 => (0, u16::MAX.into()),
        DType::U32 => (0, u32::MAX.into()),
        DType::U64 => (0, u64::MAX.into()),
        _ => return None,
    };
    if !(lo..=hi).contains(&v) {
        return None;
    }
    Some(
        if matches!(dtype, DType::I8 | DType::I16 | DType::I32 | DType::I64) {
            FillValue::Int(v as i64)
        } else {
            FillValue::UInt(v as u64)
        },
    )
}

/// The compressor inside blosc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BloscCompressor {
    /// `blosclz`
    BloscLz,
    /// `lz4` (zarr-python's v2 default)
    Lz4,
    /// `lz4hc`
    Lz4hc,
    /// `snappy`
    Snappy,
    /// `zlib`
    Zlib,
    /// `zstd`
    Zstd,
}

impl BloscCompressor {
    const ALL: [BloscCompressor; 6] = [
        BloscCompressor::BloscLz,
        BloscCompressor::Lz4,
        BloscCompressor::Lz4hc,
        BloscCompressor::Snappy,
        BloscCompressor::Zlib,
        BloscCompressor::Zstd,
    ];

    /// The name in metadata (`"lz4"`).
    pub fn name(self) -> &'static str {
        match self {
            BloscCompressor::BloscLz => "blosclz",
            BloscCompressor::Lz4 => "lz4",
            BloscCompressor::Lz4hc => "lz4hc",
            BloscCompressor::Snappy => "snappy",
            BloscCompressor::Zlib => "zlib",
            BloscCompressor::Zstd => "zstd",
        }
    }

    fn from_name(name: &str) -> Option<BloscCompressor> {
        BloscCompressor::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Blosc's shuffle filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BloscShuffle {
    /// No shuffle (`0` / `"noshuffle"`).
    NoShuffle,
    /// Byte shuffle (`1` / `"shuffle"`; zarr-python's v2 default).
    Byte,
    /// Bit shuffle (`2` / `"bitshuffle"`).
    Bit,
}

impl BloscShuffle {
    fn v2_code(self) -> u8 {
        match self {
            BloscShuffle::NoShuffle => 0,
            BloscShuffle::Byte => 1,
            BloscShuffle::Bit => 2,
        }
    }

    fn v3_name(self) -> &'static str {
        match self {
            BloscShuffle::NoShuffle => "noshuffle",
            BloscShuffle::Byte => "shuffle",
            BloscShuffle::Bit => "bitshuffle",
        }
    }

    fn from_json(v: &Value) -> Option<BloscShuffle> {
        match v {
            Value::Number(n) => match n.as_i64()? {
                0 => Some(BloscShuffle::NoShuffle),
                1 | -1 => Some(BloscShuffle::Byte), // numcodecs' AUTOSHUFFLE (-1) is byte shuffle
                2 => Some(BloscShuffle::Bit),
                _ => None,
            },
            Value::String(s) => [
                BloscShuffle::NoShuffle,
                BloscShuffle::Byte,
                BloscShuffle::Bit,
            ]
            .into_iter()
            .find(|b| b.v3_name() == s),
            _ => None,
        }
    }
}

/// How chunks are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Compression {
    /// Raw bytes.
    None,
    /// Blosc (numcodecs `blosc` in v2, the `blosc` codec in v3).
    Blosc {
        /// The compressor inside blosc.
        cname: BloscCompressor,
        /// Level 0-9.
        clevel: u8,
        /// The shuffle filter.
        shuffle: BloscShuffle,
    },
    /// Zstandard (`level` 0 means zstd's default, as zarr-python writes it).
    Zstd {
        /// Compression level (-131072..=22; 0 = default).
        level: i32,
    },
    /// gzip.
    Gzip {
        /// Level 0-9.
        level: u32,
    },
}

impl Compression {
    /// zarr-python's default for `format`: v2 blosc(lz4, clevel 5, byte shuffle); v3 zstd level 0.
    pub fn default_for(format: ZarrFormat) -> Compression {
        match format {
            ZarrFormat::V2 => Compression::Blosc {
                cname: BloscCompressor::Lz4,
                clevel: 5,
                shuffle: BloscShuffle::Byte,
            },
            ZarrFormat::V3 => Compression::Zstd { level: 0 },
        }
    }

    fn validate(self) -> Result<(), String> {
        match self {
            Compression::Blosc { clevel, .. } if clevel > 9 => {
                Err(format!("blosc clevel {clevel} is not in 0..=9"))
            }
            Compression::Gzip { level } if level > 9 => {
                Err(format!("gzip level {level} is not in 0..=9"))
            }
            Compression::Zstd { level } if !(-131072..=22).contains(&level) => {
                Err(format!("zstd level {level} is not in -131072..=22"))
            }
            _ => Ok(()),
        }
    }

    /// The v2 `compressor` JSON (numcodecs config).
    fn v2_json(self) -> Value {
        match self {
            Compression::None => Value::Null,
            Compression::Blosc {
                cname,
                clevel,
                shuffle,
            } => json!({"id": "blosc", "cname": cname.name(), "clevel": clevel,
                        "shuffle": shuffle.v2_code(), "blocksize": 0}),
            Compression::Zstd { level } => json!({"id": "zstd", "level": level, "checksum": false}),
            Compression::Gzip { level } => json!({"id": "gzip", "level": level}),
        }
    }

    /// The v3 bytes-to-bytes codecs JSON.
    fn v3_json(self, dtype: DType) -> Option<Value> {
        match self {
            Compression::None => None,
            Compression::Blosc {
                cname,
                clevel,
                shuffle,
            } => Some(json!({"name": "blosc", "configuration": {
                "typesize": dtype.itemsize(), "cname": cname.name(), "clevel": clevel,
                "shuffle": shuffle.v3_name(), "blocksize": 0}})),
            Compression::Zstd { level } => {
                Some(json!({"name": "zstd", "configuration": {"level": level, "checksum": false}}))
            }
            Compression::Gzip { level } => {
                Some(json!({"name": "gzip", "configuration": {"level": level}}))
            }
        }
    }

    /// Recognises a v2 compressor or a v3 bytes-to-bytes codec JSON.
    pub(super) fn from_json(v: &Value) -> Option<Compression> {
        let (name, conf) = match (v.get("id"), v.get("name")) {
            (Some(id), _) => (id.as_str()?, v),
            (None, Some(name)) => (
                name.as_str()?,
                v.get("configuration").unwrap_or(&Value::Null),
            ),
            _ => return None,
        };
        let int = |k: &str| conf.get(k).and_then(Value::as_i64);
        match name {
            "blosc" => Some(Compression::Blosc {
                cname: BloscCompressor::from_name(conf.get("cname")?.as_str()?)?,
                clevel: u8::try_from(int("clevel")?).ok()?,
                shuffle: BloscShuffle::from_json(conf.get("shuffle")?)?,
            }),
            "zstd" => Some(Compression::Zstd {
                level: i32::try_from(int("level").unwrap_or(0)).ok()?,
            }),
            "gzip" => Some(Compression::Gzip {
                level: u32::try_from(int("level").unwrap_or(1)).ok()?,
            }),
            _ => None,
        }
    }
}

/// Everything needed to create a Zarr array.
///
/// ```
/// use chunkflow::array::DType;
/// use chunkflow::store::{ArraySpec, Compression, FillValue, ZarrFormat};
///
/// let spec = ArraySpec::new(vec![6, 4, 5], vec![2, 2, 5], DType::F32)
///     .with_format(ZarrFormat::V2) // also picks v2's default compression (blosc lz4)
///     .with_fill_value(FillValue::NaN)
///     .with_dimension_names(["time", "lat", "lon"]);
/// assert_eq!(spec.compression, Compression::default_for(ZarrFormat::V2));
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArraySpec {
    /// The array's shape.
    pub shape: Vec<u64>,
    /// The chunk shape (the inner chunk shape of a sharded array).
    pub chunks: Vec<u64>,
    /// The element type.
    pub dtype: DType,
    /// What never-written parts read as.
    pub fill_value: FillValue,
    /// Zarr v2 or v3.
    pub format: ZarrFormat,
    /// How chunks are compressed.
    pub compression: Compression,
    /// The shard shape (v3 only): each shard, a multiple of `chunks` on every axis, is stored as
    /// one object holding its inner chunks. The unit of writing becomes the shard.
    pub shard: Option<Vec<u64>>,
    /// A name per axis (v3 `dimension_names`, v2 `_ARRAY_DIMENSIONS`: xarray's conventions).
    pub dimension_names: Option<Vec<String>>,
    /// User attributes (JSON).
    pub attributes: Map<String, Value>,
}

impl ArraySpec {
    /// A v3 spec with zarr-python's defaults: zstd level 0, fill value zero, no sharding, no
    /// names, no attributes.
    pub fn new(shape: Vec<u64>, chunks: Vec<u64>, dtype: DType) -> ArraySpec {
        ArraySpec {
            shape,
            chunks,
            dtype,
            fill_value: FillValue::Zero,
            format: ZarrFormat::V3,
            compression: Compression::default_for(ZarrFormat::V3),
            shard: None,
            dimension_names: None,
            attributes: Map::new(),
        }
    }

    /// Sets the format, **and resets the compression to that format's default** (set
    /// compression after this call).
    pub fn with_format(mut self, format: ZarrFormat) -> ArraySpec {
        self.format = format;
        self.compression = Compression::default_for(format);
        self
    }

    /// Sets the compression.
    pub fn with_compression(mut self, compression: Compression) -> ArraySpec {
        self.compression = compression;
        self
    }

    /// Sets the fill value.
    pub fn with_fill_value(mut self, fill_value: FillValue) -> ArraySpec {
        self.fill_value = fill_value;
        self
    }

    /// Shards the array (v3): `shard` is the shard shape, a multiple of the chunk shape.
    pub fn with_shard(mut self, shard: Vec<u64>) -> ArraySpec {
        self.shard = Some(shard);
        self
    }

    /// Names the axes.
    pub fn with_dimension_names<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> ArraySpec {
        self.dimension_names = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Sets all user attributes.
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> ArraySpec {
        self.attributes = attributes;
        self
    }

    /// Adds one user attribute.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> ArraySpec {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Checks the spec is consistent; returns the resolved fill value.
    pub(super) fn validate(&self) -> Result<FillValue, String> {
        let ndim = self.shape.len();
        if self.chunks.len() != ndim {
            return Err(format!(
                "chunks {:?} have {} dimensions but shape {:?} has {ndim}",
                self.chunks,
                self.chunks.len(),
                self.shape
            ));
        }
        if self.chunks.contains(&0) {
            return Err(format!(
                "chunk sizes must be positive, got {:?}",
                self.chunks
            ));
        }
        if let Some(shard) = &self.shard {
            if self.format == ZarrFormat::V2 {
                return Err("sharding needs Zarr v3 (set format to V3)".into());
            }
            if shard.len() != ndim
                || shard
                    .iter()
                    .zip(&self.chunks)
                    .any(|(&s, &c)| s == 0 || s % c != 0)
            {
                return Err(format!(
                    "shard shape {shard:?} must have {ndim} positive sizes, each a multiple of \
                     the chunk shape {:?}",
                    self.chunks
                ));
            }
        }
        if let Some(names) = &self.dimension_names
            && names.len() != ndim
        {
            return Err(format!(
                "{} dimension names {names:?} for {ndim} dimensions",
                names.len()
            ));
        }
        self.compression.validate()?;
        self.fill_value.resolve(self.dtype)
    }

    /// The metadata documents to write: `(key name, JSON)` pairs, in write order (the document
    /// that makes the node visible last).
    pub(super) fn documents(&self, fill: FillValue) -> Vec<(&'static str, Value)> {
        let fill_json = fill.to_json(self.dtype, self.format);
        match self.format {
            ZarrFormat::V2 => {
                let mut attrs = self.attributes.clone();
                if let Some(names) = &self.dimension_names {
                    attrs.insert("_ARRAY_DIMENSIONS".into(), json!(names));
                }
                let zarray = json!({
                    "shape": self.shape,
                    "chunks": self.chunks,
                    "dtype": self.dtype.v2_typestr(),
                    "fill_value": fill_json,
                    "order": "C",
                    "filters": null,
                    "dimension_separator": ".",
                    "compressor": self.compression.v2_json(),
                    "zarr_format": 2,
                });
                vec![(".zattrs", Value::Object(attrs)), (".zarray", zarray)]
            }
            ZarrFormat::V3 => {
                let bytes = if self.dtype.itemsize() == 1 {
                    json!({"name": "bytes"})
                } else {
                    json!({"name": "bytes", "configuration": {"endian": "little"}})
                };
                let mut codecs = vec![bytes];
                codecs.extend(self.compression.v3_json(self.dtype));
                let (grid_shape, codecs) = match &self.shard {
                    None => (&self.chunks, codecs),
                    Some(shard) => (
                        shard,
                        vec![json!({"name": "sharding_indexed", "configuration": {
                            "chunk_shape": self.chunks,
                            "codecs": codecs,
                            "index_codecs": [
                                {"name": "bytes", "configuration": {"endian": "little"}},
                                {"name": "crc32c"}
                            ],
                            "index_location": "end"
                        }})],
                    ),
                };
                let mut attrs = self.attributes.clone();
                if self.dimension_names.is_some() {
                    attrs.remove("_ARRAY_DIMENSIONS");
                }
                let mut doc = json!({
                    "zarr_format": 3,
                    "node_type": "array",
                    "shape": self.shape,
                    "data_type": self.dtype.name(),
                    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid_shape}},
                    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                    "fill_value": fill_json,
                    "codecs": codecs,
                    "attributes": attrs,
                    "storage_transformers": [],
                });
                if let Some(names) = &self.dimension_names {
                    doc["dimension_names"] = json!(names);
                }
                vec![("zarr.json", doc)]
            }
        }
    }
}
