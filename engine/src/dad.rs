//! Dimensional addresses. An activity's address has one segment per depth: the trigger
//! is `,0`, its children `,0,0`, and so on. A cycle re-enters its ancestor under a new
//! last segment (`,0,1`, `,0,2`, …), so every iteration's descendants get fresh rows and
//! earlier iterations stay readable.

/// The trigger's address.
pub const ROOT: &str = ",0";

/// The address of a child of the activity at `dad`.
pub fn child(dad: &str) -> String {
    format!("{dad},0")
}

/// The number of segments (the trigger has 1).
pub fn segments(dad: &str) -> usize {
    dad.matches(',').count()
}

/// The address of the ancestor at `depth` (0 = the trigger) of the activity at `dad`:
/// the first `depth + 1` segments.
pub fn ancestor(dad: &str, depth: usize) -> &str {
    let mut seen = 0;
    for (i, c) in dad.char_indices() {
        if c == ',' {
            if seen == depth + 1 {
                return &dad[..i];
            }
            seen += 1;
        }
    }
    dad
}

/// `dad` with its last segment replaced by `index` (`,0,3` + 5 = `,0,5`).
pub fn with_index(dad: &str, index: u32) -> String {
    match dad.rfind(',') {
        Some(i) => format!("{},{index}", &dad[..i]),
        None => format!(",{index}"),
    }
}

/// Whether `dad` is a well-formed address: `,n` repeated, n a small integer.
pub fn valid(dad: &str) -> bool {
    dad.starts_with(',')
        && dad[1..]
            .split(',')
            .all(|s| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(child(ROOT), ",0,0");
        assert_eq!(segments(",0,0,1"), 3);
        assert_eq!(ancestor(",0,2,0,1", 0), ",0");
        assert_eq!(ancestor(",0,2,0,1", 1), ",0,2");
        assert_eq!(ancestor(",0,2,0,1", 3), ",0,2,0,1");
        assert_eq!(ancestor(",0,2", 5), ",0,2");
        assert_eq!(with_index(",0,0", 7), ",0,7");
        assert!(valid(",0,12"));
        assert!(!valid("0,1") && !valid(",") && !valid(",a") && !valid(",0,"));
    }
}
