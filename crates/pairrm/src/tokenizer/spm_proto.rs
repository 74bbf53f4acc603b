//! A minimal, tolerant reader of SentencePiece `ModelProto` files (protobuf wire format).
//!
//! Only the fields the fast-tokenizer conversion needs are read; everything else is skipped,
//! including known fields written with another wire type than the schema says, as Python's
//! protobuf does (it keeps them as unknown fields). This matters: DeBERTa-v3's spm.model, made by
//! a fork of sentencepiece, stores a string in `TrainerSpec` field 50, which the current schema
//! declares as `bool enable_differential_privacy`; a strict decoder (such as the
//! `sentencepiece-model` crate's prost types) rejects the file.
//!
//! Fields read (numbers from `sentencepiece_model.proto`):
//! - `ModelProto`: 1 `pieces` (repeated), 2 `trainer_spec`, 3 `normalizer_spec`;
//! - `SentencePiece`: 1 `piece` (string), 2 `score` (float), 3 `type` (enum, default NORMAL);
//! - `TrainerSpec`: 3 `model_type` (enum, default UNIGRAM), 40 `unk_id` (int32, default 0);
//! - `NormalizerSpec`: 2 `precompiled_charsmap` (bytes).
//!
//! Embedded messages that occur several times are merged, and repeated scalars keep the last
//! value, as protobuf specifies.

/// `SentencePiece.Type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieceType {
    /// NORMAL (1), and any value this reader does not know (protobuf falls back to the default).
    Normal,
    /// UNKNOWN (2).
    Unknown,
    /// CONTROL (3).
    Control,
    /// USER_DEFINED (4).
    UserDefined,
    /// UNUSED (5).
    Unused,
    /// BYTE (6).
    Byte,
}

impl PieceType {
    fn from_wire(value: u64) -> Self {
        match value {
            2 => PieceType::Unknown,
            3 => PieceType::Control,
            4 => PieceType::UserDefined,
            5 => PieceType::Unused,
            6 => PieceType::Byte,
            _ => PieceType::Normal,
        }
    }
}

/// One vocabulary entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Piece {
    /// The piece text.
    pub piece: String,
    /// Its log-probability score.
    pub score: f32,
    /// Its kind.
    pub kind: PieceType,
}

/// What this reader takes from a `ModelProto`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpmModel {
    /// The vocabulary, in id order.
    pub pieces: Vec<Piece>,
    /// `TrainerSpec.model_type` (1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR).
    pub model_type: u64,
    /// `TrainerSpec.unk_id`.
    pub unk_id: i32,
    /// `NormalizerSpec.precompiled_charsmap` (empty when absent).
    pub precompiled_charsmap: Vec<u8>,
}

/// One field: its number and its value.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
}

/// Iterates over the fields of one message.
struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(data: &'a [u8]) -> Self {
        Fields { data, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *self.data.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            if shift < 64 {
                value |= u64::from(byte & 0x7f) << shift;
            }
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or("truncated field")?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The next field, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err("field number 0".into());
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32([b[0], b[1], b[2], b[3]])
            }
            // Groups (3, 4) are not used by sentencepiece and are deprecated: reject them.
            wire => return Err(format!("unsupported wire type {wire} (field {number})")),
        };
        Ok(Some((number, value)))
    }
}

/// Parses a serialized `ModelProto`. Errors describe what is malformed.
pub(crate) fn parse(data: &[u8]) -> Result<SpmModel, String> {
    let mut model = SpmModel { pieces: Vec::new(), model_type: 1, unk_id: 0, precompiled_charsmap: Vec::new() };
    let mut fields = Fields::new(data);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Bytes(bytes)) => {
                let piece = parse_piece(bytes).map_err(|e| format!("piece {}: {e}", model.pieces.len()))?;
                model.pieces.push(piece);
            }
            (2, Value::Bytes(bytes)) => parse_trainer(bytes, &mut model).map_err(|e| format!("trainer_spec: {e}"))?,
            (3, Value::Bytes(bytes)) => {
                parse_normalizer(bytes, &mut model).map_err(|e| format!("normalizer_spec: {e}"))?
            }
            _ => {}
        }
    }
    Ok(model)
}

fn parse_piece(data: &[u8]) -> Result<Piece, String> {
    let mut piece = Piece { piece: String::new(), score: 0.0, kind: PieceType::Normal };
    let mut fields = Fields::new(data);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Bytes(bytes)) => {
                piece.piece = String::from_utf8(bytes.to_vec()).map_err(|_| "text is not UTF-8")?;
            }
            (2, Value::Fixed32(bytes)) => piece.score = f32::from_le_bytes(bytes),
            (3, Value::Varint(v)) => piece.kind = PieceType::from_wire(v),
            _ => {}
        }
    }
    Ok(piece)
}

fn parse_trainer(data: &[u8], model: &mut SpmModel) -> Result<(), String> {
    let mut fields = Fields::new(data);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (3, Value::Varint(v)) => model.model_type = v,
            // int32 is sign-extended to 64 bits on the wire; keep the low 32 bits.
            (40, Value::Varint(v)) => model.unk_id = v as u32 as i32,
            _ => {}
        }
    }
    Ok(())
}

fn parse_normalizer(data: &[u8], model: &mut SpmModel) -> Result<(), String> {
    let mut fields = Fields::new(data);
    while let Some((number, value)) = fields.next_field()? {
        if let (2, Value::Bytes(bytes)) = (number, value) {
            model.precompiled_charsmap = bytes.to_vec();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn piece(text: &str, score: f32, kind: u64) -> Vec<u8> {
        let mut p = Vec::new();
        bytes_field(1, text.as_bytes(), &mut p);
        varint(2 << 3 | 5, &mut p);
        p.extend_from_slice(&score.to_le_bytes());
        varint(3 << 3, &mut p);
        varint(kind, &mut p);
        p
    }

    #[test]
    fn reads_fields_and_skips_the_rest() {
        let mut trainer = Vec::new();
        bytes_field(50, b"a string where the schema has a bool", &mut trainer);
        varint(40 << 3, &mut trainer);
        varint((-1i64) as u64, &mut trainer); // unk_id = -1, 10-byte varint
        varint(3 << 3, &mut trainer);
        varint(1, &mut trainer);
        varint(10 << 3 | 1, &mut trainer); // an unknown fixed64
        trainer.extend_from_slice(&[0; 8]);
        let mut model = Vec::new();
        bytes_field(1, &piece("[PAD]", 0.0, 3), &mut model);
        bytes_field(2, &trainer, &mut model);
        bytes_field(1, &piece("▁a", -1.5, 1), &mut model);
        bytes_field(1, &piece("x", -2.0, 99), &mut model);
        bytes_field(
            3,
            &{
                let mut n = Vec::new();
                bytes_field(2, &[1, 2, 3], &mut n);
                n
            },
            &mut model,
        );
        let parsed = parse(&model).unwrap();
        assert_eq!(parsed.pieces.len(), 3);
        assert_eq!(parsed.pieces[0], Piece { piece: "[PAD]".into(), score: 0.0, kind: PieceType::Control });
        assert_eq!(parsed.pieces[1].score, -1.5);
        assert_eq!(parsed.pieces[2].kind, PieceType::Normal);
        assert_eq!(parsed.unk_id, -1);
        assert_eq!(parsed.model_type, 1);
        assert_eq!(parsed.precompiled_charsmap, [1, 2, 3]);
    }

    #[test]
    fn defaults_and_errors() {
        let empty = parse(&[]).unwrap();
        assert!(empty.pieces.is_empty());
        assert_eq!((empty.model_type, empty.unk_id), (1, 0));
        assert!(parse(&[0x0a, 0x05, b'a']).unwrap_err().contains("truncated"));
        assert!(parse(&[0xff; 12]).is_err());
        assert!(parse(&[0x0b]).unwrap_err().contains("wire type"));
        let mut bad = Vec::new();
        bytes_field(
            1,
            &{
                let mut p = Vec::new();
                bytes_field(1, &[0xff, 0xfe], &mut p);
                p
            },
            &mut bad,
        );
        assert!(parse(&bad).unwrap_err().contains("UTF-8"));
    }
}
