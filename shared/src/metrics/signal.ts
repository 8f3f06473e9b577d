/**
 * A synchronous hand-off from domain code (which has no runtime at hand) to the metrics of a runtime. The
 * events of a process are counted once: by the runtime that subscribed first (the next one takes over when
 * it unsubscribes). Several instances of one service in one process (`INSTANCES=2 npm start`, some tests)
 * then sum to the right totals, all shown by one of them; in production a process runs one instance.
 * Emitting with no subscriber does nothing.
 */
export class MetricSignal<A extends unknown[]> {
  private readonly listeners: Array<(...args: A) => void> = [];

  emit(...args: A): void {
    this.listeners[0]?.(...args);
  }

  /** Returns the unsubscribe function (call it when the runtime closes). */
  subscribe(listener: (...args: A) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
}
