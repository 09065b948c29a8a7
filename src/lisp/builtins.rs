//! Builtin procedures, and the prelude: the procedures written in OmniLisp itself.

use super::eval::{eqv, truthy, Ctl, Interp};
use super::heap::{Obj, Ref, Table, Value};
use std::collections::HashSet;

/// Procedures written in Lisp, evaluated when an interpreter starts.
pub(crate) const PRELUDE: &str = r#"
(define (%no-cycle who l)
  (if (%circular? l) (error (string-append who ": expects a proper list, got a circular one"))))
(define (%not-all-cycles who ls)
  (if (%all-circular? ls) (error (string-append who ": expects a finite list among its lists"))))
(define (%all-circular? ls) (or (null? ls) (and (%circular? (car ls)) (%all-circular? (cdr ls)))))
(define (map f l . more)
  (if (null? more)
      (begin
        (%no-cycle "map" l)
        (let loop ((l l) (acc '()))
          (if (null? l) (reverse acc) (loop (cdr l) (cons (f (car l)) acc)))))
      (begin
        (%not-all-cycles "map" (cons l more))
        (let loop ((ls (cons l more)) (acc '()))
          (if (any-null? ls)
              (reverse acc)
              (loop (map cdr ls) (cons (apply f (map car ls)) acc)))))))
(define (any-null? ls) (if (null? ls) #f (if (null? (car ls)) #t (any-null? (cdr ls)))))
(define (for-each f l . more)
  (if (null? more)
      (begin
        (%no-cycle "for-each" l)
        (let loop ((l l)) (if (null? l) (if #f #f) (begin (f (car l)) (loop (cdr l))))))
      (begin
        (%not-all-cycles "for-each" (cons l more))
        (let loop ((ls (cons l more)))
          (if (any-null? ls)
              (if #f #f)
              (begin (apply f (map car ls)) (loop (map cdr ls))))))))
(define (filter keep? l)
  (%no-cycle "filter" l)
  (let loop ((l l) (acc '()))
    (cond ((null? l) (reverse acc))
          ((keep? (car l)) (loop (cdr l) (cons (car l) acc)))
          (else (loop (cdr l) acc)))))
(define (fold f acc l)
  (%no-cycle "fold" l)
  (let loop ((acc acc) (l l)) (if (null? l) acc (loop (f (car l) acc) (cdr l)))))
(define (fold-left f acc l)
  (%no-cycle "fold-left" l)
  (let loop ((acc acc) (l l)) (if (null? l) acc (loop (f acc (car l)) (cdr l)))))
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
  (%no-cycle "sort" l)
  (%sort l less?))
(define (%sort l less?)
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
        (merge (%sort (car halves) less?) (%sort (cdr halves) less?)))))
(define (atom-swap! a f)
  (let loop ()
    (let* ((old (atom-deref a)) (new (f old)))
      (if (atom-cas! a old new) new (loop)))))
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

/// How integer `i` compares with float `x`, exactly (`None` when `x` is NaN): converting `i`
/// to a float could round it, so the comparison is done on integers where it matters.
fn cmp_int_float(i: i64, x: f64) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if x.is_nan() {
        return None;
    }
    if x >= TWO_63 {
        return Some(Ordering::Less);
    }
    if x < -TWO_63 {
        return Some(Ordering::Greater);
    }
    // Here -2^63 <= x < 2^63: its integer part is an i64, exactly.
    let t = x.trunc();
    Some(i.cmp(&(t as i64)).then_with(|| {
        let frac = x - t;
        if frac > 0.0 {
            Ordering::Less
        } else if frac < 0.0 {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }))
}

/// How two numbers compare, exactly (`None` when one is NaN).
fn cmp_num(a: Value, b: Value) -> Result<Option<std::cmp::Ordering>, String> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(&y)),
        (Value::Int(x), Value::Float(y)) => cmp_int_float(x, y),
        (Value::Float(x), Value::Int(y)) => cmp_int_float(y, x).map(std::cmp::Ordering::reverse),
        (x, y) => num(x)?.partial_cmp(&num(y)?),
    })
}

#[inline]
fn compare(
    args: &[Value],
    ok: fn(std::cmp::Ordering) -> bool,
    oki: fn(i64, i64) -> bool,
) -> Result<Value, String> {
    if let [Value::Int(a), Value::Int(b)] = *args {
        return Ok(Value::Bool(oki(a, b)));
    }
    // Every argument must be a number, even after the answer is known.
    for v in args {
        num(*v)?;
    }
    for w in args.windows(2) {
        if !cmp_num(w[0], w[1])?.is_some_and(ok) {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

/// `equal?`: structural equality, terminating on cyclic data. It compares coinductively: two
/// objects whose comparison is already under way count as equal there (any difference shows
/// elsewhere). A plain walk first; past as many steps as there are live objects (more than any
/// comparison of acyclic, unshared data takes), it keeps the pairs of objects compared so far
/// and compares each pair once, so shared or cyclic data is compared in time bounded by the
/// pairs of objects reachable.
fn equal(i: &Interp, a: Value, b: Value) -> bool {
    let plain_steps = i.heap.live();
    let mut steps = 0usize;
    let mut seen: Option<HashSet<(Ref, Ref)>> = None;
    let mut stack = vec![(a, b)];
    while let Some((a, b)) = stack.pop() {
        if eqv(&i.heap, a, b) {
            continue;
        }
        let (Value::Ref(ra), Value::Ref(rb)) = (a, b) else { return false };
        steps += 1;
        if steps > plain_steps && !seen.get_or_insert_with(HashSet::new).insert((ra, rb)) {
            continue;
        }
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

/// Why a value is not a proper list.
enum NotList {
    Improper,
    Circular,
}

impl From<NotList> for String {
    fn from(e: NotList) -> String {
        match e {
            NotList::Improper => "expects a proper list".into(),
            NotList::Circular => "expects a proper list, got a circular one".into(),
        }
    }
}

/// Hands each item of list `l` to `f`. A proper list has no more pairs than the heap has live
/// objects, so a list that goes on past that is circular: an error, not a loop.
fn walk_list(i: &Interp, mut l: Value, mut f: impl FnMut(Value)) -> Result<usize, NotList> {
    let most = i.heap.live();
    let mut n = 0usize;
    while let Some((a, d)) = i.heap.pair(l) {
        if n >= most {
            return Err(NotList::Circular);
        }
        f(a);
        n += 1;
        l = d;
    }
    if l != Value::Nil {
        return Err(NotList::Improper);
    }
    Ok(n)
}

fn list_items(i: &Interp, l: Value) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    walk_list(i, l, |v| out.push(v))?;
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
        match *a {
            [Value::Int(n)] => n.checked_neg().map(Value::Int).ok_or_else(overflow),
            [v] => Ok(Value::Float(-num(v)?)),
            // Left to right: an error only when a partial difference overflows.
            _ if all_ints(a) => a[1..]
                .iter()
                .try_fold(int(a[0])?, |acc, v| acc.checked_sub(int(*v)?).ok_or_else(overflow))
                .map(Value::Int),
            _ => a[1..].iter().try_fold(num(a[0])?, |acc, v| Ok(acc - num(*v)?)).map(Value::Float),
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
        let (x, y) = (int(a[0])?, int(a[1])?);
        if y == 0 {
            return Err("division by zero".into());
        }
        // Only i64::MIN / -1 overflows.
        x.checked_div(y).map(Value::Int).ok_or_else(overflow)
    });
    i.def_prim("remainder", (2, Some(2)), |_, a| {
        let (x, y) = (int(a[0])?, int(a[1])?);
        if y == 0 {
            return Err("division by zero".into());
        }
        // i64::MIN % -1 overflows in the machine, but the remainder is 0.
        Ok(Value::Int(x.checked_rem(y).unwrap_or(0)))
    });
    i.def_prim("modulo", (2, Some(2)), |_, a| {
        let (x, y) = (int(a[0])?, int(a[1])?);
        if y == 0 {
            return Err("division by zero".into());
        }
        let r = x.checked_rem(y).unwrap_or(0);
        // The sign of the divisor.
        Ok(Value::Int(if r != 0 && (r < 0) != (y < 0) { r + y } else { r }))
    });
    i.def_prim("=", (1, ANY), |_, a| compare(a, |o| o.is_eq(), |x, y| x == y));
    i.def_prim("<", (1, ANY), |_, a| compare(a, |o| o.is_lt(), |x, y| x < y));
    i.def_prim(">", (1, ANY), |_, a| compare(a, |o| o.is_gt(), |x, y| x > y));
    i.def_prim("<=", (1, ANY), |_, a| compare(a, |o| o.is_le(), |x, y| x <= y));
    i.def_prim(">=", (1, ANY), |_, a| compare(a, |o| o.is_ge(), |x, y| x >= y));
    i.def_prim("not", (1, Some(1)), |_, a| Ok(Value::Bool(!truthy(a[0]))));
    i.def_prim("eq?", (2, Some(2)), |i, a| Ok(Value::Bool(eqv(&i.heap, a[0], a[1]))));
    i.def_prim("eqv?", (2, Some(2)), |i, a| Ok(Value::Bool(eqv(&i.heap, a[0], a[1]))));
    i.def_prim("equal?", (2, Some(2)), |i, a| Ok(Value::Bool(equal(i, a[0], a[1]))));
    i.def_prim("null?", (1, Some(1)), |_, a| Ok(Value::Bool(a[0] == Value::Nil)));
    i.def_prim("pair?", (1, Some(1)), |i, a| Ok(Value::Bool(i.heap.pair(a[0]).is_some())));
    i.def_prim("number?", (1, Some(1)), |_, a| {
        Ok(Value::Bool(matches!(a[0], Value::Int(_) | Value::Float(_))))
    });
    // An integral float is an integer (an inexact one); infinities and NaN are not.
    i.def_prim("integer?", (1, Some(1)), |_, a| {
        Ok(Value::Bool(match a[0] {
            Value::Int(_) => true,
            Value::Float(x) => x.is_finite() && x.fract() == 0.0,
            _ => false,
        }))
    });
    i.def_prim("symbol?", (1, Some(1)), |_, a| Ok(Value::Bool(matches!(a[0], Value::Sym(_)))));
    i.def_prim("boolean?", (1, Some(1)), |_, a| Ok(Value::Bool(matches!(a[0], Value::Bool(_)))));
    i.def_prim("string?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(matches!(a[0], Value::Ref(r) if matches!(i.heap.get(r), Ok(Obj::Str(_))))))
    });
    i.def_prim("procedure?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(matches!(a[0], Value::Ref(r)
            if matches!(i.heap.get(r), Ok(Obj::Closure(_) | Obj::Prim(_) | Obj::Cont(_)
                | Obj::Conc(super::tasks::Conc::Gen(_) | super::tasks::Conc::Yield(_)))))))
    });
    i.def_prim("cons", (2, Some(2)), |i, a| i.heap.cons(a[0], a[1]).map_err(|e| e.to_string()));
    i.def_prim("car", (1, Some(1)), |i, a| pair(i, a[0]).map(|p| p.0));
    i.def_prim("cdr", (1, Some(1)), |i, a| pair(i, a[0]).map(|p| p.1));
    i.def_prim("set-car!", (2, Some(2)), |i, a| set_pair(i, a, true));
    i.def_prim("set-cdr!", (2, Some(2)), |i, a| set_pair(i, a, false));
    i.def_prim("list", (0, ANY), |i, a| list_from(i, a.iter().copied()));
    i.def_prim("length", (1, Some(1)), |i, a| Ok(Value::Int(walk_list(i, a[0], |_| {})? as i64)));
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
        // The size first, so a string too big is refused before it is built.
        let mut bytes = 0usize;
        for v in a {
            let len = with_str(i, *v, str::len)?;
            bytes = bytes.saturating_add(len);
        }
        string_room(i, bytes)?;
        let mut out = String::with_capacity(bytes);
        for v in a {
            with_str(i, *v, |s| out.push_str(s))?;
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
        // The whole string must be one number as the reader writes it: no spaces, no
        // comments (an integer out of range is not a number here either).
        let s = string(i, a[0])?;
        Ok(match super::reader::number(&s) {
            Some(Ok(super::DatumKind::Int(n))) => Value::Int(n),
            Some(Ok(super::DatumKind::Float(x))) => Value::Float(x),
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
        Value::Char(c) => Ok(Value::Char(single(c.to_uppercase()).unwrap_or(c))),
        _ => Err("expects a character".into()),
    });
    i.def_prim("char-downcase", (1, Some(1)), |_, a| match a[0] {
        Value::Char(c) => Ok(Value::Char(single(c.to_lowercase()).unwrap_or(c))),
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
        if n > MAX_VECTOR {
            return Err(format!("a vector of {n} items is over the limit of {MAX_VECTOR}"));
        }
        room_for(i, n * std::mem::size_of::<Value>(), || format!("a vector of {n} items"))?;
        let fill = a.get(1).copied().unwrap_or(Value::Int(0));
        let mut items = Vec::new();
        items.try_reserve_exact(n).map_err(|_| format!("no memory for a vector of {n} items"))?;
        items.resize(n, fill);
        i.heap.alloc(Obj::Vector(items)).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("make-string", (1, Some(2)), |i, a| {
        let n = usize::try_from(int(a[0])?).map_err(|_| "expects a length >= 0")?;
        let c = match a.get(1) {
            Some(v) => chr(*v)?,
            None => ' ',
        };
        let bytes = n.saturating_mul(c.len_utf8());
        string_room(i, bytes)?;
        let mut s = String::new();
        s.try_reserve_exact(bytes)
            .map_err(|_| format!("no memory for a string of {bytes} bytes"))?;
        s.extend(std::iter::repeat_n(c, n));
        new_string(i, s)
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

/// The most items `make-vector` makes (256 MiB of items), heap limit or none.
const MAX_VECTOR: usize = 1 << 24;

/// The most bytes `make-string` and `string-append` make (256 MiB), heap limit or none.
const MAX_STRING: usize = 1 << 28;

/// Refuses an object owning `bytes` bytes that would not fit under the heap limit (counted as
/// the heap counts it: one object per 64 bytes), before it is built: `what` names it.
fn room_for(i: &Interp, bytes: usize, what: impl FnOnce() -> String) -> Result<(), String> {
    i.heap
        .check_room(bytes)
        .map_err(|(full, weight)| format!("{full}: {} counts as {weight} objects", what()))
}

/// Refuses a string of `bytes` bytes over [`MAX_STRING`] or over the heap limit.
fn string_room(i: &Interp, bytes: usize) -> Result<(), String> {
    if bytes > MAX_STRING {
        return Err(format!("a string of {bytes} bytes is over the limit of {MAX_STRING} bytes"));
    }
    room_for(i, bytes, || format!("a string of {bytes} bytes"))
}

/// `f` of the text of string `v`, without copying it.
fn with_str<R>(i: &Interp, v: Value, f: impl FnOnce(&str) -> R) -> Result<R, String> {
    match i.heap.get_string(v) {
        Some(s) => Ok(f(s)),
        None => Err(format!("expects a string, got {}", i.write_string(v))),
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
    use super::tasks::TaskOp;
    i.def_control("spawn", (1, Some(1)), Ctl::Task(TaskOp::Spawn));
    i.def_control("yield", (0, Some(0)), Ctl::Task(TaskOp::Yield));
    i.def_control("task-join", (1, Some(1)), Ctl::Task(TaskOp::Join));
    i.def_control("await-task", (1, Some(1)), Ctl::Task(TaskOp::Join));
    i.def_control("run-scheduler", (0, Some(0)), Ctl::Task(TaskOp::RunScheduler));
    i.def_control("chan-send", (2, Some(2)), Ctl::Task(TaskOp::Send));
    i.def_control("chan-recv", (1, Some(1)), Ctl::Task(TaskOp::Recv));
    i.def_control("sleep", (1, Some(1)), Ctl::Task(TaskOp::Sleep));
    super::tasks::install(i);
    // Atoms (one step per update, so no task switch splits one) and OS threads.
    super::threads::install(i);
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
pub(crate) fn table_put(
    i: &mut Interp,
    t: Value,
    k: Value,
    v: Option<Value>,
) -> Result<(), String> {
    let r = table_ref(i, t)?;
    let h = equal_hash(i, k);
    // Find the index first (equal? needs the heap), then change the bucket.
    let at = {
        let Ok(Obj::Table(tb)) = i.heap.get(r) else { unreachable!("checked") };
        tb.buckets.get(&h).and_then(|b| b.iter().position(|(k2, _)| equal(i, *k2, k)))
    };
    // A new entry makes the table heavier (see `heap`): refused when the heap is full, as an
    // allocation would be.
    if at.is_none() && v.is_some() {
        i.heap.check_room(0).map_err(|(full, _)| full.to_string())?;
    }
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

/// `exact` / `inexact->exact`: an integer as it is, an integral float as the integer.
fn exact(v: Value) -> Result<Value, String> {
    match v {
        Value::Int(n) => Ok(Value::Int(n)),
        v => {
            let x = num(v)?;
            if x.fract() == 0.0 && x.abs() < 9.2e18 {
                Ok(Value::Int(x as i64))
            } else {
                Err(format!("{x} has no exact integer value"))
            }
        }
    }
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
    i.def_prim("inexact->exact", (1, Some(1)), |_, a| exact(a[0]));
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
    i.def_prim("exact", (1, Some(1)), |_, a| exact(a[0]));
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
    i.def_prim("list?", (1, Some(1)), |i, a| Ok(Value::Bool(walk_list(i, a[0], |_| {}).is_ok())));
    i.def_prim("%circular?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(matches!(walk_list(i, a[0], |_| {}), Err(NotList::Circular))))
    });
    i.def_prim("vector?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(
            matches!(a[0], Value::Ref(r) if matches!(i.heap.get(r), Ok(Obj::Vector(_)))),
        ))
    });
    i.def_prim("char?", (1, Some(1)), |_, a| Ok(Value::Bool(matches!(a[0], Value::Char(_)))));
}

/// The one character of a case mapping; `None` when it is several (`ß` upcases to `SS`), and
/// then `char-upcase` and `char-downcase` give the character unchanged.
fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    match (it.next(), it.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

fn chr(v: Value) -> Result<char, String> {
    match v {
        Value::Char(c) => Ok(c),
        _ => Err("expects a character".into()),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::lisp::{Interp, Limits};

    fn limited() -> Interp {
        Interp::with_limits(Limits { heap_objects: 50_000, ..Limits::default() })
    }

    #[test]
    fn big_objects_are_refused_under_a_heap_limit_before_they_are_built() {
        for (src, want) in [
            ("(make-vector 1000000 0)", "make-vector: heap limit reached (50000 live objects): a vector of 1000000 items counts as 250001 objects"),
            ("(make-string 10000000 #\\a)", "make-string: heap limit reached (50000 live objects): a string of 10000000 bytes counts as 156251 objects"),
            ("(define s (make-string 1000000)) (string-append s s s s)", "string-append: heap limit reached (50000 live objects): a string of 4000000 bytes counts as 62501 objects"),
        ] {
            let e = limited().eval_str(src, "big").unwrap_err();
            assert_eq!(e.message, want);
        }
    }

    #[test]
    fn a_hash_table_growing_alone_reaches_the_heap_limit() {
        // Each entry is 32 bytes: the table counts one object per two entries.
        let mut i = limited();
        let src = "(define t (make-hash-table)) (define (fill n) (hash-table-set! t n n) (fill (+ n 1))) (fill 0)";
        let e = i.eval_str(src, "fill").unwrap_err();
        // The table check, or the evaluator allocating the next call, refuses first.
        assert!(e.message.ends_with("heap limit reached (50000 live objects)"), "{e}");
        let n: usize = i.eval_str("(hash-table-count t)", "count").unwrap().parse().unwrap();
        assert!((90_000..100_000).contains(&n), "{n} entries");
    }

    #[test]
    fn cyclic_data_prints_and_compares_in_a_big_heap() {
        // A heap of a million live objects: the first, cheap printing pass gives up after a
        // million items, and equal? switches to remembering what it compared.
        let mut i = Interp::new();
        let src = "(define keep (make-list-of 1000000))
                   (define l (list 1 2)) (set-cdr! (cdr l) l)
                   (define m (list 1 2 1 2)) (set-cdr! (cdr (cddr m)) m)
                   (list (equal? l m) (length keep) l)";
        let prelude = "(define (make-list-of n) (let loop ((n n) (acc '())) (if (= n 0) acc (loop (- n 1) (cons n acc)))))";
        i.eval_str(prelude, "p").unwrap();
        assert_eq!(i.eval_str(src, "big").unwrap(), "(#t 1000000 (1 2 ...))");
    }
}
