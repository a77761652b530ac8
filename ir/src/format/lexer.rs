//! Splitting one line of graph text into tokens.

use super::*;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// `%12`
    Node(String),
    /// `@0`, `@name`, `@"quoted name"`
    At(String),
    Str(String),
    /// Identifiers and numbers: `[A-Za-z0-9_.+-]+`.
    Word(String),
    Arrow,
    Punct(char),
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Node(n) => write!(f, "`%{n}`"),
            Tok::At(n) => write!(f, "`@{n}`"),
            Tok::Str(s) => write!(f, "string {}", quote(s)),
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Arrow => write!(f, "`->`"),
            Tok::Punct(c) => write!(f, "`{c}`"),
        }
    }
}

pub(super) fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-')
}

pub(super) fn lex_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> std::result::Result<String, String> {
    let mut s = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated string".into()),
            Some('"') => return Ok(s),
            Some('\\') => match chars.next() {
                Some('\\') => s.push('\\'),
                Some('"') => s.push('"'),
                Some('n') => s.push('\n'),
                Some('r') => s.push('\r'),
                Some('t') => s.push('\t'),
                Some('u') => {
                    if chars.next() != Some('{') {
                        return Err("expected `{` after `\\u`".into());
                    }
                    let mut hex = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_hexdigit() && hex.len() < 6 => hex.push(c),
                            _ => return Err("bad `\\u{..}` escape".into()),
                        }
                    }
                    let c = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("`\\u{{{hex}}}` is not a character"))?;
                    s.push(c);
                }
                other => return Err(format!("unknown escape `\\{}`", other.map(String::from).unwrap_or_default())),
            },
            Some(c) => s.push(c),
        }
    }
}

pub(super) fn lex(line: &str) -> std::result::Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == '"' {
            chars.next();
            toks.push(Tok::Str(lex_string(&mut chars)?));
        } else if c == '%' || c == '@' {
            chars.next();
            let name = if chars.peek() == Some(&'"') && c == '@' {
                chars.next();
                lex_string(&mut chars)?
            } else {
                let mut w = String::new();
                while let Some(&d) = chars.peek().filter(|d| is_word(**d)) {
                    w.push(d);
                    chars.next();
                }
                w
            };
            if name.is_empty() && c == '%' {
                return Err("expected a node number after `%`".into());
            }
            toks.push(if c == '%' { Tok::Node(name) } else { Tok::At(name) });
        } else if c == '-' && {
            let mut look = chars.clone();
            look.next();
            look.peek() == Some(&'>')
        } {
            chars.next();
            chars.next();
            toks.push(Tok::Arrow);
        } else if is_word(c) {
            let mut w = String::new();
            while let Some(&d) = chars.peek().filter(|d| is_word(**d)) {
                w.push(d);
                chars.next();
            }
            toks.push(Tok::Word(w));
        } else if "()[]{},:=".contains(c) {
            chars.next();
            toks.push(Tok::Punct(c));
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(toks)
}
