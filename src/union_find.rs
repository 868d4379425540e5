//! Disjoint sets over `0..n` (union-find with path halving), for grouping
//! things that overlap or lie near each other: sites seen by several pairs,
//! sites of one compound.
//!
//! The smaller index is always the root, so the sets and their roots do not
//! depend on the order in which pairs are joined: groupings come out the
//! same whatever order (or thread) found the pairs.

pub struct UnionFind(Vec<usize>);

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> Self {
        UnionFind((0..n).collect())
    }

    /// The root of `i`'s set: its smallest member.
    pub fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    /// Joins the sets of `a` and `b`.
    pub fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.0[a.max(b)] = a.min(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_the_smallest_members_whatever_the_order() {
        let pairs = [(4, 2), (2, 7), (5, 6), (7, 0)];
        let mut fwd = UnionFind::new(8);
        pairs.iter().for_each(|&(a, b)| fwd.union(a, b));
        let mut rev = UnionFind::new(8);
        pairs.iter().rev().for_each(|&(a, b)| rev.union(b, a));
        for i in 0..8 {
            assert_eq!(fwd.find(i), rev.find(i), "{i}");
        }
        assert_eq!([0, 2, 4, 7].map(|i| fwd.find(i)), [0; 4]);
        assert_eq!((fwd.find(5), fwd.find(6)), (5, 5));
        assert_eq!((fwd.find(1), fwd.find(3)), (1, 3));
    }
}
