// A Keyv store adapter for tests of slow stores: real storage (a Map), with a `set` that can be held.

/**
 * An honest Keyv store adapter over a Map, whose next `set` can be held back as a slow network
 * store's would be: the value is taken when `set` is called and lands when the test releases it.
 */
export class SlowSetStore {
  private readonly data = new Map<string, unknown>();
  private hold: ((release: () => void) => void) | undefined;

  /** Holds the next `set`; resolves, once that `set` has been called, with the function that lets it land. */
  holdNextSet(): Promise<() => void> {
    return new Promise((arrived) => (this.hold = arrived));
  }

  async get(key: string): Promise<unknown> {
    return this.data.get(key);
  }

  async set(key: string, value: unknown): Promise<boolean> {
    const hold = this.hold;
    this.hold = undefined;
    if (hold) await new Promise<void>((release) => hold(release));
    this.data.set(key, value);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.data.delete(key);
  }

  async clear(): Promise<void> {
    this.data.clear();
  }
}
