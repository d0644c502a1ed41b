// A bounded set of event ids, so replays after a reconnect are dropped without growing forever.
export class SeenIds {
  private readonly set = new Set<string>();
  private readonly order: string[] = [];
  private head = 0;

  constructor(private readonly capacity = 20000) {}

  /** True the first time an id is seen; false for a duplicate. */
  remember(id: string): boolean {
    if (this.set.has(id)) return false;
    this.set.add(id);
    this.order.push(id);
    if (this.order.length - this.head > this.capacity) {
      const oldest = this.order[this.head];
      this.head += 1;
      if (oldest !== undefined) this.set.delete(oldest);
      // Compact now and then instead of shifting on every insert.
      if (this.head > this.capacity) {
        this.order.splice(0, this.head);
        this.head = 0;
      }
    }
    return true;
  }

  get size(): number {
    return this.set.size;
  }
}
