//! M tokens: what the M language specification's lexical grammar says, enough of it to read
//! queries (learn.microsoft.com/en-us/powerquery-m/m-spec-lexical-structure, and the
//! consolidated grammar, learn.microsoft.com/en-us/powerquery-m/m-spec-consolidated-grammar).
//!
//! - Text literals `"…"`: `""` is one `"`; `#(…)` is a character escape, a comma-separated list
//!   of `cr`, `lf`, `tab`, `#` (a literal `#`), four or eight hex digits (a code point).
//!   Anything else after `#(` is an error, as in M. Literals may span lines. `#!"…"` (a verbatim
//!   literal) is read the same way.
//! - Quoted identifiers `#"…"` follow the text rules.
//! - Regular identifiers may hold dots (`Table.SelectRows`, `Int64.Type` are one identifier).
//! - `//` comments run to the end of the line, `/* */` comments do not nest.
//! - Keywords, and the `#`-keywords (`#table`, `#date`, `#shared`, …) as their own kind.
//!
//! Positions are byte offsets into the text; [`line_col`] turns one into a line and a column
//! for messages.

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A regular identifier, dots included.
    Ident(String),
    /// `#"…"`, unescaped.
    Quoted(String),
    /// A text literal, unescaped.
    Text(String),
    Number(String),
    Keyword(Kw),
    /// `#table`, `#date`, `#shared`, … (with the `#`).
    Hash(String),
    Punct(P),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kw {
    And,
    As,
    Each,
    Else,
    Error,
    False,
    If,
    In,
    Is,
    Let,
    Meta,
    Not,
    Null,
    Or,
    Otherwise,
    Section,
    Shared,
    Then,
    True,
    Try,
    Type,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum P {
    Comma,
    Semi,
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
    Plus,
    Minus,
    Star,
    Slash,
    Amp,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    At,
    Bang,
    Question,
    Coalesce,
    Arrow,
    DotDot,
    Ellipsis,
}

/// Why the text is not M, and where (a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexError {
    pub offset: usize,
    pub message: String,
}

fn keyword(word: &str) -> Option<Kw> {
    Some(match word {
        "and" => Kw::And,
        "as" => Kw::As,
        "each" => Kw::Each,
        "else" => Kw::Else,
        "error" => Kw::Error,
        "false" => Kw::False,
        "if" => Kw::If,
        "in" => Kw::In,
        "is" => Kw::Is,
        "let" => Kw::Let,
        "meta" => Kw::Meta,
        "not" => Kw::Not,
        "null" => Kw::Null,
        "or" => Kw::Or,
        "otherwise" => Kw::Otherwise,
        "section" => Kw::Section,
        "shared" => Kw::Shared,
        "then" => Kw::Then,
        "true" => Kw::True,
        "try" => Kw::Try,
        "type" => Kw::Type,
        _ => return None,
    })
}

const HASH_KEYWORDS: [&str; 11] = [
    "binary",
    "date",
    "datetime",
    "datetimezone",
    "duration",
    "infinity",
    "nan",
    "sections",
    "shared",
    "table",
    "time",
];

fn is_newline(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_part(c: char) -> bool {
    // Letters, digits, connecting characters; combining and formatting characters are rare in
    // query names and `char` has no test for them: a zero-width joiner is taken as a part.
    c.is_alphanumeric() || c == '_' || c == '\u{200D}' || c == '\u{200C}'
}

/// The tokens of `text`, or the first lexical error.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
    let mut lx = Lexer {
        text,
        pos: 0,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.text[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> LexError {
        LexError {
            offset,
            message: message.into(),
        }
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token {
            tok,
            start,
            end: self.pos,
        });
    }

    fn run(&mut self) -> Result<(), LexError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            if c.is_whitespace() || c == '\u{FEFF}' {
                self.bump();
            } else if c == '/' && self.peek_at(1) == Some('/') {
                while let Some(c) = self.peek() {
                    if is_newline(c) {
                        break;
                    }
                    self.bump();
                }
            } else if c == '/' && self.peek_at(1) == Some('*') {
                match self.text[self.pos + 2..].find("*/") {
                    Some(end) => self.pos += 2 + end + 2,
                    None => return Err(self.err(start, "a /* comment is not closed")),
                }
            } else if c == '"' {
                self.bump();
                let s = self.text_body(start)?;
                self.push(Tok::Text(s), start);
            } else if c == '#' {
                self.hash(start)?;
            } else if c.is_ascii_digit()
                || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()))
            {
                self.number(start);
            } else if is_ident_start(c) {
                self.identifier(start);
            } else {
                self.punct(start, c)?;
            }
        }
        Ok(())
    }

    /// After the opening quote: the literal's characters up to the closing quote, unescaped.
    fn text_body(&mut self, start: usize) -> Result<String, LexError> {
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(self.err(start, "a text literal is not closed")),
                Some('"') => {
                    if self.peek() == Some('"') {
                        self.bump();
                        s.push('"');
                    } else {
                        return Ok(s);
                    }
                }
                Some('#') if self.peek() == Some('(') => {
                    let at = self.pos - 1;
                    self.bump();
                    self.escape(at, &mut s)?;
                }
                Some(c) => s.push(c),
            }
        }
    }

    /// After `#(`: the escape list up to `)`.
    fn escape(&mut self, at: usize, s: &mut String) -> Result<(), LexError> {
        let rest = &self.text[self.pos..];
        let Some(close) = rest.find(')') else {
            return Err(self.err(at, "a #( escape is not closed"));
        };
        let list = &rest[..close];
        for item in list.split(',') {
            match item {
                "cr" => s.push('\r'),
                "lf" => s.push('\n'),
                "tab" => s.push('\t'),
                "#" => s.push('#'),
                hex if (hex.len() == 4 || hex.len() == 8)
                    && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    let code = u32::from_str_radix(hex, 16).unwrap_or(u32::MAX);
                    match char::from_u32(code) {
                        Some(c) => s.push(c),
                        None => return Err(self.err(at, format!("#({hex}) is not a character"))),
                    }
                }
                _ => {
                    let shown: String = item.chars().take(20).collect();
                    return Err(self.err(at, format!("unknown escape #({shown})")));
                }
            }
        }
        self.pos += close + 1;
        Ok(())
    }

    fn hash(&mut self, start: usize) -> Result<(), LexError> {
        self.bump();
        match self.peek() {
            Some('"') => {
                self.bump();
                let s = self.text_body(start)?;
                self.push(Tok::Quoted(s), start);
            }
            Some('!') if self.peek_at(1) == Some('"') => {
                self.bump();
                self.bump();
                let s = self.text_body(start)?;
                self.push(Tok::Text(s), start);
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let word_start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                    self.bump();
                }
                let word = &self.text[word_start..self.pos];
                if HASH_KEYWORDS.contains(&word) {
                    let tok = Tok::Hash(format!("#{word}"));
                    self.push(tok, start);
                } else {
                    let shown: String = word.chars().take(20).collect();
                    return Err(self.err(start, format!("#{shown} is not an M keyword")));
                }
            }
            _ => return Err(self.err(start, "a # that starts nothing M knows")),
        }
        Ok(())
    }

    fn number(&mut self, start: usize) {
        if self.peek() == Some('0') && matches!(self.peek_at(1), Some('x' | 'X')) {
            self.bump();
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.bump();
            }
        } else {
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
            if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                let sign = usize::from(matches!(self.peek_at(1), Some('+' | '-')));
                if self.peek_at(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                    for _ in 0..=sign {
                        self.bump();
                    }
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.bump();
                    }
                }
            }
        }
        let n = self.text[start..self.pos].to_string();
        self.push(Tok::Number(n), start);
    }

    fn identifier(&mut self, start: usize) {
        loop {
            while self.peek().is_some_and(is_ident_part) {
                self.bump();
            }
            // `a.b` continues the identifier; `a..b` and `a.` do not.
            if self.peek() == Some('.') && self.peek_at(1).is_some_and(is_ident_part) {
                self.bump();
            } else {
                break;
            }
        }
        let word = &self.text[start..self.pos];
        let tok = match keyword(word) {
            Some(kw) => Tok::Keyword(kw),
            None => Tok::Ident(word.to_string()),
        };
        self.push(tok, start);
    }

    fn punct(&mut self, start: usize, c: char) -> Result<(), LexError> {
        let next = self.peek_at(1);
        let (p, len) = match (c, next) {
            ('<', Some('=')) => (P::Le, 2),
            ('<', Some('>')) => (P::Ne, 2),
            ('>', Some('=')) => (P::Ge, 2),
            ('=', Some('>')) => (P::Arrow, 2),
            ('?', Some('?')) => (P::Coalesce, 2),
            ('.', Some('.')) if self.peek_at(2) == Some('.') => (P::Ellipsis, 3),
            ('.', Some('.')) => (P::DotDot, 2),
            (',', _) => (P::Comma, 1),
            (';', _) => (P::Semi, 1),
            ('=', _) => (P::Eq, 1),
            ('<', _) => (P::Lt, 1),
            ('>', _) => (P::Gt, 1),
            ('+', _) => (P::Plus, 1),
            ('-', _) => (P::Minus, 1),
            ('*', _) => (P::Star, 1),
            ('/', _) => (P::Slash, 1),
            ('&', _) => (P::Amp, 1),
            ('(', _) => (P::LParen, 1),
            (')', _) => (P::RParen, 1),
            ('[', _) => (P::LBracket, 1),
            (']', _) => (P::RBracket, 1),
            ('{', _) => (P::LBrace, 1),
            ('}', _) => (P::RBrace, 1),
            ('@', _) => (P::At, 1),
            ('!', _) => (P::Bang, 1),
            ('?', _) => (P::Question, 1),
            _ => {
                let shown = if c.is_control() {
                    format!("U+{:04X}", c as u32)
                } else {
                    c.to_string()
                };
                return Err(self.err(start, format!("unexpected character {shown}")));
            }
        };
        for _ in 0..len {
            self.bump();
        }
        self.push(Tok::Punct(p), start);
        Ok(())
    }
}

/// Line and column (1-based, columns in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        tokenize(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn text_escapes() {
        assert_eq!(
            toks(r#""a""b#(lf)c#(cr,lf)d#(tab)e#(#)(f#(000D)#(0001F600)""#),
            [Tok::Text("a\"b\nc\r\nd\te#(f\r\u{1F600}".into())]
        );
        assert_eq!(toks("\"two\nlines\""), [Tok::Text("two\nlines".into())]);
        assert!(tokenize(r##""#(bell)""##)
            .unwrap_err()
            .message
            .contains("unknown escape"));
        assert!(tokenize(r##""#(D800)""##)
            .unwrap_err()
            .message
            .contains("not a character"));
        assert!(tokenize(r#""open"#)
            .unwrap_err()
            .message
            .contains("not closed"));
        assert!(tokenize(r##""#(lf"##)
            .unwrap_err()
            .message
            .contains("not closed"));
    }

    #[test]
    fn identifiers_keywords_and_comments() {
        assert_eq!(
            toks(
                "let #\"Gefilterte Zeilen\" = Table.SelectRows(x, each _) // c\n/* in */ in #table"
            ),
            [
                Tok::Keyword(Kw::Let),
                Tok::Quoted("Gefilterte Zeilen".into()),
                Tok::Punct(P::Eq),
                Tok::Ident("Table.SelectRows".into()),
                Tok::Punct(P::LParen),
                Tok::Ident("x".into()),
                Tok::Punct(P::Comma),
                Tok::Keyword(Kw::Each),
                Tok::Ident("_".into()),
                Tok::Punct(P::RParen),
                Tok::Keyword(Kw::In),
                Tok::Hash("#table".into()),
            ]
        );
        assert_eq!(
            toks("{1..10} 0xFF .5 1e-3 x{0}?"),
            [
                Tok::Punct(P::LBrace),
                Tok::Number("1".into()),
                Tok::Punct(P::DotDot),
                Tok::Number("10".into()),
                Tok::Punct(P::RBrace),
                Tok::Number("0xFF".into()),
                Tok::Number(".5".into()),
                Tok::Number("1e-3".into()),
                Tok::Ident("x".into()),
                Tok::Punct(P::LBrace),
                Tok::Number("0".into()),
                Tok::Punct(P::RBrace),
                Tok::Punct(P::Question),
            ]
        );
        assert!(tokenize("/* open").is_err());
        assert!(tokenize("a $ b").is_err());
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
