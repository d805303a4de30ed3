//! One readable line from an error and its causes. HTTP and SDK errors put the useful part
//! ("connection refused", "certificate not valid") deep in the source chain.

/// `outer: cause: root cause`, skipping causes already contained in the text so far.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_are_joined_once() {
        let e = Outer(std::io::Error::other("refused"));
        assert_eq!(one_line(&e), "outer: refused");
    }
}
