//! M expressions to a small tree: what the reader needs to follow sources, and enough of the
//! rest of the grammar (learn.microsoft.com/en-us/powerquery-m/m-spec-consolidated-grammar)
//! to step over it without choking. Types are read and dropped; operators other than `&`, `??`
//! and `meta` keep their operands only.
//!
//! Operator chains (`a & b & …`) and postfix chains (`x{…}[…](…)…`) are flat lists, so a long
//! chain is not a deep tree; real nesting (parentheses, lists, records, `let`, `if`) is bounded
//! by [`MAX_DEPTH`] and an input nested deeper is an error, never a stack overflow.

use std::rc::Rc;

use super::lexer::{Kw, Tok, Token, P};

/// Nesting accepted: far beyond what Power Query writes.
pub(super) const MAX_DEPTH: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Text(String),
    /// `true`, `false`.
    Logical(bool),
    /// A number or other literal that is neither text nor logical.
    Literal,
    Null,
    Ident(String),
    /// `let` bindings and the body.
    Let(Rc<Vec<(String, Rc<Expr>)>>, Rc<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `(a, b) => body`, `each body` (one parameter, `_`).
    Function(Rc<Vec<String>>, Rc<Expr>),
    Record(Vec<(String, Expr)>),
    List(Vec<Expr>),
    /// A primary expression and what follows it, in order.
    Postfix(Box<Expr>, Vec<Post>),
    /// Operands at one precedence level, the operators between them.
    Chain(Box<Expr>, Vec<(Op, Expr)>),
    /// `x meta [...]`: the value and its metadata record.
    Meta(Box<Expr>, Box<Expr>),
    /// `try x otherwise y` (y absent without `otherwise`).
    Try(Box<Expr>, Option<Box<Expr>>),
    /// A value whose source does not matter: types, `error …`, `...`, unary results.
    Opaque(Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Post {
    Call(Vec<Expr>),
    /// `x{…}` (optional with `?`).
    Item(Expr),
    /// `x[name]`.
    Field(String),
    /// `x[[a],[b]]`.
    Project,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Concat,
    Coalesce,
    /// Arithmetic, comparison, logic: the result is computed, not a source.
    Other,
}

/// Why the tokens are not an expression, and where (a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParseError {
    pub offset: usize,
    pub message: String,
}

/// The expression of a whole document (`section` documents are refused).
pub(super) fn parse(text: &str, tokens: &[Token]) -> Result<Expr, ParseError> {
    let matching = match_brackets(tokens)?;
    let mut p = Parser {
        text,
        tokens,
        pos: 0,
        matching,
        depth: 0,
    };
    if matches!(p.peek(), Some(Tok::Keyword(Kw::Section)))
        || matches!(p.peek(), Some(Tok::Punct(P::LBracket))) && p.section_after_attributes()
    {
        return Err(p.err("section documents are not read"));
    }
    let e = p.expr()?;
    if p.pos < tokens.len() {
        return Err(p.err("more text after the expression"));
    }
    Ok(e)
}

/// For each opening bracket, the index of its closing one; unbalanced brackets are an error.
fn match_brackets(tokens: &[Token]) -> Result<Vec<usize>, ParseError> {
    let mut matching = vec![usize::MAX; tokens.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Tok::Punct(p) = t.tok else { continue };
        match p {
            P::LParen | P::LBracket | P::LBrace => stack.push(i),
            P::RParen | P::RBracket | P::RBrace => {
                let want = match p {
                    P::RParen => P::LParen,
                    P::RBracket => P::LBracket,
                    _ => P::LBrace,
                };
                match stack.pop() {
                    Some(open) if tokens[open].tok == Tok::Punct(want) => matching[open] = i,
                    _ => {
                        return Err(ParseError {
                            offset: t.start,
                            message: "a closing bracket without its opening one".into(),
                        })
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(open) = stack.pop() {
        return Err(ParseError {
            offset: tokens[open].start,
            message: "a bracket is not closed".into(),
        });
    }
    Ok(matching)
}

struct Parser<'a> {
    text: &'a str,
    tokens: &'a [Token],
    pos: usize,
    matching: Vec<usize>,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + n).map(|t| &t.tok)
    }

    fn is(&self, p: P) -> bool {
        self.peek() == Some(&Tok::Punct(p))
    }

    fn is_kw(&self, k: Kw) -> bool {
        self.peek() == Some(&Tok::Keyword(k))
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.text.len(), |t| t.start)
    }

    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            offset: self.offset(),
            message: message.into(),
        }
    }

    fn expect(&mut self, p: P, what: &str) -> Result<(), ParseError> {
        if self.is(p) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected {what}")))
        }
    }

    fn expect_kw(&mut self, k: Kw, what: &str) -> Result<(), ParseError> {
        if self.is_kw(k) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected {what}")))
        }
    }

    /// `[attributes] section …`: a section document.
    fn section_after_attributes(&self) -> bool {
        let close = self.matching[self.pos];
        self.tokens
            .get(close + 1)
            .is_some_and(|t| t.tok == Tok::Keyword(Kw::Section))
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!(
                "the expression nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = stacker::maybe_grow(64 << 10, 1 << 20, || self.expr_inner());
        self.depth -= 1;
        e
    }

    fn expr_inner(&mut self) -> Result<Expr, ParseError> {
        if self.is(P::LParen) && self.is_function() {
            return self.function();
        }
        match self.peek() {
            Some(Tok::Keyword(Kw::Let)) => self.let_expr(),
            Some(Tok::Keyword(Kw::If)) => {
                self.pos += 1;
                let c = self.expr()?;
                self.expect_kw(Kw::Then, "then")?;
                let t = self.expr()?;
                self.expect_kw(Kw::Else, "else")?;
                let e = self.expr()?;
                Ok(Expr::If(Box::new(c), Box::new(t), Box::new(e)))
            }
            Some(Tok::Keyword(Kw::Each)) => {
                self.pos += 1;
                let body = self.expr()?;
                Ok(Expr::Function(
                    Rc::new(vec!["_".to_string()]),
                    Rc::new(body),
                ))
            }
            Some(Tok::Keyword(Kw::Error)) => {
                self.pos += 1;
                let e = self.expr()?;
                Ok(Expr::Opaque(vec![e]))
            }
            Some(Tok::Keyword(Kw::Try)) => {
                self.pos += 1;
                let e = self.expr()?;
                if self.is_kw(Kw::Otherwise) {
                    self.pos += 1;
                    let d = self.expr()?;
                    Ok(Expr::Try(Box::new(e), Some(Box::new(d))))
                } else if self.peek() == Some(&Tok::Ident("catch".into())) {
                    self.pos += 1;
                    let d = self.expr()?;
                    Ok(Expr::Try(Box::new(e), Some(Box::new(d))))
                } else {
                    Ok(Expr::Try(Box::new(e), None))
                }
            }
            _ => self.binary(0),
        }
    }

    fn let_expr(&mut self) -> Result<Expr, ParseError> {
        self.pos += 1;
        let mut bindings = Vec::new();
        loop {
            let name = self.name("a step name")?;
            self.expect(P::Eq, "= after a step name")?;
            let value = self.expr()?;
            bindings.push((name, Rc::new(value)));
            if self.is(P::Comma) {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.expect_kw(Kw::In, "in (or a comma between steps)")?;
        let body = self.expr()?;
        Ok(Expr::Let(Rc::new(bindings), Rc::new(body)))
    }

    /// A regular or quoted identifier.
    fn name(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Ident(s) | Tok::Quoted(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.err(format!("expected {what}"))),
        }
    }

    /// At `(`: whether a function expression starts here (`(…) =>` or `(…) as type =>`).
    fn is_function(&mut self) -> bool {
        let close = self.matching[self.pos];
        match self.tokens.get(close + 1).map(|t| &t.tok) {
            Some(Tok::Punct(P::Arrow)) => true,
            Some(Tok::Keyword(Kw::As)) => {
                let save = (self.pos, self.depth);
                self.pos = close + 2;
                let ok = self.skip_type().is_ok() && self.is(P::Arrow);
                (self.pos, self.depth) = save;
                ok
            }
            _ => false,
        }
    }

    fn function(&mut self) -> Result<Expr, ParseError> {
        self.pos += 1;
        let mut params = Vec::new();
        while !self.is(P::RParen) {
            if self.peek() == Some(&Tok::Ident("optional".into()))
                && matches!(self.peek_at(1), Some(Tok::Ident(_) | Tok::Quoted(_)))
            {
                self.pos += 1;
            }
            params.push(self.name("a parameter name")?);
            if self.is_kw(Kw::As) {
                self.pos += 1;
                self.skip_type()?;
            }
            if self.is(P::Comma) {
                self.pos += 1;
            } else if !self.is(P::RParen) {
                return Err(self.err("expected , or ) in a parameter list"));
            }
        }
        self.pos += 1;
        if self.is_kw(Kw::As) {
            self.pos += 1;
            self.skip_type()?;
        }
        self.expect(P::Arrow, "=>")?;
        let body = self.expr()?;
        Ok(Expr::Function(Rc::new(params), Rc::new(body)))
    }

    /// A type after `type`, `as` or `is`: read and dropped.
    fn skip_type(&mut self) -> Result<(), ParseError> {
        self.enter()?;
        let r = stacker::maybe_grow(64 << 10, 1 << 20, || self.skip_type_inner());
        self.depth -= 1;
        r
    }

    fn skip_type_inner(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Some(Tok::Ident(w)) if w == "nullable" || w == "optional" => {
                self.pos += 1;
                self.skip_type()
            }
            Some(Tok::Ident(w)) if w == "table" || w == "function" => {
                let function = w == "function";
                self.pos += 1;
                if self.is(P::LBracket) || (function && self.is(P::LParen)) {
                    self.pos = self.matching[self.pos] + 1;
                    if function && self.is_kw(Kw::As) {
                        self.pos += 1;
                        self.skip_type()?;
                    }
                }
                Ok(())
            }
            Some(Tok::Punct(P::LBracket | P::LBrace | P::LParen)) => {
                self.pos = self.matching[self.pos] + 1;
                Ok(())
            }
            Some(Tok::Ident(_) | Tok::Quoted(_)) | Some(Tok::Keyword(Kw::Null | Kw::Type)) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.err("expected a type")),
        }
    }

    /// Binary operators by precedence, lowest first (`??`, or, and, is, as, = <>, < > <= >=,
    /// + - &, * /, meta).
    fn binary(&mut self, level: usize) -> Result<Expr, ParseError> {
        if level == 9 {
            let first = self.unary()?;
            if self.is_kw(Kw::Meta) {
                self.pos += 1;
                let m = self.unary()?;
                return Ok(Expr::Meta(Box::new(first), Box::new(m)));
            }
            return Ok(first);
        }
        let first = self.binary(level + 1)?;
        let mut rest = Vec::new();
        loop {
            let op = match (level, self.peek()) {
                (0, Some(Tok::Punct(P::Coalesce))) => Op::Coalesce,
                (1, Some(Tok::Keyword(Kw::Or))) | (2, Some(Tok::Keyword(Kw::And))) => Op::Other,
                (3, Some(Tok::Keyword(Kw::Is))) | (4, Some(Tok::Keyword(Kw::As))) => {
                    // `x as type` is x; `x is type` is a logical.
                    let is = level == 3;
                    self.pos += 1;
                    self.skip_type()?;
                    if is {
                        rest.push((Op::Other, Expr::Literal));
                    }
                    continue;
                }
                (5, Some(Tok::Punct(P::Eq | P::Ne))) => Op::Other,
                (6, Some(Tok::Punct(P::Lt | P::Gt | P::Le | P::Ge))) => Op::Other,
                (7, Some(Tok::Punct(P::Amp))) => Op::Concat,
                (7, Some(Tok::Punct(P::Plus | P::Minus)))
                | (8, Some(Tok::Punct(P::Star | P::Slash))) => Op::Other,
                _ => break,
            };
            self.pos += 1;
            // `let`, `if`, `each` and functions may follow an operator (the grammar puts them at
            // the top; Power Query accepts them here too).
            let operand = if matches!(
                self.peek(),
                Some(Tok::Keyword(
                    Kw::Let | Kw::If | Kw::Each | Kw::Try | Kw::Error
                ))
            ) {
                self.expr()?
            } else {
                self.binary(level + 1)?
            };
            rest.push((op, operand));
        }
        if rest.is_empty() {
            Ok(first)
        } else {
            Ok(Expr::Chain(Box::new(first), rest))
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is(P::LParen) && self.is_function() {
            return self.expr();
        }
        match self.peek() {
            Some(Tok::Punct(P::Plus | P::Minus)) | Some(Tok::Keyword(Kw::Not)) => {
                self.pos += 1;
                self.enter()?;
                let e = stacker::maybe_grow(64 << 10, 1 << 20, || self.unary());
                self.depth -= 1;
                Ok(Expr::Opaque(vec![e?]))
            }
            Some(Tok::Keyword(Kw::Type)) => {
                self.pos += 1;
                self.skip_type()?;
                Ok(Expr::Opaque(Vec::new()))
            }
            Some(Tok::Keyword(Kw::Let | Kw::If | Kw::Each | Kw::Try | Kw::Error)) => self.expr(),
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let base = self.primary()?;
        let mut posts = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Punct(P::LParen)) => {
                    self.pos += 1;
                    let args = self.items(P::RParen, "an argument")?;
                    posts.push(Post::Call(args));
                }
                Some(Tok::Punct(P::LBrace)) => {
                    self.pos += 1;
                    let e = self.expr()?;
                    self.expect(P::RBrace, "} after an item selector")?;
                    if self.is(P::Question) {
                        self.pos += 1;
                    }
                    posts.push(Post::Item(e));
                }
                Some(Tok::Punct(P::LBracket)) => {
                    posts.push(self.field_selector()?);
                }
                _ => break,
            }
        }
        if posts.is_empty() {
            Ok(base)
        } else {
            Ok(Expr::Postfix(Box::new(base), posts))
        }
    }

    /// At `[`: `[name]`, `[name]?` or a projection `[[a],[b]]`.
    fn field_selector(&mut self) -> Result<Post, ParseError> {
        let close = self.matching[self.pos];
        if matches!(self.peek_at(1), Some(Tok::Punct(P::LBracket))) {
            self.pos = close + 1;
            if self.is(P::Question) {
                self.pos += 1;
            }
            return Ok(Post::Project);
        }
        self.pos += 1;
        let name = self.generalized_name()?;
        self.expect(P::RBracket, "] after a field name")?;
        if self.is(P::Question) {
            self.pos += 1;
        }
        Ok(Post::Field(name))
    }

    /// A field name: a quoted identifier, or words (keywords and numbers too) separated by
    /// blanks, taken as written.
    fn generalized_name(&mut self) -> Result<String, ParseError> {
        if let Some(Tok::Quoted(s)) = self.peek() {
            let s = s.clone();
            self.pos += 1;
            return Ok(s);
        }
        let first = self.pos;
        while matches!(
            self.peek(),
            Some(Tok::Ident(_) | Tok::Keyword(_) | Tok::Number(_))
        ) {
            self.pos += 1;
        }
        if self.pos == first {
            return Err(self.err("expected a field name"));
        }
        Ok(self.text[self.tokens[first].start..self.tokens[self.pos - 1].end].to_string())
    }

    /// Comma-separated expressions up to `close` (consumed); list items may be ranges.
    fn items(&mut self, close: P, what: &str) -> Result<Vec<Expr>, ParseError> {
        let mut out = Vec::new();
        while !self.is(close) {
            let e = self.expr()?;
            if self.is(P::DotDot) {
                self.pos += 1;
                let to = self.expr()?;
                out.push(Expr::Opaque(vec![e, to]));
            } else {
                out.push(e);
            }
            if self.is(P::Comma) {
                self.pos += 1;
            } else if !self.is(close) {
                return Err(self.err(format!("expected , or a closing bracket after {what}")));
            }
        }
        self.pos += 1;
        Ok(out)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.err("the expression ends too early"));
        };
        self.pos += 1;
        Ok(match tok {
            Tok::Text(s) => Expr::Text(s),
            Tok::Number(_) => Expr::Literal,
            Tok::Keyword(Kw::True) => Expr::Logical(true),
            Tok::Keyword(Kw::False) => Expr::Logical(false),
            Tok::Keyword(Kw::Null) => Expr::Null,
            Tok::Ident(s) | Tok::Quoted(s) => {
                // `Section1!Query`: the member of a section, by its name.
                if self.is(P::Bang) {
                    self.pos += 1;
                    return Ok(Expr::Ident(self.name("a section member")?));
                }
                Expr::Ident(s)
            }
            Tok::Hash(h) if h == "#infinity" || h == "#nan" => Expr::Literal,
            Tok::Hash(h) => Expr::Ident(h),
            Tok::Punct(P::At) => Expr::Ident(self.name("a name after @")?),
            Tok::Punct(P::Ellipsis) => Expr::Opaque(Vec::new()),
            Tok::Punct(P::LParen) => {
                let e = self.expr()?;
                self.expect(P::RParen, ")")?;
                e
            }
            Tok::Punct(P::LBrace) => {
                self.enter()?;
                let items = self.items(P::RBrace, "a list item");
                self.depth -= 1;
                Expr::List(items?)
            }
            Tok::Punct(P::LBracket) => {
                self.pos -= 1;
                self.record_or_implicit()?
            }
            Tok::Keyword(Kw::Let | Kw::If | Kw::Each | Kw::Try | Kw::Error | Kw::Type) => {
                self.pos -= 1;
                self.unary()?
            }
            _ => {
                self.pos -= 1;
                return Err(self.err("expected an expression"));
            }
        })
    }

    /// At `[`: a record `[a = 1, …]`, `[]`, or a field of the implicit `_` (`[Col]`, `[[a],[b]]`).
    fn record_or_implicit(&mut self) -> Result<Expr, ParseError> {
        let open = self.pos;
        let close = self.matching[open];
        if close == open + 1 {
            self.pos = close + 1;
            return Ok(Expr::Record(Vec::new()));
        }
        // Look past the first name for `=`.
        self.pos = open + 1;
        let is_record = !self.is(P::LBracket) && self.generalized_name().is_ok() && self.is(P::Eq);
        self.pos = open;
        if !is_record {
            let post = self.field_selector()?;
            return Ok(Expr::Postfix(Box::new(Expr::Ident("_".into())), vec![post]));
        }
        self.pos = open + 1;
        self.enter()?;
        let mut fields = Vec::new();
        loop {
            let name = self.generalized_name()?;
            self.expect(P::Eq, "= after a field name")?;
            let value = self.expr()?;
            fields.push((name, value));
            if self.is(P::Comma) {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.depth -= 1;
        self.expect(P::RBracket, "] or , in a record")?;
        Ok(Expr::Record(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn p(text: &str) -> Result<Expr, ParseError> {
        parse(text, &tokenize(text).unwrap())
    }

    #[test]
    fn shapes() {
        let e = p("let Source = Sql.Database(\"s\", \"db\"), T = Source{[Schema=\"dbo\",Item=\"t\"]}[Data] in T").unwrap();
        let Expr::Let(b, body) = e else { panic!() };
        assert_eq!(b.len(), 2);
        assert_eq!(*body, Expr::Ident("T".into()));
        let Expr::Postfix(base, posts) = &*b[1].1 else {
            panic!()
        };
        assert_eq!(**base, Expr::Ident("Source".into()));
        assert!(
            matches!(&posts[..], [Post::Item(Expr::Record(f)), Post::Field(d)] if f.len() == 2 && d == "Data")
        );
        for ok in [
            "(x as text, optional y as nullable number) as table => x",
            "each [Order Date] > #date(2020, 1, 1) and not [x] = null",
            "Table.TransformColumnTypes(t, {{\"a\", type text}, {\"b\", Int64.Type}})",
            "Value.ReplaceType(t, type table [a = text, b = nullable number])",
            "try x otherwise y",
            "\"a\" meta [IsParameterQuery=true, Type=\"Text\"]",
            "x[[a],[b]]",
            "{1..10, 12}",
            "if a then b else if c then d else e",
            "Section1!Orders",
            "(Source) as table",
            "let a = 1 in let b = a in b",
            "x ?? y & z",
            "[A = 1, #\"B c\" = 2][A]",
        ] {
            p(ok).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        }
        for bad in ["let a = 1", "f(", "a b", "section S; shared x = 1;", "[x"] {
            let tokens = tokenize(bad);
            assert!(tokens.map_or(true, |t| parse(bad, &t).is_err()), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let text = format!("{}1{}", "(".repeat(5_000), ")".repeat(5_000));
        assert!(p(&text).unwrap_err().message.contains("nests deeper"));
        let text = format!("{}1", "-".repeat(5_000));
        assert!(p(&text).unwrap_err().message.contains("nests deeper"));
        let text = "a & ".repeat(100_000) + "a";
        assert!(p(&text).is_ok());
    }
}
