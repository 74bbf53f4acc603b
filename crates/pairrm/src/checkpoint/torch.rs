//! `pytorch_model.bin`: the zip format `torch.save` writes since torch 1.6.
//!
//! The archive holds `<name>/data.pkl` (a pickle of the state dict whose tensors refer to
//! storages by key through persistent ids) and one record `<name>/data/<key>` per storage, the raw
//! little-endian elements. `<name>` is whatever torch chose when saving (the file's stem, or
//! `archive`), so it is found rather than assumed. torch stores records uncompressed and aligned
//! to 64 bytes, so their bytes are used in place from the memory map; compressed records (zip
//! tools may write them) are inflated into memory.
//!
//! Record bytes are not checksummed (as with safetensors): a flipped bit inside tensor data
//! changes a value, while damage anywhere in the structure is an error.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use super::pickle::{self, StorageType, TensorRef, Value};
use super::weights::{Buffer, DType, Entry, EntryData};
use crate::error::{Error, Result};

/// Largest `data.pkl` read (a state dict's pickle is a few hundred kB at most).
const MAX_PICKLE_BYTES: u64 = 256 << 20;

type Zip<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

/// A storage record: `len` bytes at `start` of `buffer`.
#[derive(Clone)]
struct Storage {
    buffer: Arc<Buffer>,
    start: usize,
    len: usize,
}

/// Indexes the torch zip checkpoint held in `buffer` (the memory map of `path`).
pub(crate) fn read_torch_zip(path: &Path, buffer: &Arc<Buffer>) -> Result<HashMap<String, Entry>> {
    let bytes = buffer.bytes();
    let bad = |m: String| Error::invalid_file(path, m);
    if bytes.is_empty() {
        return Err(bad("empty file, not a torch checkpoint".into()));
    }
    if !bytes.starts_with(b"PK") {
        if bytes[0] == 0x80 {
            return Err(bad(
                "unsupported legacy torch format (a bare pickle from torch < 1.6 or _use_new_zipfile_serialization=False); \
                 re-save it with a current torch (torch.save(torch.load(f), f)) or convert it to model.safetensors"
                    .into(),
            ));
        }
        return Err(bad("not a torch checkpoint (neither a zip archive nor a legacy torch pickle)".into()));
    }
    let mut zip = Zip::new(Cursor::new(bytes)).map_err(|e| bad(format!("not a valid torch zip archive: {e}")))?;

    let prefix = zip
        .file_names()
        .filter_map(|n| n.strip_suffix("/data.pkl"))
        .find(|p| !p.is_empty() && !p.contains('/'))
        .map(str::to_string)
        .ok_or_else(|| bad("zip archive without a `<name>/data.pkl` record: not a torch checkpoint".into()))?;

    if let Some(order) = read_small(&mut zip, &format!("{prefix}/byteorder"), 64) {
        let order = order.map_err(|e| bad(format!("{prefix}/byteorder: {e}")))?;
        if order.trim_ascii() != b"little" {
            return Err(bad(format!(
                "{prefix}/byteorder is {:?}; only little-endian torch files are supported",
                String::from_utf8_lossy(&order)
            )));
        }
    }

    let pkl = read_small(&mut zip, &format!("{prefix}/data.pkl"), MAX_PICKLE_BYTES)
        .unwrap_or_else(|| Err("missing".into()))
        .map_err(|e| bad(format!("{prefix}/data.pkl: {e}")))?;
    let root = pickle::load(&pkl).map_err(|e| bad(format!("{prefix}/data.pkl: {e}")))?;
    let items = match &root {
        Value::Dict(d) => &d.items,
        other => {
            return Err(bad(format!("{prefix}/data.pkl holds {}, not a state dict", other.describe())));
        }
    };

    let mut storages: HashMap<String, std::result::Result<Storage, String>> = HashMap::new();
    let mut entries = HashMap::new();
    for (key, value) in items {
        let Value::Str(name) = key else { continue };
        let entry = match value {
            Value::Tensor(t) => {
                let storage = storages
                    .entry(t.storage.key.clone())
                    .or_insert_with(|| storage(&mut zip, buffer, &prefix, &t.storage.key))
                    .clone();
                tensor_entry(t, storage, &prefix)
            }
            other => Entry {
                shape: Vec::new(),
                data: EntryData::NotTensor(format!("is not a tensor but {}", other.describe())),
            },
        };
        entries.insert(name.to_string(), entry);
    }
    Ok(entries)
}

/// Reads a small record whole (at most `limit` bytes); `None` if there is no such record.
fn read_small(zip: &mut Zip<'_>, name: &str, limit: u64) -> Option<std::result::Result<Vec<u8>, String>> {
    let index = zip.index_for_name(name)?;
    Some((|| {
        let file = zip.by_index(index).map_err(|e| format!("unreadable record: {e}"))?;
        if file.size() > limit {
            return Err(format!("record of {} bytes is larger than the {limit} bytes allowed", file.size()));
        }
        let mut out = Vec::new();
        file.take(limit).read_to_end(&mut out).map_err(|e| format!("unreadable record: {e}"))?;
        Ok(out)
    })())
}

/// Locates the bytes of storage record `<prefix>/data/<key>`.
fn storage(zip: &mut Zip<'_>, buffer: &Arc<Buffer>, prefix: &str, key: &str) -> std::result::Result<Storage, String> {
    let name = format!("{prefix}/data/{key}");
    let index =
        zip.index_for_name(&name).ok_or_else(|| format!("storage record {name} is missing from the archive"))?;
    let (method, start, size, compressed, encrypted) = {
        let file = zip.by_index_raw(index).map_err(|e| format!("storage record {name} is unreadable: {e}"))?;
        (file.compression(), file.data_start(), file.size(), file.compressed_size(), file.encrypted())
    };
    if encrypted {
        return Err(format!("storage record {name} is encrypted"));
    }
    let all = buffer.bytes().len() as u64;
    if method == zip::CompressionMethod::Stored {
        if size != compressed || start.checked_add(size).is_none_or(|end| end > all) {
            return Err(format!(
                "storage record {name} is truncated: {size} bytes at offset {start}, but the file has {all} bytes"
            ));
        }
        return Ok(Storage { buffer: buffer.clone(), start: start as usize, len: size as usize });
    }
    // A compressed record: inflate it (its declared size bounds the allocation by the file's
    // own claim, and the inflater stops at the end of the compressed bytes).
    if start.checked_add(compressed).is_none_or(|end| end > all) {
        return Err(format!("storage record {name} is truncated"));
    }
    let file = zip.by_index(index).map_err(|e| format!("storage record {name} is unreadable: {e}"))?;
    let mut out = Vec::new();
    file.take(size).read_to_end(&mut out).map_err(|e| format!("storage record {name} is unreadable: {e}"))?;
    let len = out.len();
    Ok(Storage { buffer: Arc::new(Buffer::Owned(out)), start: 0, len })
}

/// The index entry of one tensor of the state dict.
fn tensor_entry(t: &TensorRef, storage: std::result::Result<Storage, String>, prefix: &str) -> Entry {
    let shape = t.shape.clone();
    let unreadable = |m: String| Entry { shape: shape.clone(), data: EntryData::Unreadable(m) };
    let dtype = match &t.storage.dtype {
        StorageType::F32 => DType::F32,
        StorageType::F16 => DType::F16,
        StorageType::BF16 => DType::BF16,
        StorageType::Other(name) => {
            return unreadable(format!(
                "has unsupported dtype {name} (only FloatStorage, HalfStorage and BFloat16Storage are read)"
            ))
        }
    };
    if !is_contiguous(&t.shape, &t.stride) {
        return unreadable(format!(
            "is not contiguous (size {:?}, stride {:?}); re-save it with .contiguous() tensors",
            t.shape, t.stride
        ));
    }
    let storage = match storage {
        Ok(s) => s,
        Err(e) => return unreadable(format!("data is unreadable: {e}")),
    };
    let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let range = numel.and_then(|n| {
        let start = t.offset.checked_mul(dtype.size())?;
        let bytes = n.checked_mul(dtype.size())?;
        Some((start, bytes, start.checked_add(bytes)?))
    });
    match range {
        Some((start, bytes, end)) if end <= storage.len || bytes == 0 => Entry {
            shape,
            data: EntryData::Data {
                dtype,
                buffer: storage.buffer,
                start: storage.start + start.min(storage.len),
                bytes,
            },
        },
        Some((start, _, end)) => unreadable(format!(
            "data is truncated: needs bytes {start}..{end} of storage record {prefix}/data/{}, which has {} bytes",
            t.storage.key, storage.len
        )),
        None => unreadable(format!("has an impossible size {:?} at storage offset {}", t.shape, t.offset)),
    }
}

/// Whether `stride` is the row-major layout of `shape` (dimensions of size 1 may have any
/// stride, as in torch's own `is_contiguous`).
fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let mut expected = 1usize;
    for (&size, &st) in shape.iter().zip(stride).rev() {
        if size != 1 && st != expected {
            return false;
        }
        expected = match expected.checked_mul(size) {
            Some(e) => e,
            None => return false,
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity() {
        assert!(is_contiguous(&[2, 3], &[3, 1]));
        assert!(!is_contiguous(&[3, 2], &[1, 3]));
        assert!(is_contiguous(&[3, 1], &[1, 1]));
        assert!(is_contiguous(&[], &[]));
        assert!(is_contiguous(&[0, 4], &[4, 1]));
        assert!(is_contiguous(&[1, 4], &[99, 1]));
    }
}
