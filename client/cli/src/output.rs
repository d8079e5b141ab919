//! What goes to stdout: pretty JSON, a table with `--table`, or JSON lines for a stream.
//! A closed pipe (`hotmesh watch t | head -1`) ends the output quietly, not with a panic.

use serde_json::{json, Value};
use std::io::{ErrorKind, Write};

/// Prints a command's result: JSON, or a table of its rows (an object's rows are its
/// key/value pairs) with `columns` first, in that order.
pub fn print(v: &Value, as_table: bool, columns: &[&str]) -> std::io::Result<()> {
    let text = if as_table {
        let rows = match v {
            Value::Array(a) => a.clone(),
            other => pairs(other),
        };
        table(&rows, columns)
    } else {
        serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
    };
    write_out(&text)
}

/// One JSON line (a stream's message), written at once so a pipe sees it.
pub fn line(v: &Value) -> std::io::Result<()> {
    write_out(&(v.to_string() + "\n"))
}

/// Writes to stdout. A reader that went away is not an error of ours: the caller stops
/// writing (`Err` of kind `BrokenPipe`) and exits as if done.
pub fn write_out(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Whether a write failed only because the reader closed the pipe.
pub fn reader_left(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::BrokenPipe
}

/// Rows of objects as a table: `first` columns in that order, then the other keys of the
/// first row (JSON objects here keep their keys sorted, which reads badly for wide rows).
pub fn table(rows: &[Value], first: &[&str]) -> String {
    let Some(Value::Object(row)) = rows.first() else {
        return String::from("(none)\n");
    };
    let mut cols: Vec<&str> = first.to_vec();
    cols.extend(
        row.keys()
            .map(String::as_str)
            .filter(|k| !first.contains(k)),
    );
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| cell(&r[*c])).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.chars().count())
        })
        .collect();
    let line = |vals: Vec<&str>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(cols.clone()) + "\n";
    for r in &cells {
        out += &(line(r.iter().map(|s| s.as_str()).collect()) + "\n");
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An object as two-column rows.
fn pairs(v: &Value) -> Vec<Value> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
        other => vec![json!({ "value": other })],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_its_columns() {
        let t = table(
            &[json!({"a": "x", "bb": 1}), json!({"a": "long", "bb": null})],
            &[],
        );
        assert_eq!(t, "a     bb\nx     1\nlong\n");
        let t = table(&[json!({"a": 1, "z": 2, "m": 3})], &["z"]);
        assert_eq!(t, "z  a  m\n2  1  3\n");
    }

    #[test]
    fn an_object_is_a_table_of_its_pairs() {
        let rows = pairs(&json!({"k": "v"}));
        assert_eq!(table(&rows, &[]), "key  value\nk    v\n");
        assert_eq!(table(&[], &[]), "(none)\n");
    }
}
