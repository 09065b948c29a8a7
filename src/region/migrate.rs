//! Transmigration: copying a graph of values from one region into another, rewriting its keys.
//!
//! [`Region::transmigrate`] works in three passes over the source, which it only reads:
//!
//! 1. **Reach.** A depth-first walk from the roots (an explicit stack, so a million-long chain
//!    needs no host stack) numbers each reachable value once, in the order it is first met. A key
//!    that names nothing in the source is not followed.
//! 2. **Plan.** The destination says which keys its next `n` inserts will hand out
//!    (`Region::next_keys`), so every copy's key is known before any copy is built. That is what
//!    lets a cycle be copied: the value copied first can already hold the key of the value that
//!    will be copied last.
//! 3. **Copy.** Each reachable value makes its copy with [`Migrate::migrate`], given a map from
//!    old keys to new ones (absent keys map to the null key), and the copy is inserted. Each
//!    insert takes exactly the planned key, since nothing else touches the destination meanwhile
//!    (it is borrowed mutably for the whole call); this is asserted. If a `migrate` call panics,
//!    a guard removes the copies inserted so far, so no value of the destination is left holding
//!    a planned key that a later insert could hand to some other value.
//!
//! Cost: one hash-map entry per reachable value, one `migrate` and one insert per value, one key
//! lookup per edge.

use std::collections::HashMap;

use super::{Key, Region};

/// A value that holds keys of its own region, and can be copied into another region with those
/// keys rewritten. See [`Region::transmigrate`].
///
/// The two methods must agree: `migrate` passes to `map` only keys that `each_key` reports.
/// A key that `each_key` leaves out is not copied along, and `map` gives the null key for it.
pub trait Migrate<K: Key> {
    /// Calls `f` with every key this value holds: its edges to other values of the region.
    fn each_key(&self, f: &mut dyn FnMut(K));

    /// Returns a copy of this value for another region, with every key `k` it holds replaced by
    /// `map(k)`.
    fn migrate(&self, map: &mut dyn FnMut(K) -> K) -> Self
    where
        Self: Sized;
}

/// Removes the copies inserted so far unless disarmed: the all-or-nothing half of
/// `transmigrate`.
struct Undo<'a, K: Key, V> {
    into: &'a mut Region<K, V>,
    inserted: &'a [K],
    done: usize,
}

impl<K: Key, V> Drop for Undo<'_, K, V> {
    fn drop(&mut self) {
        for &key in &self.inserted[..self.done] {
            drop(self.into.remove(key));
        }
    }
}

impl<K: Key, V: Migrate<K>> Region<K, V> {
    /// Copies every value reachable from `roots` into `into`, keeping sharing and cycles, and
    /// returns the roots' keys in `into`, in the order of `roots`.
    ///
    /// A value reached along several paths is copied once. A key that names nothing here (stale,
    /// null, or another region's), whether a root or held by a value, becomes the null key in the
    /// copy. `self` is only read; `into` gains exactly one value per reachable value. See the
    /// [module docs](super) for the guarantees and the [`Migrate`] trait for what a value
    /// provides.
    ///
    /// # Panics
    ///
    /// Panics if `into` cannot hold the copies (all `u32::MAX` slot indices taken), or if a
    /// `migrate` call panics; either way `into` is left with the values it had.
    ///
    /// # Examples
    ///
    /// A cycle of two nodes, and a third node that points at both, moved to another region:
    ///
    /// ```
    /// use omni::region::{Key, Migrate, Region};
    ///
    /// omni::region::new_key_type! { struct NodeKey; }
    ///
    /// struct Node {
    ///     name: &'static str,
    ///     edges: Vec<NodeKey>,
    /// }
    ///
    /// impl Migrate<NodeKey> for Node {
    ///     fn each_key(&self, f: &mut dyn FnMut(NodeKey)) {
    ///         self.edges.iter().copied().for_each(f);
    ///     }
    ///     fn migrate(&self, map: &mut dyn FnMut(NodeKey) -> NodeKey) -> Self {
    ///         Node { name: self.name, edges: self.edges.iter().map(|&k| map(k)).collect() }
    ///     }
    /// }
    ///
    /// let mut here = Region::new();
    /// let a = here.insert(Node { name: "a", edges: vec![] });
    /// let b = here.insert(Node { name: "b", edges: vec![a] });
    /// here[a].edges.push(b); // a -> b -> a
    /// let c = here.insert(Node { name: "c", edges: vec![a, b] });
    ///
    /// let mut there = Region::new();
    /// let roots = here.transmigrate(&[c], &mut there);
    /// assert_eq!(there.len(), 3, "a and b are copied once each");
    ///
    /// let c2 = &there[roots[0]];
    /// let (a2, b2) = (c2.edges[0], c2.edges[1]);
    /// assert_eq!((c2.name, there[a2].name, there[b2].name), ("c", "a", "b"));
    /// assert_eq!(there[a2].edges, [b2], "the cycle is kept");
    /// assert_eq!(there[b2].edges, [a2]);
    ///
    /// here.remove(c);
    /// assert_eq!(here.transmigrate(&[c], &mut there), [NodeKey::null()], "c is stale now");
    /// ```
    pub fn transmigrate(&self, roots: &[K], into: &mut Region<K, V>) -> Vec<K> {
        // Reach: number each reachable value once.
        let mut index: HashMap<K, usize> = HashMap::new();
        let mut order: Vec<K> = Vec::new();
        let mut stack: Vec<K> = roots.iter().rev().copied().collect();
        while let Some(key) = stack.pop() {
            if index.contains_key(&key) {
                continue;
            }
            let Some(value) = self.get(key) else { continue };
            index.insert(key, order.len());
            order.push(key);
            value.each_key(&mut |edge| {
                if !index.contains_key(&edge) {
                    stack.push(edge);
                }
            });
        }

        // Plan: the keys the copies will get.
        let planned = into.next_keys(order.len());
        let mut map = |key: K| index.get(&key).map_or_else(K::null, |&i| planned[i]);

        // Copy, all or nothing.
        let mut undo = Undo { into, inserted: &planned, done: 0 };
        for (&key, &want) in order.iter().zip(&planned) {
            let copy = self[key].migrate(&mut map);
            let got = undo.into.insert(copy);
            undo.done += 1;
            assert_eq!(got, want, "transmigrate: the destination handed out an unplanned key");
        }
        undo.done = 0;
        drop(undo);
        roots.iter().map(|&root| map(root)).collect()
    }
}
