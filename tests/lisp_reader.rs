//! The OmniLisp reader: every kind of datum, locations, errors that say where and what, and
//! hostile input read on a thread with a 256 KiB stack.

use omni::lisp::{read_all, DatumKind, Reader};

fn one(src: &str) -> String {
    let d = read_all(src, "t").unwrap_or_else(|e| panic!("{src:?}: {e}"));
    assert_eq!(d.len(), 1, "{src:?}");
    d[0].to_string()
}

fn err(src: impl AsRef<[u8]>) -> String {
    read_all(src, "t.olisp").map(|d| format!("{d:?}")).unwrap_err().to_string()
}

/// Runs `f` on a thread with a 256 KiB stack.
fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(256 << 10).spawn(f).unwrap().join().unwrap()
}

#[test]
fn every_kind_of_datum_reads_and_prints_back() {
    assert_eq!(one("42"), "42");
    assert_eq!(one("-7"), "-7");
    assert_eq!(one("+7"), "7");
    assert_eq!(one("3.25"), "3.25");
    assert_eq!(one("-0.5e1"), "-5.0");
    assert_eq!(one("1e300"), "1e300");
    assert_eq!(one("+inf.0"), "+inf.0");
    assert_eq!(one(r#""a\"b\\c\n\t\x41;""#), r#""a\"b\\c\n\tA""#);
    assert_eq!(one(r"#\a"), r"#\a");
    assert_eq!(one(r"#\space"), r"#\space");
    assert_eq!(one(r"#\newline"), r"#\newline");
    assert_eq!(one(r"#\x41"), r"#\A");
    assert_eq!(one(r"#\("), r"#\(");
    assert_eq!(one("#t"), "#t");
    assert_eq!(one("#false"), "#f");
    assert_eq!(one("hello-world!?"), "hello-world!?");
    assert_eq!(one("..."), "...");
    assert_eq!(one("1+"), "1+");
    assert_eq!(one("()"), "()");
    assert_eq!(one("(a [b c] (d . e))"), "(a (b c) (d . e))");
    assert_eq!(one("(a b . c)"), "(a b . c)");
    assert_eq!(one("#(1 #(2) \"x\")"), "#(1 #(2) \"x\")");
    assert_eq!(one("'x"), "(quote x)");
    assert_eq!(one("`(a ,b ,@c)"), "(quasiquote (a (unquote b) (unquote-splicing c)))");
    assert_eq!(one("''x"), "(quote (quote x))");
    assert_eq!(one("λ"), "λ");
}

#[test]
fn comments_of_every_kind() {
    let d =
        read_all("; line\n1 #| block #| nested |# still |# 2 #;(3 4) 5 #;#;6 7 8", "t").unwrap();
    let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["1", "2", "5", "8"]);
}

#[test]
fn every_datum_knows_where_it_starts() {
    let d = read_all("(a\n  (b c))\n\n  'λ x", "f.olisp").unwrap();
    assert_eq!(d[0].span().to_string(), "1:1");
    assert_eq!(d[0].items()[1].span().to_string(), "2:3");
    assert_eq!(d[0].items()[1].items()[1].span().to_string(), "2:6");
    assert_eq!(d[1].span().to_string(), "4:3");
    assert_eq!(d[2].span().to_string(), "4:6", "columns count characters, not bytes");
    assert!(matches!(d[2].kind(), DatumKind::Symbol(s) if s == "x"));
}

#[test]
fn errors_say_where_and_what() {
    assert_eq!(
        err("(a (b c)"),
        "t.olisp:1:1: read error: this list is never closed (a `)` is missing)"
    );
    assert_eq!(
        err("\n  \"abc"),
        "t.olisp:2:3: read error: this string is never closed (a `\"` is missing)"
    );
    assert_eq!(
        err("#| never |# #| ends"),
        "t.olisp:1:13: read error: this `#|` comment is never closed (`|#`)"
    );
    assert!(err("99999999999999999999")
        .contains("1:1: read error: integer literal `99999999999999999999` is out of range"));
    assert!(err("-9223372036854775809").contains("out of range"));
    assert_eq!(one("-9223372036854775808"), "-9223372036854775808");
    assert!(err(r#""a\qb""#).starts_with("t.olisp:1:3: read error: unknown escape `\\q`"));
    assert!(err("a)").starts_with("t.olisp:1:2: read error: unexpected `)`: no list is open"));
    assert!(err("(a]").contains("`]` closes the list opened at 1:1 with `(`: expected `)`"));
    assert!(err("(. a)").contains("a `.` goes after one or more items"));
    assert!(err("(a . b c)").contains("only one datum may follow a `.`"));
    assert!(err("(a .)").contains("a `.` must be followed by one datum"));
    assert!(err("#z").contains("unknown `#` syntax `#z`"));
    // Found by the fuzzer: `'.` read as (quote .), which printed as text that does not read back.
    assert!(err("'.").contains("1:2: read error: unexpected `.`"));
    assert!(err(".").contains("unexpected `.`"));
    assert!(err("#(1 . 2)").contains("unexpected `.`"));
    assert_eq!(one("..."), "...");
    assert_eq!(one(".5"), "0.5");
    assert!(err(r"#\bogus").contains("unknown character `#\\bogus`"));
    assert!(err("'").contains("`quote` has no datum after it"));
    assert!(err("(')").contains("`quote` has no datum before this `)`"));
    assert!(err("#;").contains("`#;` has no datum after it"));
    assert_eq!(
        err(b"(a \xff b)"),
        "t.olisp:1:4: read error: invalid UTF-8: OmniLisp source must be UTF-8 text"
    );
}

#[test]
fn the_reader_stops_at_its_first_error() {
    let mut r = Reader::new(b"1 ) 2", "t");
    assert!(r.next().unwrap().is_ok());
    assert!(r.next().unwrap().is_err());
    assert!(r.next().is_none());
}

#[test]
fn a_million_open_parentheses_is_an_error_not_a_crash() {
    let msg = small_stack(|| {
        let src = "(".repeat(1_000_000);
        read_all(&src, "deep").unwrap_err().to_string()
    });
    assert_eq!(
        msg,
        "deep:1:10001: read error: nesting deeper than 10000 levels (lists, vectors and quotes \
         inside each other); raise the reader's limit if this is intended"
    );
}

#[test]
fn a_million_quote_prefixes_is_an_error_not_a_crash() {
    let msg = small_stack(|| {
        let src = "'".repeat(1_000_000) + "x";
        read_all(&src, "q").unwrap_err().to_string()
    });
    assert!(msg.starts_with("q:1:10001: read error: nesting deeper than 10000 levels"), "{msg}");
}

#[test]
fn nesting_up_to_the_limit_reads_prints_and_drops_on_a_small_stack() {
    let (printed_len, depth) = small_stack(|| {
        let n = 10_000;
        let src = "(".repeat(n) + &")".repeat(n);
        let d = read_all(&src, "ok").unwrap();
        let printed = d[0].to_string();
        let mut depth = 0;
        let mut cur = &d[0];
        while let Some(inner) = cur.items().first() {
            cur = inner;
            depth += 1;
        }
        (printed.len(), depth + 1)
    });
    assert_eq!(printed_len, 20_000);
    assert_eq!(depth, 10_000);
    // A lower limit refuses it.
    let src = "(".repeat(50) + &")".repeat(50);
    assert!(Reader::new(src.as_bytes(), "t").max_depth(49).next().unwrap().is_err());
    assert!(Reader::new(src.as_bytes(), "t").max_depth(50).next().unwrap().is_ok());
}

#[test]
fn a_flat_list_of_a_million_atoms() {
    let n = small_stack(|| {
        let src = format!("({})", "a ".repeat(1_000_000));
        let d = read_all(&src, "flat").unwrap();
        d[0].items().len()
    });
    assert_eq!(n, 1_000_000);
}

#[test]
fn hostile_bytes_give_located_errors_on_a_small_stack() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"\xc3\x28".to_vec(), "h:1:1: read error: invalid UTF-8"),
        (b"(\"abc".to_vec(), "h:1:2: read error: this string is never closed"),
        (b"#| #| |#".to_vec(), "h:1:1: read error: this `#|` comment is never closed"),
        (b"\"\xff\"".to_vec(), "h:1:2: read error: invalid UTF-8"),
        (b"#\\".to_vec(), "h:1:1: read error: `#\\` at the end of the source"),
        (b"(a . ".to_vec(), "h:1:1: read error: this list is never closed"),
        (b"#(1 2".to_vec(), "h:1:1: read error: this vector is never closed"),
    ];
    for (src, want) in cases {
        let got = small_stack(move || read_all(src, "h").unwrap_err().to_string());
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
}

#[test]
fn the_fuzz_corpus_replays_without_panics() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/lisp_read");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for r in Reader::new(&bytes, "corpus").max_depth(500) {
            match r {
                Ok(d) => {
                    let printed = d.to_string();
                    let again = read_all(&printed, "printed").unwrap();
                    assert_eq!(again[0].to_string(), printed, "print then read is stable");
                }
                Err(e) => assert!(e.span.offset <= bytes.len(), "{e}"),
            }
        }
        n += 1;
    }
    assert!(n >= 7, "the corpus has its seeds");
}
