//! Nesting limit: deeply nested scripts are rejected before the AST is built,
//! so that neither the builder nor the later (recursive) stages can run out
//! of stack on hostile input.

use super::parser::Rule;
use crate::diag::{Diagnostic, Result, Span};
use pest::iterators::Pair;

/// Deepest nesting of expressions, operators and blocks accepted.
pub const MAX_NESTING: usize = 64;

/// How many levels a node adds to everything below it: one per expression
/// or block, and one per operator of a flat operator chain (the AST makes
/// chains of prefixes, postfixes and binary operators nest).
fn levels(pair: &Pair<Rule>) -> usize {
    match pair.as_rule() {
        Rule::expr | Rule::block => 1,
        // `operand (op operand)*`
        Rule::binary => pair.clone().into_inner().count() / 2,
        // `prefix* operand` and `operand postfix*`
        Rule::unary | Rule::postfix_expr => pair.clone().into_inner().count().saturating_sub(1),
        _ => 0,
    }
}

/// Fails at the first node nested deeper than [`MAX_NESTING`]; walks the
/// tree with an explicit stack, so the check itself cannot overflow.
pub fn check_nesting(root: Pair<Rule>) -> Result<()> {
    let mut pending = vec![(root, 0usize)];
    while let Some((pair, outer)) = pending.pop() {
        let depth = outer + levels(&pair);
        if depth > MAX_NESTING {
            let span = pair.as_span();
            return Err(Diagnostic::at(
                Span::new(span.start(), span.end()),
                format!("nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        pending.extend(pair.into_inner().map(|child| (child, depth)));
    }
    Ok(())
}
