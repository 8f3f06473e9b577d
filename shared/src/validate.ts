import type { z } from 'zod';
import { ERRORS, zodIssues } from './errors';

/** Parses untrusted input with zod; failure is a 400 naming every failing field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where = 'request body'): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw ERRORS.validation(where, zodIssues(result.error));
  return result.data;
}

export const parseBody = <S extends z.ZodType>(schema: S, value: unknown) => parse(schema, value, 'request body');
export const parseQuery = <S extends z.ZodType>(schema: S, value: unknown) => parse(schema, value, 'query string');
export const parseParams = <S extends z.ZodType>(schema: S, value: unknown) => parse(schema, value, 'path parameters');
