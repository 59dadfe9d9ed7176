//! A row of warehouse values with its column names.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use crate::value::Value;

/// One row of a query result. The column names are shared by every row of a result set.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The result set's column names, in query order.
    pub columns: Arc<[String]>,
    /// This row's values, one per column, in the same order.
    pub values: Vec<Value>,
}

impl Row {
    /// The position of the first column named `name`. Resolve once per result set and index
    /// `values` for speed.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The value of the first column named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.column_index(name).and_then(|i| self.values.get(i))
    }

    /// `(column, value)` pairs in query order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.columns
            .iter()
            .map(String::as_str)
            .zip(self.values.iter())
    }

    /// The row as a JSON object of column → [`Value::to_json`], e.g. to show a failed record.
    /// A repeated column name keeps its first value.
    pub fn to_json(&self) -> Json {
        let mut map = Map::with_capacity(self.values.len());
        for (column, value) in self.iter() {
            if !map.contains_key(column) {
                map.insert(column.to_owned(), value.to_json());
            }
        }
        Json::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row() -> Row {
        Row {
            columns: Arc::from(vec!["id".to_owned(), "name".to_owned(), "id".to_owned()]),
            values: vec![Value::Int(1), Value::from("Ada"), Value::Int(2)],
        }
    }

    #[test]
    fn looks_up_columns_by_name() {
        let row = row();
        assert_eq!(row.column_index("name"), Some(1));
        assert_eq!(row.get("id"), Some(&Value::Int(1)));
        assert_eq!(row.get("missing"), None);
        assert_eq!(row.iter().count(), 3);
    }

    #[test]
    fn renders_as_a_json_object() {
        assert_eq!(row().to_json(), json!({"id": 1, "name": "Ada"}));
    }
}
