//! `regex_replace` and `regex_full_match` with the `regex` crate, whose syntax is RE2's
//! (TF's engine) apart from a few rarely used escapes; an invalid pattern is an `Err`
//! naming it. RE2's Perl classes (`\w`, `\d`, `\s`, `\b` and their negations) are ASCII
//! where the `regex` crate's are Unicode, so patterns are rewritten to the ASCII forms.

use ::regex::Regex;

use super::StringTensor;
use crate::{Error, Result, Tensor};

fn compile(op: &'static str, pattern: &str) -> Result<Regex> {
    Regex::new(&ascii_perl_classes(pattern)).map_err(|e| Error::invalid(op, format!("invalid regex {pattern:?}: {e}")))
}

/// `pattern` with `\w`, `\d`, `\s` (and negations) as ASCII classes and `\b`, `\B` as
/// ASCII word boundaries, as RE2 reads them; a class nested in `[...]` is a union there.
fn ascii_perl_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push(c);
            break;
        };
        let class = match e.to_ascii_lowercase() {
            'w' => "0-9A-Za-z_",
            'd' => "0-9",
            's' => "\\t\\n\\f\\r ",
            'b' => {
                out.push_str(if e == 'b' { "(?-u:\\b)" } else { "(?-u:\\B)" });
                continue;
            }
            _ => {
                out.push(c);
                out.push(e);
                continue;
            }
        };
        let negated = if e.is_ascii_uppercase() { "^" } else { "" };
        out.push_str(&format!("[{negated}{class}]"));
    }
    out
}

/// RE2's rewrite (`\1` a group, `\\` a backslash) in the `regex` crate's syntax (`${1}`, `$$`).
fn rewrite_of(op: &'static str, rewrite: &str) -> Result<String> {
    let mut out = String::with_capacity(rewrite.len());
    let mut chars = rewrite.chars();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => out.push_str(&format!("${{{d}}}")),
                Some('\\') => out.push('\\'),
                other => {
                    return Err(Error::invalid(
                        op,
                        format!(
                        "invalid rewrite {rewrite:?}: a backslash must precede a digit or a backslash, got {other:?}"
                    ),
                    ))
                }
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

impl StringTensor {
    /// Replaces matches of `pattern` with `rewrite` (TF's `tf.strings.regex_replace`): every
    /// match when `replace_global`, else the first; `\1`..`\9` in `rewrite` insert groups.
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::new(&["2024-01-31", "hello"], &[2]).unwrap();
    /// let r = t.regex_replace(r"(\d+)-(\d+)-(\d+)", r"\3/\2/\1", true).unwrap();
    /// assert_eq!(r.as_slice(), &["31/01/2024", "hello"]);
    /// assert_eq!(t.regex_replace("l", "L", false).unwrap().as_slice()[1], "heLlo");
    /// assert!(t.regex_replace("(", "", true).is_err());
    /// ```
    pub fn regex_replace(&self, pattern: &str, rewrite: &str, replace_global: bool) -> Result<StringTensor> {
        let op = "strings::regex_replace";
        let re = compile(op, pattern)?;
        let rewrite = rewrite_of(op, rewrite)?;
        let limit = if replace_global { 0 } else { 1 };
        Ok(self.map(|s| re.replacen(s, limit, rewrite.as_str()).into_owned()))
    }

    /// Whether each whole string matches `pattern` (TF's `tf.strings.regex_full_match`), a
    /// `Bool` tensor of the same shape.
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::new(&["kiln", "kiln 2"], &[2]).unwrap();
    /// assert_eq!(t.regex_full_match("[a-z]+").unwrap().to_vec::<bool>().unwrap(), vec![true, false]);
    /// ```
    pub fn regex_full_match(&self, pattern: &str) -> Result<Tensor> {
        let op = "strings::regex_full_match";
        compile(op, pattern)?;
        let re = compile(op, &format!("^(?:{pattern})$"))?;
        Tensor::from_vec(self.data.iter().map(|s| re.is_match(s)).collect(), &self.shape)
    }
}
