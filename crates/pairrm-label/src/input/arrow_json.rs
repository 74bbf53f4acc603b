//! Arrow values as JSON values, so that Parquet and Arrow rows are parsed by the same code as
//! JSON rows. Only the types a preference dataset uses are converted: nulls, booleans, numbers,
//! strings, lists and structs (and dictionary-encoded strings).

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use serde_json::{Map, Number, Value};

/// Row `i` of `array` as JSON; the error names the unsupported type.
pub fn value(array: &dyn Array, i: usize) -> Result<Value, String> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    let float = |x: f64| Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null);
    Ok(match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float16 => float(array.as_primitive::<Float16Type>().value(i).to_f64()),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => array.as_string::<i32>().value(i).into(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).into(),
        DataType::Utf8View => array.as_string_view().value(i).into(),
        DataType::List(_) => list(array.as_list::<i32>().value(i).as_ref())?,
        DataType::LargeList(_) => list(array.as_list::<i64>().value(i).as_ref())?,
        DataType::FixedSizeList(_, _) => list(array.as_fixed_size_list().value(i).as_ref())?,
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut map = Map::new();
            for (field, column) in fields.iter().zip(s.columns()) {
                map.insert(field.name().clone(), value(column.as_ref(), i)?);
            }
            Value::Object(map)
        }
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let key = dict.normalized_keys()[i];
            value(dict.values().as_ref(), key)?
        }
        other => return Err(format!("unsupported Arrow type {other}")),
    })
}

fn list(items: &dyn Array) -> Result<Value, String> {
    (0..items.len()).map(|i| value(items, i)).collect::<Result<Vec<_>, _>>().map(Value::Array)
}

/// Row `i` of `batch` as a JSON object; a column of an unsupported type fails only the row, with
/// the column named.
pub fn row(batch: &RecordBatch, i: usize) -> Result<Value, String> {
    let mut map = Map::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let v = value(column.as_ref(), i).map_err(|e| format!("{}: {e}", field.name()))?;
        map.insert(field.name().clone(), v);
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder, StructBuilder};
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Fields};
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn nested_rows_convert() {
        let fields =
            Fields::from(vec![Field::new("model", DataType::Utf8, true), Field::new("response", DataType::Utf8, true)]);
        let mut completions = ListBuilder::new(StructBuilder::from_fields(fields, 0));
        for (m, r) in [("m1", "a"), ("m2", "b")] {
            let s = completions.values();
            s.field_builder::<StringBuilder>(0).unwrap().append_value(m);
            s.field_builder::<StringBuilder>(1).unwrap().append_value(r);
            s.append(true);
        }
        completions.append(true);
        let batch = RecordBatch::try_from_iter(vec![
            ("instruction", Arc::new(StringArray::from(vec!["p"])) as Arc<dyn Array>),
            ("completions", Arc::new(completions.finish())),
            ("id", Arc::new(Int64Array::from(vec![None::<i64>]))),
        ])
        .unwrap();
        assert_eq!(
            row(&batch, 0).unwrap(),
            json!({"instruction": "p", "completions": [{"model": "m1", "response": "a"}, {"model": "m2", "response": "b"}], "id": null})
        );
    }
}
