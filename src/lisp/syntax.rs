//! Source-to-source rewriting before compilation: `syntax-rules` macros, and the derived forms
//! that are easiest to say as other forms (`define-record-type`, `let-values`).
//!
//! # `syntax-rules`
//!
//! A macro is a list of rules `(pattern template)`. A use `(name arg ...)` is matched against
//! each pattern in turn (the pattern's first item, the keyword, is ignored); the first that
//! matches binds its pattern variables, and the template is copied with them substituted.
//! Patterns support literals, `_`, nested lists and vectors, dotted tails, and an ellipsis
//! (`...`, or the one named by `(syntax-rules ellipsis (literal ...) rule ...)`) anywhere in a
//! list, with items after it; templates support ellipses at any depth (`x ... ...`
//! flattens) and the `(... ...)` escape.
//!
//! The expander is **not hygienic**: a name a template introduces means whatever it means
//! where the macro is used, and a binding a template introduces can capture a name of the
//! use. That is `define-macro`'s contract with `syntax-rules`' notation, and it is stated in
//! the README. Expansion is bounded by the compiler's nesting limit, so a macro that expands
//! to itself forever is an error, not a hang.
//!
//! Nothing here recurses deeper than the data it is given, and the data are bounded by the
//! reader's and compiler's nesting limits.

use super::datum::{Datum, DatumKind, Span};
use std::collections::HashMap;

/// A `syntax-rules` macro.
#[derive(Debug)]
pub(crate) struct Macro {
    ellipsis: String,
    literals: Vec<String>,
    rules: Vec<(Datum, Datum)>,
}

/// What a pattern variable matched: one datum, or (under an ellipsis) a sequence.
enum Binding {
    One(Datum),
    Seq(Vec<Binding>),
}

type Bindings = HashMap<String, Binding>;

/// A copy of `d` (a datum tree owns its children, so copies are deep).
pub(crate) fn copy(d: &Datum) -> Datum {
    stacker::maybe_grow(64 << 10, 1 << 20, || {
        let kind = match d.kind() {
            DatumKind::Int(n) => DatumKind::Int(*n),
            DatumKind::Float(x) => DatumKind::Float(*x),
            DatumKind::Str(s) => DatumKind::Str(s.clone()),
            DatumKind::Char(c) => DatumKind::Char(*c),
            DatumKind::Bool(b) => DatumKind::Bool(*b),
            DatumKind::Symbol(s) => DatumKind::Symbol(s.clone()),
            DatumKind::List(items, tail) => DatumKind::List(
                items.iter().map(copy).collect(),
                tail.as_deref().map(|t| Box::new(copy(t))),
            ),
            DatumKind::Vector(items) => DatumKind::Vector(items.iter().map(copy).collect()),
        };
        Datum::new(kind, d.span())
    })
}

/// A symbol datum.
pub(crate) fn sym(name: &str, span: Span) -> Datum {
    Datum::new(DatumKind::Symbol(name.to_string()), span)
}

/// A proper list datum.
pub(crate) fn list(items: Vec<Datum>, span: Span) -> Datum {
    Datum::new(DatumKind::List(items, None), span)
}

fn same_atom(a: &Datum, b: &Datum) -> bool {
    match (a.kind(), b.kind()) {
        (DatumKind::Int(x), DatumKind::Int(y)) => x == y,
        (DatumKind::Float(x), DatumKind::Float(y)) => x.to_bits() == y.to_bits(),
        (DatumKind::Str(x), DatumKind::Str(y)) => x == y,
        (DatumKind::Char(x), DatumKind::Char(y)) => x == y,
        (DatumKind::Bool(x), DatumKind::Bool(y)) => x == y,
        (DatumKind::Symbol(x), DatumKind::Symbol(y)) => x == y,
        _ => false,
    }
}

impl Macro {
    /// Parses `(syntax-rules (literal ...) (pattern template) ...)`, or the form with a
    /// custom ellipsis name before the literals.
    pub(crate) fn parse(spec: &Datum) -> Result<Macro, String> {
        const USAGE: &str = "expected `(syntax-rules (literal ...) (pattern template) ...)`";
        let items = match spec.kind() {
            DatumKind::List(items, None) => &items[..],
            _ => return Err(USAGE.into()),
        };
        if items.first().and_then(Datum::as_symbol) != Some("syntax-rules") {
            return Err(USAGE.into());
        }
        let (ellipsis, rest) = match items.get(1).and_then(Datum::as_symbol) {
            Some(e) => (e.to_string(), &items[2..]),
            None => ("...".to_string(), &items[1..]),
        };
        let Some((lits, rules)) = rest.split_first() else { return Err(USAGE.into()) };
        let DatumKind::List(lits, None) = lits.kind() else { return Err(USAGE.into()) };
        let literals = lits
            .iter()
            .map(|l| l.as_symbol().map(str::to_string).ok_or("literals must be symbols"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for r in rules {
            let [pat, tmpl] = r.items() else {
                return Err(format!("a rule is `(pattern template)`; got {r}"));
            };
            if !matches!(pat.kind(), DatumKind::List(..)) {
                return Err(format!("a pattern is a list starting with the keyword; got {pat}"));
            }
            out.push((copy(pat), copy(tmpl)));
        }
        Ok(Macro { ellipsis, literals, rules: out })
    }

    /// Expands one use of the macro, or says that no rule matched.
    pub(crate) fn expand(&self, form: &Datum) -> Result<Datum, String> {
        let span = form.span();
        for (pat, tmpl) in &self.rules {
            let mut b = Bindings::new();
            // The keyword position is not matched.
            let (DatumKind::List(pitems, ptail), DatumKind::List(fitems, ftail)) =
                (pat.kind(), form.kind())
            else {
                continue;
            };
            if pitems.is_empty() || fitems.is_empty() {
                continue;
            }
            if self.match_list(
                &pitems[1..],
                ptail.as_deref(),
                &fitems[1..],
                ftail.as_deref(),
                &mut b,
            ) {
                return self.instantiate(tmpl, &b, span);
            }
        }
        Err(format!("no `syntax-rules` pattern matches {form}"))
    }

    fn is_ellipsis(&self, d: &Datum) -> bool {
        d.as_symbol() == Some(self.ellipsis.as_str())
    }

    fn vars(&self, pat: &Datum, out: &mut Vec<String>) {
        match pat.kind() {
            DatumKind::Symbol(s)
                if s != "_" && *s != self.ellipsis && !self.literals.contains(s) =>
            {
                out.push(s.clone());
            }
            DatumKind::List(items, tail) => {
                items.iter().for_each(|i| self.vars(i, out));
                if let Some(t) = tail {
                    self.vars(t, out);
                }
            }
            DatumKind::Vector(items) => items.iter().for_each(|i| self.vars(i, out)),
            _ => {}
        }
    }

    fn match_one(&self, pat: &Datum, form: &Datum, b: &mut Bindings) -> bool {
        match pat.kind() {
            DatumKind::Symbol(s) if s == "_" => true,
            DatumKind::Symbol(s) if self.literals.contains(s) => form.as_symbol() == Some(s),
            DatumKind::Symbol(s) => {
                b.insert(s.clone(), Binding::One(copy(form)));
                true
            }
            DatumKind::List(pitems, ptail) => match form.kind() {
                DatumKind::List(fitems, ftail) => {
                    self.match_list(pitems, ptail.as_deref(), fitems, ftail.as_deref(), b)
                }
                _ => false,
            },
            DatumKind::Vector(pitems) => match form.kind() {
                DatumKind::Vector(fitems) => self.match_list(pitems, None, fitems, None, b),
                _ => false,
            },
            _ => same_atom(pat, form),
        }
    }

    fn match_list(
        &self,
        pitems: &[Datum],
        ptail: Option<&Datum>,
        fitems: &[Datum],
        ftail: Option<&Datum>,
        b: &mut Bindings,
    ) -> bool {
        let ell = pitems.iter().position(|p| self.is_ellipsis(p));
        let (before, repeated, after) = match ell {
            Some(0) | None => (pitems, None, &[][..]),
            Some(e) => (&pitems[..e - 1], Some(&pitems[e - 1]), &pitems[e + 1..]),
        };
        let fixed = before.len() + after.len();
        if fitems.len() < fixed || (repeated.is_none() && ptail.is_none() && fitems.len() != fixed)
        {
            return false;
        }
        for (p, f) in before.iter().zip(fitems) {
            if !self.match_one(p, f, b) {
                return false;
            }
        }
        let mut used = before.len();
        if let Some(rep) = repeated {
            let n = fitems.len() - fixed;
            let mut vars = Vec::new();
            self.vars(rep, &mut vars);
            let mut seqs: Vec<Vec<Binding>> = vars.iter().map(|_| Vec::new()).collect();
            for f in &fitems[used..used + n] {
                let mut inner = Bindings::new();
                if !self.match_one(rep, f, &mut inner) {
                    return false;
                }
                for (v, seq) in vars.iter().zip(seqs.iter_mut()) {
                    if let Some(x) = inner.remove(v) {
                        seq.push(x);
                    }
                }
            }
            for (v, seq) in vars.into_iter().zip(seqs) {
                b.insert(v, Binding::Seq(seq));
            }
            used += n;
            for (p, f) in after.iter().zip(&fitems[used..]) {
                if !self.match_one(p, f, b) {
                    return false;
                }
            }
            used += after.len();
        }
        let rest = &fitems[used..];
        match ptail {
            // A dotted pattern tail matches the rest of the form as a list.
            Some(t) => {
                let rest_form = Datum::new(
                    DatumKind::List(
                        rest.iter().map(copy).collect(),
                        ftail.map(|x| Box::new(copy(x))),
                    ),
                    rest.first().map(Datum::span).unwrap_or_default(),
                );
                let rest_form = if rest.is_empty() {
                    match ftail {
                        Some(x) => copy(x),
                        None => rest_form,
                    }
                } else {
                    rest_form
                };
                self.match_one(t, &rest_form, b)
            }
            None => rest.is_empty() && ftail.is_none(),
        }
    }

    fn instantiate(&self, t: &Datum, b: &Bindings, span: Span) -> Result<Datum, String> {
        stacker::maybe_grow(64 << 10, 1 << 20, || self.instantiate_inner(t, b, span))
    }

    fn instantiate_inner(&self, t: &Datum, b: &Bindings, span: Span) -> Result<Datum, String> {
        match t.kind() {
            DatumKind::Symbol(s) => match b.get(s) {
                Some(Binding::One(d)) => Ok(copy(d)),
                Some(Binding::Seq(_)) => {
                    Err(format!("pattern variable `{s}` is used without an ellipsis after it"))
                }
                None => Ok(sym(s, span)),
            },
            DatumKind::List(items, tail) => {
                // (... template): the template with ellipses taken literally.
                if let [e, inner] = &items[..] {
                    if self.is_ellipsis(e) && tail.is_none() {
                        let lit = Macro {
                            ellipsis: "\u{0}no ellipsis".into(),
                            literals: Vec::new(),
                            rules: Vec::new(),
                        };
                        return lit.instantiate(inner, b, span);
                    }
                }
                let out = self.instantiate_items(items, b, span)?;
                let tail = match tail {
                    Some(t) => Some(Box::new(self.instantiate(t, b, span)?)),
                    None => None,
                };
                Ok(Datum::new(DatumKind::List(out, tail), span))
            }
            DatumKind::Vector(items) => {
                Ok(Datum::new(DatumKind::Vector(self.instantiate_items(items, b, span)?), span))
            }
            _ => Ok(copy(t)),
        }
    }

    fn instantiate_items(
        &self,
        items: &[Datum],
        b: &Bindings,
        span: Span,
    ) -> Result<Vec<Datum>, String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < items.len() {
            let item = &items[i];
            let mut depth = 0;
            while items.get(i + 1 + depth).is_some_and(|d| self.is_ellipsis(d)) {
                depth += 1;
            }
            if depth == 0 {
                out.push(self.instantiate(item, b, span)?);
            } else {
                self.repeat(item, b, depth, span, &mut out)?;
            }
            i += 1 + depth;
        }
        Ok(out)
    }

    /// `item` followed by `depth` ellipses: one copy per element of the sequences its
    /// variables are bound to.
    fn repeat(
        &self,
        item: &Datum,
        b: &Bindings,
        depth: usize,
        span: Span,
        out: &mut Vec<Datum>,
    ) -> Result<(), String> {
        if depth == 0 {
            out.push(self.instantiate(item, b, span)?);
            return Ok(());
        }
        let mut names = Vec::new();
        self.vars(item, &mut names);
        let seqs: Vec<(&String, &Vec<Binding>)> = names
            .iter()
            .filter_map(|n| match b.get(n) {
                Some(Binding::Seq(s)) => Some((n, s)),
                _ => None,
            })
            .collect();
        let Some(len) = seqs.iter().map(|(_, s)| s.len()).min() else {
            return Err(format!("no pattern variable under an ellipsis in {item}"));
        };
        for k in 0..len {
            let mut inner = Bindings::new();
            for (name, bind) in b {
                if let Some((_, s)) = seqs.iter().find(|(n, _)| *n == name) {
                    inner.insert(name.clone(), clone_binding(&s[k]));
                } else {
                    inner.insert(name.clone(), clone_binding(bind));
                }
            }
            self.repeat(item, &inner, depth - 1, span, out)?;
        }
        Ok(())
    }
}

fn clone_binding(b: &Binding) -> Binding {
    match b {
        Binding::One(d) => Binding::One(copy(d)),
        Binding::Seq(s) => Binding::Seq(s.iter().map(clone_binding).collect()),
    }
}

/// `(define-record-type name (ctor field ...) pred (field accessor [modifier]) ...)` as
/// definitions over the record builtins.
pub(crate) fn record_type(form: &Datum) -> Result<Datum, String> {
    const USAGE: &str = "`define-record-type` is `(define-record-type name (constructor field ...) predicate (field accessor [modifier]) ...)`";
    let span = form.span();
    let [_, name, ctor, pred, fields @ ..] = form.items() else { return Err(USAGE.into()) };
    let type_name = match name.kind() {
        DatumKind::Symbol(s) => s.clone(),
        // `(name extra ...)` as some Schemes allow: the first symbol names the type.
        DatumKind::List(items, None) if items.first().and_then(Datum::as_symbol).is_some() => {
            items[0].as_symbol().unwrap_or_default().to_string()
        }
        _ => return Err(USAGE.into()),
    };
    let field_names: Vec<String> = fields
        .iter()
        .map(|f| match f.kind() {
            DatumKind::Symbol(s) => Some(s.clone()),
            DatumKind::List(items, None) => {
                items.first().and_then(Datum::as_symbol).map(String::from)
            }
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or(USAGE)?;
    let q = |d: Datum| list(vec![sym("quote", span), d], span);
    let tvar = format!(" record-type {type_name}");
    let mut out = vec![sym("begin", span)];
    out.push(list(
        vec![
            sym("define", span),
            sym(&tvar, span),
            list(
                vec![
                    sym("%record-type", span),
                    q(sym(&type_name, span)),
                    q(list(field_names.iter().map(|f| sym(f, span)).collect(), span)),
                ],
                span,
            ),
        ],
        span,
    ));
    // The type name itself is bound to the type, as R7RS allows.
    out.push(list(vec![sym("define", span), sym(&type_name, span), sym(&tvar, span)], span));
    if let DatumKind::List(citems, None) = ctor.kind() {
        let Some(cname) = citems.first().and_then(Datum::as_symbol) else {
            return Err(USAGE.into());
        };
        let mut params = Vec::new();
        for c in &citems[1..] {
            let Some(p) = c.as_symbol() else { return Err(USAGE.into()) };
            if !field_names.iter().any(|f| f == p) {
                return Err(format!("the constructor's `{p}` is not a field of `{type_name}`"));
            }
            params.push(p.to_string());
        }
        let mut call = vec![sym("%record", span), sym(&tvar, span)];
        for f in &field_names {
            call.push(if params.contains(f) {
                sym(f, span)
            } else {
                Datum::new(DatumKind::Bool(false), span)
            });
        }
        out.push(list(
            vec![
                sym("define", span),
                sym(cname, span),
                list(
                    vec![
                        sym("lambda", span),
                        list(params.iter().map(|p| sym(p, span)).collect(), span),
                        list(call, span),
                    ],
                    span,
                ),
            ],
            span,
        ));
    } else if ctor.as_symbol().is_none() && !matches!(ctor.kind(), DatumKind::Bool(false)) {
        return Err(USAGE.into());
    }
    if let Some(p) = pred.as_symbol() {
        out.push(list(
            vec![
                sym("define", span),
                list(vec![sym(p, span), sym("v", span)], span),
                list(vec![sym("%record?", span), sym("v", span), sym(&tvar, span)], span),
            ],
            span,
        ));
    }
    for (i, f) in fields.iter().enumerate() {
        let items = f.items();
        let idx = Datum::new(DatumKind::Int(i as i64), span);
        if let Some(acc) = items.get(1).and_then(Datum::as_symbol) {
            out.push(list(
                vec![
                    sym("define", span),
                    list(vec![sym(acc, span), sym("r", span)], span),
                    list(
                        vec![
                            sym("%record-ref", span),
                            sym("r", span),
                            sym(&tvar, span),
                            copy(&idx),
                            q(sym(acc, span)),
                        ],
                        span,
                    ),
                ],
                span,
            ));
        }
        if let Some(m) = items.get(2).and_then(Datum::as_symbol) {
            out.push(list(
                vec![
                    sym("define", span),
                    list(vec![sym(m, span), sym("r", span), sym("x", span)], span),
                    list(
                        vec![
                            sym("%record-set!", span),
                            sym("r", span),
                            sym(&tvar, span),
                            idx,
                            sym("x", span),
                            q(sym(m, span)),
                        ],
                        span,
                    ),
                ],
                span,
            ));
        }
    }
    Ok(list(out, span))
}

/// `(let-values (((formals) expr) ...) body ...)` (and `let*-values`) as nested
/// `call-with-values`; each `expr` sees the names bound before it.
pub(crate) fn let_values(form: &Datum) -> Result<Datum, String> {
    const USAGE: &str = "`let-values` is `(let-values (((name ...) expr) ...) body ...)`";
    let span = form.span();
    let [_, bindings, body @ ..] = form.items() else { return Err(USAGE.into()) };
    if body.is_empty() {
        return Err(USAGE.into());
    }
    let DatumKind::List(bs, None) = bindings.kind() else { return Err(USAGE.into()) };
    let mut e = {
        let mut l = vec![sym("let", span), list(Vec::new(), span)];
        l.extend(body.iter().map(copy));
        list(l, span)
    };
    for b in bs.iter().rev() {
        let [formals, expr] = b.items() else { return Err(USAGE.into()) };
        if !matches!(formals.kind(), DatumKind::List(..) | DatumKind::Symbol(_)) {
            return Err(USAGE.into());
        }
        let producer = list(vec![sym("lambda", span), list(Vec::new(), span), copy(expr)], span);
        let consumer = list(vec![sym("lambda", span), copy(formals), e], span);
        e = list(vec![sym("call-with-values", span), producer, consumer], span);
    }
    Ok(e)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::lisp::read_all;

    fn expand(spec: &str, use_: &str) -> Result<String, String> {
        let spec = &read_all(spec, "t").unwrap()[0];
        let m = Macro::parse(spec)?;
        let u = &read_all(use_, "t").unwrap()[0];
        m.expand(u).map(|d| d.to_string())
    }

    #[test]
    fn patterns_bind_and_templates_substitute() {
        let swap = "(syntax-rules () ((_ a b) (let ((tmp a)) (set! a b) (set! b tmp))))";
        assert_eq!(expand(swap, "(swap! x y)").unwrap(), "(let ((tmp x)) (set! x y) (set! y tmp))");
        let my_let =
            "(syntax-rules () ((_ ((n v) ...) body ...) ((lambda (n ...) body ...) v ...)))";
        assert_eq!(
            expand(my_let, "(my-let ((a 1) (b 2)) (+ a b))").unwrap(),
            "((lambda (a b) (+ a b)) 1 2)"
        );
        let lit = "(syntax-rules (=>) ((_ a => b) (b a)) ((_ a) a))";
        assert_eq!(expand(lit, "(m 1 => f)").unwrap(), "(f 1)");
        assert_eq!(expand(lit, "(m 1)").unwrap(), "1");
        assert!(expand(lit, "(m 1 2 3)").unwrap_err().contains("no `syntax-rules` pattern"));
    }

    #[test]
    fn ellipses_nest_and_items_may_follow_them() {
        let nested = "(syntax-rules () ((_ (a b ...) ...) '((b ... a) ...)))";
        assert_eq!(expand(nested, "(m (1 2 3) (4) (5 6))").unwrap(), "(quote ((2 3 1) (4) (6 5)))");
        let flat = "(syntax-rules () ((_ (a ...) ...) '(a ... ...)))";
        assert_eq!(expand(flat, "(m (1 2) (3))").unwrap(), "(quote (1 2 3))");
        let after = "(syntax-rules () ((_ a ... z) '(z a ...)))";
        assert_eq!(expand(after, "(m 1 2 3)").unwrap(), "(quote (3 1 2))");
        let tail = "(syntax-rules () ((_ a . rest) '(a rest)))";
        assert_eq!(expand(tail, "(m 1 2 3)").unwrap(), "(quote (1 (2 3)))");
        let escape = "(syntax-rules () ((_ a) '(a (... ...))))";
        assert_eq!(expand(escape, "(m 1)").unwrap(), "(quote (1 ...))");
        let bad = "(syntax-rules () ((_ a ...) a))";
        assert!(expand(bad, "(m 1 2)").unwrap_err().contains("without an ellipsis"));
    }
}

/// `(select clause ...)` over the `%select` builtin. Clauses: `(recv CH VAR body ...)`,
/// `(send CH EXPR body ...)`, `(timeout MS body ...)`, `(default body ...)`. The channel,
/// value and timeout expressions are evaluated first, in order; then exactly one clause
/// happens and its body runs (with `VAR` bound to the received value).
pub(crate) fn select(form: &Datum) -> Result<Datum, String> {
    const USAGE: &str = "`select` clauses are `(recv ch var body ...)`, `(send ch value body ...)`, `(timeout ms body ...)` and `(default body ...)`";
    let span = form.span();
    let q = |name: &str| list(vec![sym("quote", span), sym(name, span)], span);
    let (mut ops, mut branches) = (vec![sym("list", span)], Vec::new());
    let mut default = None;
    for clause in &form.items()[1..] {
        let items = match clause.kind() {
            DatumKind::List(items, None) if !items.is_empty() => items,
            _ => return Err(USAGE.into()),
        };
        let kind = items[0].as_symbol().ok_or(USAGE)?;
        // This clause's index among the operations (`ops` starts with the `list` head).
        let index = |ops: &Vec<Datum>| Datum::new(DatumKind::Int(ops.len() as i64 - 2), span);
        let body = |from: usize| -> Vec<Datum> {
            let b: Vec<Datum> = items[from..].iter().map(copy).collect();
            if b.is_empty() {
                vec![list(
                    vec![
                        sym("if", span),
                        Datum::new(DatumKind::Bool(false), span),
                        Datum::new(DatumKind::Bool(false), span),
                    ],
                    span,
                )]
            } else {
                b
            }
        };
        match kind {
            "recv" if items.len() >= 3 && items[2].as_symbol().is_some() => {
                ops.push(list(vec![sym("list", span), q("recv"), copy(&items[1])], span));
                let var = copy(&items[2]);
                let mut b = body(3);
                if items.len() == 3 {
                    b = vec![copy(&items[2])];
                }
                let mut l = vec![
                    sym("let", span),
                    list(vec![list(vec![var, sym(" select-v", span)], span)], span),
                ];
                l.extend(b);
                branches.push((index(&ops), list(l, span)));
            }
            "send" if items.len() >= 3 => {
                ops.push(list(
                    vec![sym("list", span), q("send"), copy(&items[1]), copy(&items[2])],
                    span,
                ));
                let mut l = vec![sym("begin", span)];
                l.extend(body(3));
                branches.push((index(&ops), list(l, span)));
            }
            "timeout" if items.len() >= 2 => {
                ops.push(list(vec![sym("list", span), q("timeout"), copy(&items[1])], span));
                let mut l = vec![sym("begin", span)];
                l.extend(body(2));
                branches.push((index(&ops), list(l, span)));
            }
            "default" if default.is_none() => {
                let mut l = vec![sym("begin", span)];
                l.extend(body(1));
                default = Some(list(l, span));
            }
            _ => return Err(format!("{USAGE}; got {clause}")),
        }
    }
    let has_default = Datum::new(DatumKind::Bool(default.is_some()), span);
    let call = list(vec![sym("%select", span), list(ops, span), has_default], span);
    let mut case = vec![sym("case", span), sym(" select-i", span)];
    for (i, b) in branches {
        case.push(list(vec![list(vec![i], span), b], span));
    }
    if let Some(d) = default {
        case.push(list(vec![sym("else", span), d], span));
    }
    // (let ((r (%select ...))) (let ((i (car r)) (v (cdr r))) (case i ...)))
    let r = sym(" select-r", span);
    let inner = list(
        vec![
            sym("let", span),
            list(
                vec![
                    list(
                        vec![sym(" select-i", span), list(vec![sym("car", span), copy(&r)], span)],
                        span,
                    ),
                    list(
                        vec![sym(" select-v", span), list(vec![sym("cdr", span), copy(&r)], span)],
                        span,
                    ),
                ],
                span,
            ),
            list(case, span),
        ],
        span,
    );
    Ok(list(vec![sym("let", span), list(vec![list(vec![r, call], span)], span), inner], span))
}
