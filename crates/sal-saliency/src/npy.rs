//! A minimal `.npy` reader and writer (NumPy format 1.0; 2.0 and 3.0 are read too): C-order
//! arrays of `u8` (`|u1`) or `f32` (`<f4`, `>f4` read), the two dtypes the fixtures and the CLI
//! use. Anything else is a typed [`NpyError`], never a panic.
//!
//! Layout: magic `\x93NUMPY`, version (2 bytes), header length (u16 LE in 1.0, u32 LE later),
//! a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (224, 224), }`
//! padded with spaces and a newline so the data starts at a multiple of 64 bytes, then the data.

use std::path::{Path, PathBuf};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The element values of an array.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    U8(Vec<u8>),
    F32(Vec<f32>),
}

/// An n-dimensional array in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// Why a `.npy` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a .npy file (missing the \\x93NUMPY magic)")]
    Magic,
    #[error("unsupported .npy format version {major}.{minor}")]
    Version { major: u8, minor: u8 },
    #[error("malformed .npy header: {0}")]
    Header(String),
    #[error("unsupported dtype {0:?}: only '|u1' (uint8) and '<f4' (float32) are supported")]
    Dtype(String),
    #[error("Fortran-order arrays are not supported; save with np.ascontiguousarray")]
    FortranOrder,
    #[error("truncated .npy data: the header promises {expected} bytes, the file has {found}")]
    Truncated { expected: usize, found: usize },
    #[error("{found} values do not fill shape {shape:?} ({expected} values)")]
    Shape {
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    #[error("array has shape {found:?}, expected {expected}")]
    UnexpectedShape { found: Vec<usize>, expected: String },
    #[error("array has dtype {found}, expected {expected}")]
    UnexpectedDtype {
        found: &'static str,
        expected: &'static str,
    },
}

impl NpyArray {
    /// A validated array: `data` must hold exactly `shape.iter().product()` values.
    pub fn new(shape: Vec<usize>, data: NpyData) -> Result<Self, NpyError> {
        let expected: usize = shape.iter().product();
        let found = data.len();
        if expected != found {
            return Err(NpyError::Shape {
                shape,
                expected,
                found,
            });
        }
        Ok(Self { shape, data })
    }

    /// The dtype's NumPy name (`"uint8"` or `"float32"`).
    pub fn dtype_name(&self) -> &'static str {
        self.data.dtype_name()
    }
}

impl NpyData {
    pub fn len(&self) -> usize {
        match self {
            NpyData::U8(v) => v.len(),
            NpyData::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn dtype_name(&self) -> &'static str {
        match self {
            NpyData::U8(_) => "uint8",
            NpyData::F32(_) => "float32",
        }
    }
}

/// Reads a `.npy` file.
pub fn read(path: impl AsRef<Path>) -> Result<NpyArray, NpyError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes)
}

/// Writes `array` as a format-1.0 `.npy` file.
pub fn write(path: impl AsRef<Path>, array: &NpyArray) -> Result<(), NpyError> {
    let path = path.as_ref();
    std::fs::write(path, to_bytes(array)).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(NpyError::Magic);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            let b = bytes.get(8..12).ok_or(NpyError::Truncated {
                expected: 12,
                found: bytes.len(),
            })?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        _ => return Err(NpyError::Version { major, minor }),
    };
    let data_start = header_start + header_len;
    let header = bytes
        .get(header_start..data_start)
        .ok_or(NpyError::Truncated {
            expected: data_start,
            found: bytes.len(),
        })?;
    let header =
        std::str::from_utf8(header).map_err(|_| NpyError::Header("header is not text".into()))?;
    let (descr, fortran, shape) = parse_header(header)?;
    if fortran {
        return Err(NpyError::FortranOrder);
    }
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| NpyError::Header(format!("shape {shape:?} overflows")))?;
    let body = &bytes[data_start..];
    let item = match descr.as_str() {
        "|u1" | "<u1" | ">u1" | "u1" => 1,
        "<f4" | ">f4" => 4,
        _ => return Err(NpyError::Dtype(descr)),
    };
    let expected = count
        .checked_mul(item)
        .ok_or_else(|| NpyError::Header(format!("shape {shape:?} overflows")))?;
    if body.len() < expected {
        return Err(NpyError::Truncated {
            expected: data_start + expected,
            found: bytes.len(),
        });
    }
    let body = &body[..expected];
    let data = match descr.as_str() {
        "<f4" => NpyData::F32(
            body.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        ">f4" => NpyData::F32(
            body.chunks_exact(4)
                .map(|b| f32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        _ => NpyData::U8(body.to_vec()),
    };
    NpyArray::new(shape, data)
}

/// The bytes of a format-1.0 `.npy` file holding `array` (little-endian, C order).
pub fn to_bytes(array: &NpyArray) -> Vec<u8> {
    let descr = match array.data {
        NpyData::U8(_) => "|u1",
        NpyData::F32(_) => "<f4",
    };
    let shape = match array.shape.as_slice() {
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.extend(std::iter::repeat_n(
        ' ',
        unpadded.next_multiple_of(64) - unpadded,
    ));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + array.data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match &array.data {
        NpyData::U8(v) => out.extend_from_slice(v),
        NpyData::F32(v) => out.extend(v.iter().flat_map(|x| x.to_le_bytes())),
    }
    out
}

/// Extracts `descr`, `fortran_order` and `shape` from the header's dict literal.
fn parse_header(header: &str) -> Result<(String, bool, Vec<usize>), NpyError> {
    let bad = |what: &str| NpyError::Header(format!("{what} in {:?}", header.trim_end()));
    let value_after = |key: &str| -> Result<&str, NpyError> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(&format!("no '{key}' key")))?;
        let rest = &header[at + key.len() + 2..];
        let colon = rest
            .find(':')
            .ok_or_else(|| bad(&format!("no ':' after '{key}'")))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr = value_after("descr")?;
    let quote = descr.chars().next().filter(|c| *c == '\'' || *c == '"');
    let quote = quote.ok_or_else(|| bad("descr is not a string"))?;
    let end = descr[1..]
        .find(quote)
        .ok_or_else(|| bad("unterminated descr"))?;
    let descr = descr[1..1 + end].to_string();

    let fortran = value_after("fortran_order")?;
    let fortran = if fortran.starts_with("False") {
        false
    } else if fortran.starts_with("True") {
        true
    } else {
        return Err(bad("fortran_order is neither True nor False"));
    };

    let shape = value_after("shape")?;
    let shape = shape
        .strip_prefix('(')
        .ok_or_else(|| bad("shape is not a tuple"))?;
    let close = shape.find(')').ok_or_else(|| bad("unterminated shape"))?;
    let dims = shape[..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("shape has a non-integer dimension"))?;
    Ok((descr, fortran, dims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_dtypes_and_pads_to_64_bytes() {
        for array in [
            NpyArray::new(vec![2, 3], NpyData::U8(vec![1, 2, 3, 4, 5, 255])).unwrap(),
            NpyArray::new(vec![3], NpyData::F32(vec![0.5, -1.0, f32::MAX])).unwrap(),
            NpyArray::new(vec![], NpyData::F32(vec![7.0])).unwrap(),
            NpyArray::new(vec![2, 0, 4], NpyData::U8(vec![])).unwrap(),
        ] {
            let bytes = to_bytes(&array);
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0);
            assert_eq!(parse(&bytes).unwrap(), array);
        }
    }

    #[test]
    fn writes_what_numpy_writes() {
        // np.save of np.zeros((224, 224), np.float32): this exact header.
        let a = NpyArray::new(vec![224, 224], NpyData::F32(vec![0.0; 224 * 224])).unwrap();
        let b = to_bytes(&a);
        let header = std::str::from_utf8(&b[10..128]).unwrap();
        assert_eq!(
            header.trim_end(),
            "{'descr': '<f4', 'fortran_order': False, 'shape': (224, 224), }"
        );
        assert_eq!(b.len(), 128 + 224 * 224 * 4);
    }

    #[test]
    fn bad_files_are_typed_errors() {
        let good = to_bytes(&NpyArray::new(vec![2, 2], NpyData::F32(vec![1.0; 4])).unwrap());
        assert!(matches!(parse(b"hello world"), Err(NpyError::Magic)));
        assert!(matches!(
            parse(&good[..good.len() - 1]),
            Err(NpyError::Truncated { .. })
        ));
        assert!(matches!(
            parse(&good[..40]),
            Err(NpyError::Truncated { .. })
        ));
        let mut v = good.clone();
        v[6] = 9;
        assert!(matches!(parse(&v), Err(NpyError::Version { major: 9, .. })));
        // Replaces a same-length piece of the header text.
        let swap = |from: &str, to: &str| {
            assert_eq!(from.len(), to.len());
            let mut v = good.clone();
            let at = v
                .windows(from.len())
                .position(|w| w == from.as_bytes())
                .unwrap();
            v[at..at + to.len()].copy_from_slice(to.as_bytes());
            parse(&v).map(|_| ()).unwrap_err()
        };
        assert!(matches!(swap("<f4", "<f8"), NpyError::Dtype(d) if d == "<f8"));
        assert!(matches!(swap("False", "True "), NpyError::FortranOrder));
        assert!(matches!(swap("(2, 2)", "(2, x)"), NpyError::Header(_)));
        assert!(matches!(swap("'shape'", "'shapx'"), NpyError::Header(_)));
        assert!(matches!(
            NpyArray::new(vec![3], NpyData::U8(vec![1])),
            Err(NpyError::Shape {
                expected: 3,
                found: 1,
                ..
            })
        ));
    }
}
