//! Builtin procedures, and the prelude: the procedures written in OmniLisp itself.

use super::eval::{eqv, truthy, Interp};
use super::heap::{Obj, Value};

/// Procedures written in Lisp, evaluated when an interpreter starts.
pub(crate) const PRELUDE: &str = r#"
(define (map f l . more)
  (if (null? more)
      (let loop ((l l) (acc '()))
        (if (null? l) (reverse acc) (loop (cdr l) (cons (f (car l)) acc))))
      (let loop ((ls (cons l more)) (acc '()))
        (if (any-null? ls)
            (reverse acc)
            (loop (map cdr ls) (cons (apply f (map car ls)) acc))))))
(define (any-null? ls) (if (null? ls) #f (if (null? (car ls)) #t (any-null? (cdr ls)))))
(define (for-each f l)
  (let loop ((l l)) (if (null? l) (if #f #f) (begin (f (car l)) (loop (cdr l))))))
(define (filter keep? l)
  (let loop ((l l) (acc '()))
    (cond ((null? l) (reverse acc))
          ((keep? (car l)) (loop (cdr l) (cons (car l) acc)))
          (else (loop (cdr l) acc)))))
(define (fold f acc l) (if (null? l) acc (fold f (f (car l) acc) (cdr l))))
(define (fold-left f acc l) (if (null? l) acc (fold-left f (f acc (car l)) (cdr l))))
(define (fold-right f acc l) (fold f acc (reverse l)))
(define (assoc k al) (cond ((null? al) #f) ((equal? k (car (car al))) (car al)) (else (assoc k (cdr al)))))
(define (assq k al) (cond ((null? al) #f) ((eq? k (car (car al))) (car al)) (else (assq k (cdr al)))))
(define (member x l) (cond ((null? l) #f) ((equal? x (car l)) l) (else (member x (cdr l)))))
(define (memq x l) (cond ((null? l) #f) ((eq? x (car l)) l) (else (memq x (cdr l)))))
(define (memv x l) (cond ((null? l) #f) ((eqv? x (car l)) l) (else (memv x (cdr l)))))
(define (list-ref l k) (if (= k 0) (car l) (list-ref (cdr l) (- k 1))))
(define (caar p) (car (car p)))
(define (cadr p) (car (cdr p)))
(define (cdar p) (cdr (car p)))
(define (cddr p) (cdr (cdr p)))
(define (caddr p) (car (cddr p)))
(define (empty? l) (null? l))
"#;

fn int(v: Value) -> Result<i64, String> {
    match v {
        Value::Int(n) => Ok(n),
        _ => Err("expects an integer".into()),
    }
}

fn num(v: Value) -> Result<f64, String> {
    match v {
        Value::Int(n) => Ok(n as f64),
        Value::Float(x) => Ok(x),
        _ => Err("expects numbers".into()),
    }
}

fn all_ints(args: &[Value]) -> bool {
    args.iter().all(|v| matches!(v, Value::Int(_)))
}

/// Folds integers with overflow checks, or floats once any argument is a float.
fn arith(
    args: &[Value],
    unit: i64,
    fi: fn(i64, i64) -> Option<i64>,
    ff: fn(f64, f64) -> f64,
) -> Result<Value, String> {
    if all_ints(args) {
        let mut acc = unit;
        for v in args {
            acc = fi(acc, int(*v)?).ok_or("integer overflow (integers are 64-bit)")?;
        }
        Ok(Value::Int(acc))
    } else {
        let mut acc = unit as f64;
        for v in args {
            acc = ff(acc, num(*v)?);
        }
        Ok(Value::Float(acc))
    }
}

fn compare(
    args: &[Value],
    ok: fn(f64, f64) -> bool,
    oki: fn(i64, i64) -> bool,
) -> Result<Value, String> {
    for w in args.windows(2) {
        let holds = match (w[0], w[1]) {
            (Value::Int(a), Value::Int(b)) => oki(a, b),
            (a, b) => ok(num(a)?, num(b)?),
        };
        if !holds {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

fn equal(i: &Interp, a: Value, b: Value) -> bool {
    let mut stack = vec![(a, b)];
    while let Some((a, b)) = stack.pop() {
        if eqv(&i.heap, a, b) {
            continue;
        }
        let (Value::Ref(ra), Value::Ref(rb)) = (a, b) else { return false };
        match (i.heap.get(ra), i.heap.get(rb)) {
            (Ok(Obj::Pair(a1, d1)), Ok(Obj::Pair(a2, d2))) => {
                stack.push((*d1, *d2));
                stack.push((*a1, *a2));
            }
            (Ok(Obj::Str(x)), Ok(Obj::Str(y))) if x == y => {}
            (Ok(Obj::Vector(x)), Ok(Obj::Vector(y))) if x.len() == y.len() => {
                stack.extend(x.iter().copied().zip(y.iter().copied()));
            }
            (Ok(Obj::Box(x)), Ok(Obj::Box(y))) => stack.push((*x, *y)),
            _ => return false,
        }
    }
    true
}

fn pair(i: &Interp, v: Value) -> Result<(Value, Value), String> {
    i.heap.pair(v).ok_or_else(|| format!("expects a pair, got {}", i.write_string(v)))
}

fn list_from(
    i: &mut Interp,
    items: impl DoubleEndedIterator<Item = Value>,
) -> Result<Value, String> {
    let mut l = Value::Nil;
    for v in items.rev() {
        l = i.heap.cons(v, l).map_err(|e| e.to_string())?;
    }
    Ok(l)
}

fn list_items(i: &Interp, mut l: Value) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    while let Some((a, d)) = i.heap.pair(l) {
        out.push(a);
        l = d;
    }
    if l != Value::Nil {
        return Err("expects a proper list".into());
    }
    Ok(out)
}

/// Defines every builtin in `i`.
pub(crate) fn install(i: &mut Interp) {
    const ANY: Option<usize> = None;
    i.def_prim("+", (0, ANY), |_, a| arith(a, 0, i64::checked_add, |x, y| x + y));
    i.def_prim("*", (0, ANY), |_, a| arith(a, 1, i64::checked_mul, |x, y| x * y));
    i.def_prim("-", (1, ANY), |_, a| {
        if a.len() == 1 {
            return arith(&[Value::Int(0), a[0]], 0, i64::checked_add, |x, y| x + y).and_then(
                |_| match a[0] {
                    Value::Int(n) => {
                        n.checked_neg().map(Value::Int).ok_or("integer overflow".into())
                    }
                    v => Ok(Value::Float(-num(v)?)),
                },
            );
        }
        let first = arith(&a[..1], 0, i64::checked_add, |x, y| x + y)?;
        let rest = arith(&a[1..], 0, i64::checked_add, |x, y| x + y)?;
        match (first, rest) {
            (Value::Int(x), Value::Int(y)) => {
                x.checked_sub(y).map(Value::Int).ok_or("integer overflow".into())
            }
            (x, y) => Ok(Value::Float(num(x)? - num(y)?)),
        }
    });
    i.def_prim("/", (1, ANY), |_, a| {
        let mut acc = if a.len() == 1 { 1.0 } else { num(a[0])? };
        for v in if a.len() == 1 { a } else { &a[1..] } {
            let d = num(*v)?;
            if d == 0.0 && all_ints(a) {
                return Err("division by zero".into());
            }
            acc /= d;
        }
        if all_ints(a) && acc.fract() == 0.0 && acc.abs() < 9e15 {
            return Ok(Value::Int(acc as i64));
        }
        Ok(Value::Float(acc))
    });
    i.def_prim("quotient", (2, Some(2)), |_, a| {
        int(a[0])?.checked_div(int(a[1])?).map(Value::Int).ok_or("division by zero".into())
    });
    i.def_prim("remainder", (2, Some(2)), |_, a| {
        int(a[0])?.checked_rem(int(a[1])?).map(Value::Int).ok_or("division by zero".into())
    });
    i.def_prim("modulo", (2, Some(2)), |_, a| {
        let (x, y) = (int(a[0])?, int(a[1])?);
        x.checked_rem_euclid(y)
            .map(|r| Value::Int(if y < 0 && r != 0 { r + y } else { r }))
            .ok_or("division by zero".into())
    });
    i.def_prim("=", (1, ANY), |_, a| compare(a, |x, y| x == y, |x, y| x == y));
    i.def_prim("<", (1, ANY), |_, a| compare(a, |x, y| x < y, |x, y| x < y));
    i.def_prim(">", (1, ANY), |_, a| compare(a, |x, y| x > y, |x, y| x > y));
    i.def_prim("<=", (1, ANY), |_, a| compare(a, |x, y| x <= y, |x, y| x <= y));
    i.def_prim(">=", (1, ANY), |_, a| compare(a, |x, y| x >= y, |x, y| x >= y));
    i.def_prim("not", (1, Some(1)), |_, a| Ok(Value::Bool(!truthy(a[0]))));
    i.def_prim("eq?", (2, Some(2)), |i, a| Ok(Value::Bool(eqv(&i.heap, a[0], a[1]))));
    i.def_prim("eqv?", (2, Some(2)), |i, a| Ok(Value::Bool(eqv(&i.heap, a[0], a[1]))));
    i.def_prim("equal?", (2, Some(2)), |i, a| Ok(Value::Bool(equal(i, a[0], a[1]))));
    i.def_prim("null?", (1, Some(1)), |_, a| Ok(Value::Bool(a[0] == Value::Nil)));
    i.def_prim("pair?", (1, Some(1)), |i, a| Ok(Value::Bool(i.heap.pair(a[0]).is_some())));
    i.def_prim("number?", (1, Some(1)), |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::Int(_) | Value::Float(_))))
    });
    i.def_prim("integer?", (1, Some(1)), |_, a| Ok(Value::Bool(matches!(a[0], Value::Int(_)))));
    i.def_prim("symbol?", (1, Some(1)), |_, a| Ok(Value::Bool(matches!(a[0], Value::Sym(_)))));
    i.def_prim("boolean?", (1, Some(1)), |_, a| Ok(Value::Bool(matches!(a[0], Value::Bool(_)))));
    i.def_prim("string?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(matches!(a[0], Value::Ref(r) if matches!(i.heap.get(r), Ok(Obj::Str(_))))))
    });
    i.def_prim("procedure?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(matches!(a[0], Value::Ref(r)
            if matches!(i.heap.get(r), Ok(Obj::Closure(_) | Obj::Prim(_) | Obj::Cont(_))))))
    });
    i.def_prim("cons", (2, Some(2)), |i, a| i.heap.cons(a[0], a[1]).map_err(|e| e.to_string()));
    i.def_prim("car", (1, Some(1)), |i, a| pair(i, a[0]).map(|p| p.0));
    i.def_prim("cdr", (1, Some(1)), |i, a| pair(i, a[0]).map(|p| p.1));
    i.def_prim("set-car!", (2, Some(2)), |i, a| set_pair(i, a, true));
    i.def_prim("set-cdr!", (2, Some(2)), |i, a| set_pair(i, a, false));
    i.def_prim("list", (0, ANY), |i, a| list_from(i, a.iter().copied()));
    i.def_prim("length", (1, Some(1)), |i, a| {
        list_items(i, a[0]).map(|l| Value::Int(l.len() as i64))
    });
    i.def_prim("reverse", (1, Some(1)), |i, a| {
        let items = list_items(i, a[0])?;
        list_from(i, items.into_iter().rev())
    });
    i.def_prim("append", (0, ANY), |i, a| {
        let Some((last, init)) = a.split_last() else { return Ok(Value::Nil) };
        let mut items = Vec::new();
        for l in init {
            items.extend(list_items(i, *l)?);
        }
        let mut out = *last;
        for v in items.into_iter().rev() {
            out = i.heap.cons(v, out).map_err(|e| e.to_string())?;
        }
        Ok(out)
    });
    // `apply` is handled by the machine (it calls a procedure); this entry gives its arity.
    i.def_prim("apply", (2, ANY), |_, _| Err("unreachable".into()));
    i.def_prim("box", (1, Some(1)), |i, a| {
        i.heap.alloc(Obj::Box(a[0])).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("unbox", (1, Some(1)), unbox);
    i.def_prim("box-get", (1, Some(1)), unbox);
    i.def_prim("set-box!", (2, Some(2)), set_box);
    i.def_prim("box-set!", (2, Some(2)), set_box);
    i.def_prim("vector", (0, ANY), |i, a| {
        i.heap.alloc(Obj::Vector(a.to_vec())).map(Value::Ref).map_err(|e| e.to_string())
    });
    // Strings, characters, symbols.
    i.def_prim("string-length", (1, Some(1)), |i, a| {
        Ok(Value::Int(string(i, a[0])?.chars().count() as i64))
    });
    i.def_prim("string-append", (0, ANY), |i, a| {
        let mut out = String::new();
        for v in a {
            out.push_str(&string(i, *v)?);
        }
        new_string(i, out)
    });
    i.def_prim("substring", (2, Some(3)), |i, a| {
        let s: Vec<char> = string(i, a[0])?.chars().collect();
        let start = index(a[1], s.len())?;
        let end = if a.len() == 3 { index(a[2], s.len())? } else { s.len() };
        if start > end {
            return Err(format!("start {start} is past end {end}"));
        }
        new_string(i, s[start..end].iter().collect())
    });
    i.def_prim("string-ref", (2, Some(2)), |i, a| {
        let s: Vec<char> = string(i, a[0])?.chars().collect();
        let k = index(a[1], s.len().saturating_sub(1))?;
        s.get(k).map(|c| Value::Char(*c)).ok_or_else(|| "index out of range".into())
    });
    i.def_prim("string=?", (1, ANY), |i, a| {
        let first = string(i, a[0])?;
        for v in &a[1..] {
            if string(i, *v)? != first {
                return Ok(Value::Bool(false));
            }
        }
        Ok(Value::Bool(true))
    });
    i.def_prim("string<?", (2, Some(2)), |i, a| {
        Ok(Value::Bool(string(i, a[0])? < string(i, a[1])?))
    });
    i.def_prim("string->symbol", (1, Some(1)), |i, a| {
        let s = string(i, a[0])?;
        Ok(Value::Sym(i.syms.intern(&s)))
    });
    i.def_prim("symbol->string", (1, Some(1)), |i, a| match a[0] {
        Value::Sym(s) => {
            let name = i.syms.name(s).to_string();
            new_string(i, name)
        }
        _ => Err("expects a symbol".into()),
    });
    i.def_prim("number->string", (1, Some(1)), |i, a| {
        let s = match a[0] {
            Value::Int(_) | Value::Float(_) => i.write_string(a[0]),
            _ => return Err("expects a number".into()),
        };
        new_string(i, s)
    });
    i.def_prim("string->number", (1, Some(1)), |i, a| {
        let s = string(i, a[0])?;
        Ok(match super::read_all(s.as_bytes(), "string->number").ok().as_deref() {
            Some([d]) => match d.kind() {
                super::DatumKind::Int(n) => Value::Int(*n),
                super::DatumKind::Float(x) => Value::Float(*x),
                _ => Value::Bool(false),
            },
            _ => Value::Bool(false),
        })
    });
    i.def_prim("string->list", (1, Some(1)), |i, a| {
        let s = string(i, a[0])?;
        list_from(i, s.chars().map(Value::Char).collect::<Vec<_>>().into_iter())
    });
    i.def_prim("list->string", (1, Some(1)), |i, a| {
        let mut out = String::new();
        for v in list_items(i, a[0])? {
            match v {
                Value::Char(c) => out.push(c),
                _ => return Err("expects a list of characters".into()),
            }
        }
        new_string(i, out)
    });
    i.def_prim("string", (0, ANY), |i, a| {
        let mut out = String::new();
        for v in a {
            match v {
                Value::Char(c) => out.push(*c),
                _ => return Err("expects characters".into()),
            }
        }
        new_string(i, out)
    });
    i.def_prim("char?", (1, Some(1)), |_, a| Ok(Value::Bool(matches!(a[0], Value::Char(_)))));
    i.def_prim("char->integer", (1, Some(1)), |_, a| match a[0] {
        Value::Char(c) => Ok(Value::Int(c as i64)),
        _ => Err("expects a character".into()),
    });
    i.def_prim("integer->char", (1, Some(1)), |_, a| {
        u32::try_from(int(a[0])?)
            .ok()
            .and_then(char::from_u32)
            .map(Value::Char)
            .ok_or_else(|| "not a Unicode scalar value".into())
    });
    i.def_prim("char-upcase", (1, Some(1)), |_, a| match a[0] {
        Value::Char(c) => Ok(Value::Char(c.to_uppercase().next().unwrap_or(c))),
        _ => Err("expects a character".into()),
    });
    i.def_prim("char-downcase", (1, Some(1)), |_, a| match a[0] {
        Value::Char(c) => Ok(Value::Char(c.to_lowercase().next().unwrap_or(c))),
        _ => Err("expects a character".into()),
    });
    i.def_prim("gensym", (0, Some(1)), |i, a| {
        let prefix = match a.first() {
            Some(Value::Sym(s)) => i.syms.name(*s).to_string(),
            Some(v) => string(i, *v)?,
            None => "g".to_string(),
        };
        // A name no reader can produce (it holds a space), so it never equals a written one.
        let mut n = 0u64;
        loop {
            let name = format!("{prefix} {n}");
            if !i.syms.contains(&name) {
                return Ok(Value::Sym(i.syms.intern(&name)));
            }
            n += 1;
        }
    });
    // Vectors.
    i.def_prim("make-vector", (1, Some(2)), |i, a| {
        let n = usize::try_from(int(a[0])?).map_err(|_| "expects a length >= 0")?;
        if n > 1 << 24 {
            return Err(format!("a vector of {n} items is over the limit of {}", 1 << 24));
        }
        let fill = a.get(1).copied().unwrap_or(Value::Int(0));
        i.heap.alloc(Obj::Vector(vec![fill; n])).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("vector-length", (1, Some(1)), |i, a| {
        with_vector(i, a[0], |v| Ok(Value::Int(v.len() as i64)))
    });
    i.def_prim("vector-ref", (2, Some(2)), |i, a| {
        with_vector(i, a[0], |v| {
            let k = index(a[1], v.len().saturating_sub(1))?;
            v.get(k).copied().ok_or_else(|| "index out of range".into())
        })
    });
    i.def_prim("vector-set!", (3, Some(3)), |i, a| {
        let Value::Ref(r) = a[0] else { return Err("expects a vector".into()) };
        let (k, x) = (int(a[1])?, a[2]);
        i.heap
            .update(r, |o| match o {
                Obj::Vector(v) => match usize::try_from(k).ok().and_then(|k| v.get_mut(k)) {
                    Some(slot) => {
                        *slot = x;
                        Ok(Value::Unspecified)
                    }
                    None => Err("index out of range".to_string()),
                },
                _ => Err("expects a vector".to_string()),
            })
            .map_err(|_| "expects a vector".to_string())?
    });
    i.def_prim("vector->list", (1, Some(1)), |i, a| {
        let v = vector(i, a[0])?;
        list_from(i, v.into_iter())
    });
    i.def_prim("list->vector", (1, Some(1)), |i, a| {
        let items = list_items(i, a[0])?;
        i.heap.alloc(Obj::Vector(items)).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("display", (1, Some(1)), |i, a| {
        let s = i.display_string(a[0]);
        i.print(&s);
        Ok(Value::Unspecified)
    });
    i.def_prim("write", (1, Some(1)), |i, a| {
        let s = i.write_string(a[0]);
        i.print(&s);
        Ok(Value::Unspecified)
    });
    i.def_prim("newline", (0, Some(0)), |i, _| {
        i.print("\n");
        Ok(Value::Unspecified)
    });
    i.def_prim("error", (1, ANY), |i, a| {
        let mut msg = i.display_string(a[0]);
        for v in &a[1..] {
            msg.push(' ');
            msg.push_str(&i.write_string(*v));
        }
        Err(msg)
    });
}

fn string(i: &Interp, v: Value) -> Result<String, String> {
    match v {
        Value::Ref(r) => match i.heap.get(r) {
            Ok(Obj::Str(s)) => Ok(s.clone()),
            _ => Err(format!("expects a string, got {}", i.write_string(v))),
        },
        _ => Err(format!("expects a string, got {}", i.write_string(v))),
    }
}

fn new_string(i: &mut Interp, s: String) -> Result<Value, String> {
    i.heap.alloc(Obj::Str(s)).map(Value::Ref).map_err(|e| e.to_string())
}

fn with_vector<R>(
    i: &Interp,
    v: Value,
    f: impl FnOnce(&[Value]) -> Result<R, String>,
) -> Result<R, String> {
    match v {
        Value::Ref(r) => match i.heap.get(r) {
            Ok(Obj::Vector(items)) => f(items),
            _ => Err("expects a vector".into()),
        },
        _ => Err("expects a vector".into()),
    }
}

fn vector(i: &Interp, v: Value) -> Result<Vec<Value>, String> {
    with_vector(i, v, |items| Ok(items.to_vec()))
}

/// An index in `0..=max`.
fn index(v: Value, max: usize) -> Result<usize, String> {
    usize::try_from(int(v)?)
        .ok()
        .filter(|k| *k <= max)
        .ok_or_else(|| format!("index {} out of range 0..={max}", int(v).unwrap_or(-1)))
}

fn set_pair(i: &mut Interp, a: &[Value], car: bool) -> Result<Value, String> {
    let Value::Ref(r) = a[0] else { return Err("expects a pair".into()) };
    let v = a[1];
    i.heap
        .update(r, |o| match o {
            Obj::Pair(x, y) => {
                *(if car { x } else { y }) = v;
                Ok(Value::Unspecified)
            }
            _ => Err("expects a pair".to_string()),
        })
        .map_err(|_| "expects a pair".to_string())?
}

fn unbox(i: &mut Interp, a: &[Value]) -> Result<Value, String> {
    match a[0] {
        Value::Ref(r) => match i.heap.get(r) {
            Ok(Obj::Box(v)) => Ok(*v),
            _ => Err("expects a box".into()),
        },
        _ => Err("expects a box".into()),
    }
}

fn set_box(i: &mut Interp, a: &[Value]) -> Result<Value, String> {
    let Value::Ref(r) = a[0] else { return Err("expects a box".into()) };
    let v = a[1];
    i.heap
        .update(r, |o| match o {
            Obj::Box(b) => {
                *b = v;
                Ok(Value::Unspecified)
            }
            _ => Err("expects a box".to_string()),
        })
        .map_err(|_| "expects a box".to_string())?
}
