//! `:name` parameters in a rule's query: found outside quotes and
//! comments, replaced by the dialect's placeholders, and bound from the
//! changed row, so that no value is ever spliced into SQL.

use super::Database;

/// A query with its `:name` parameters, in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// The query as written.
    pub sql: String,
    /// One entry per placeholder, in order (a name used twice is bound
    /// twice).
    names: Vec<String>,
    /// The byte ranges of the `:name`s in `sql`.
    spans: Vec<(usize, usize)>,
}

fn is_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_part(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Params {
    /// Finds the parameters of `sql`. Quoted text (`'…'`, `"…"`, `` `…` ``),
    /// `--` and `/* */` comments and PostgreSQL's `::` casts are skipped.
    pub fn parse(sql: &str) -> Params {
        let bytes = sql.as_bytes();
        let mut names = Vec::new();
        let mut spans = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                quote @ (b'\'' | b'"' | b'`') => {
                    i += 1;
                    while i < bytes.len() {
                        if bytes[i] == b'\\' && quote != b'`' {
                            i += 2;
                            continue;
                        }
                        if bytes[i] == quote {
                            // A doubled quote stays inside the text.
                            if bytes.get(i + 1) == Some(&quote) {
                                i += 2;
                                continue;
                            }
                            break;
                        }
                        i += 1;
                    }
                    i += 1;
                }
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    i += 2;
                    while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/'))
                    {
                        i += 1;
                    }
                    i += 2;
                }
                b':' if bytes.get(i + 1) == Some(&b':') => i += 2,
                b':' if bytes.get(i + 1).copied().is_some_and(is_start) => {
                    let start = i;
                    i += 1;
                    while i < bytes.len() && is_part(bytes[i]) {
                        i += 1;
                    }
                    names.push(sql[start + 1..i].to_owned());
                    spans.push((start, i));
                }
                _ => i += 1,
            }
        }
        Params {
            sql: sql.to_owned(),
            names,
            spans,
        }
    }

    /// Each distinct parameter name, in order of first appearance.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .enumerate()
            .filter(|(i, n)| !self.names[..*i].contains(n))
            .map(|(_, n)| n.as_str())
    }

    /// The name bound at each placeholder, in order.
    pub fn bindings(&self) -> &[String] {
        &self.names
    }

    /// The query with the dialect's placeholders: `?` on MySQL, `$1`, `$2`,
    /// … on PostgreSQL.
    pub fn render(&self, database: Database) -> String {
        self.render_with(|n, _| match database {
            Database::MySql => "?".to_owned(),
            Database::Postgres => format!("${n}"),
        })
    }

    /// The query with each `:name` replaced by `placeholder(n, name)`, `n`
    /// counting from 1 (a PostgreSQL source casts each to its column's
    /// type).
    pub fn render_with(&self, placeholder: impl Fn(usize, &str) -> String) -> String {
        let mut out = String::with_capacity(self.sql.len());
        let mut at = 0;
        for (n, ((start, end), name)) in self.spans.iter().zip(&self.names).enumerate() {
            out.push_str(&self.sql[at..*start]);
            out.push_str(&placeholder(n + 1, name));
            at = *end;
        }
        out.push_str(&self.sql[at..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_outside_text_and_comments_become_placeholders() {
        let p = Params::parse(
            "SELECT id_incident FROM tworkunit_incident -- :not\n\
             WHERE id_workunit = :id AND note <> ':no' AND x::text = :id /* :nope */ OR y = :other_1",
        );
        assert_eq!(p.bindings(), ["id", "id", "other_1"]);
        assert_eq!(p.names().collect::<Vec<_>>(), ["id", "other_1"]);
        assert_eq!(
            p.render(Database::MySql),
            "SELECT id_incident FROM tworkunit_incident -- :not\n\
             WHERE id_workunit = ? AND note <> ':no' AND x::text = ? /* :nope */ OR y = ?"
        );
        assert!(
            p.render(Database::Postgres)
                .contains("= $1 AND note <> ':no' AND x::text = $2 /* :nope */ OR y = $3")
        );
    }

    #[test]
    fn quotes_inside_text_do_not_end_it() {
        let p = Params::parse(r"SELECT 'it''s :a', 'back\' :b', `c:d` FROM t WHERE k = :k");
        assert_eq!(p.bindings(), ["k"]);
    }
}
