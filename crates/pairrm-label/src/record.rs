//! The output records: one preference pair in TRL's preference format (standard or
//! conversational) with its scores, candidate indices, row number and id; and the error record
//! of a bad row. Both are written as JSON lines or Arrow (for Parquet) from here.

use std::sync::Arc;

use arrow_array::builder::{Float32Builder, Int64Builder, ListBuilder, StringBuilder, StructBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use pairrm::judge::Turn;

use crate::row::{IdKind, Prompt, RowId};

/// How prompts and answers are written: TRL's two preference formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// `prompt`, `chosen` and `rejected` are texts. Chat rows cannot be written this way.
    Standard,
    /// `prompt` is the chat (`[{role, content}]`; a text prompt becomes one user turn),
    /// `chosen` and `rejected` are one assistant turn each.
    Conversational,
}

/// One preference pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferenceRecord {
    /// The row's prompt.
    pub prompt: Arc<Prompt>,
    /// The chosen answer.
    pub chosen: String,
    /// The rejected answer.
    pub rejected: String,
    /// The chosen answer's score.
    pub score_chosen: f32,
    /// The rejected answer's score.
    pub score_rejected: f32,
    /// `score_chosen - score_rejected`.
    pub margin: f32,
    /// The chosen answer's index among the row's candidates.
    pub chosen_index: usize,
    /// The rejected answer's index among the row's candidates.
    pub rejected_index: usize,
    /// The row's number in the input (from 0, over all files of the input).
    pub row: u64,
    /// The row's id, when the input has ids.
    pub id: Option<RowId>,
}

/// The error record of a bad row (the rest of the input is still labelled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// The row's number in the input (from 0).
    pub row: u64,
    /// The row's id, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RowId>,
    /// What is wrong, naming the field.
    pub error: String,
}

/// A turn as JSON, `role` before `content`.
#[derive(Serialize)]
struct TurnJson<'a> {
    role: &'a str,
    content: &'a str,
}

/// A text or a list of turns as JSON.
#[derive(Serialize)]
#[serde(untagged)]
enum TextJson<'a> {
    Text(&'a str),
    Turns(Vec<TurnJson<'a>>),
}

fn turns_json(turns: &[Turn]) -> TextJson<'_> {
    TextJson::Turns(turns.iter().map(|t| TurnJson { role: &t.role, content: &t.content }).collect())
}

fn prompt_turns(prompt: &Prompt) -> Vec<Turn> {
    match prompt {
        Prompt::Text(text) => vec![Turn::new("user", text.as_str())],
        Prompt::Chat(turns) => turns.clone(),
    }
}

impl PreferenceRecord {
    /// The record's JSON fields, in schema order (`id` only when the input has ids, `null` for
    /// a row without one).
    fn json_record(&self, style: Style, id_kind: IdKind) -> JsonRecord<'_> {
        fn answer(style: Style, text: &str) -> TextJson<'_> {
            match style {
                Style::Standard => TextJson::Text(text),
                Style::Conversational => TextJson::Turns(vec![TurnJson { role: "assistant", content: text }]),
            }
        }
        let prompt = match (style, &*self.prompt) {
            (_, Prompt::Chat(turns)) => turns_json(turns),
            (Style::Standard, Prompt::Text(text)) => TextJson::Text(text),
            (Style::Conversational, Prompt::Text(text)) => {
                TextJson::Turns(vec![TurnJson { role: "user", content: text }])
            }
        };
        let (chosen, rejected) = (answer(style, &self.chosen), answer(style, &self.rejected));
        JsonRecord {
            prompt,
            chosen,
            rejected,
            score_chosen: self.score_chosen,
            score_rejected: self.score_rejected,
            margin: self.margin,
            chosen_index: self.chosen_index,
            rejected_index: self.rejected_index,
            row: self.row,
            id: (id_kind != IdKind::None).then_some(self.id.as_ref()),
        }
    }

    /// The record as a JSON value.
    pub fn to_json(&self, style: Style, id_kind: IdKind) -> Value {
        serde_json::to_value(self.json_record(style, id_kind)).expect("records serialize")
    }

    /// The record as one line of JSON (no newline), fields in schema order, scores written as
    /// the shortest decimal that reads back as the same float32.
    pub fn to_json_line(&self, style: Style, id_kind: IdKind) -> String {
        serde_json::to_string(&self.json_record(style, id_kind)).expect("records serialize")
    }
}

/// A record's JSON fields, in schema order.
#[derive(Serialize)]
struct JsonRecord<'a> {
    prompt: TextJson<'a>,
    chosen: TextJson<'a>,
    rejected: TextJson<'a>,
    score_chosen: f32,
    score_rejected: f32,
    margin: f32,
    chosen_index: usize,
    rejected_index: usize,
    row: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Option<&'a RowId>>,
}

fn turn_fields() -> Fields {
    Fields::from(vec![Field::new("role", DataType::Utf8, true), Field::new("content", DataType::Utf8, true)])
}

fn turns_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(turn_fields()), true)))
}

/// The Arrow schema of the output (what the Parquet file holds): `prompt`, `chosen`, `rejected`
/// (strings, or lists of `{role, content}` structs in the conversational style),
/// `score_chosen`, `score_rejected`, `margin` (float32), `chosen_index`, `rejected_index`,
/// `row` (int64) and, when the input has ids, `id` (int64 or string). Every field is nullable,
/// as pyarrow and `datasets` write them.
pub fn schema(style: Style, id_kind: IdKind) -> SchemaRef {
    let text = match style {
        Style::Standard => DataType::Utf8,
        Style::Conversational => turns_type(),
    };
    let mut fields = vec![
        Field::new("prompt", text.clone(), true),
        Field::new("chosen", text.clone(), true),
        Field::new("rejected", text, true),
        Field::new("score_chosen", DataType::Float32, true),
        Field::new("score_rejected", DataType::Float32, true),
        Field::new("margin", DataType::Float32, true),
        Field::new("chosen_index", DataType::Int64, true),
        Field::new("rejected_index", DataType::Int64, true),
        Field::new("row", DataType::Int64, true),
    ];
    match id_kind {
        IdKind::None => {}
        IdKind::Int => fields.push(Field::new("id", DataType::Int64, true)),
        IdKind::Text => fields.push(Field::new("id", DataType::Utf8, true)),
    }
    Arc::new(Schema::new(fields))
}

/// A column of texts or of turn lists.
enum TextColumn {
    Text(StringBuilder),
    Turns(ListBuilder<StructBuilder>),
}

impl TextColumn {
    fn new(style: Style) -> Self {
        match style {
            Style::Standard => TextColumn::Text(StringBuilder::new()),
            Style::Conversational => TextColumn::Turns(
                ListBuilder::new(StructBuilder::from_fields(turn_fields(), 0)).with_field(Arc::new(Field::new(
                    "item",
                    DataType::Struct(turn_fields()),
                    true,
                ))),
            ),
        }
    }

    fn append_text(&mut self, text: &str) {
        match self {
            TextColumn::Text(b) => b.append_value(text),
            TextColumn::Turns(_) => self.append_turns(&[Turn::new("assistant", text)]),
        }
    }

    fn append_turns(&mut self, turns: &[Turn]) {
        match self {
            TextColumn::Text(b) => b.append_null(),
            TextColumn::Turns(list) => {
                let items = list.values();
                for turn in turns {
                    items.field_builder::<StringBuilder>(0).expect("role").append_value(&turn.role);
                    items.field_builder::<StringBuilder>(1).expect("content").append_value(&turn.content);
                    items.append(true);
                }
                list.append(true);
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            TextColumn::Text(b) => Arc::new(b.finish()),
            TextColumn::Turns(b) => Arc::new(b.finish()),
        }
    }
}

/// The records as one Arrow batch of [`schema`]`(style, id_kind)`.
pub fn to_batch(records: &[PreferenceRecord], style: Style, id_kind: IdKind) -> RecordBatch {
    let (mut prompt, mut chosen, mut rejected) =
        (TextColumn::new(style), TextColumn::new(style), TextColumn::new(style));
    let mut floats = [Float32Builder::new(), Float32Builder::new(), Float32Builder::new()];
    let mut ints = [Int64Builder::new(), Int64Builder::new(), Int64Builder::new()];
    let (mut int_ids, mut text_ids) = (Int64Builder::new(), StringBuilder::new());
    for r in records {
        match (style, &*r.prompt) {
            (Style::Standard, Prompt::Text(text)) => prompt.append_text(text),
            (_, p) => prompt.append_turns(&prompt_turns(p)),
        }
        chosen.append_text(&r.chosen);
        rejected.append_text(&r.rejected);
        floats[0].append_value(r.score_chosen);
        floats[1].append_value(r.score_rejected);
        floats[2].append_value(r.margin);
        ints[0].append_value(r.chosen_index as i64);
        ints[1].append_value(r.rejected_index as i64);
        ints[2].append_value(r.row as i64);
        match &r.id {
            Some(RowId::Int(i)) => {
                int_ids.append_value(*i);
                text_ids.append_value(i.to_string());
            }
            Some(RowId::Text(t)) => {
                int_ids.append_null();
                text_ids.append_value(t);
            }
            None => {
                int_ids.append_null();
                text_ids.append_null();
            }
        }
    }
    let mut columns: Vec<ArrayRef> = vec![prompt.finish(), chosen.finish(), rejected.finish()];
    columns.extend(floats.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(ints.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    match id_kind {
        IdKind::None => {}
        IdKind::Int => columns.push(Arc::new(int_ids.finish())),
        IdKind::Text => columns.push(Arc::new(text_ids.finish())),
    }
    RecordBatch::try_new(schema(style, id_kind), columns).expect("columns match the schema")
}

/// The records as Arrow IPC stream bytes (one batch of [`schema`]).
pub fn to_ipc_stream(records: &[PreferenceRecord], style: Style, id_kind: IdKind) -> Result<Vec<u8>, String> {
    let batch = to_batch(records, style, id_kind);
    let mut bytes = Vec::new();
    let mut writer =
        arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema()).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(prompt: Prompt, id: Option<RowId>) -> PreferenceRecord {
        PreferenceRecord {
            prompt: Arc::new(prompt),
            chosen: "good".into(),
            rejected: "bad".into(),
            score_chosen: 0.5,
            score_rejected: -0.25,
            margin: 0.75,
            chosen_index: 2,
            rejected_index: 0,
            row: 7,
            id,
        }
    }

    #[test]
    fn standard_json_in_schema_order() {
        let r = record(Prompt::Text("p".into()), Some(RowId::Text("a".into())));
        let text = r.to_json_line(Style::Standard, IdKind::Text);
        assert_eq!(
            text,
            r#"{"prompt":"p","chosen":"good","rejected":"bad","score_chosen":0.5,"score_rejected":-0.25,"margin":0.75,"chosen_index":2,"rejected_index":0,"row":7,"id":"a"}"#
        );
        let names: Vec<String> =
            schema(Style::Standard, IdKind::Text).fields().iter().map(|f| f.name().clone()).collect();
        let keys: Vec<String> = text
            .split(&[',', '{'][..])
            .filter_map(|p| p.strip_prefix('"')?.split('"').next().map(String::from))
            .collect();
        assert_eq!(names, keys);
    }

    #[test]
    fn conversational_json_and_batch() {
        let chat = Prompt::Chat(vec![Turn::new("system", "s"), Turn::new("user", "u")]);
        let r = record(chat, None);
        let v = r.to_json(Style::Conversational, IdKind::None);
        assert_eq!(v["prompt"], json!([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]));
        assert_eq!(v["chosen"], json!([{"role": "assistant", "content": "good"}]));
        assert!(v.get("id").is_none());
        let text = record(Prompt::Text("p".into()), Some(RowId::Int(3)));
        let batch = to_batch(&[r, text], Style::Conversational, IdKind::Int);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), schema(Style::Conversational, IdKind::Int));
    }
}
