/**
 * `target` with some of its methods replaced, for tests that make a port fail, wait or record
 * (`overriding(objects, { putFile: async (name, path) => … })`); every other member is the
 * target's own, its methods bound to it.
 */
export function overriding<T extends object>(target: T, methods: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (Object.hasOwn(methods, prop)) return (methods as Record<PropertyKey, unknown>)[prop];
      const v = Reflect.get(t, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}
