import { EventEmitter } from 'node:events';
import { log } from './log';

/** An EventEmitter whose events and payloads are typed; a throwing listener is logged, never breaks the emitter. */
export class TypedEmitter<Events extends Record<string, unknown[]>> {
  private readonly ee = new EventEmitter();

  constructor() {
    this.ee.setMaxListeners(100);
  }

  on<K extends keyof Events & string>(event: K, fn: (...args: Events[K]) => void): this {
    this.ee.on(event, fn as (...a: unknown[]) => void);
    return this;
  }

  once<K extends keyof Events & string>(event: K, fn: (...args: Events[K]) => void): this {
    this.ee.once(event, fn as (...a: unknown[]) => void);
    return this;
  }

  off<K extends keyof Events & string>(event: K, fn: (...args: Events[K]) => void): this {
    this.ee.off(event, fn as (...a: unknown[]) => void);
    return this;
  }

  emit<K extends keyof Events & string>(event: K, ...args: Events[K]): void {
    // rawListeners: once() wrappers remove themselves when called.
    for (const fn of this.ee.rawListeners(event)) {
      try {
        (fn as (...a: Events[K]) => void)(...args);
      } catch (err) {
        log.error({ err, event }, 'event listener threw');
      }
    }
  }

  removeAllListeners(): void {
    this.ee.removeAllListeners();
  }
}
