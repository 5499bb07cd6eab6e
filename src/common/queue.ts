/**
 * A FIFO queue on one array with a moving head: O(1) push and shift without `Array.shift`'s
 * O(n) move, compacted when the consumed front outgrows the rest (and reset when it empties).
 * For request queues that see one push and one shift per request.
 */
export class Queue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.items[this.head];
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    const items = this.items;
    if (this.head === items.length) return undefined;
    const item = items[this.head];
    items[this.head++] = undefined; // let it be collected
    if (this.head === items.length) {
      items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      items.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes `item` wherever it waits (O(n), searching from the newest); returns whether it was there. */
  remove(item: T): boolean {
    const i = this.items.lastIndexOf(item);
    if (i < this.head) return false;
    this.items.splice(i, 1);
    return true;
  }

  /** Empties the queue; returns what it held, oldest first. */
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }
}
