//! Builtin procedures, and the prelude: the procedures written in OmniLisp itself.

use super::eval::{eqv, truthy, Ctl, Interp};
use super::heap::{Obj, Table, Value};

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
(define (assv k al) (cond ((null? al) #f) ((eqv? k (car (car al))) (car al)) (else (assv k (cdr al)))))
(define (list-tail l k) (if (= k 0) l (list-tail (cdr l) (- k 1))))
(define (last-pair l) (if (pair? (cdr l)) (last-pair (cdr l)) l))
(define (iota n . start)
  (let loop ((i (- n 1)) (acc '()))
    (if (< i 0) acc (loop (- i 1) (cons (+ i (if (null? start) 0 (car start))) acc)))))
(define (call-with-values producer consumer) (apply consumer (%values->list (producer))))
(define (vector-map f v) (list->vector (map f (vector->list v))))
(define (vector-for-each f v) (for-each f (vector->list v)))
(define (sort l less?)
  (define (merge a b)
    (let loop ((a a) (b b) (acc '()))
      (cond ((null? a) (append (reverse acc) b))
            ((null? b) (append (reverse acc) a))
            ((less? (car b) (car a)) (loop a (cdr b) (cons (car b) acc)))
            (else (loop (cdr a) b (cons (car a) acc))))))
  (define (split l a b) (if (null? l) (cons a b) (split (cdr l) b (cons (car l) a))))
  (if (or (null? l) (null? (cdr l)))
      l
      (let ((halves (split l '() '())))
        (merge (sort (car halves) less?) (sort (cdr halves) less?)))))
(define %missing (list 'missing))
(define (hash-table-ref t k . fail)
  (let ((v (hash-table-ref/default t k %missing)))
    (cond ((not (eq? v %missing)) v)
          ((null? fail) (error "hash-table-ref: no such key" k))
          (else ((car fail))))))
(define (hash-table-update! t k f . default)
  (hash-table-set! t k (f (if (null? default) (hash-table-ref t k) (hash-table-ref t k (car default))))))
(define (hash-table-update!/default t k f d) (hash-table-set! t k (f (hash-table-ref/default t k d))))
(define (hash-table-walk t f) (for-each (lambda (p) (f (car p) (cdr p))) (hash-table->alist t)))
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

#[cold]
fn overflow() -> String {
    "integer overflow (integers are 64-bit)".into()
}

#[inline]
fn compare(
    args: &[Value],
    ok: fn(f64, f64) -> bool,
    oki: fn(i64, i64) -> bool,
) -> Result<Value, String> {
    if let [Value::Int(a), Value::Int(b)] = *args {
        return Ok(Value::Bool(oki(a, b)));
    }
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
            (Ok(Obj::Record(t1, x)), Ok(Obj::Record(t2, y))) if t1 == t2 => {
                stack.extend(x.iter().copied().zip(y.iter().copied()));
            }
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
    i.def_prim("+", (0, ANY), |_, a| {
        if let [Value::Int(x), Value::Int(y)] = *a {
            return x.checked_add(y).map(Value::Int).ok_or_else(overflow);
        }
        arith(a, 0, i64::checked_add, |x, y| x + y)
    });
    i.def_prim("*", (0, ANY), |_, a| arith(a, 1, i64::checked_mul, |x, y| x * y));
    i.def_prim("-", (1, ANY), |_, a| {
        if let [Value::Int(x), Value::Int(y)] = *a {
            return x.checked_sub(y).map(Value::Int).ok_or_else(overflow);
        }
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
    i.def_control("apply", (2, ANY), Ctl::Apply);
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
    i.def_control("error", (1, ANY), Ctl::Error);
    install_control(i);
    install_more(i);
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

/// The builtins that work on the continuation, and the error objects.
fn install_control(i: &mut Interp) {
    const ANY: Option<usize> = None;
    i.def_control("call/cc", (1, Some(1)), Ctl::CallCc);
    i.def_control("call-with-current-continuation", (1, Some(1)), Ctl::CallCc);
    i.def_control("dynamic-wind", (3, Some(3)), Ctl::DynamicWind);
    i.def_control("raise", (1, Some(1)), Ctl::Raise);
    i.def_control("raise-continuable", (1, Some(1)), Ctl::Raise);
    i.def_control("exit", (0, Some(1)), Ctl::Exit);
    i.def_prim("error-object?", (1, Some(1)), |i, a| Ok(Value::Bool(condition(i, a[0]).is_some())));
    i.def_prim("error-object-message", (1, Some(1)), |i, a| {
        condition(i, a[0])
            .map(|c| c.0)
            .ok_or_else(|| format!("expects an error object, got {}", i.write_string(a[0])))
    });
    i.def_prim("error-object-irritants", (1, Some(1)), |i, a| {
        condition(i, a[0])
            .map(|c| c.1)
            .ok_or_else(|| format!("expects an error object, got {}", i.write_string(a[0])))
    });
    i.def_prim("values", (0, ANY), |i, a| {
        if let [v] = a {
            return Ok(*v);
        }
        i.heap.alloc(Obj::Values(a.to_vec())).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("%values->list", (1, Some(1)), |i, a| {
        let items = match a[0] {
            Value::Ref(r) => match i.heap.get(r) {
                Ok(Obj::Values(v)) => v.clone(),
                _ => vec![a[0]],
            },
            v => vec![v],
        };
        list_from(i, items.into_iter())
    });
}

fn condition(i: &Interp, v: Value) -> Option<(Value, Value)> {
    match v {
        Value::Ref(r) => match i.heap.get(r) {
            Ok(Obj::Condition(m, irr)) => Some((*m, *irr)),
            _ => None,
        },
        _ => None,
    }
}

fn record_of(i: &Interp, v: Value, t: Value) -> Option<(Value, usize)> {
    let (Value::Ref(r), Value::Ref(tr)) = (v, t) else { return None };
    match i.heap.get(r) {
        Ok(Obj::Record(rt, fields)) if *rt == tr => Some((v, fields.len())),
        _ => None,
    }
}

fn record_type_name(i: &Interp, t: Value) -> String {
    match t {
        Value::Ref(r) => match i.heap.get(r) {
            Ok(Obj::RecordType(n, _)) => i.syms.name(*n).to_string(),
            _ => "record".into(),
        },
        _ => "record".into(),
    }
}

/// A structural hash agreeing with `equal?`: equal values hash alike. Looks at most 64
/// parts of a value, so hashing is bounded whatever its size.
fn equal_hash(i: &Interp, v: Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut stack = vec![v];
    let mut budget = 64;
    while let Some(v) = stack.pop() {
        if budget == 0 {
            break;
        }
        budget -= 1;
        match v {
            Value::Ref(r) => match i.heap.get(r) {
                Ok(Obj::Pair(a, d)) => {
                    1u8.hash(&mut h);
                    stack.push(*d);
                    stack.push(*a);
                }
                Ok(Obj::Str(s)) => s.hash(&mut h),
                Ok(Obj::Vector(items)) | Ok(Obj::Record(_, items)) => {
                    items.len().hash(&mut h);
                    stack.extend(items.iter().rev().copied());
                }
                Ok(Obj::Box(x)) => stack.push(*x),
                _ => r.hash(&mut h),
            },
            Value::Float(x) => x.to_bits().hash(&mut h),
            Value::Int(n) => n.hash(&mut h),
            Value::Bool(b) => b.hash(&mut h),
            Value::Char(c) => c.hash(&mut h),
            Value::Sym(s) => s.hash(&mut h),
            Value::Nil => 2u8.hash(&mut h),
            Value::Unspecified | Value::Undefined => 3u8.hash(&mut h),
        }
    }
    h.finish()
}

fn table_ref(i: &Interp, t: Value) -> Result<crate::lisp::heap::Ref, String> {
    match t {
        Value::Ref(r) if matches!(i.heap.get(r), Ok(Obj::Table(_))) => Ok(r),
        _ => Err(format!("expects a hash table, got {}", i.write_string(t))),
    }
}

/// The entries of table `t` in the order they are stored.
fn table_entries(i: &Interp, t: Value) -> Result<Vec<(Value, Value)>, String> {
    let r = table_ref(i, t)?;
    match i.heap.get(r) {
        Ok(Obj::Table(tb)) => Ok(tb.buckets.values().flatten().copied().collect()),
        _ => unreachable!("checked"),
    }
}

fn table_find(i: &Interp, t: Value, k: Value) -> Result<Option<Value>, String> {
    let r = table_ref(i, t)?;
    let h = equal_hash(i, k);
    let Ok(Obj::Table(tb)) = i.heap.get(r) else { unreachable!("checked") };
    Ok(tb.buckets.get(&h).and_then(|b| b.iter().find(|(k2, _)| equal(i, *k2, k)).map(|e| e.1)))
}

/// Sets (`Some`) or deletes (`None`) key `k` of table `t`.
fn table_put(i: &mut Interp, t: Value, k: Value, v: Option<Value>) -> Result<(), String> {
    let r = table_ref(i, t)?;
    let h = equal_hash(i, k);
    // Find the index first (equal? needs the heap), then change the bucket.
    let at = {
        let Ok(Obj::Table(tb)) = i.heap.get(r) else { unreachable!("checked") };
        tb.buckets.get(&h).and_then(|b| b.iter().position(|(k2, _)| equal(i, *k2, k)))
    };
    i.heap
        .update(r, |o| {
            let Obj::Table(tb) = o else { return };
            match (at, v) {
                (Some(n), Some(v)) => tb.buckets.get_mut(&h).expect("found")[n].1 = v,
                (Some(n), None) => {
                    let b = tb.buckets.get_mut(&h).expect("found");
                    b.swap_remove(n);
                    if b.is_empty() {
                        tb.buckets.remove(&h);
                    }
                    tb.len -= 1;
                }
                (None, Some(v)) => {
                    tb.buckets.entry(h).or_default().push((k, v));
                    tb.len += 1;
                }
                (None, None) => {}
            }
        })
        .map_err(|_| "expects a hash table".to_string())
}

fn float_op(a: Value, f: fn(f64) -> f64) -> Result<Value, String> {
    match a {
        Value::Int(n) => Ok(Value::Int(n)),
        v => Ok(Value::Float(f(num(v)?))),
    }
}

/// Numbers, characters, strings, records and hash tables beyond the first set.
fn install_more(i: &mut Interp) {
    const ANY: Option<usize> = None;
    i.def_prim("%record-type", (2, Some(2)), |i, a| {
        let Value::Sym(name) = a[0] else { return Err("expects a symbol".into()) };
        let fields = list_items(i, a[1])?
            .into_iter()
            .map(|f| match f {
                Value::Sym(s) => Ok(s),
                _ => Err("field names must be symbols".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        i.heap.alloc(Obj::RecordType(name, fields)).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("%record", (1, ANY), |i, a| {
        let Value::Ref(t) = a[0] else { return Err("expects a record type".into()) };
        i.heap.alloc(Obj::Record(t, a[1..].to_vec())).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("%record?", (2, Some(2)), |i, a| {
        Ok(Value::Bool(record_of(i, a[0], a[1]).is_some()))
    });
    i.def_prim("%record-ref", (4, Some(4)), |i, a| {
        let Some((Value::Ref(r), _)) = record_of(i, a[0], a[1]) else {
            return Err(format!(
                "{}: expects a {}, got {}",
                i.write_string(a[3]),
                record_type_name(i, a[1]),
                i.write_string(a[0])
            ));
        };
        let k = int(a[2])? as usize;
        match i.heap.get(r) {
            Ok(Obj::Record(_, f)) => Ok(f[k]),
            _ => Err("expects a record".into()),
        }
    });
    i.def_prim("%record-set!", (5, Some(5)), |i, a| {
        let Some((Value::Ref(r), _)) = record_of(i, a[0], a[1]) else {
            return Err(format!(
                "{}: expects a {}, got {}",
                i.write_string(a[4]),
                record_type_name(i, a[1]),
                i.write_string(a[0])
            ));
        };
        let (k, v) = (int(a[2])? as usize, a[3]);
        i.heap
            .update(r, |o| {
                if let Obj::Record(_, f) = o {
                    f[k] = v;
                }
            })
            .map_err(|_| "expects a record".to_string())?;
        Ok(Value::Unspecified)
    });
    // Hash tables (SRFI 69 names; `hash-table-ref` and the updaters are in the prelude).
    i.def_prim("make-hash-table", (0, ANY), |i, _| {
        i.heap.alloc(Obj::Table(Table::default())).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("hash-table?", (1, Some(1)), |i, a| Ok(Value::Bool(table_ref(i, a[0]).is_ok())));
    i.def_prim("hash-table-set!", (3, Some(3)), |i, a| {
        table_put(i, a[0], a[1], Some(a[2]))?;
        Ok(Value::Unspecified)
    });
    i.def_prim("hash-table-delete!", (2, Some(2)), |i, a| {
        table_put(i, a[0], a[1], None)?;
        Ok(Value::Unspecified)
    });
    i.def_prim("hash-table-ref/default", (3, Some(3)), |i, a| {
        Ok(table_find(i, a[0], a[1])?.unwrap_or(a[2]))
    });
    i.def_prim("hash-table-contains?", (2, Some(2)), |i, a| {
        Ok(Value::Bool(table_find(i, a[0], a[1])?.is_some()))
    });
    i.def_prim("hash-table-count", (1, Some(1)), |i, a| {
        let r = table_ref(i, a[0])?;
        match i.heap.get(r) {
            Ok(Obj::Table(t)) => Ok(Value::Int(t.len as i64)),
            _ => unreachable!("checked"),
        }
    });
    i.def_prim("hash-table-keys", (1, Some(1)), |i, a| {
        let e = table_entries(i, a[0])?;
        list_from(i, e.into_iter().map(|e| e.0))
    });
    i.def_prim("hash-table-values", (1, Some(1)), |i, a| {
        let e = table_entries(i, a[0])?;
        list_from(i, e.into_iter().map(|e| e.1))
    });
    i.def_prim("hash-table->alist", (1, Some(1)), |i, a| {
        let e = table_entries(i, a[0])?;
        let mut pairs = Vec::new();
        for (k, v) in e {
            pairs.push(i.heap.cons(k, v).map_err(|e| e.to_string())?);
        }
        list_from(i, pairs.into_iter())
    });
    i.def_prim("hash-table-clear!", (1, Some(1)), |i, a| {
        let r = table_ref(i, a[0])?;
        let _ = i.heap.update(r, |o| *o = Obj::Table(Table::default()));
        Ok(Value::Unspecified)
    });
    // Numbers.
    i.def_prim("abs", (1, Some(1)), |_, a| match a[0] {
        Value::Int(n) => n.checked_abs().map(Value::Int).ok_or("integer overflow".into()),
        v => Ok(Value::Float(num(v)?.abs())),
    });
    i.def_prim("min", (1, ANY), |_, a| {
        let m = a
            .iter()
            .try_fold(a[0], |m, v| Ok::<_, String>(if num(*v)? < num(m)? { *v } else { m }))?;
        Ok(if all_ints(a) { m } else { Value::Float(num(m)?) })
    });
    i.def_prim("max", (1, ANY), |_, a| {
        let m = a
            .iter()
            .try_fold(a[0], |m, v| Ok::<_, String>(if num(*v)? > num(m)? { *v } else { m }))?;
        Ok(if all_ints(a) { m } else { Value::Float(num(m)?) })
    });
    i.def_prim("even?", (1, Some(1)), |_, a| Ok(Value::Bool(int(a[0])? % 2 == 0)));
    i.def_prim("odd?", (1, Some(1)), |_, a| Ok(Value::Bool(int(a[0])? % 2 != 0)));
    i.def_prim("zero?", (1, Some(1)), |_, a| Ok(Value::Bool(num(a[0])? == 0.0)));
    i.def_prim("positive?", (1, Some(1)), |_, a| Ok(Value::Bool(num(a[0])? > 0.0)));
    i.def_prim("negative?", (1, Some(1)), |_, a| Ok(Value::Bool(num(a[0])? < 0.0)));
    i.def_prim("exact?", (1, Some(1)), |_, a| {
        num(a[0])?;
        Ok(Value::Bool(matches!(a[0], Value::Int(_))))
    });
    i.def_prim("inexact?", (1, Some(1)), |_, a| {
        num(a[0])?;
        Ok(Value::Bool(matches!(a[0], Value::Float(_))))
    });
    i.def_prim("exact->inexact", (1, Some(1)), |_, a| Ok(Value::Float(num(a[0])?)));
    i.def_prim("inexact->exact", (1, Some(1)), |_, a| match a[0] {
        Value::Int(n) => Ok(Value::Int(n)),
        v => {
            let x = num(v)?;
            if x.fract() == 0.0 && x.abs() < 9.2e18 {
                Ok(Value::Int(x as i64))
            } else {
                Err(format!("{x} has no exact integer value"))
            }
        }
    });
    i.def_prim("floor", (1, Some(1)), |_, a| float_op(a[0], f64::floor));
    i.def_prim("ceiling", (1, Some(1)), |_, a| float_op(a[0], f64::ceil));
    i.def_prim("round", (1, Some(1)), |_, a| float_op(a[0], f64::round_ties_even));
    i.def_prim("truncate", (1, Some(1)), |_, a| float_op(a[0], f64::trunc));
    i.def_prim("sqrt", (1, Some(1)), |_, a| {
        if let Value::Int(n) = a[0] {
            let r = (n as f64).sqrt() as i64;
            if n >= 0 && r.checked_mul(r) == Some(n) {
                return Ok(Value::Int(r));
            }
        }
        Ok(Value::Float(num(a[0])?.sqrt()))
    });
    i.def_prim("expt", (2, Some(2)), |_, a| match (a[0], a[1]) {
        (Value::Int(b), Value::Int(e)) if e >= 0 => u32::try_from(e)
            .ok()
            .and_then(|e| b.checked_pow(e))
            .map(Value::Int)
            .ok_or("integer overflow (integers are 64-bit)".into()),
        (b, e) => Ok(Value::Float(num(b)?.powf(num(e)?))),
    });
    i.def_prim("exact", (1, Some(1)), |_, a| match a[0] {
        Value::Int(n) => Ok(Value::Int(n)),
        v => {
            let x = num(v)?;
            if x.fract() == 0.0 && x.abs() < 9.2e18 {
                Ok(Value::Int(x as i64))
            } else {
                Err(format!("{x} has no exact integer value"))
            }
        }
    });
    i.def_prim("inexact", (1, Some(1)), |_, a| Ok(Value::Float(num(a[0])?)));
    // Characters and strings.
    i.def_prim("char-alphabetic?", (1, Some(1)), |_, a| {
        Ok(Value::Bool(chr(a[0])?.is_alphabetic()))
    });
    i.def_prim("char-numeric?", (1, Some(1)), |_, a| Ok(Value::Bool(chr(a[0])?.is_numeric())));
    i.def_prim("char-whitespace?", (1, Some(1)), |_, a| {
        Ok(Value::Bool(chr(a[0])?.is_whitespace()))
    });
    i.def_prim("char=?", (2, ANY), |_, a| {
        let cs = a.iter().map(|c| chr(*c)).collect::<Result<Vec<_>, _>>()?;
        Ok(Value::Bool(cs.windows(2).all(|w| w[0] == w[1])))
    });
    i.def_prim("char<?", (2, ANY), |_, a| {
        let cs = a.iter().map(|c| chr(*c)).collect::<Result<Vec<_>, _>>()?;
        Ok(Value::Bool(cs.windows(2).all(|w| w[0] < w[1])))
    });
    i.def_prim("string-upcase", (1, Some(1)), |i, a| {
        let s = string(i, a[0])?.to_uppercase();
        new_string(i, s)
    });
    i.def_prim("string-downcase", (1, Some(1)), |i, a| {
        let s = string(i, a[0])?.to_lowercase();
        new_string(i, s)
    });
    i.def_prim("string-contains", (2, Some(2)), |i, a| {
        let (h, n) = (string(i, a[0])?, string(i, a[1])?);
        Ok(match h.find(&n) {
            Some(b) => Value::Int(h[..b].chars().count() as i64),
            None => Value::Bool(false),
        })
    });
    i.def_prim("string-split", (2, Some(2)), |i, a| {
        let (s, sep) = (string(i, a[0])?, chr(a[1])?);
        let mut parts = Vec::new();
        for p in s.split(sep) {
            parts.push(new_string(i, p.to_string())?);
        }
        list_from(i, parts.into_iter())
    });
    i.def_prim("string-join", (1, Some(2)), |i, a| {
        let sep = match a.get(1) {
            Some(v) => string(i, *v)?,
            None => " ".into(),
        };
        let parts = list_items(i, a[0])?
            .into_iter()
            .map(|p| string(i, p))
            .collect::<Result<Vec<_>, _>>()?;
        new_string(i, parts.join(&sep))
    });
    i.def_prim("string-copy", (1, Some(1)), |i, a| {
        let s = string(i, a[0])?;
        new_string(i, s)
    });
    i.def_prim("list?", (1, Some(1)), |i, a| {
        let mut l = a[0];
        let mut n = 0usize;
        while let Some((_, d)) = i.heap.pair(l) {
            l = d;
            n += 1;
            if n > 100_000_000 {
                return Ok(Value::Bool(false));
            }
        }
        Ok(Value::Bool(l == Value::Nil))
    });
    i.def_prim("vector?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(
            matches!(a[0], Value::Ref(r) if matches!(i.heap.get(r), Ok(Obj::Vector(_)))),
        ))
    });
    i.def_prim("char?", (1, Some(1)), |_, a| Ok(Value::Bool(matches!(a[0], Value::Char(_)))));
}

fn chr(v: Value) -> Result<char, String> {
    match v {
        Value::Char(c) => Ok(c),
        _ => Err("expects a character".into()),
    }
}
