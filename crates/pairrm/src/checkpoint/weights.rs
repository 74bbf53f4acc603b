//! Weight files: `model.safetensors` (memory-mapped) and `pytorch_model.bin` (torch zip pickle).
//!
//! Both formats are read into the same index: tensor name → (dtype, shape, bytes in a buffer).
//! The buffer is the file's memory map wherever the data can be used in place (safetensors, and
//! the stored — uncompressed — entries of a torch zip), so a tensor of little-endian f32 at a
//! 4-byte-aligned address costs nothing to "load": [`Tensor`] then borrows the mapping. F16 and
//! BF16 tensors (and f32 ones at unaligned addresses) are converted to owned f32.
//!
//! Nothing in a corrupt or truncated file makes this module panic: every inconsistency is an
//! [`Error::InvalidFile`] naming the file (and the tensor, where one is concerned). That includes
//! values that are not finite numbers (NaN, infinities) in any tensor read, except the
//! word-embedding lookup table (read row by row; see [`Weights::get`]).
//!
//! As with any memory-mapped file, the file must not be truncated or rewritten while the
//! [`Weights`] (or a [`Tensor`] borrowed from it) is alive.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use memmap2::Mmap;

use super::torch;
use crate::error::{Error, Result};

/// Bytes that tensors point into: the file's memory map, or data decompressed from it.
pub(crate) enum Buffer {
    /// The whole file, memory-mapped read-only.
    Mapped(Mmap),
    /// Bytes owned in memory (a deflated zip entry, inflated).
    Owned(Vec<u8>),
}

impl Buffer {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Buffer::Mapped(m) => m,
            Buffer::Owned(v) => v,
        }
    }
}

/// Element types that can be read as f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DType {
    F32,
    F16,
    BF16,
}

impl DType {
    pub(crate) fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }
}

/// Where one tensor's data is, or why it cannot be read.
pub(crate) enum EntryData {
    /// `bytes` bytes of `dtype` elements starting at `start` in `buffer`, in row-major order.
    /// The range is checked against the buffer when the tensor is read.
    Data { dtype: DType, buffer: Arc<Buffer>, start: usize, bytes: usize },
    /// The entry is a tensor that cannot be read (unsupported dtype, not contiguous, truncated...).
    Unreadable(String),
    /// The entry is not a tensor at all (a torch state dict may hold other objects).
    NotTensor(String),
}

/// One named entry of a weight file.
pub(crate) struct Entry {
    pub(crate) shape: Vec<usize>,
    pub(crate) data: EntryData,
}

/// The file formats [`Weights`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// A safetensors file (`model.safetensors`).
    Safetensors,
    /// A torch zip checkpoint written by `torch.save` (`pytorch_model.bin`).
    TorchZip,
}

/// One tensor as f32 values, row-major. Memory-mapped from the file when the file stores
/// aligned little-endian f32; converted (f16, bf16, unaligned) otherwise.
#[derive(Clone)]
pub struct Tensor {
    /// The tensor's shape.
    pub shape: Vec<usize>,
    data: TensorData,
}

#[derive(Clone)]
enum TensorData {
    /// `len` f32 values at byte `start` of `buffer`; `start` is in range and the address is
    /// 4-byte aligned (checked when the tensor was made).
    Borrowed {
        buffer: Arc<Buffer>,
        start: usize,
        len: usize,
    },
    Owned(Vec<f32>),
}

impl Tensor {
    /// Tells the OS that this tensor's pages of the memory-mapped file are not needed for now, so
    /// they leave the process's resident memory (the values stay readable: they are read from the
    /// file again on access). Used after converting a tensor to another storage type. Does nothing
    /// for tensors that are not memory-mapped.
    pub fn release_pages(&self) {
        if let TensorData::Borrowed { buffer, start, len } = &self.data {
            if let Buffer::Mapped(map) = &**buffer {
                // Whole pages inside the tensor only: its neighbours may still be in use.
                let page = 4096;
                let first = start.div_ceil(page) * page;
                let end = (start + len * 4) / page * page;
                if end > first {
                    #[cfg(unix)]
                    // SAFETY: the mapping is read-only and never written, so dropping its pages
                    // only makes later reads fetch the same bytes from the file again.
                    unsafe {
                        let _ = map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, end - first);
                    }
                }
            }
        }
    }

    /// Whether the values are read in place from the file's memory map (zero copy) rather than
    /// converted into memory of their own.
    pub fn is_mapped(&self) -> bool {
        match &self.data {
            TensorData::Borrowed { buffer, .. } => matches!(**buffer, Buffer::Mapped(_)),
            TensorData::Owned(_) => false,
        }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor").field("shape", &self.shape).field("mapped", &self.is_mapped()).finish()
    }
}

impl std::ops::Deref for Tensor {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match &self.data {
            TensorData::Owned(v) => v,
            TensorData::Borrowed { buffer, start, len } => {
                let bytes = &buffer.bytes()[*start..*start + *len * 4];
                debug_assert_eq!(bytes.as_ptr() as usize % std::mem::align_of::<f32>(), 0);
                // SAFETY: `Tensor::read` made this variant only for a range inside the buffer
                // (re-checked by the slice above) whose address is aligned for f32, on a
                // little-endian target, so the bytes are `len` valid f32 values. Every bit
                // pattern is a valid f32. The buffer is immutable and kept alive by the `Arc`
                // for as long as the returned slice borrows `self`.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), *len) }
            }
        }
    }
}

/// The tensors of one weight file.
pub struct Weights {
    path: PathBuf,
    format: WeightFormat,
    entries: HashMap<String, Entry>,
    /// The names of the entries read so far ([`Weights::unread`]).
    read: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("tensors", &self.entries.len())
            .finish()
    }
}

impl Weights {
    /// Opens `model.safetensors` or `pytorch_model.bin` (chosen by file name: a `.safetensors`
    /// extension means safetensors, anything else a torch checkpoint).
    ///
    /// Torch checkpoints must be in the zip format of `torch.save` (torch >= 1.6); the legacy
    /// format is rejected with a message saying how to convert it.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; the documented contract of this module is that the file
        // is not modified while mapped (as for every memory-mapped model loader).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let buffer = Arc::new(Buffer::Mapped(map));
        let is_safetensors = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
        let (format, entries) = if is_safetensors {
            (WeightFormat::Safetensors, read_safetensors(path, &buffer)?)
        } else {
            (WeightFormat::TorchZip, torch::read_torch_zip(path, &buffer)?)
        };
        Ok(Weights { path: path.to_path_buf(), format, entries, read: Mutex::default() })
    }

    /// The file these weights were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's format.
    pub fn format(&self) -> WeightFormat {
        self.format
    }

    /// The names of all entries, sorted (including ones that cannot be read as f32).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The tensor `name` with the expected `shape`; an error names the file, the tensor and
    /// what is wrong (missing, other shape, unsupported dtype, truncated data, a NaN or infinite
    /// value — except in the word-embedding table, a lookup table whose rows are checked through
    /// the results of the inputs that read them).
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let entry = self.entries.get(name).ok_or_else(|| self.missing(name))?;
        if let EntryData::NotTensor(why) = &entry.data {
            return Err(self.tensor_error(name, why));
        }
        if entry.shape != shape {
            return Err(self.tensor_error(name, format!("has shape {:?}, expected {:?}", entry.shape, shape)));
        }
        self.read(name, entry)
    }

    /// The tensor `name` whatever its shape (see [`Weights::get`] for the errors).
    pub fn get_any(&self, name: &str) -> Result<Tensor> {
        let entry = self.entries.get(name).ok_or_else(|| self.missing(name))?;
        self.read(name, entry)
    }

    /// The shape of tensor `name`, if present (also for a tensor whose data cannot be read;
    /// `None` for an entry that is not a tensor).
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.entries.get(name).filter(|e| !matches!(e.data, EntryData::NotTensor(_))).map(|e| e.shape.clone())
    }

    /// The names of the entries that no getter ([`Weights::get`], [`Weights::get_any`], through
    /// scopes too) has read yet, sorted. After a model is loaded: the tensors it does not use.
    pub fn unread(&self) -> Vec<&str> {
        let read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        self.names().into_iter().filter(|n| !read.contains(*n)).collect()
    }

    /// The tensors whose names start with `prefix.`, addressed by the rest of their names:
    /// `weights.at("encoder").at("layer.0").get("output.dense.bias", ..)` reads
    /// `encoder.layer.0.output.dense.bias`. Errors name the full tensor name.
    pub fn at(&self, prefix: impl std::fmt::Display) -> WeightScope<'_> {
        WeightScope { weights: self, prefix: prefix.to_string() }
    }

    fn tensor_error(&self, name: &str, what: impl std::fmt::Display) -> Error {
        Error::invalid_file(&self.path, format!("tensor `{name}` {what}"))
    }

    fn missing(&self, name: &str) -> Error {
        // A hint for the usual mistake: the same tensor under another prefix.
        let hint = self
            .names()
            .into_iter()
            .find(|n| n.ends_with(&format!(".{name}")) || name.ends_with(&format!(".{n}")))
            .map(|n| format!(" (the file has `{n}`)"))
            .unwrap_or_default();
        self.tensor_error(name, format!("is missing; the file has {} tensors{hint}", self.entries.len()))
    }

    fn read(&self, name: &str, entry: &Entry) -> Result<Tensor> {
        self.read.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_string());
        let (dtype, buffer, start, bytes) = match &entry.data {
            EntryData::Unreadable(why) | EntryData::NotTensor(why) => return Err(self.tensor_error(name, why)),
            EntryData::Data { dtype, buffer, start, bytes } => (*dtype, buffer, *start, *bytes),
        };
        let numel = entry
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| self.tensor_error(name, format!("has an impossible shape {:?}", entry.shape)))?;
        let needed = numel.checked_mul(dtype.size());
        if needed != Some(bytes) {
            return Err(self.tensor_error(
                name,
                format!("has {bytes} bytes of data, but shape {:?} of {dtype:?} needs {numel} elements", entry.shape),
            ));
        }
        let all = buffer.bytes();
        let data = start.checked_add(bytes).and_then(|end| all.get(start..end)).ok_or_else(|| {
            self.tensor_error(
                name,
                format!(
                    "data is truncated: needs bytes {start}..{} but only {} are there",
                    start.saturating_add(bytes),
                    all.len()
                ),
            )
        })?;
        let data = match dtype {
            DType::F32 => {
                let aligned = (data.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f32>());
                if cfg!(target_endian = "little") && aligned {
                    TensorData::Borrowed { buffer: buffer.clone(), start, len: numel }
                } else {
                    TensorData::Owned(
                        data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                    )
                }
            }
            DType::F16 => TensorData::Owned(
                data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            ),
            DType::BF16 => TensorData::Owned(
                data.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            ),
        };
        let tensor = Tensor { shape: entry.shape.clone(), data };
        // A tensor the model uses whole feeds every result: a NaN or an infinity in it (a corrupt
        // file) is an error now, not a meaningless answer later. The word-embedding table is a
        // lookup table, read row by row (only the rows of tokens in use enter memory), so it is not
        // scanned: a bad row turns the results of the inputs that read it into errors instead
        // (`Error::NonFinite`).
        if name != super::WORD_EMBEDDINGS {
            if let Some((index, value)) = first_non_finite(&tensor) {
                return Err(self.tensor_error(name, format!("holds {value} at index {index}: weights must be finite")));
            }
        }
        Ok(tensor)
    }
}

/// The first value of `values` that is NaN or infinite, with its index.
fn first_non_finite(values: &[f32]) -> Option<(usize, f32)> {
    // Blocks without a branch per value (vectorized), then the exact place in the bad block.
    const BLOCK: usize = 4096;
    values.chunks(BLOCK).enumerate().find_map(|(b, block)| {
        let bad = block.iter().fold(false, |bad, v| bad | !v.is_finite());
        bad.then(|| block.iter().position(|v| !v.is_finite()).map(|i| (b * BLOCK + i, block[i])))?
    })
}

/// A view of the tensors under a name prefix (see [`Weights::at`]); getters take names relative
/// to the prefix.
#[derive(Clone)]
pub struct WeightScope<'a> {
    weights: &'a Weights,
    /// The full prefix, without a trailing dot (empty at the root).
    prefix: String,
}

impl<'a> WeightScope<'a> {
    /// The scope one level further down: `sub` is appended to the prefix.
    pub fn at(&self, sub: impl std::fmt::Display) -> WeightScope<'a> {
        WeightScope { weights: self.weights, prefix: self.name(&sub.to_string()) }
    }

    /// The full name of tensor `name` of this scope.
    pub fn name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The tensor `name` of this scope with the expected `shape` (see [`Weights::get`]).
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.weights.get(&self.name(name), shape)
    }

    /// The shape of tensor `name` of this scope, if present (see [`Weights::shape`]).
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.weights.shape(&self.name(name))
    }
}

/// Indexes a safetensors file held in `buffer`.
fn read_safetensors(path: &Path, buffer: &Arc<Buffer>) -> Result<HashMap<String, Entry>> {
    let bytes = buffer.bytes();
    if bytes.is_empty() {
        return Err(Error::invalid_file(path, "empty file, not a safetensors file"));
    }
    if bytes.len() < 8 {
        return Err(Error::invalid_file(
            path,
            format!("not a valid safetensors file: truncated ({} bytes)", bytes.len()),
        ));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    let header_claim = u64::from_le_bytes(n);
    if header_claim.saturating_add(8) > bytes.len() as u64 {
        return Err(Error::invalid_file(
            path,
            format!(
                "not a valid safetensors file: truncated or corrupt (header of {header_claim} bytes, file of {} bytes)",
                bytes.len()
            ),
        ));
    }
    // The crate validates offsets and sizes; a crafted header with offsets near usize::MAX can
    // still overflow an addition inside it, so guard against a panic as well.
    let parsed = std::panic::catch_unwind(|| safetensors::SafeTensors::read_metadata(bytes));
    let (header_len, metadata) = match parsed {
        Ok(Ok(v)) => v,
        Ok(Err(safetensors::SafeTensorError::MetadataIncompleteBuffer)) => {
            return Err(Error::invalid_file(
                path,
                format!(
                    "not a valid safetensors file: truncated or with trailing bytes (the header's tensors do not cover the {} bytes of the file exactly)",
                    bytes.len()
                ),
            ))
        }
        Ok(Err(e)) => return Err(Error::invalid_file(path, format!("not a valid safetensors file: {e}"))),
        Err(_) => return Err(Error::invalid_file(path, "not a valid safetensors file: inconsistent header")),
    };
    let data_start = 8 + header_len;
    let mut entries = HashMap::new();
    for (name, info) in metadata.tensors() {
        let (s, e) = info.data_offsets;
        let data = match info.dtype {
            safetensors::Dtype::F32 => Some(DType::F32),
            safetensors::Dtype::F16 => Some(DType::F16),
            safetensors::Dtype::BF16 => Some(DType::BF16),
            _ => None,
        };
        let data = match data {
            Some(dtype) => EntryData::Data {
                dtype,
                buffer: buffer.clone(),
                start: data_start.saturating_add(s),
                bytes: e.saturating_sub(s),
            },
            None => {
                EntryData::Unreadable(format!("has unsupported dtype {} (only F32, F16 and BF16 are read)", info.dtype))
            }
        };
        entries.insert(name, Entry { shape: info.shape.clone(), data });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn write(dir: &Path, name: &str, tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) -> PathBuf {
        let views: Vec<(String, TensorView<'_>)> =
            tensors.iter().map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
        let path = dir.join(name);
        safetensors::serialize_to_file(views, None, &path).unwrap();
        path
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn reads_f32_in_place_and_converts_f16_bf16() {
        let dir = tempfile::tempdir().unwrap();
        let f16: Vec<u8> = [1.0f32, -2.5, 65504.0].iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
        let bf16: Vec<u8> = [3.0f32, -0.5].iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
        let path = write(
            dir.path(),
            "model.safetensors",
            &[
                ("a", safetensors::Dtype::F32, vec![2, 2], f32_bytes(&[1.0, 2.0, 3.0, -4.5])),
                ("h", safetensors::Dtype::F16, vec![3], f16),
                ("b", safetensors::Dtype::BF16, vec![1, 2], bf16),
                ("i", safetensors::Dtype::I64, vec![1], vec![0; 8]),
            ],
        );
        let w = Weights::open(&path).unwrap();
        assert_eq!(w.format(), WeightFormat::Safetensors);
        assert_eq!(w.names(), vec!["a", "b", "h", "i"]);
        let a = w.get("a", &[2, 2]).unwrap();
        assert_eq!(&*a, &[1.0, 2.0, 3.0, -4.5]);
        assert!(a.is_mapped());
        let h = w.get("h", &[3]).unwrap();
        assert_eq!(&*h, &[1.0, -2.5, 65504.0]);
        assert!(!h.is_mapped());
        assert_eq!(&*w.get("b", &[1, 2]).unwrap(), &[3.0, -0.5]);
        assert_eq!(w.shape("i"), Some(vec![1]));
        let e = w.get("i", &[1]).unwrap_err().to_string();
        assert!(e.contains("model.safetensors") && e.contains("`i`") && e.contains("dtype I64"), "{e}");
        let e = w.get("a", &[4]).unwrap_err().to_string();
        assert!(e.contains("model.safetensors") && e.contains("shape [2, 2], expected [4]"), "{e}");
        let e = w.get("nope", &[4]).unwrap_err().to_string();
        assert!(e.contains("model.safetensors") && e.contains("`nope` is missing"), "{e}");
        assert_eq!(w.shape("nope"), None);
    }

    #[test]
    fn unaligned_f32_is_converted() {
        // Written by hand: the crate's serializer orders tensors by alignment. A 2-byte U8 tensor
        // first makes the F32 one start 2 bytes into the (8-aligned) data.
        let dir = tempfile::tempdir().unwrap();
        let mut header = br#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}}"#.to_vec();
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend(header);
        file.extend([7, 7]);
        file.extend(f32_bytes(&[0.25, 8.0]));
        let path = dir.path().join("x.safetensors");
        std::fs::write(&path, file).unwrap();
        let w = Weights::open(&path).unwrap();
        let b = w.get("b", &[2]).unwrap();
        assert_eq!(&*b, &[0.25, 8.0]);
        assert!(!b.is_mapped());
    }

    #[test]
    fn weights_and_tensors_are_shareable_across_threads() {
        fn check<T: Send + Sync>() {}
        check::<Weights>();
        check::<Tensor>();
    }

    #[test]
    fn scopes_nest_and_name_the_full_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "m.safetensors",
            &[("enc.layer.3.dense.bias", safetensors::Dtype::F32, vec![2], f32_bytes(&[1.0, 2.0]))],
        );
        let w = Weights::open(&path).unwrap();
        let layer = w.at("enc").at("layer").at(3);
        assert_eq!(&*layer.get("dense.bias", &[2]).unwrap(), &[1.0, 2.0]);
        assert_eq!(layer.at("dense").shape("bias"), Some(vec![2]));
        assert_eq!(layer.name("dense.weight"), "enc.layer.3.dense.weight");
        let e = layer.get("dense.weight", &[2, 2]).unwrap_err().to_string();
        assert!(e.contains("`enc.layer.3.dense.weight` is missing"), "{e}");
        assert_eq!(w.at("").name("x"), "x");
    }

    #[test]
    fn missing_hint_names_prefixed_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "m.safetensors",
            &[("pretrained_model.x", safetensors::Dtype::F32, vec![1], f32_bytes(&[1.0]))],
        );
        let w = Weights::open(&path).unwrap();
        let e = w.get("x", &[1]).unwrap_err().to_string();
        assert!(e.contains("the file has `pretrained_model.x`"), "{e}");
    }
}
