//! A bounds-checked GGUF reader over a byte slice.
//!
//! candle has a GGUF reader, but it trusts the lengths a file declares (`vec![0; len]` before
//! reading), so a hostile or truncated file could make the component allocate gigabytes and
//! trap. This one checks every length against the bytes actually there and borrows tensor data
//! from the buffer without copying.

use std::collections::HashMap;

use candle_core::quantized::GgmlDType;

use crate::error::{EngineError, Result};

const MAGIC: &[u8; 4] = b"GGUF";
const MAX_DIMS: u32 = 4;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) if v >= 0 => Some(v as u64),
            Value::I16(v) if v >= 0 => Some(v as u64),
            Value::I32(v) if v >= 0 => Some(v as u64),
            Value::I64(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: the first dimension is the fastest-varying one (a row's length).
    pub dims: Vec<usize>,
    pub dtype: GgmlDType,
    /// Byte range of the data inside the file.
    pub start: usize,
    pub len: usize,
}

impl TensorInfo {
    pub fn elements(&self) -> usize {
        self.dims.iter().product()
    }
    /// Dimensions in candle's order (row-major, the last dimension fastest).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }
}

/// A parsed GGUF file: metadata and tensor directory, borrowing the file's bytes.
pub struct GgufFile<'a> {
    pub file_name: String,
    pub metadata: HashMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    bytes: &'a [u8],
}

impl<'a> GgufFile<'a> {
    pub fn parse(file_name: &str, bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader { file_name, bytes, pos: 0 };
        if bytes.len() < 4 || &bytes[..4] != MAGIC {
            let found: Vec<u8> = bytes.iter().take(4).copied().collect();
            return Err(EngineError::InvalidModel(format!(
                "{file_name}: not a GGUF file (expected magic \"GGUF\" at byte 0, found {found:02x?})"
            )));
        }
        r.pos = 4;
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(EngineError::Unsupported(format!(
                "{file_name}: GGUF version {version} (supported: 2 and 3)"
            )));
        }
        let tensor_count = r.count("tensor_count", 24)?;
        let kv_count = r.count("metadata_kv_count", 13)?;
        let mut metadata = HashMap::with_capacity(kv_count);
        for _ in 0..kv_count {
            let key = r.string("metadata key")?;
            let value_type = r.u32("metadata value type")?;
            let value = r.value(value_type, &key, 0)?;
            metadata.insert(key, value);
        }
        let mut infos = Vec::with_capacity(tensor_count);
        for _ in 0..tensor_count {
            let name = r.string("tensor name")?;
            let n_dims = r.u32("tensor n_dims")?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(r.invalid(&format!("tensor {name}: {n_dims} dimensions (1 to 4 allowed)")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                let d = r.u64("tensor dimension")?;
                // A zero makes an empty tensor that passes the size checks below and then no
                // matmul fits it (found by fuzzing).
                if d == 0 {
                    return Err(r.invalid(&format!("tensor {name}: a dimension is 0")));
                }
                dims.push(usize::try_from(d).map_err(|_| r.invalid(&format!("tensor {name}: dimension {d} too large")))?);
            }
            let type_id = r.u32("tensor type")?;
            let dtype = dtype_from_id(type_id).ok_or_else(|| {
                EngineError::Unsupported(format!("{file_name}: tensor {name} has GGML type {type_id}, which this engine does not support"))
            })?;
            let offset = r.u64("tensor offset")?;
            infos.push((name, dims, dtype, offset));
        }
        let alignment = metadata.get("general.alignment").and_then(Value::as_u64).unwrap_or(32);
        if alignment == 0 || !alignment.is_power_of_two() || alignment > 1 << 16 {
            return Err(r.invalid(&format!("general.alignment is {alignment}, not a power of two")));
        }
        let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
        let mut tensors = Vec::with_capacity(infos.len());
        for (name, dims, dtype, offset) in infos {
            let elements = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            let block = dtype.block_size();
            let len = elements
                .filter(|e| e % block == 0)
                .and_then(|e| (e / block).checked_mul(dtype.type_size()))
                .ok_or_else(|| r.invalid(&format!("tensor {name}: dimensions {dims:?} do not fit {dtype:?} blocks of {block}")))?;
            let start = data_start.checked_add(offset).and_then(|s| usize::try_from(s).ok());
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(start), Some(end)) if end <= bytes.len() => {
                    tensors.push(TensorInfo { name, dims, dtype, start, len })
                }
                _ => {
                    return Err(EngineError::InvalidModel(format!(
                        "{file_name}: tensor {name} ends at byte {} but the file has {} bytes (truncated?)",
                        data_start.saturating_add(offset).saturating_add(len as u64),
                        bytes.len()
                    )))
                }
            }
        }
        Ok(GgufFile { file_name: file_name.to_string(), metadata, tensors, bytes })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    pub fn require(&self, key: &str) -> Result<&Value> {
        self.metadata
            .get(key)
            .ok_or_else(|| EngineError::InvalidModel(format!("{}: metadata field {key} is missing", self.file_name)))
    }

    pub fn require_u64(&self, key: &str) -> Result<u64> {
        self.require(key)?
            .as_u64()
            .ok_or_else(|| EngineError::InvalidModel(format!("{}: metadata field {key} is not an unsigned integer", self.file_name)))
    }

    pub fn require_str(&self, key: &str) -> Result<&str> {
        self.require(key)?
            .as_str()
            .ok_or_else(|| EngineError::InvalidModel(format!("{}: metadata field {key} is not a string", self.file_name)))
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn require_tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name)
            .ok_or_else(|| EngineError::InvalidModel(format!("{}: tensor {name} is missing", self.file_name)))
    }

    pub fn data(&self, info: &TensorInfo) -> &'a [u8] {
        &self.bytes[info.start..info.start + info.len]
    }
}

/// GGML type ids as written in GGUF files.
pub fn dtype_from_id(id: u32) -> Option<GgmlDType> {
    Some(match id {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        9 => GgmlDType::Q8_1,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        15 => GgmlDType::Q8K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}

pub fn dtype_id(dtype: GgmlDType) -> u32 {
    match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}

struct Reader<'a> {
    file_name: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn invalid(&self, what: &str) -> EngineError {
        EngineError::InvalidModel(format!("{}: {what} (at byte {})", self.file_name, self.pos))
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&[u8]> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.bytes.len() => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => Err(EngineError::InvalidModel(format!(
                "{}: file ends at byte {} while reading {field} ({n} bytes at byte {}); truncated?",
                self.file_name,
                self.bytes.len(),
                self.pos
            ))),
        }
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A declared element count, checked against the bytes left (each element takes at least
    /// `min_size` bytes), so a hostile count cannot make us allocate.
    fn count(&mut self, field: &str, min_size: usize) -> Result<usize> {
        let n = self.u64(field)?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left / min_size.max(1) as u64 {
            return Err(self.invalid(&format!("{field} is {n}, more than the {left} bytes left can hold")));
        }
        Ok(n as usize)
    }

    fn string(&mut self, field: &str) -> Result<String> {
        let len = self.count(field, 1)?;
        let raw = self.take(len, field)?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.invalid(&format!("{field} is not UTF-8")))
    }

    fn value(&mut self, value_type: u32, key: &str, depth: u32) -> Result<Value> {
        Ok(match value_type {
            0 => Value::U8(self.array::<1>(key)?[0]),
            1 => Value::I8(self.array::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            7 => Value::Bool(self.array::<1>(key)?[0] != 0),
            8 => Value::String(self.string(key)?),
            9 => {
                if depth > 2 {
                    return Err(self.invalid(&format!("metadata {key}: arrays nested too deeply")));
                }
                let item_type = self.u32(key)?;
                let len = self.count(key, 1)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value(item_type, key, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => return Err(self.invalid(&format!("metadata {key}: unknown value type {other}"))),
        })
    }
}

/// Writes GGUF files; used by tests to make tiny models, and by anyone converting weights.
pub mod writer {
    use super::{dtype_id, Value};
    use candle_core::quantized::GgmlDType;

    pub struct TensorData {
        pub name: String,
        /// GGUF order (first = row length).
        pub dims: Vec<usize>,
        pub dtype: GgmlDType,
        pub bytes: Vec<u8>,
    }

    pub fn write(metadata: &[(&str, Value)], tensors: &[TensorData]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata {
            put_string(&mut out, key);
            put_value(&mut out, value);
        }
        let mut offset = 0u64;
        for t in tensors {
            put_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&(*d as u64).to_le_bytes());
            }
            out.extend_from_slice(&dtype_id(t.dtype).to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset += (t.bytes.len() as u64).div_ceil(32) * 32;
        }
        while out.len() % 32 != 0 {
            out.push(0);
        }
        for t in tensors {
            out.extend_from_slice(&t.bytes);
            while out.len() % 32 != 0 {
                out.push(0);
            }
        }
        out
    }

    fn put_string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    fn type_id(v: &Value) -> u32 {
        match v {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    fn put_value(out: &mut Vec<u8>, v: &Value) {
        out.extend_from_slice(&type_id(v).to_le_bytes());
        put_payload(out, v);
    }

    fn put_payload(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.push(*x as u8),
            Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Bool(x) => out.push(*x as u8),
            Value::String(s) => put_string(out, s),
            Value::Array(items) => {
                let item_type = items.first().map(type_id).unwrap_or(4);
                out.extend_from_slice(&item_type.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for item in items {
                    put_payload(out, item);
                }
            }
            Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
}
