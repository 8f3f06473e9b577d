/**
 * A synchronous fan-out from domain code (which has no runtime at hand) to the metrics of the runtimes
 * that subscribed. Emitting with no subscriber costs one loop over an empty set. Several instances of
 * the same service in one process (some tests) each count every emission: metrics are per process.
 */
export class MetricSignal<A extends unknown[]> {
  private readonly listeners = new Set<(...args: A) => void>();

  emit(...args: A): void {
    for (const listener of this.listeners) listener(...args);
  }

  /** Returns the unsubscribe function (call it when the runtime closes). */
  subscribe(listener: (...args: A) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
