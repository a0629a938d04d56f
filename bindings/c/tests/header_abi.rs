//! The C header is written by hand for people (comments, grouping); this test checks it against the ABI the Rust
//! code exports, so the two cannot drift: every exported `qds_*` function is declared with the same parameters and
//! return type (by C type, in order), every declared one is exported, every `#[repr(C)]` options/info struct has the
//! same fields of the same types in the same order, and every status code has the same value.

use std::collections::BTreeMap;

const HEADER: &str = include_str!("../include/qadataswap/qadataswap.h");
const SOURCES: &[&str] = &[
    include_str!("../src/lib.rs"),
    include_str!("../src/error.rs"),
    include_str!("../src/export.rs"),
    include_str!("../src/snapshot.rs"),
    include_str!("../src/stream.rs"),
];

/// `QdsStreamWriterOptions` -> `qds_stream_writer_options`.
fn c_name_of(rust: &str) -> String {
    let mut out = String::new();
    for (i, ch) in rust.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// A Rust FFI type as the C type it must be declared as (whitespace-free, `const` kept).
fn c_type_of(rust: &str) -> String {
    let t = rust.trim();
    if let Some(rest) = t.strip_prefix("*const ") {
        let inner = c_type_of(rest);
        // `*const *const T` is `const T* const*` in C, which the header does not use.
        return format!("const{inner}*");
    }
    if let Some(rest) = t.strip_prefix("*mut ") {
        return format!("{}*", c_type_of(rest));
    }
    match t {
        "c_char" | "std::ffi::c_char" | "libc::c_char" => "char".into(),
        "c_int" | "std::ffi::c_int" | "i32" => "int".into(),
        "usize" => "size_t".into(),
        "i64" => "int64_t".into(),
        "u64" => "uint64_t".into(),
        "u32" => "uint32_t".into(),
        "()" | "" => "void".into(),
        "FFI_ArrowArrayStream" => "structArrowArrayStream".into(),
        "FFI_ArrowArray" => "structArrowArray".into(),
        "FFI_ArrowSchema" => "structArrowSchema".into(),
        "QdsStatus" => "qds_status".into(),
        other if other.starts_with("Qds") => c_name_of(other),
        other => panic!("no C type known for the Rust type `{other}`: extend c_type_of"),
    }
}

/// Normalises a C type as written in the header: no spaces, `const T *` -> `constT*`.
fn norm_c(t: &str) -> String {
    t.split_whitespace().collect::<String>()
}

fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i + 2..]
            .split_once("*/")
            .map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Splits `type name` (the last identifier is the name), keeping pointers with the type.
fn split_param(p: &str) -> (String, String) {
    let p = p.trim();
    let at = p
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    (norm_c(&p[..at]), p[at..].to_owned())
}

type Signature = (String, Vec<String>);

/// `name -> (return type, parameter types)` of every `qds_*` declaration in the header.
fn header_functions() -> BTreeMap<String, Signature> {
    let text = strip_comments(HEADER);
    let mut out = BTreeMap::new();
    for stmt in text.split(';') {
        let stmt = stmt.trim();
        let Some(open) = stmt.find('(') else { continue };
        let head = &stmt[..open];
        if head.contains("typedef")
            || head.contains('{')
            || head.contains('}')
            || head.contains('#')
        {
            continue;
        }
        let (ret, name) = split_param(head);
        if !name.starts_with("qds_") {
            continue;
        }
        let args = stmt[open + 1..].trim_end().trim_end_matches(')');
        let params = if args.trim() == "void" {
            Vec::new()
        } else {
            args.split(',').map(|a| split_param(a).0).collect()
        };
        out.insert(name, (ret, params));
    }
    out
}

/// The same, from the Rust sources: every `extern "C" fn qds_*`.
fn exported_functions() -> BTreeMap<String, Signature> {
    let mut out = BTreeMap::new();
    for src in SOURCES {
        let mut rest = *src;
        while let Some(i) = rest.find("extern \"C\" fn qds_") {
            rest = &rest[i + "extern \"C\" fn ".len()..];
            let open = rest.find('(').unwrap();
            let name = rest[..open].trim().to_owned();
            // The parameter list ends at the parenthesis that closes the one at `open`.
            let mut depth = 0;
            let mut close = open;
            for (j, ch) in rest[open..].char_indices() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            close = open + j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let params: Vec<String> = rest[open + 1..close]
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| c_type_of(p.split_once(':').expect("name: type").1))
                .collect();
            let after = rest[close + 1..].trim_start();
            let ret = match after.strip_prefix("->") {
                Some(r) => c_type_of(r.split('{').next().unwrap().trim()),
                None => "void".into(),
            };
            out.insert(name, (ret, params));
        }
    }
    out
}

#[test]
fn every_exported_function_is_declared_in_the_header_with_the_same_c_types_and_no_other_is() {
    let header = header_functions();
    let exported = exported_functions();
    assert!(
        exported.len() >= 40,
        "found only {} exported functions: the scan broke",
        exported.len()
    );
    let mut problems = Vec::new();
    for (name, sig) in &exported {
        match header.get(name) {
            None => problems.push(format!(
                "{name} is exported but not declared in qadataswap.h"
            )),
            Some(h) if h != sig => problems.push(format!(
                "{name}: the header declares {} ({}), the Rust code exports {} ({})",
                h.0,
                h.1.join(", "),
                sig.0,
                sig.1.join(", ")
            )),
            Some(_) => {}
        }
    }
    for name in header.keys() {
        if !exported.contains_key(name) {
            problems.push(format!(
                "{name} is declared in qadataswap.h but not exported"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "header and ABI disagree:\n{}",
        problems.join("\n")
    );
}

/// `qds_x -> [(field type, field name)]` of the header's `typedef struct qds_x { ... } qds_x;`.
fn header_structs() -> BTreeMap<String, Vec<(String, String)>> {
    let text = strip_comments(HEADER);
    let mut out = BTreeMap::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("typedef struct qds_") {
        rest = &rest[i + "typedef struct ".len()..];
        let Some(brace) = rest.find('{') else { break };
        let name = rest[..brace].trim().to_owned();
        if name.contains(';') {
            continue; // an opaque handle: `typedef struct qds_x qds_x;`
        }
        let body = &rest[brace + 1..rest.find('}').unwrap()];
        let fields = body
            .split(';')
            .filter(|f| !f.trim().is_empty())
            .map(split_param)
            .collect();
        out.insert(name, fields);
    }
    out
}

/// The same from the Rust `#[repr(C)] pub struct Qds...`.
fn exported_structs() -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for src in SOURCES {
        let mut rest = *src;
        while let Some(i) = rest.find("#[repr(C)]") {
            rest = &rest[i..];
            let Some(s) = rest.find("pub struct Qds") else {
                break;
            };
            let decl = &rest[s + "pub struct ".len()..];
            rest = &rest[s + 1..];
            let Some(brace) = decl.find('{') else {
                continue;
            };
            let name = decl[..brace].trim();
            let body = &decl[brace + 1..decl.find("\n}").unwrap()];
            let fields = body
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("pub "))
                .map(|l| {
                    let (n, t) = l.trim_start_matches("pub ").split_once(':').unwrap();
                    (c_type_of(t.trim_end_matches(',')), n.trim().to_owned())
                })
                .collect();
            out.insert(c_name_of(name), fields);
        }
    }
    out
}

#[test]
fn every_repr_c_struct_has_the_header_fields_in_order_with_the_same_c_types() {
    let header = header_structs();
    let exported = exported_structs();
    assert!(
        exported.len() >= 6,
        "found only {} structs: the scan broke",
        exported.len()
    );
    for (name, fields) in &exported {
        let h = header.get(name).unwrap_or_else(|| {
            panic!("{name} is a #[repr(C)] struct of the ABI but not in qadataswap.h")
        });
        assert_eq!(
            h, fields,
            "{name}: header fields (left) and Rust fields (right) differ"
        );
    }
}

#[test]
fn every_status_code_has_the_same_value_in_the_header_and_the_abi() {
    let text = strip_comments(HEADER);
    let body = text
        .split_once("typedef enum qds_status {")
        .and_then(|(_, b)| b.split_once('}'))
        .unwrap()
        .0;
    let header: BTreeMap<String, i64> = body
        .split(',')
        .filter_map(|e| e.split_once('='))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().parse().unwrap()))
        .collect();
    let error_rs = SOURCES[1];
    let enum_body = error_rs
        .split_once("pub enum QdsStatus {")
        .and_then(|(_, b)| b.split_once("\n}"))
        .unwrap()
        .0;
    let exported: BTreeMap<String, i64> = enum_body
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (n, v) = l.trim_end_matches(',').split_once('=').unwrap();
            (n.trim().to_owned(), v.trim().parse().unwrap())
        })
        .collect();
    assert!(
        exported.len() >= 10,
        "found only {} status codes",
        exported.len()
    );
    let header_values: Vec<i64> = header.values().copied().collect();
    let mut exported_values: Vec<i64> = exported.values().copied().collect();
    exported_values.sort_unstable();
    let mut hv = header_values.clone();
    hv.sort_unstable();
    assert_eq!(
        hv, exported_values,
        "status values: header {header:?}, ABI {exported:?}"
    );
    // And by name: QdsStatus::ReadersBehind is QDS_ERR_READERS_BEHIND, NoFrame is QDS_NO_FRAME, Ok is QDS_OK.
    for (name, value) in &exported {
        let snake = c_name_of(name).to_ascii_uppercase();
        let found = header.iter().find(|(c, _)| {
            c.strip_prefix("QDS_ERR_")
                .or_else(|| c.strip_prefix("QDS_"))
                .is_some_and(|rest| rest == snake)
        });
        assert_eq!(
            found.map(|(_, v)| v),
            Some(value),
            "QdsStatus::{name} = {value}: no QDS_*{snake} = {value} in the header"
        );
    }
}
