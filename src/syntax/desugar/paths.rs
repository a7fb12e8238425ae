//! `path NAME extends BASE { ... }` and `template NAME { ... }`: a path
//! takes the settings and stages of its base (a path or a template, which
//! may extend another in turn) and states only what differs. A setting it
//! gives replaces the base's in place, a new one is added; a stage named
//! like one of the base's, or declared `stage NEW replaces OLD`, takes
//! that stage's place in the order, a new one is added at the end.
//! `stages NAME;` puts the stages of template NAME (with its bases') at
//! that place among the path's own. Templates are not traced: none is left
//! in the program.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Result, Span};
use crate::syntax::ast::{Item, PathDecl, StageDecl};

/// The items with every path's base merged into it and the templates gone.
pub(super) fn extend(items: Vec<Item>) -> Result<Vec<Item>> {
    let mut declared: HashMap<&str, &PathDecl> = HashMap::new();
    for item in &items {
        let Item::Path(path) = item else { continue };
        if declared.insert(&path.name, path).is_some() {
            return Err(Diagnostic::at(
                path.span,
                format!("path {} is declared twice", path.name),
            ));
        }
    }
    let mut resolved = HashMap::new();
    for item in &items {
        if let Item::Path(path) = item {
            resolve(&path.name, &declared, &mut resolved, &mut Vec::new())?;
        }
    }
    Ok(items
        .into_iter()
        .filter_map(|item| match item {
            Item::Path(path) if path.template => None,
            Item::Path(path) => resolved.remove(&path.name).map(Item::Path),
            other => Some(other),
        })
        .collect())
}

/// Puts path `name`, merged with its bases and the stages it includes,
/// into `resolved`.
fn resolve(
    name: &str,
    declared: &HashMap<&str, &PathDecl>,
    resolved: &mut HashMap<String, PathDecl>,
    chain: &mut Vec<String>,
) -> Result<()> {
    if resolved.contains_key(name) {
        return Ok(());
    }
    chain.push(name.to_string());
    let mut own = declared[name].clone();
    for include in std::mem::take(&mut own.includes).iter().rev() {
        refer(&include.name, include.span, declared, resolved, chain)?;
        let stages = resolved[&include.name].stages.clone();
        own.stages.splice(include.at..include.at, stages);
    }
    let merged = match own.base.clone() {
        Some((base, span)) => {
            refer(&base, span, declared, resolved, chain)?;
            merge(&resolved[&base], &own)?
        }
        None => match own.stages.iter().find(|s| s.replaces.is_some()) {
            Some(stage) => {
                return Err(Diagnostic::at(
                    stage.span,
                    format!(
                        "stage {} replaces a stage, but path {} extends no other",
                        stage.name, name
                    ),
                ))
            }
            None => own,
        },
    };
    chain.pop();
    resolved.insert(name.to_string(), merged);
    Ok(())
}

/// Resolves the path `target` that the last path of `chain` names at `at`
/// (as its base or for its stages).
fn refer(
    target: &str,
    at: Span,
    declared: &HashMap<&str, &PathDecl>,
    resolved: &mut HashMap<String, PathDecl>,
    chain: &mut Vec<String>,
) -> Result<()> {
    if chain.iter().any(|n| n == target) {
        chain.push(target.to_string());
        return Err(Diagnostic::at(
            at,
            format!(
                "paths take from each other in a circle ({})",
                chain.join(" -> ")
            ),
        ));
    }
    if !declared.contains_key(target) {
        return Err(Diagnostic::at(
            at,
            format!("no path or template is named {}", target),
        ));
    }
    resolve(target, declared, resolved, chain)
}

/// `own` with the settings and stages it takes from `base`.
fn merge(base: &PathDecl, own: &PathDecl) -> Result<PathDecl> {
    let mut options = base.options.clone();
    for (setting, value) in &own.options {
        match options.iter_mut().find(|(name, _)| name == setting) {
            Some(slot) => slot.1 = value.clone(),
            None => options.push((setting.clone(), value.clone())),
        }
    }
    let mut stages = base.stages.clone();
    for stage in &own.stages {
        let replaced = stage.replaces.as_ref().map_or(&stage.name, |(old, _)| old);
        let merged = StageDecl {
            replaces: None,
            ..stage.clone()
        };
        match (
            stages.iter().position(|s| &s.name == replaced),
            &stage.replaces,
        ) {
            (Some(i), _) => stages[i] = merged,
            (None, None) => stages.push(merged),
            (None, Some((old, at))) => {
                return Err(Diagnostic::at(
                    *at,
                    format!(
                        "stage {} replaces {}, but {} has no stage {}",
                        stage.name, old, base.name, old
                    ),
                ))
            }
        }
    }
    Ok(PathDecl {
        base: None,
        options,
        stages,
        ..own.clone()
    })
}
