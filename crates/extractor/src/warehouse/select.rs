//! Reading columns of types without a binary decoder as text.

use tokio_postgres::types::Type;

use super::decode::is_supported;

/// The query that reads `query`'s result when its columns have `types`: `None` when every type
/// is decoded from the binary format (run `query` itself), else `query` wrapped so that the other
/// columns are cast to `text`:
///
/// `SELECT q."c1", q."c2"::text FROM (<query>) AS q("c1", "c2")`
///
/// The alias list renames the columns by position, so duplicate or unnamed columns
/// (`?column?`) work; callers report the original names.
pub(crate) fn text_wrapped(query: &str, types: &[Type]) -> Option<String> {
    if types.iter().all(is_supported) {
        return None;
    }
    let mut select = Vec::with_capacity(types.len());
    let mut aliases = Vec::with_capacity(types.len());
    for (i, ty) in types.iter().enumerate() {
        let alias = format!("\"c{}\"", i + 1);
        select.push(if is_supported(ty) {
            format!("q.{alias}")
        } else {
            format!("q.{alias}::text")
        });
        aliases.push(alias);
    }
    Some(format!(
        "SELECT {} FROM (\n{}\n) AS q({})",
        select.join(", "),
        strip_terminator(query),
        aliases.join(", ")
    ))
}

/// `query` without trailing whitespace and semicolons, which cannot end a subquery.
fn strip_terminator(query: &str) -> &str {
    query.trim_end_matches(|c: char| c.is_whitespace() || c == ';')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_supported_queries_alone() {
        assert_eq!(text_wrapped("SELECT 1", &[Type::INT4, Type::TEXT]), None);
        assert_eq!(text_wrapped("DELETE FROM t", &[]), None);
    }

    #[test]
    fn casts_other_types_to_text() {
        assert_eq!(
            text_wrapped("SELECT a, b FROM t;\n ", &[Type::INT4, Type::INTERVAL]).unwrap(),
            "SELECT q.\"c1\", q.\"c2\"::text FROM (\nSELECT a, b FROM t\n) AS q(\"c1\", \"c2\")"
        );
    }
}
