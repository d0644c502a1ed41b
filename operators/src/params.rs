//! Range checks shared by every configurable operator, so their messages read the same.

use crate::error::{Error, Result};

/// Each value must be finite and > 0.
pub(crate) fn positive(what: &str, values: &[(&str, f64)]) -> Result<()> {
    match values.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
        Some((name, value)) => Err(Error::config(
            what,
            format!("{name} must be positive, not {value}"),
        )),
        None => Ok(()),
    }
}

/// Each value must be finite and ≥ 0.
pub(crate) fn non_negative(what: &str, values: &[(&str, f64)]) -> Result<()> {
    match values.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
        Some((name, value)) => Err(Error::config(
            what,
            format!("{name} must be zero or positive, not {value}"),
        )),
        None => Ok(()),
    }
}

/// A smoothing factor must lie in (0, 1].
pub(crate) fn alpha(what: &str, alpha: f64) -> Result<()> {
    if alpha > 0.0 && alpha <= 1.0 {
        Ok(())
    } else {
        Err(Error::config(
            what,
            format!("alpha must be in (0, 1], not {alpha}"),
        ))
    }
}
