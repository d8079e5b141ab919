//! JavaScript regular expressions for `{@string.search}`, run in linear time.
//!
//! A backtracking engine (JavaScript's, or `regress`, which follows it) takes
//! exponential time on patterns like `(a+)+$`, and a map must not hang a backend. So a
//! pattern is checked with `regress` (JavaScript's syntax and its error messages) and
//! then translated into the `regex` crate's syntax, whose automata match in time linear
//! in the text. The translation keeps JavaScript's meaning of `.`, `\d`, `\w`, `\s`,
//! `\b`, `^`, `$` and the escapes. Backreferences and lookaround have no linear-time
//! engine: a pattern that uses them is refused with an error that says so. `search`
//! only needs where the leftmost match starts, which is the same under any matching
//! discipline, so greedy, lazy and alternation order need no care.

use std::cell::RefCell;

use crate::limits::MAX_PATTERN_BYTES;

/// JavaScript's `\s`: white space and line terminators.
const JS_SPACE: &str = r"\t\n\x0B\x0C\r\x20\xA0\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";
/// Matches nothing (a lone surrogate, which a Rust string never holds; `[]`).
const NOTHING: &str = r"[^\x{0}-\x{10FFFF}]";
/// How big the compiled automaton may get (the `regex` crate errors past it).
const SIZE_LIMIT: usize = 4 << 20;

/// The UTF-16 index where the leftmost match of `pattern` in `text` starts (-1 when
/// there is none), or the error `search` throws.
pub fn search(text: &str, pattern: &str) -> Result<f64, String> {
    thread_local! {
        static LAST: RefCell<Option<(String, regex::Regex)>> = const { RefCell::new(None) };
    }
    let cached = LAST.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|(p, _)| p == pattern)
            .map(|(_, r)| r.clone())
    });
    let re = match cached {
        Some(r) => r,
        None => {
            let r = compile(pattern)?;
            LAST.with(|l| *l.borrow_mut() = Some((pattern.to_string(), r.clone())));
            r
        }
    };
    Ok(match re.find(text) {
        Some(m) => text[..m.start()].encode_utf16().count() as f64,
        None => -1.0,
    })
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "regular expression too long ({} bytes; at most {MAX_PATTERN_BYTES})",
            pattern.len()
        ));
    }
    // JavaScript's syntax, and the mode it is read in: with the `u` flag when it is
    // valid there (code points), else as a plain pattern (Annex B)
    let unicode = if regress::Regex::with_flags(pattern, "u").is_ok() {
        true
    } else {
        regress::Regex::new(pattern)
            .map_err(|e| format!("SyntaxError: Invalid regular expression: /{pattern}/: {e}"))?;
        false
    };
    let translated = translate(pattern, unicode)
        .map_err(|why| format!("regular expression /{pattern}/ is not supported: {why}"))?;
    regex::RegexBuilder::new(&translated)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|_| format!("regular expression too complex: /{pattern}/"))
}

fn hex(c: u32) -> String {
    format!(r"\x{{{c:X}}}")
}

fn is_hex(c: char) -> bool {
    c.is_ascii_hexdigit()
}

/// A character class escape (`\d` and the others) as a `regex` class, or None.
fn class_escape(c: char) -> Option<String> {
    Some(match c {
        'd' => "[0-9]".into(),
        'D' => "[^0-9]".into(),
        'w' => "[A-Za-z0-9_]".into(),
        'W' => "[^A-Za-z0-9_]".into(),
        's' => format!("[{JS_SPACE}]"),
        'S' => format!("[^{JS_SPACE}]"),
        _ => return None,
    })
}

/// What one escape (after the backslash, at `chars[i]`) stands for: a code point, a
/// class, or (outside classes) an assertion. Returns the pattern text and the index
/// after the escape.
enum Atom {
    Char(u32),
    Class(String),
    Raw(String),
}

fn escape(
    chars: &[char],
    i: usize,
    unicode: bool,
    in_class: bool,
) -> Result<(Atom, usize), String> {
    let Some(&c) = chars.get(i) else {
        return Err("a trailing backslash".into());
    };
    let hex_at = |from: usize, n: usize| -> Option<u32> {
        let s: String = chars.get(from..from + n)?.iter().collect();
        if s.len() == n && s.chars().all(is_hex) {
            u32::from_str_radix(&s, 16).ok()
        } else {
            None
        }
    };
    Ok(match c {
        'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
            (Atom::Class(class_escape(c).unwrap_or_default()), i + 1)
        }
        'b' if in_class => (Atom::Char(8), i + 1),
        'b' => (Atom::Raw(r"(?-u:\b)".into()), i + 1),
        'B' if !in_class => (Atom::Raw(r"(?-u:\B)".into()), i + 1),
        'n' => (Atom::Char(10), i + 1),
        'r' => (Atom::Char(13), i + 1),
        't' => (Atom::Char(9), i + 1),
        'v' => (Atom::Char(11), i + 1),
        'f' => (Atom::Char(12), i + 1),
        '0' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => (Atom::Char(0), i + 1),
        '0'..='9' => {
            return Err("backreferences (and octal escapes) have no linear-time engine".into())
        }
        'k' if unicode || chars.get(i + 1) == Some(&'<') => {
            return Err("backreferences have no linear-time engine".into())
        }
        'x' => match hex_at(i + 1, 2) {
            Some(v) => (Atom::Char(v), i + 3),
            None => (Atom::Char('x' as u32), i + 1),
        },
        'u' => {
            if unicode && chars.get(i + 1) == Some(&'{') {
                let close = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or("an unterminated \\u{…}")?;
                let s: String = chars[i + 2..i + 2 + close].iter().collect();
                let v = u32::from_str_radix(&s, 16).map_err(|_| "a malformed \\u{…}")?;
                (Atom::Char(v), i + 3 + close)
            } else if let Some(v) = hex_at(i + 1, 4) {
                // a surrogate pair written as two escapes is one code point
                if (0xD800..0xDC00).contains(&v)
                    && chars.get(i + 5) == Some(&'\\')
                    && chars.get(i + 6) == Some(&'u')
                {
                    if let Some(lo) = hex_at(i + 7, 4).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                        let cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                        return Ok((Atom::Char(cp), i + 11));
                    }
                }
                (Atom::Char(v), i + 5)
            } else {
                (Atom::Char('u' as u32), i + 1)
            }
        }
        'c' => match chars.get(i + 1) {
            Some(l) if l.is_ascii_alphabetic() => (Atom::Char(*l as u32 % 32), i + 2),
            _ => return Err("a \\c escape without a letter".into()),
        },
        'p' | 'P' if unicode => {
            let close = chars[i + 1..]
                .iter()
                .position(|&c| c == '}')
                .ok_or("an unterminated \\p{…}")?;
            let body: String = chars[i + 1..i + 2 + close].iter().collect();
            (Atom::Class(format!(r"\{c}{body}")), i + 2 + close)
        }
        other => (Atom::Char(other as u32), i + 1),
    })
}

fn atom_text(a: Atom) -> String {
    match a {
        // a lone surrogate never matches a Rust string
        Atom::Char(v) if (0xD800..0xE000).contains(&v) => NOTHING.into(),
        Atom::Char(v) => hex(v),
        Atom::Class(s) | Atom::Raw(s) => s,
    }
}

/// A `{n}`, `{n,}` or `{n,m}` quantifier at `chars[i]`: its length.
fn quantifier_len(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let digits = |j: &mut usize| {
        let s = *j;
        while chars.get(*j).is_some_and(char::is_ascii_digit) {
            *j += 1;
        }
        *j > s
    };
    if !digits(&mut j) {
        return None;
    }
    if chars.get(j) == Some(&',') {
        j += 1;
        digits(&mut j);
    }
    (chars.get(j) == Some(&'}')).then_some(j + 1 - i)
}

/// A JavaScript pattern (already valid JavaScript) in the `regex` crate's syntax. No
/// recursion: groups only change brackets.
fn translate(pattern: &str, unicode: bool) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() * 4);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let (a, next) = escape(&chars, i + 1, unicode, false)?;
                out.push_str(&atom_text(a));
                i = next;
            }
            '.' => {
                out.push_str(r"[^\n\r\x{2028}\x{2029}]");
                i += 1;
            }
            '(' => {
                let rest: String = chars[i..chars.len().min(i + 4)].iter().collect();
                if rest.starts_with("(?=")
                    || rest.starts_with("(?!")
                    || rest.starts_with("(?<=")
                    || rest.starts_with("(?<!")
                {
                    return Err("lookaround has no linear-time engine".into());
                }
                if rest.starts_with("(?:") {
                    i += 3;
                } else if rest.starts_with("(?<") {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == '>')
                        .ok_or("an unterminated group name")?;
                    i += close + 1;
                } else {
                    i += 1;
                }
                // groups capture nothing `search` needs
                out.push_str("(?:");
            }
            ')' | '|' | '^' | '$' | '*' | '+' | '?' => {
                out.push(c);
                i += 1;
            }
            '{' => match quantifier_len(&chars, i) {
                Some(n) => {
                    out.extend(&chars[i..i + n]);
                    i += n;
                }
                None => {
                    out.push_str(r"\{");
                    i += 1;
                }
            },
            '[' => {
                i = class(&chars, i + 1, unicode, &mut out)?;
            }
            other => {
                out.push_str(&hex(other as u32));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// A class, from after its `[`; returns the index after its `]`.
fn class(chars: &[char], mut i: usize, unicode: bool, out: &mut String) -> Result<usize, String> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut items: Vec<String> = vec![];
    // the previous item, when it is a single code point a range can start from
    let mut prev: Option<u32> = None;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("an unterminated character class".into());
        };
        if c == ']' {
            i += 1;
            break;
        }
        let (atom, next) = if c == '\\' {
            escape(chars, i + 1, unicode, true)?
        } else {
            (Atom::Char(c as u32), i + 1)
        };
        // a range: the previous code point, '-', this one
        if c == '-' && prev.is_some() && chars.get(next).is_some_and(|&n| n != ']') {
            let (hi_atom, after) = if chars[next] == '\\' {
                escape(chars, next + 1, unicode, true)?
            } else {
                (Atom::Char(chars[next] as u32), next + 1)
            };
            if let (Some(lo), Atom::Char(hi)) = (prev, &hi_atom) {
                items.pop();
                let (lo, hi) = (lo.min(0x10FFFF), (*hi).min(0x10FFFF));
                if !(0xD800..0xE000).contains(&lo) && !(0xD800..0xE000).contains(&hi) && lo <= hi {
                    items.push(format!("{}-{}", hex(lo), hex(hi)));
                }
                prev = None;
                i = after;
                continue;
            }
        }
        prev = match atom {
            Atom::Char(v) => Some(v),
            _ => None,
        };
        match atom {
            Atom::Char(v) if (0xD800..0xE000).contains(&v) => items.push(String::new()),
            Atom::Char(v) => items.push(hex(v)),
            Atom::Class(s) => items.push(s),
            Atom::Raw(_) => return Err("an assertion inside a character class".into()),
        }
        i = next;
    }
    let body: String = items.concat();
    match (negated, body.is_empty()) {
        // [] matches nothing, [^] anything
        (false, true) => out.push_str(NOTHING),
        (true, true) => out.push_str("(?s:.)"),
        (false, false) => out.push_str(&format!("[{body}]")),
        (true, false) => out.push_str(&format!("[^{body}]")),
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_find_what_javascript_finds() {
        for (text, pattern, at) in [
            ("hello", "l+", 2.0),
            ("hello", "z", -1.0),
            ("abc123", r"\d", 3.0),
            ("😀a", "a", 2.0),
            ("a.b", ".", 0.0),
            ("a.b", r"\.", 1.0),
            ("x y", r"\s", 1.0),
            ("x\u{a0}y", r"\s", 1.0),
            ("é1", r"\w", 1.0),
            ("foo bar", r"\bbar", 4.0),
            ("abc", "[^a]", 1.0),
            ("a-b", "[-]", 1.0),
            ("a-b", r"[\-x]", 1.0),
            ("abc", "[]", -1.0),
            ("abc", "[^]", 0.0),
            ("abc", "c$", 2.0),
            ("abc", "^b", -1.0),
            ("aXb", r"[A-Z]", 1.0),
            ("a{b", "{", 1.0),
            ("ab", "(?:b)", 1.0),
            ("ab", "(?<n>b)", 1.0),
            ("x\ny", "x.y", -1.0),
            ("😀", r"\u{1F600}", 0.0),
            ("a😀", r"\uD83D\uDE00", 1.0),
            ("tab\there", r"\t", 3.0),
            ("", "", 0.0),
            ("aaa", "a{2}", 0.0),
        ] {
            assert_eq!(search(text, pattern), Ok(at), "/{pattern}/ in {text:?}");
        }
    }

    #[test]
    fn catastrophic_patterns_run_in_linear_time() {
        let text = "a".repeat(100_000) + "!";
        let t = std::time::Instant::now();
        for p in ["(a+)+$", "(a*)*b", "(.*a){20}$", "(\\w+\\s?)+$"] {
            assert_eq!(search(&text, p), Ok(-1.0), "{p}");
        }
        // matches the empty string at the end
        assert_eq!(search(&text, "(a|a)*$"), Ok(100_001.0));
        assert!(t.elapsed().as_secs() < 10, "{:?}", t.elapsed());
    }

    #[test]
    fn backreferences_and_lookaround_are_refused() {
        for p in [
            r"(a)\1",
            "(?=a)",
            "(?!a)",
            "(?<=a)b",
            "(?<!a)b",
            r"(?<x>a)\k<x>",
        ] {
            let e = search("aa", p).unwrap_err();
            assert!(e.contains("not supported"), "{p}: {e}");
        }
    }

    #[test]
    fn long_and_invalid_patterns_are_errors() {
        let e = search("a", &"a".repeat(MAX_PATTERN_BYTES + 1)).unwrap_err();
        assert!(e.contains("too long"), "{e}");
        let e = search("x", "(").unwrap_err();
        assert!(e.contains("Invalid regular expression: /(/"), "{e}");
    }
}
