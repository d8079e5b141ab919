//! `{@array.sort}`: the original's comparator, run the way V8's `Array.prototype.sort`
//! runs it. The comparator is not a consistent order for every list (NaN, or a string
//! against a number, is "after" both ways round), so the result depends on which pairs
//! the sort compares; for lists under 64 elements this makes V8's comparisons exactly.

use std::cmp::Ordering;

use crate::js;
use crate::value::Value;

/// V8 sorts a list this short by binary insertion after taking its leading run.
const V8_INSERTION_LIMIT: usize = 64;

type Compare<'a> = &'a dyn Fn(&Value, &Value) -> Ordering;

/// The original's comparator: equal values (`===`) tie; null sorts first going up and
/// last going down; two strings compare with localeCompare; anything else is before
/// when `<` holds going up (`>` going down) and after otherwise.
pub(crate) fn compare(a: &Value, b: &Value, ascending: bool) -> Ordering {
    if js::strict_eq(a, b) {
        return Ordering::Equal;
    }
    let nullish_first = if ascending {
        Ordering::Less
    } else {
        Ordering::Greater
    };
    if a.is_nullish() {
        return nullish_first;
    }
    if b.is_nullish() {
        return nullish_first.reverse();
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) if ascending => js::locale_compare(x, y),
        (Value::Str(x), Value::Str(y)) => js::locale_compare(y, x),
        _ if ascending && js::lt(a, b) || !ascending && js::gt(a, b) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// `Array.prototype.sort(cmp)` in V8: undefined elements are set aside (the comparator
/// never sees them) and put last; the rest are sorted stably. Lists of 64 elements or
/// more are merge-sorted here, which matches V8's TimSort whenever the comparator is
/// consistent for the list.
pub(crate) fn v8_sort(items: Vec<Value>, cmp: Compare) -> Vec<Value> {
    let (mut defined, undefined): (Vec<Value>, Vec<Value>) = items
        .into_iter()
        .partition(|v| !matches!(v, Value::Undefined));
    if defined.len() < V8_INSERTION_LIMIT {
        let run = leading_run(&mut defined, cmp);
        binary_insertion(&mut defined, run, cmp);
    } else {
        defined = merge_sort(defined, cmp);
    }
    defined.extend(undefined);
    defined
}

/// V8's CountAndMakeRun: the length of the longest ascending (or strictly descending,
/// then reversed) prefix.
fn leading_run(v: &mut [Value], cmp: Compare) -> usize {
    if v.len() < 2 {
        return v.len();
    }
    let descending = cmp(&v[1], &v[0]) == Ordering::Less;
    let mut n = 2;
    while n < v.len() && (cmp(&v[n], &v[n - 1]) == Ordering::Less) == descending {
        n += 1;
    }
    if descending {
        v[..n].reverse();
    }
    n
}

/// V8's BinaryInsertionSort: each element after the sorted prefix goes after every
/// element it does not compare before.
fn binary_insertion(v: &mut [Value], sorted: usize, cmp: Compare) {
    for i in sorted.max(1)..v.len() {
        let (mut lo, mut hi) = (0, i);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if cmp(&v[i], &v[mid]) == Ordering::Less {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        v[lo..=i].rotate_right(1);
    }
}

/// A stable merge sort that takes the left element unless the right one compares before
/// it (never panics on an inconsistent comparator, unlike `slice::sort_by`).
fn merge_sort(mut left: Vec<Value>, cmp: Compare) -> Vec<Value> {
    if left.len() < 2 {
        return left;
    }
    let right = merge_sort(left.split_off(left.len() / 2), cmp);
    let left = merge_sort(left, cmp);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
        let next = if cmp(b, a) == Ordering::Less {
            r.next()
        } else {
            l.next()
        };
        out.extend(next);
    }
    out.extend(l);
    out.extend(r);
    out
}
