//! Finding a mapped column among a result's columns, shared by the event and profile mappings.

use crate::failure::{Origin, Problem};

/// The position of column `name` in `columns`, or an `unknown_column` problem for mapping field
/// `field` that lists the columns the query does return.
pub(crate) fn column_index(field: &str, name: &str, columns: &[String]) -> Result<usize, Problem> {
    columns.iter().position(|c| c == name).ok_or_else(|| {
        Problem::new(
            field,
            Origin::Column(name.to_owned()),
            "unknown_column",
            format!(
                "the query returns no such column (it returns {})",
                columns
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_column_or_names_the_ones_there_are() {
        let columns = ["id".to_owned(), "email".to_owned()];
        assert_eq!(column_index("$email", "email", &columns), Ok(1));
        let problem = column_index("$email", "mail", &columns).unwrap_err();
        assert_eq!(problem.field, "$email");
        assert_eq!(problem.origin, Origin::Column("mail".to_owned()));
        assert_eq!(problem.rule, "unknown_column");
        assert_eq!(
            problem.detail,
            "the query returns no such column (it returns `id`, `email`)"
        );
    }
}
