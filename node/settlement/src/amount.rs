//! Amounts of ether as people write them (`0.05eth`, `20gwei`, `1000` wei), for the command line and the API.

use jobmesh_contracts::alloy::primitives::U256;

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a number with an optional unit.
    #[error("bad amount {0:?} (examples: 0.05eth, 20gwei, 1000)")]
    Malformed(String),
    /// Finer than 1 wei.
    #[error("amount {0:?} has more decimals than 1 wei")]
    TooPrecise(String),
    /// More than 2²⁵⁶ − 1 wei.
    #[error("amount {0:?} is too large")]
    TooLarge(String),
    /// Zero.
    #[error("amount must be positive")]
    Zero,
}

/// Parses an amount in wei, gwei or ether (`eth`/`ether`): `1000`, `20gwei`, `0.05eth`. Zero is refused.
pub fn parse_amount(s: &str) -> Result<U256, AmountError> {
    let s = s.trim().to_ascii_lowercase();
    let (num, decimals) = if let Some(n) = s.strip_suffix("ether").or_else(|| s.strip_suffix("eth"))
    {
        (n, 18)
    } else if let Some(n) = s.strip_suffix("gwei") {
        (n, 9)
    } else {
        (s.strip_suffix("wei").unwrap_or(&s), 0)
    };
    let num = num.trim();
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return Err(AmountError::Malformed(s));
    }
    if frac.len() > decimals {
        return Err(AmountError::TooPrecise(s));
    }
    let digits = format!("{int}{frac:0<decimals$}");
    let v = U256::from_str_radix(if digits.is_empty() { "0" } else { &digits }, 10)
        .map_err(|_| AmountError::TooLarge(s.clone()))?;
    if v.is_zero() {
        return Err(AmountError::Zero);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse() {
        assert_eq!(parse_amount("1000").unwrap(), U256::from(1000));
        assert_eq!(
            parse_amount("20gwei").unwrap(),
            U256::from(20_000_000_000u64)
        );
        assert_eq!(
            parse_amount("0.05eth").unwrap(),
            U256::from(50_000_000_000_000_000u64)
        );
        assert_eq!(parse_amount("1 ether").unwrap(), U256::from(10u64.pow(18)));
        assert!(parse_amount("0.1wei").is_err());
        assert!(parse_amount("abc").is_err());
        assert!(parse_amount("0").is_err());
        assert!(parse_amount("-1").is_err());
    }
}
