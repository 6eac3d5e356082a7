// Reference-counted pages and the free list behind PagedKvCache. Internal: the cache validates every
// argument before it gets here, so a violation below is a bug in the cache, not a usage error.
//
// Allocation order is LOWEST FREE PAGE ID FIRST (a binary min-heap), not FIFO: which page a call gets
// depends only on the set of free pages, never on the history of frees, so tests and GPU captures are
// reproducible and live pages stay packed at the low end of the KV buffers.

export class PagePool {
  private readonly refs: Int32Array;
  /** Min-heap of the free page ids in heap[0, size). */
  private readonly heap: Int32Array;
  private size: number;

  constructor(readonly numPages: number) {
    this.refs = new Int32Array(numPages);
    // Ascending order already satisfies the heap property.
    this.heap = Int32Array.from({ length: numPages }, (_, i) => i);
    this.size = numPages;
  }

  get freeCount(): number {
    return this.size;
  }

  refCount(page: number): number {
    return this.refs[page] ?? 0;
  }

  /** Takes the lowest free page with refcount 1. The caller checked freeCount first. */
  allocate(): number {
    if (this.size === 0) throw new Error('PagePool.allocate: no free page (caller did not check)');
    const heap = this.heap;
    const page = heap[0]!;
    this.size--;
    const last = heap[this.size]!;
    // Sift `last` down from the root.
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.size) break;
      const r = l + 1;
      const c = r < this.size && heap[r]! < heap[l]! ? r : l;
      if (heap[c]! >= last) break;
      heap[i] = heap[c]!;
      i = c;
    }
    if (this.size > 0) heap[i] = last;
    this.refs[page] = 1;
    return page;
  }

  /** Another block table now points at `page`. */
  retain(page: number): void {
    if (this.refs[page]! <= 0) throw new Error(`PagePool.retain: page ${page} is free`);
    this.refs[page]!++;
  }

  /** One block table let go of `page`; true when that was the last and the page is free again. */
  release(page: number): boolean {
    if (this.unref(page) > 0) return false;
    this.addFree(page);
    return true;
  }

  /** One block table let go of `page`, which stays out of the free list (a cached page); the count left. */
  unref(page: number): number {
    const r = this.refs[page]!;
    if (r <= 0) throw new Error(`PagePool.unref: page ${page} is already unreferenced`);
    this.refs[page] = r - 1;
    return r - 1;
  }

  /** Takes an unreferenced page that is NOT on the free list (an evictable cached page): refcount 1. */
  claim(page: number): void {
    if (this.refs[page] !== 0) throw new Error(`PagePool.claim: page ${page} is referenced`);
    this.refs[page] = 1;
  }

  /** Puts an unreferenced page that is not on the free list (a dropped cached page) onto it. */
  addFree(page: number): void {
    if (this.refs[page] !== 0) throw new Error(`PagePool.addFree: page ${page} is referenced`);
    // Sift up.
    const heap = this.heap;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heap[p]! <= page) break;
      heap[i] = heap[p]!;
      i = p;
    }
    heap[i] = page;
  }

  /** The free page ids, ascending (a copy). */
  freeList(): number[] {
    return Array.from(this.heap.subarray(0, this.size)).sort((a, b) => a - b);
  }

  /** All refcounts (a copy), indexed by page id. */
  refCounts(): number[] {
    return Array.from(this.refs);
  }
}
