/**
 * The one shape of a failure returned as a value: `{ ok: true, value }` or `{ ok: false, error }`, where the error
 * carries a stable `code` (from its room's list of codes) and whatever facts explain it. Byzantine input, a failing
 * transfer or a refused signature are outcomes, not exceptions; exceptions are left for broken invariants.
 */

/** A success with its value, or a failure with a coded error. */
export type Result<T, E extends { readonly code: string }> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E }

/** A success. */
export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value }
}

/** A failure. */
export function err<E extends { readonly code: string }>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error }
}

/**
 * The codes of `codes` other than `excluded`, in their order and typed as such: a room narrows another room's list
 * of codes without restating it, so a code added to the list reaches every room derived from it.
 */
export function withoutCodes<const C extends string, const X extends C>(codes: readonly C[], excluded: readonly X[]): readonly Exclude<C, X>[] {
  const drop: readonly string[] = excluded
  return Object.freeze(codes.filter((c): c is Exclude<C, X> => !drop.includes(c)))
}
