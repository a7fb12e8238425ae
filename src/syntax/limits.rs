//! Nesting limits, checked before the AST is built. The builder and every
//! later stage recurse once per level of nesting, on stacks of their own
//! ([`crate::stack`]) sized for the deepest script these limits accept;
//! the parser itself stops with "nested too deeply" if its stack runs short
//! first.
//!
//! Two limits, both counted on the parse tree:
//! - [`MAX_NESTING`] bounds expressions and blocks inside one another
//!   (parentheses, call arguments, brackets, `? :` branches, blocks): the
//!   parser and the AST builder take the most stack per such level.
//! - [`MAX_DEPTH`] bounds the depth of the AST, where a flat operator chain
//!   (`a + b + c`, `- - x`, `a[1][2]`) adds one level per operator because
//!   the AST nests it. Semantic analysis holds the script with its function
//!   calls inlined to the same depth (`sema`'s `Scope::expr`), which bounds
//!   lowering and code generation. Dropping an AST that deep takes a few
//!   hundred KiB of the caller's stack.

use super::parser::Rule;
use crate::diag::{Diagnostic, Result, Span};
use pest::iterators::Pair;

/// Deepest nesting of expressions and blocks inside one another.
pub const MAX_NESTING: usize = 64;

/// Deepest AST, one level per expression, block and chained operator.
pub const MAX_DEPTH: usize = 4096;

/// How many levels of nesting a node adds: one per expression or block.
fn nesting(pair: &Pair<Rule>) -> usize {
    matches!(pair.as_rule(), Rule::expr | Rule::block) as usize
}

/// How many levels of AST depth a node adds: its nesting, and one per
/// operator of a flat operator chain (the AST makes chains of prefixes,
/// postfixes and binary operators nest).
fn depth(pair: &Pair<Rule>) -> usize {
    match pair.as_rule() {
        // `operand (op operand)*`
        Rule::binary => pair.clone().into_inner().count() / 2,
        // `prefix* operand` and `operand postfix*`
        Rule::unary | Rule::postfix_expr => pair.clone().into_inner().count().saturating_sub(1),
        _ => nesting(pair),
    }
}

/// Fails at the first node nested deeper than [`MAX_NESTING`] or
/// [`MAX_DEPTH`]; walks the tree with an explicit stack, so the check
/// itself cannot overflow.
pub fn check_nesting(root: Pair<Rule>) -> Result<()> {
    let mut pending = vec![(root, 0usize, 0usize)];
    while let Some((pair, outer_nesting, outer_depth)) = pending.pop() {
        let nested = outer_nesting + nesting(&pair);
        let deep = outer_depth + depth(&pair);
        let why = if nested > MAX_NESTING {
            format!(
                "more than {MAX_NESTING} levels of parentheses, brackets, calls, \
                 conditionals and blocks"
            )
        } else if deep > MAX_DEPTH {
            format!(
                "more than {MAX_DEPTH} levels, each operator of a chain counting one: \
                 split the expression using variables"
            )
        } else {
            pending.extend(pair.into_inner().map(|child| (child, nested, deep)));
            continue;
        };
        let span = pair.as_span();
        return Err(Diagnostic::at(
            Span::new(span.start(), span.end()),
            format!("nested too deeply ({why})"),
        ));
    }
    Ok(())
}
