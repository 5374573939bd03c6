import { ApiError } from '../../../shared/client';

/**
 * The route is not in this engine yet (its feature has not landed): the engine answers 404 with
 * code `not_available` for a route of the contract without a handler, and `not_found` "There is no
 * API route ..." for a path it does not know at all.
 */
export function isNotAvailable(e: unknown): boolean {
  if (!(e instanceof ApiError)) return false;
  if (e.status === 501) return true;
  if (e.status !== 404) return false;
  return e.body.code === 'not_available' || e.body.code === 'no_route' || /no API route/i.test(e.body.error ?? '');
}

export function isUnauthorized(e: unknown): boolean {
  return e instanceof ApiError && e.status === 401;
}

export function isUnreachable(e: unknown): boolean {
  return e instanceof ApiError && e.status === 0;
}

export interface ShownError {
  message: string;
  detail?: string;
  fields?: string[];
}

export function toShownError(e: unknown): ShownError {
  if (e instanceof ApiError) return { message: e.body.error || e.message, detail: e.body.detail, fields: e.body.fields };
  if (e instanceof Error) return { message: e.message };
  return { message: String(e) };
}
