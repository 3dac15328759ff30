//! The index of the largest value, for every place that turns scores into a label.

/// The index of the largest value; ties go to the **first** maximum (the lowest
/// index), as `numpy.argmax` and `torch.argmax` break them, so that a label
/// order decides ties the same way everywhere. NaN counts as smaller than every
/// number. Empty input gives 0.
pub fn argmax<T: PartialOrd + Copy>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate().skip(1) {
        // `v > best` keeps the first maximum and never lets NaN win; a NaN
        // that got there first gives way to the first number.
        if v > values[best] || is_nan(values[best]) && !is_nan(v) {
            best = i;
        }
    }
    best
}

/// NaN is the one value that is not comparable with itself.
fn is_nan<T: PartialOrd>(x: T) -> bool {
    x.partial_cmp(&x).is_none()
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn the_first_maximum_wins_a_tie() {
        assert_eq!(argmax(&[0.2f32, 0.4, 0.4]), 1);
        assert_eq!(argmax(&[1.0f64, 1.0, 1.0]), 0);
        assert_eq!(argmax(&[-3.0f32, -1.0, -2.0]), 1);
        assert_eq!(argmax::<f32>(&[]), 0);
    }

    #[test]
    fn nan_never_wins() {
        assert_eq!(argmax(&[f32::NAN, 0.1, 0.3]), 2);
        assert_eq!(argmax(&[0.5f64, f64::NAN, 0.3]), 0);
    }
}
