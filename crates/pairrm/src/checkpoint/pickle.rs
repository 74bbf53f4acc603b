//! A small, safe pickle reader for the `data.pkl` record of a torch zip checkpoint.
//!
//! It runs the opcodes `torch.save` emits for a state dict (pickle protocols 2 to 5) and knows
//! only the few callables a state dict needs: `collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2` (and `_rebuild_tensor`), `torch._utils._rebuild_parameter`
//! and the persistent ids of torch storages. Anything else becomes an opaque value: it is never
//! executed, and it only makes the entry holding it unreadable. Malformed input is an error,
//! never a panic; nesting depth and sizes are bounded by the input.

use std::rc::Rc;

/// Deepest container nesting accepted (a state dict needs about 4).
const MAX_DEPTH: usize = 256;

/// The element type of a torch storage, from its class name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StorageType {
    F32,
    F16,
    BF16,
    /// Any other storage class (e.g. `LongStorage`), by name.
    Other(String),
}

/// A reference to a storage record `data/<key>` of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageRef {
    pub(crate) key: String,
    pub(crate) dtype: StorageType,
}

/// What `_rebuild_tensor_v2` was called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorRef {
    pub(crate) storage: StorageRef,
    /// Offset into the storage, in elements.
    pub(crate) offset: usize,
    pub(crate) shape: Vec<usize>,
    pub(crate) stride: Vec<usize>,
}

/// A container with its nesting depth (1 + the deepest child's depth).
#[derive(Debug, Clone)]
pub(crate) struct Seq<T> {
    pub(crate) items: Vec<T>,
    depth: usize,
}

/// A value on the pickle stack.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Seq<Value>>),
    List(Rc<Seq<Value>>),
    Dict(Rc<Seq<(Value, Value)>>),
    /// A class or function named by `GLOBAL`/`STACK_GLOBAL`: (module, name).
    Global(Rc<(String, String)>),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
    /// Something this reader does not model (an unknown call, a big integer...), described.
    Opaque(Rc<str>),
}

impl Value {
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(s) | Value::List(s) => s.depth,
            Value::Dict(s) => s.depth,
            _ => 0,
        }
    }

    /// A short description for error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::Bytes(b) => format!("{} bytes", b.len()),
            Value::Tuple(s) => format!("a tuple of {}", s.items.len()),
            Value::List(s) => format!("a list of {}", s.items.len()),
            Value::Dict(s) => format!("a dict of {}", s.items.len()),
            Value::Global(g) => format!("{}.{}", g.0, g.1),
            Value::Storage(s) => format!("storage {}", s.key),
            Value::Tensor(_) => "a tensor".into(),
            Value::Opaque(d) => d.to_string(),
        }
    }
}

fn seq<T>(items: Vec<T>, depth: usize) -> Result<Rc<Seq<T>>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("containers nested deeper than {MAX_DEPTH}"));
    }
    Ok(Rc::new(Seq { items, depth }))
}

fn tuple(items: Vec<Value>) -> Result<Value, String> {
    let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
    Ok(Value::Tuple(seq(items, depth)?))
}

/// Runs the pickle program `data` and returns the object it builds.
///
/// Errors are messages (the caller adds the file name), with the byte offset of the opcode.
pub(crate) fn load(data: &[u8]) -> Result<Value, String> {
    let mut m = Machine { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: Vec::new() };
    loop {
        let at = m.pos;
        let op = m.byte().map_err(|e| format!("{e} (no STOP opcode)"))?;
        match m.step(op) {
            Ok(true) => {}
            Ok(false) => {
                return m.pop().map_err(|e| format!("at STOP: {e}"));
            }
            Err(e) => return Err(format!("pickle opcode 0x{op:02x} at byte {at}: {e}")),
        }
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Vec<Option<Value>>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("needs {n} more bytes, only {} left (truncated)", self.data.len() - self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn len(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| format!("length {n} too large"))?;
        self.take(n)
    }
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("unterminated text line (truncated)")?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| "text line is not UTF-8")?;
        self.pos += n + 1;
        Ok(s)
    }
    fn string(&mut self, n: u64) -> Result<Value, String> {
        let b = self.len(n)?;
        let s = std::str::from_utf8(b).map_err(|_| "string is not valid UTF-8".to_string())?;
        Ok(Value::Str(s.into()))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(v);
    }
    fn pop(&mut self) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".into());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".into())
    }
    fn top(&mut self) -> Result<&mut Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".into());
        }
        self.stack.last_mut().ok_or_else(|| "stack underflow".into())
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("no MARK on the stack")?;
        if mark > self.stack.len() {
            return Err("MARK above the stack".into());
        }
        Ok(self.stack.split_off(mark))
    }
    fn memo_put(&mut self, idx: usize) -> Result<(), String> {
        let v = self.top()?.clone();
        // Memo indices are dense in what pickle writes; refuse absurd ones instead of allocating.
        if idx > self.memo.len() + 1_000_000 || idx > self.data.len() + 1_000_000 {
            return Err(format!("memo index {idx} out of range"));
        }
        if idx >= self.memo.len() {
            self.memo.resize(idx + 1, None);
        }
        self.memo[idx] = Some(v);
        Ok(())
    }
    fn memo_get(&mut self, idx: usize) -> Result<(), String> {
        let v = self.memo.get(idx).cloned().flatten().ok_or_else(|| format!("memo index {idx} was never stored"))?;
        self.push(v);
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), String> {
        let list = self.top()?;
        match list {
            Value::List(l) => {
                let depth = items.iter().map(|v| v.depth() + 1).max().unwrap_or(0).max(l.depth);
                if depth > MAX_DEPTH {
                    return Err(format!("containers nested deeper than {MAX_DEPTH}"));
                }
                let l = Rc::make_mut(l);
                l.items.extend(items);
                l.depth = depth;
                Ok(())
            }
            // Appending to an object this reader does not model (e.g. a set): keep it opaque.
            Value::Opaque(_) => Ok(()),
            other => Err(format!("APPEND to {}", other.describe())),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("odd number of items for SETITEMS".into());
        }
        let dict = self.top()?;
        match dict {
            Value::Dict(d) => {
                let depth = items.iter().map(|v| v.depth() + 1).max().unwrap_or(0).max(d.depth);
                if depth > MAX_DEPTH {
                    return Err(format!("containers nested deeper than {MAX_DEPTH}"));
                }
                let d = Rc::make_mut(d);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.items.push((k, v));
                }
                d.depth = depth;
                Ok(())
            }
            Value::Opaque(_) => Ok(()),
            other => Err(format!("SETITEM on {}", other.describe())),
        }
    }

    /// Executes one opcode; `Ok(false)` at STOP.
    fn step(&mut self, op: u8) -> Result<bool, String> {
        match op {
            0x80 => {
                let proto = self.byte()?;
                if proto > 5 {
                    return Err(format!("unsupported pickle protocol {proto}"));
                }
            }
            0x95 => {
                self.u64()?; // FRAME: a length hint only
            }
            b'.' => return Ok(false),
            b'(' => self.marks.push(self.stack.len()),
            b'1' => {
                self.pop_mark()?;
            }
            b'0' => {
                self.pop()?;
            }
            b'2' => {
                let v = self.top()?.clone();
                self.push(v);
            }
            b'N' => self.push(Value::None),
            0x88 => self.push(Value::Bool(true)),
            0x89 => self.push(Value::Bool(false)),
            b'K' => {
                let v = self.byte()?;
                self.push(Value::Int(v.into()))
            }
            b'M' => {
                let v = self.u16()?;
                self.push(Value::Int(v.into()))
            }
            b'J' => {
                let v = self.u32()? as i32;
                self.push(Value::Int(v.into()))
            }
            0x8a | 0x8b => {
                let n = if op == 0x8a { u64::from(self.byte()?) } else { u64::from(self.u32()?) };
                let b = self.len(n)?;
                self.push(long(b));
            }
            b'G' => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                self.push(Value::Float(f64::from_be_bytes(a)))
            }
            b'X' => {
                let n = self.u32()?;
                let v = self.string(n.into())?;
                self.push(v)
            }
            0x8c => {
                let n = self.byte()?;
                let v = self.string(n.into())?;
                self.push(v)
            }
            0x8d => {
                let n = self.u64()?;
                let v = self.string(n)?;
                self.push(v)
            }
            // Python 2 strings (BINSTRING, SHORT_BINSTRING): bytes, read as text where possible.
            b'T' | b'U' => {
                let n = if op == b'T' { u64::from(self.u32()?) } else { u64::from(self.byte()?) };
                let b = self.len(n)?;
                self.push(Value::Str(String::from_utf8_lossy(b).into()))
            }
            b'B' | b'C' | 0x8e | 0x96 => {
                let n = match op {
                    b'B' => u64::from(self.u32()?),
                    b'C' => u64::from(self.byte()?),
                    _ => self.u64()?,
                };
                let b = self.len(n)?;
                self.push(Value::Bytes(b.into()))
            }
            b')' => self.push(tuple(Vec::new())?),
            b']' => self.push(Value::List(seq(Vec::new(), 1)?)),
            b'}' => self.push(Value::Dict(seq(Vec::new(), 1)?)),
            0x8f => self.push(Value::Opaque("a set".into())),
            b't' => {
                let items = self.pop_mark()?;
                self.push(tuple(items)?)
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let floor = self.marks.last().copied().unwrap_or(0);
                if self.stack.len() < floor + n {
                    return Err("stack underflow".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push(tuple(items)?)
            }
            b'l' => {
                let items = self.pop_mark()?;
                let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
                self.push(Value::List(seq(items, depth)?))
            }
            b'd' => {
                let items = self.pop_mark()?;
                self.push(Value::Dict(seq(Vec::new(), 1)?));
                self.set_items(items)?;
            }
            b'a' => {
                let v = self.pop()?;
                self.append(vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            0x90 => {
                // ADDITEMS (to a set): not modelled.
                self.pop_mark()?;
                self.top()?;
            }
            0x91 => {
                self.pop_mark()?;
                self.push(Value::Opaque("a frozenset".into()));
            }
            b'c' => {
                let module = self.line()?.to_string();
                let name = self.line()?.to_string();
                self.push(Value::Global(Rc::new((module, name))))
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.push(Value::Global(Rc::new((m.to_string(), n.to_string())))),
                    _ => return Err("STACK_GLOBAL needs two strings".into()),
                }
            }
            b'q' => {
                let i = self.byte()?;
                self.memo_put(i.into())?
            }
            b'r' => {
                let i = self.u32()?;
                self.memo_put(i as usize)?
            }
            0x94 => {
                let i = self.memo.len();
                self.memo_put(i)?
            }
            b'h' => {
                let i = self.byte()?;
                self.memo_get(i.into())?
            }
            b'j' => {
                let i = self.u32()?;
                self.memo_get(i as usize)?
            }
            b'p' | b'g' => {
                let i: usize = self.line()?.trim().parse().map_err(|_| "bad memo index")?;
                if op == b'p' {
                    self.memo_put(i)?
                } else {
                    self.memo_get(i)?
                }
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = call(&callable, &args)?;
                self.push(v)
            }
            0x81 => {
                let _args = self.pop()?;
                let cls = self.pop()?;
                self.push(Value::Opaque(format!("an object of class {}", cls.describe()).into()))
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let _args = self.pop()?;
                let cls = self.pop()?;
                self.push(Value::Opaque(format!("an object of class {}", cls.describe()).into()))
            }
            b'b' => {
                // BUILD: sets an object's state (e.g. a state dict's `_metadata`); not needed.
                self.pop()?;
                self.top()?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let v = persistent_load(&pid)?;
                self.push(v)
            }
            _ => return Err("unsupported opcode".into()),
        }
        Ok(true)
    }
}

/// A little-endian two's complement integer (LONG1/LONG4).
fn long(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Int(0);
    }
    if b.len() > 8 {
        return Value::Opaque(format!("an integer of {} bytes", b.len()).into());
    }
    let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
    let mut a = [fill; 8];
    a[..b.len()].copy_from_slice(b);
    Value::Int(i64::from_le_bytes(a))
}

/// The storage a persistent id `('storage', storage_type, key, location, numel)` names.
fn persistent_load(pid: &Value) -> Result<Value, String> {
    let items = match pid {
        Value::Tuple(t) => &t.items,
        other => return Err(format!("persistent id is {}, expected a tuple", other.describe())),
    };
    match items.first() {
        Some(Value::Str(s)) if &**s == "storage" => {}
        _ => return Err(format!("persistent id {} is not a storage", pid.describe())),
    }
    if items.len() < 3 {
        return Err("storage persistent id with fewer than 3 fields".into());
    }
    let dtype = match &items[1] {
        Value::Global(g) => match (g.0.as_str(), g.1.as_str()) {
            ("torch", "FloatStorage") => StorageType::F32,
            ("torch", "HalfStorage") => StorageType::F16,
            ("torch", "BFloat16Storage") => StorageType::BF16,
            (m, n) => StorageType::Other(format!("{m}.{n}")),
        },
        other => return Err(format!("storage type is {}, expected a class", other.describe())),
    };
    let key = match &items[2] {
        Value::Str(s) => s.to_string(),
        other => return Err(format!("storage key is {}, expected a string", other.describe())),
    };
    Ok(Value::Storage(Rc::new(StorageRef { key, dtype })))
}

fn ints(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    let items = match v {
        Value::Tuple(t) => &t.items,
        Value::List(l) => &l.items,
        other => return Err(format!("{what} is {}, expected a tuple", other.describe())),
    };
    items
        .iter()
        .map(|x| match x {
            Value::Int(i) if *i >= 0 => Ok(*i as usize),
            other => Err(format!("{what} holds {}, expected a non-negative integer", other.describe())),
        })
        .collect()
}

/// A call (`REDUCE`) of one of the few callables a state dict uses; others become opaque.
fn call(callable: &Value, args: &Value) -> Result<Value, String> {
    let (module, name) = match callable {
        Value::Global(g) => (g.0.as_str(), g.1.as_str()),
        other => return Ok(Value::Opaque(format!("the result of calling {}", other.describe()).into())),
    };
    let args = match args {
        Value::Tuple(t) => &t.items,
        other => return Err(format!("arguments of {module}.{name} are {}, expected a tuple", other.describe())),
    };
    match (module, name) {
        ("collections", "OrderedDict") if args.is_empty() => Ok(Value::Dict(seq(Vec::new(), 1)?)),
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            // (storage, storage_offset, size, stride, ...)
            let what = format!("{module}.{name}");
            if args.len() < 4 {
                return Ok(Value::Opaque(format!("{what} called with {} arguments", args.len()).into()));
            }
            let storage = match &args[0] {
                Value::Storage(s) => (**s).clone(),
                other => return Ok(Value::Opaque(format!("{what} of {}", other.describe()).into())),
            };
            let built = (|| -> Result<TensorRef, String> {
                let offset = match &args[1] {
                    Value::Int(i) if *i >= 0 => *i as usize,
                    other => return Err(format!("storage offset is {}", other.describe())),
                };
                let shape = ints(&args[2], "size")?;
                let stride = ints(&args[3], "stride")?;
                if shape.len() != stride.len() {
                    return Err(format!("size {shape:?} and stride {stride:?} differ in length"));
                }
                Ok(TensorRef { storage, offset, shape, stride })
            })();
            Ok(match built {
                Ok(t) => Value::Tensor(Rc::new(t)),
                Err(e) => Value::Opaque(format!("a malformed tensor ({e})").into()),
            })
        }
        ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") => {
            match args.first() {
                Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                Some(other) => Ok(other.clone()),
                None => Ok(Value::Opaque("a parameter without data".into())),
            }
        }
        _ => Ok(Value::Opaque(format!("the result of {module}.{name}(...)").into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_programs() {
        // {'a': [1, -2, 3.5], 'b': (True, None)}
        let mut p = vec![0x80, 2, b'}', b'(', b'X', 1, 0, 0, 0, b'a', b']', b'(', b'K', 1, b'J'];
        p.extend((-2i32).to_le_bytes());
        p.push(b'G');
        p.extend(3.5f64.to_be_bytes());
        p.extend([b'e', 0x8c, 1, b'b', 0x88, b'N', 0x86, b'u', b'.']);
        match load(&p).unwrap() {
            Value::Dict(d) => {
                assert_eq!(d.items.len(), 2);
                match &d.items[0].1 {
                    Value::List(l) => {
                        assert!(matches!(l.items[..], [Value::Int(1), Value::Int(-2), Value::Float(f)] if f == 3.5))
                    }
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_not_panics() {
        for p in [
            &b""[..],
            b"\x80\x02",
            b"\x80\x09.",
            b"t.",
            b"a.",
            b"h\x05.",
            b"X\xff\xff\xff\xff",
            b"\x8a\x02\x01",
            b"cfoo\nbar",
            b"\xff",
            b"0.",
            b"(0.",
        ] {
            assert!(load(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut p = vec![b']'];
        for _ in 0..10_000 {
            p.extend([b']', b'a']); // wrong order on purpose: appends an empty list to a new list
        }
        p.push(b'.');
        assert!(load(&p).is_ok());
        let mut p = vec![b'('; 10_000];
        p.extend(std::iter::repeat_n(b't', 10_000));
        p.push(b'.');
        assert!(load(&p).unwrap_err().contains("nested deeper"));
    }

    #[test]
    fn long_integers() {
        assert!(matches!(long(&[0xff]), Value::Int(-1)));
        assert!(matches!(long(&[0x00, 0x01]), Value::Int(256)));
        assert!(matches!(long(&[0; 9]), Value::Opaque(_)));
    }
}
