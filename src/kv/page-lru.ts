// The evictable cached pages of the prefix cache in least-recently-used order: an intrusive doubly
// linked list over page ids (O(1) push, remove and pop). Internal; callers pass valid page ids.

export class PageLru {
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly member: Uint8Array;
  /** When each member was pushed (a counter): larger is more recent. */
  private readonly stamps: Float64Array;
  private head = -1;
  private tail = -1;
  private count = 0;
  private clock = 0;

  constructor(numPages: number) {
    this.prev = new Int32Array(numPages).fill(-1);
    this.next = new Int32Array(numPages).fill(-1);
    this.member = new Uint8Array(numPages);
    this.stamps = new Float64Array(numPages);
  }

  get size(): number {
    return this.count;
  }

  has(page: number): boolean {
    return this.member[page] === 1;
  }

  /** Recency of a member: larger is more recently used. */
  stamp(page: number): number {
    return this.stamps[page]!;
  }

  /** Adds `page` as the most recently used. */
  push(page: number): void {
    if (this.member[page] === 1) throw new Error(`PageLru.push: page ${page} is already evictable`);
    this.member[page] = 1;
    this.stamps[page] = ++this.clock;
    this.prev[page] = this.tail;
    this.next[page] = -1;
    if (this.tail >= 0) this.next[this.tail] = page;
    else this.head = page;
    this.tail = page;
    this.count++;
  }

  remove(page: number): void {
    if (this.member[page] !== 1) throw new Error(`PageLru.remove: page ${page} is not evictable`);
    const p = this.prev[page]!;
    const n = this.next[page]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
    this.member[page] = 0;
    this.count--;
  }

  /** Removes and returns the least recently used page. */
  popOldest(): number {
    const page = this.head;
    if (page < 0) throw new Error('PageLru.popOldest: empty (caller did not check)');
    this.remove(page);
    return page;
  }

  /** The members, least recently used first. */
  list(): number[] {
    const out: number[] = [];
    for (let p = this.head; p >= 0; p = this.next[p]!) out.push(p);
    return out;
  }
}
