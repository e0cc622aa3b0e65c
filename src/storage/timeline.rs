//! A ship's timeline as a sorted vector of disjoint constant-power spans,
//! and the one operation the overlap model needs: overwrite the seconds a
//! new batch covers, keeping whatever lies outside it.
//!
//! Invariant: spans in a [`Timeline`] are sorted, disjoint and non-empty.
//! A vector rather than a tree because ships report in time order: the
//! usual batch lands after everything stored and is a plain append, and
//! reads are a binary search and a contiguous slice.

use crate::model::Span;

#[derive(Clone, Debug, Default)]
pub struct Timeline {
    spans: Vec<Span>,
}

impl Timeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces everything in `[span.start_s, span.end_s)` with `span`.
    pub fn overwrite(&mut self, span: Span) {
        self.overwrite_all(std::slice::from_ref(&span));
    }

    /// Overwrites with a batch of sorted, disjoint spans, as if each were
    /// written in turn.
    pub fn overwrite_all(&mut self, batch: &[Span]) {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return;
        };
        debug_assert!(batch.windows(2).all(|w| w[0].end_s <= w[1].start_s));
        if self
            .spans
            .last()
            .is_none_or(|tail| tail.end_s <= first.start_s)
        {
            self.spans.extend_from_slice(batch);
            return;
        }
        // Only spans that intersect the batch's extent can change.
        let from = self.spans.partition_point(|s| s.end_s <= first.start_s);
        let to = self.spans.partition_point(|s| s.start_s < last.end_s);
        let mut merged = Vec::with_capacity(to - from + batch.len() + 2);
        overlay_spans(&self.spans[from..to], batch, &mut merged);
        self.spans.splice(from..to, merged);
    }

    /// Spans that intersect `[start, end)`, clipped to it, ascending.
    pub fn spans_in(&self, start: i64, end: i64, out: &mut Vec<Span>) {
        let from = self.spans.partition_point(|s| s.end_s <= start);
        for span in &self.spans[from..] {
            if span.start_s >= end {
                break;
            }
            out.push(Span {
                start_s: span.start_s.max(start),
                end_s: span.end_s.min(end),
                power_kw: span.power_kw,
            });
        }
    }

    /// Whether any span intersects `[start, end)`.
    pub fn intersects(&self, start: i64, end: i64) -> bool {
        // Most reads ask about older data than a memtable holds: two loads
        // answer them, where a binary search would miss the cache at every
        // probe.
        let (Some(first), Some(last)) = (self.spans.first(), self.spans.last()) else {
            return false;
        };
        if end <= first.start_s || start >= last.end_s {
            return false;
        }
        let from = self.spans.partition_point(|s| s.end_s <= start);
        self.spans.get(from).is_some_and(|span| span.start_s < end)
    }

    pub fn iter(&self) -> impl Iterator<Item = Span> + '_ {
        self.spans.iter().copied()
    }

    pub fn as_slice(&self) -> &[Span] {
        &self.spans
    }
}

/// Applies `overlay` (newer) on top of `base` (older); both sorted and
/// disjoint, and so is the result. Linear in the total length: the parts of
/// base spans that no overlay span covers are merged in time order with the
/// overlay spans.
pub fn overlay_spans(base: &[Span], overlay: &[Span], out: &mut Vec<Span>) {
    if overlay.is_empty() || base.is_empty() {
        out.extend_from_slice(if overlay.is_empty() { base } else { overlay });
        return;
    }
    let mut next_overlay = 0; // overlay spans before this one are already emitted
    let mut first_cover = 0; // first overlay span that may still cover base spans
    for span in base {
        while first_cover < overlay.len() && overlay[first_cover].end_s <= span.start_s {
            first_cover += 1;
        }
        let mut cursor = span.start_s;
        let mut k = first_cover;
        while cursor < span.end_s {
            let (piece_end, resume) = match overlay.get(k) {
                Some(cover) if cover.start_s < span.end_s => {
                    (cover.start_s.max(cursor), cover.end_s)
                }
                _ => (span.end_s, span.end_s),
            };
            if piece_end > cursor {
                while next_overlay < overlay.len() && overlay[next_overlay].start_s < cursor {
                    out.push(overlay[next_overlay]);
                    next_overlay += 1;
                }
                out.push(Span {
                    start_s: cursor,
                    end_s: piece_end,
                    power_kw: span.power_kw,
                });
            }
            cursor = resume.max(cursor);
            k += 1;
        }
    }
    out.extend_from_slice(&overlay[next_overlay..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start_s: i64, end_s: i64, power_kw: f64) -> Span {
        Span {
            start_s,
            end_s,
            power_kw,
        }
    }

    fn all(t: &Timeline) -> Vec<Span> {
        t.iter().collect()
    }

    #[test]
    fn overwrite_inside_splits_in_three() {
        let mut t = Timeline::new();
        t.overwrite(s(0, 900, 1.0));
        t.overwrite(s(300, 600, 5.0));
        assert_eq!(
            all(&t),
            vec![s(0, 300, 1.0), s(300, 600, 5.0), s(600, 900, 1.0)]
        );
    }

    #[test]
    fn overwrite_covering_many_keeps_edges() {
        let mut t = Timeline::new();
        for k in 0..4 {
            t.overwrite(s(k * 300, (k + 1) * 300, k as f64));
        }
        t.overwrite(s(150, 750, 9.0));
        assert_eq!(
            all(&t),
            vec![
                s(0, 150, 0.0),
                s(150, 750, 9.0),
                s(750, 900, 2.0),
                s(900, 1200, 3.0)
            ]
        );
    }

    #[test]
    fn identical_rewrite_is_idempotent() {
        let mut t = Timeline::new();
        t.overwrite(s(0, 300, 1.0));
        t.overwrite(s(300, 600, 2.0));
        let before = all(&t);
        t.overwrite(s(0, 300, 1.0));
        t.overwrite(s(300, 600, 2.0));
        assert_eq!(all(&t), before);
    }

    #[test]
    fn overlay_matches_overwriting_one_by_one() {
        let base: Vec<Span> = (0..20)
            .map(|i| s(i * 100, i * 100 + 90, i as f64))
            .collect();
        let overlays = [
            vec![s(-50, 5, 9.0)],
            vec![s(95, 105, 9.0), s(150, 420, 8.0), s(1990, 2500, 7.0)],
            vec![s(0, 2000, 1.0)],
            vec![s(10, 20, 1.0), s(30, 40, 2.0), s(45, 50, 3.0)],
            vec![s(3000, 3100, 1.0)],
        ];
        for overlay in overlays {
            let mut expected = Timeline::new();
            for &span in base.iter().chain(&overlay) {
                expected.overwrite(span);
            }
            let mut merged = Vec::new();
            overlay_spans(&base, &overlay, &mut merged);
            assert_eq!(merged, all(&expected), "overlay {overlay:?}");
        }
    }

    #[test]
    fn spans_in_clips() {
        let mut t = Timeline::new();
        t.overwrite(s(0, 1000, 1.0));
        t.overwrite(s(2000, 3000, 2.0));
        let mut out = Vec::new();
        t.spans_in(500, 2500, &mut out);
        assert_eq!(out, vec![s(500, 1000, 1.0), s(2000, 2500, 2.0)]);
    }
}
