/**
 * A base class for a class that carries some plain fields of its options, read-only:
 * `class Session extends fieldsOf<SessionOptions>()('id', 'name')` gives each instance the `id` and `name` of the
 * object its constructor passes to super(), so those fields are declared once (in the options' interface) and
 * copied in one place. A key the object does not hold (an absent optional field) stays absent.
 */
export function fieldsOf<T extends object>() {
  return <K extends keyof T>(...keys: readonly K[]): new (from: T) => Readonly<Pick<T, K>> =>
    class {
      constructor(from: T) {
        for (const k of keys) if (from[k] !== undefined) Object.defineProperty(this, k, { value: from[k], enumerable: true });
      }
    } as new (from: T) => Readonly<Pick<T, K>>;
}
